"""Training and rollout throughput of the ConvVRNN: plain fp32 eager against the faster paths.

    python eval/benchmark.py                      # CUDA when present, else CPU (smaller sizes)
    python eval/benchmark.py --device cpu --batch-sizes 8 16 --compile

For each path (precision x memory format x torch.compile) and batch size it prints training
throughput (frames/s), model FLOP utilisation against the device's measured matrix-multiply peak
(the largest dense matmul rate this device reaches in that precision), and peak memory; then the
rollout throughput of 100 samples per sequence and the time that implies for the full SRVP
protocol (5,000 sequences x 100 samples x 25 frames). Last, the ratio fastest / plain fp32 eager.
Model sizes are those of the shipped checkpoint (configs/experiment/mmnist_reference.yaml).
"""
from __future__ import annotations

import argparse
import itertools
import resource
import time
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from framevrnn.devices import describe_hardware, resolve_device
from framevrnn.distributed import DistInfo
from framevrnn.models.conv_vrnn import ConvVRNN, ConvVRNNConfig
from framevrnn.training_step import make_optimizer, prepare_model, train_step

REFERENCE = dict(encoder_widths=[16, 32, 64], decoder_widths=[64, 32, 16], hidden_channels=64, z_channels=8)
SRVP_PREDICTED_FRAMES = 5_000 * 100 * 20     # 5,000 sequences x 100 samples x 20 predicted frames


@dataclass(frozen=True)
class Path:
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False

    @property
    def name(self) -> str:
        return "+".join([self.precision] + (["channels_last"] if self.channels_last else [])
                        + (["compile"] if self.compile else ["eager"]))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, dtype: torch.dtype, trials: int = 3) -> float:
    """Measured dense matmul rate in FLOP/s (the practical ceiling the MFU is reported against).

    The best of ``trials`` timings, so that a moment of contention does not lower the ceiling.
    """
    n = 8192 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    reps = 20 if device.type == "cuda" else 2
    best = float("inf")
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 * reps / best


def peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # process peak RSS (Linux: KiB)


def step_flops(batch: int, seq_len: int, device: torch.device) -> int:
    """FLOPs of one training step (forward + backward) counted by PyTorch's FlopCounterMode."""
    model = ConvVRNN(ConvVRNNConfig(**REFERENCE)).to(device)
    x = torch.rand(batch, seq_len, 1, 64, 64, device=device)
    with FlopCounterMode(display=False) as counter:
        nll, kl = model(x)
        (nll + kl).sum(1).mean().backward()
    return counter.get_total_flops()


def time_training(path: Path, batch: int, seq_len: int, steps: int, warmup: int, device: torch.device) -> float:
    """Seconds per training step on random frames (B, T, 1, 64, 64)."""
    torch.manual_seed(0)
    plain = ConvVRNN(ConvVRNNConfig(**REFERENCE))
    model = prepare_model(plain, device, DistInfo(), path.compile, path.channels_last)
    optimizer = make_optimizer(plain, 1e-4, device)
    x = (torch.rand(batch, seq_len, 1, 64, 64, device=device) > 0.8).float()
    if path.channels_last:
        x = x.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, x.shape[:2])
    for _ in range(warmup):
        train_step(model, optimizer, x, 1.0, 100.0, path.precision)
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        train_step(model, optimizer, x, 1.0, 100.0, path.precision)
    sync(device)
    return (time.perf_counter() - start) / steps


@torch.no_grad()
def time_rollout(path: Path, sequences: int, samples: int, device: torch.device, reps: int) -> float:
    """Predicted frames per second for 5 -> 20 rollouts of ``samples`` futures per sequence."""
    plain = ConvVRNN(ConvVRNNConfig(**REFERENCE)).eval()
    prepare_model(plain, device, DistInfo(), path.compile, path.channels_last)
    context = torch.rand(sequences, 5, 1, 64, 64, device=device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=path.precision == "bf16"):
        plain.rollout(context, 20, samples)
        sync(device)
        start = time.perf_counter()
        for _ in range(reps):
            plain.rollout(context, 20, samples)
        sync(device)
    return reps * sequences * samples * 20 / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=None, help="default: 32 64 128 on CUDA, 8 16 on CPU")
    p.add_argument("--seq-len", type=int, default=10)
    p.add_argument("--steps", type=int, default=None, help="timed steps (default: 20 on CUDA, 4 on CPU)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile paths (default on CUDA)")
    p.add_argument("--rollout-sequences", type=int, default=None, help="default: 50 on CUDA, 1 on CPU")
    args = p.parse_args()
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    batches = args.batch_sizes or ([32, 64, 128] if cuda else [8, 16])
    steps = args.steps or (20 if cuda else 4)
    warmup = 5 if cuda else 2
    compile_too = args.compile or cuda
    paths = [Path(prec, cl, comp) for prec, cl, comp in
             itertools.product(("fp32", "bf16"), (False, True), (False, True) if compile_too else (False,))]
    fp32_peak, bf16_peak = matmul_peak(device, torch.float32), matmul_peak(device, torch.bfloat16)
    print(f"device: {describe_hardware(device)}; torch {torch.__version__}; measured matmul peak "
          f"fp32 {fp32_peak / 1e12:.3f} TFLOP/s, bf16 {bf16_peak / 1e12:.3f} TFLOP/s")
    # under bf16 autocast part of the work runs in float32, so its ceiling is the faster of the two
    # (on CPUs without native bf16, the bf16 matmul rate alone would give an MFU above 100%)
    peaks = {"fp32": fp32_peak, "bf16": max(fp32_peak, bf16_peak)}

    print(f"\ntraining, {args.seq_len}-frame sequences of 64x64, shipped model size")
    print(f"{'path':<30} {'batch':>5} {'s/step':>8} {'frames/s':>10} {'MFU':>7} {'peak MiB':>9}")
    best: dict[int, tuple[float, str]] = {}
    eager: dict[int, float] = {}
    for batch in batches:
        flops = step_flops(batch, args.seq_len, device)
        for path in paths:
            if cuda:
                torch.cuda.reset_peak_memory_stats(device)
            sec = time_training(path, batch, args.seq_len, steps, warmup, device)
            fps = batch * args.seq_len / sec
            mfu = flops / sec / peaks[path.precision]
            print(f"{path.name:<30} {batch:>5} {sec:8.3f} {fps:10.0f} {mfu:7.1%} {peak_memory_mib(device):9.0f}",
                  flush=True)
            if path == Path():
                eager[batch] = fps
            if fps > best.get(batch, (0.0, ""))[0]:
                best[batch] = (fps, path.name)

    seqs = args.rollout_sequences or (50 if cuda else 1)
    print(f"\nrollout, 5 -> 20 with 100 samples per sequence, {seqs} sequence(s) per batch")
    print(f"{'path':<30} {'pred frames/s':>14} {'SRVP protocol':>14}")
    roll_best, roll_eager = (0.0, ""), 0.0
    for path in [q for q in paths if not q.compile]:
        fps = time_rollout(path, seqs, 100, device, reps=3 if cuda else 1)
        print(f"{path.name:<30} {fps:14.0f} {SRVP_PREDICTED_FRAMES / fps / 60:12.1f} min", flush=True)
        roll_eager = fps if path == Path() else roll_eager
        roll_best = max(roll_best, (fps, path.name))

    print("\nfastest / plain fp32 eager:")
    for batch in batches:
        print(f"  training, batch {batch}: {best[batch][1]} at {best[batch][0] / eager[batch]:.2f}x")
    print(f"  rollout: {roll_best[1]} at {roll_best[0] / roll_eager:.2f}x")


if __name__ == "__main__":
    main()
