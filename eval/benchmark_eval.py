"""Time rollout + scoring on this machine and extrapolate the full SRVP protocol (5,000 x 100, 5 -> 20).

    OMP_NUM_THREADS=1 python eval/benchmark_eval.py --sequences 4 --samples 10          # CPU
    python eval/benchmark_eval.py --device cuda --sequences 64 --samples 100            # GPU

Runs the suite's own loop (``framevrnn.evaluation.runner.evaluate``: samples folded into the batch,
metrics on the device) on random frames, which cost the same as real ones. Uses the shipped
checkpoint (or --checkpoint); where neither is at hand, an untrained model of the default config
size, which is larger than the shipped one, so its timings are not the shipped model's.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from framevrnn.devices import describe_hardware, resolve_device
from framevrnn.evaluation.lpips_metric import build_lpips
from framevrnn.evaluation.protocols import load_protocol
from framevrnn.evaluation.runner import Entry, checkpoint_entry, evaluate
from framevrnn.models.conv_vrnn import ConvVRNN, ConvVRNNConfig
from framevrnn.predict import ASSETS, DEFAULT_CHECKPOINT


def default_entry(device: torch.device) -> Entry:
    model = ConvVRNN(ConvVRNNConfig()).to(device).eval()
    return Entry("vrnn (default size, untrained)", "model", lambda c, h, n: model.rollout(c, h, n),
                 stochastic=True, core=model.core)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--sequences", type=int, default=4)
    p.add_argument("--samples", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lpips-backbone", default="none", help="a trunk path to time LPIPS too (default: off)")
    args = p.parse_args()
    device = resolve_device(args.device)
    shipped = Path(str(ASSETS / DEFAULT_CHECKPOINT))
    ckpt = args.checkpoint or (shipped if shipped.is_file() else None)
    entry = checkpoint_entry(ckpt, device, "model", "mean") if ckpt else default_entry(device)
    full = load_protocol("srvp_smmnist")
    metrics = full.metrics + (("lpips",) if args.lpips_backbone != "none" else ())
    proto = dataclasses.replace(full, samples=args.samples, metrics=metrics,
                                data=dataclasses.replace(full.data, sequences=args.sequences))
    lpips = build_lpips(args.lpips_backbone, device) if "lpips" in metrics else None
    frames = np.random.default_rng(0).integers(0, 256, (args.sequences, 25, 64, 64), dtype=np.uint8)
    evaluate(proto, [entry], frames[:1], device, lpips, batch_size=1, progress=False)        # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    evaluate(proto, [entry], frames, device, lpips, batch_size=args.batch_size, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    rollouts = args.sequences * args.samples
    per_rollout = seconds / rollouts
    full_rollouts = full.data.sequences * full.samples
    print(f"device: {device} ({describe_hardware(device)}), model: {entry.label}, metrics: {', '.join(metrics)}")
    print(f"{args.sequences} sequences x {args.samples} samples, 5 -> 20: {seconds:.2f} s, "
          f"{rollouts / seconds:.1f} sampled sequences/s ({per_rollout * 1e3:.1f} ms each)")
    print(f"full srvp_smmnist ({full.data.sequences} x {full.samples} = {full_rollouts} sampled sequences): "
          f"about {full_rollouts * per_rollout / 3600:.1f} h on this device")


if __name__ == "__main__":
    main()
