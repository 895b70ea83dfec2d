"""kill -9 a training run at random moments and resume each time: nothing beyond the last checkpoint
is lost, no checkpoint on disk is ever unreadable, and the end result equals an uninterrupted run."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from framevrnn.checkpoint import load_checkpoint

STEPS = 150
KILLS = 5


def _command(mnist_npz, run_dir):
    return [sys.executable, "-m", "framevrnn.train", "trainer=debug", f"trainer.max_steps={STEPS}",
            "trainer.batch_size=2", "trainer.ckpt_every=1", "trainer.val_every=1000", "trainer.log_every=10",
            "trainer.progress=false", f"trainer.run_dir={run_dir}", f"data.mnist_path={mnist_npz}",
            "data.image_size=16", "data.digit_size=8", "data.val_sequences=2", "data.context=2", "data.horizon=2",
            "model.encoder_widths=[4,8]", "model.decoder_widths=[8,4]", "model.hidden_channels=8",
            "model.z_channels=2", "model.z_feature_channels=4", "model.head_channels=8"]


def _newest_step(ckpt_dir) -> int:
    steps = [int(p.stem.split("_")[1]) for p in ckpt_dir.glob("step_*.pt")]
    return max(steps, default=0)


@pytest.mark.slow
def test_kill_9_and_resume_loses_nothing(tmp_path, mnist_npz):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    reference, faulty = tmp_path / "reference", tmp_path / "faulty"
    done = subprocess.run(_command(mnist_npz, reference), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

    rng = random.Random(0)
    ckpt_dir = faulty / "checkpoints"
    kills, during_write = 0, 0
    for _ in range(KILLS):
        before = _newest_step(ckpt_dir)
        proc = subprocess.Popen(_command(mnist_npz, faulty), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while _newest_step(ckpt_dir) <= before and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)                                     # wait until this run is training
        time.sleep(rng.uniform(0.0, 0.6))
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        during_write += bool(list(ckpt_dir.glob(".*.tmp")))
        for path in ckpt_dir.glob("*.pt"):                      # every checkpoint left on disk loads
            assert load_checkpoint(path)["step"] > 0
    final = subprocess.run(_command(mnist_npz, faulty), env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr[-2000:]
    assert kills >= 3, f"only {kills} kills landed during training"
    a = load_checkpoint(reference / "checkpoints" / "last.pt")
    b = load_checkpoint(faulty / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == STEPS
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    print(f"{kills} kills ({during_write} left a partial write behind), final weights identical")
