"""DistributedDataParallel: 2 gloo ranks with batch b reach the parameters of 1 process with batch 2b."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp

from framevrnn import distributed
from framevrnn.checkpoint import unwrap
from framevrnn.training_step import prepare_model, train_step
from tests.conftest import SHARED_MNIST, tiny_model

STEPS = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fixed_batches() -> torch.Tensor:
    g = torch.Generator().manual_seed(123)
    return (torch.rand(STEPS, 8, 4, 1, 16, 16, generator=g) > 0.6).float()   # (steps, 2b, T, C, H, W)


def _run(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    info, device = distributed.setup(torch.device("cpu"))
    # the deterministic variant: no latent noise, so the two set-ups see exactly the same computation
    model = prepare_model(tiny_model(variant="rnn"), device, info, compile_model=False, channels_last=False)
    # plain SGD without clipping: the update is proportional to the gradient, so a rank that scaled its
    # loss differently (summing over its share of the batch instead of averaging) would show up
    optimizer = torch.optim.SGD(unwrap(model).parameters(), lr=1e-4)
    batches = _fixed_batches()
    share = batches.shape[1] // world
    for x in batches:
        train_step(model, optimizer, x[rank * share:(rank + 1) * share], beta=1.0, grad_clip=1e9)
    if rank == 0:
        torch.save(unwrap(model).state_dict(), out)
    distributed.teardown(info)


@pytest.mark.slow
def test_two_ranks_match_one_process_with_the_whole_batch(tmp_path):
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        assert key not in os.environ
    _run(0, 1, _free_port(), str(tmp_path / "single.pt"))
    mp.spawn(_run, args=(2, _free_port(), str(tmp_path / "ddp.pt")), nprocs=2, join=True)
    single = torch.load(tmp_path / "single.pt", weights_only=True)
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    start = tiny_model(variant="rnn").state_dict()
    assert any(not torch.equal(start[k], single[k]) for k in start), "training must have changed the weights"
    for k in single:
        torch.testing.assert_close(ddp[k], single[k], rtol=1e-4, atol=1e-5, msg=k)


@pytest.mark.slow
def test_torchrun_trains_with_two_cpu_ranks(tmp_path):
    if not SHARED_MNIST.is_file():
        pytest.skip(f"MNIST digits not found at {SHARED_MNIST}")
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
           "framevrnn.train", "trainer=debug", "trainer.max_steps=4", "trainer.progress=false",
           f"trainer.run_dir={run}", f"data.mnist_path={SHARED_MNIST}", "data.val_sequences=2",
           "model.encoder_widths=[4,8,8]", "model.decoder_widths=[8,8,4]", "model.hidden_channels=8"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "(2 ranks)" in proc.stderr
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["step"] == 4 and ckpt["info"]["world_size"] == 2
