"""Measure the figures of a frame model's card: 5 -> 5 on a fixed stochastic Moving MNIST test set.

    python eval/model_card.py --mnist ../shared/data/mnist/mnist.npz \
        --baseline /path/to/rnn/last.pt --sequences 1000 --samples 20

Test set: MNIST *test* digits, seed 42, 64x64, 2 digits of 28x28, speed up to 4 px/frame, SVG's
stochastic bounce, 10-frame sequences (5 context, 5 predicted). Scores: PSNR and SSIM per frame,
averaged over the 5 predicted frames; "best" is the best of N samples (chosen per metric), "mean"
the average over samples; +- is 1.96 std / sqrt(sequences). Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from tqdm import tqdm

from framevrnn.checkpoint import load_checkpoint
from framevrnn.data.mnist_digits import load_mnist
from framevrnn.data.moving_mnist import MovingMNISTSpec, fixed_set
from framevrnn.devices import resolve_device
from framevrnn.models.build import FRAME_KIND, model_from_checkpoint
from framevrnn.predict import ASSETS, DEFAULT_CHECKPOINT
from framevrnn.scoring import copy_last_frame, score_samples, summarize


@torch.no_grad()
def evaluate(rollout, frames: torch.Tensor, context: int, batch: int, device) -> dict[str, torch.Tensor]:
    """Per-sequence scores (N, horizon) for a rollout function context -> samples (B, S, T, C, H, W)."""
    parts: dict[str, list[torch.Tensor]] = {}
    for i in tqdm(range(0, frames.shape[0], batch), desc="sequences", leave=False):
        x = frames[i:i + batch].to(device).float().div_(255).unsqueeze(2)
        scores = score_samples(rollout(x[:, :context], x.shape[1] - context), x[:, context:])
        for metric, kinds in scores.items():
            for kind, v in kinds.items():
                parts.setdefault(f"{metric}_{kind}", []).append(v.cpu())
    return {k: torch.cat(v) for k, v in parts.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped checkpoint")
    p.add_argument("--baseline", type=Path, default=None, help="an rnn-variant checkpoint trained on the same budget")
    p.add_argument("--mnist", default=None, help="mnist.npz / IDX folder (default: $FRAMEVRNN_MNIST)")
    p.add_argument("--sequences", type=int, default=1000)
    p.add_argument("--samples", type=int, default=20)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--batch-size", type=int, default=25)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args()
    device = resolve_device(args.device)
    _, test_digits = load_mnist(args.mnist)
    frames = torch.from_numpy(fixed_set(test_digits, MovingMNISTSpec(seq_len=10), args.sequences, seed=args.seed))

    rows = {"copy last frame": evaluate(lambda c, h: copy_last_frame(c, h), frames, 5, args.batch_size, device)}
    for label, path in (("vrnn (shipped)", args.checkpoint or ASSETS / DEFAULT_CHECKPOINT), ("rnn", args.baseline)):
        if path is None:
            continue
        ckpt = load_checkpoint(path, expect_kind=FRAME_KIND)
        model = model_from_checkpoint(ckpt).to(device).eval()
        n = args.samples if model.core.has_latent else 1
        torch.manual_seed(0)
        start = time.time()
        rows[f"{label}, step {ckpt['step']}"] = evaluate(lambda c, h: model.rollout(c, h, samples=n), frames, 5,
                                                         args.batch_size, device)
        print(f"{label}: {time.time() - start:.0f} s for {args.sequences} sequences x {n} samples on {device}")

    print(f"\n5 -> 5 on {args.sequences} test sequences (seed {args.seed}), best of {args.samples} samples and mean\n")
    print("| model | PSNR best | PSNR mean | SSIM best | SSIM mean |")
    print("| --- | --- | --- | --- | --- |")
    table = {}
    for label, scores in rows.items():
        cells = {k: summarize(v) for k, v in scores.items()}
        table[label] = {k: {"mean": m, "ci95": h, "per_step": scores[k].mean(0).tolist()} for k, (m, h) in cells.items()}
        fmt = {k: f"{m:.2f} ± {h:.2f}" if k.startswith("psnr") else f"{m:.4f} ± {h:.4f}" for k, (m, h) in cells.items()}
        print(f"| {label} | {fmt['psnr_best']} | {fmt['psnr_mean']} | {fmt['ssim_best']} | {fmt['ssim_mean']} |")
    if args.json:
        args.json.write_text(json.dumps({"sequences": args.sequences, "samples": args.samples, "seed": args.seed,
                                         "rows": table}, indent=2))


if __name__ == "__main__":
    main()
