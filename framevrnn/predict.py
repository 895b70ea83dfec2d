"""Predict future frames with a trained ConvVRNN.

    python -m framevrnn.predict --context 5 --horizon 5

With no other argument it uses the checkpoint and the demo Moving MNIST test sequences shipped in
the package (no network needed), writes a PNG grid, an animated GIF, the predicted frames and the
metrics to a new output folder, and prints per-step PSNR and SSIM against the ground truth.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from framevrnn.checkpoint import load_checkpoint
from framevrnn.data.frame_input import FrameSequences, conform, load_frames
from framevrnn.devices import resolve_device
from framevrnn.errors import UserError, run_cli
from framevrnn.models.build import FRAME_KIND, model_from_checkpoint
from framevrnn.scoring import copy_last_frame, score_samples, summarize
from framevrnn.viz import rollout_animation, rollout_grid, save_gif, save_png

ASSETS = resources.files("framevrnn") / "assets"
DEFAULT_CHECKPOINT = "conv_vrnn_mmnist.pt"
DEFAULT_INPUT = "demo_mmnist.npz"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m framevrnn.predict",
        description="Roll out future frames with a ConvVRNN: the posterior reads the context frames, then "
                    "the learned prior samples each next frame and the model's own prediction is fed back.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--context", type=int, default=5, help="number of observed frames the model conditions on")
    p.add_argument("--horizon", type=int, default=5, help="number of future frames to predict")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help=f"a framevrnn checkpoint (.pt); default: the shipped {DEFAULT_CHECKPOINT}, a vrnn trained "
                        "on stochastic Moving MNIST")
    p.add_argument("--input", type=Path, default=None,
                   help="frames to continue: a .npy/.npz array ((T,H,W), (N,T,H,W), (N,T,H,W,C) or (N,T,C,H,W); "
                        "uint8 or [0,1] floats), a video file, or a folder of images (sorted by name). Frames are "
                        "resized to the model's size and converted to its channels. Default: the shipped demo "
                        "Moving MNIST test sequences")
    p.add_argument("--start", type=int, default=0, help="index of the first context frame in each sequence")
    p.add_argument("--samples", type=int, default=20, help="sampled futures per sequence (run as one batch)")
    p.add_argument("--max-sequences", type=int, default=8, help="use at most this many sequences of the input")
    p.add_argument("--batch-size", type=int, default=8, help="sequences per forward pass (lower it if memory is short)")
    p.add_argument("--feedback", choices=("mean", "sample"), default="mean",
                   help="what is fed back at each predicted step: the frame distribution's mean, or a sample")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (created; must not exist yet); default: predictions/<date_time>")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same samples")
    p.add_argument("--show", type=int, default=4, help="sequences drawn in the grid and the GIF")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    return p


def _check_args(args: argparse.Namespace) -> None:
    for name, low in (("context", 1), ("horizon", 1), ("samples", 1), ("max_sequences", 1), ("batch_size", 1),
                      ("show", 1), ("start", 0)):
        if getattr(args, name) < low:
            raise UserError(f"--{name.replace('_', '-')} must be at least {low}, got {getattr(args, name)}")


def _load_input(args, channels: int, size: int) -> FrameSequences:
    if args.input is not None:
        return load_frames(args.input, channels, size, min_frames=args.start + args.context)
    with resources.as_file(ASSETS / DEFAULT_INPUT) as path:
        with np.load(path) as npz:
            frames = npz["frames"][:, :, None].astype(np.float32) / 255.0      # (N, T, 1, H, W)
    if frames.shape[1] < args.start + args.context:
        raise UserError(f"the demo sequences have {frames.shape[1]} frames; --start + --context must be at most that")
    notes: list[str] = []
    return FrameSequences(conform(frames, channels, size, notes), f"shipped demo ({DEFAULT_INPUT})", notes)


@torch.no_grad()
def predict(model, context: torch.Tensor, horizon: int, samples: int, feedback: str, batch_size: int,
            device: torch.device) -> torch.Tensor:
    """Batched rollouts: context (B, Tc, C, H, W) -> samples (B, N, horizon, C, H, W) on the CPU."""
    out = []
    for i in range(0, context.shape[0], batch_size):
        out.append(model.rollout(context[i:i + batch_size].to(device), horizon, samples, feedback).cpu())
    return torch.cat(out)


def _table(scores: dict, baseline: dict, steps: int) -> str:
    lines = [f"{'step':>5}  {'PSNR best':>9}  {'PSNR mean':>9}  {'SSIM best':>9}  {'SSIM mean':>9}  "
             f"{'copy-last PSNR':>14}  {'SSIM':>6}"]
    for t in range(steps):
        lines.append(f"{'t+' + str(t + 1):>5}  {scores['psnr']['best'][:, t].mean():9.2f}  "
                     f"{scores['psnr']['mean'][:, t].mean():9.2f}  {scores['ssim']['best'][:, t].mean():9.4f}  "
                     f"{scores['ssim']['mean'][:, t].mean():9.4f}  {baseline['psnr']['mean'][:, t].mean():14.2f}  "
                     f"{baseline['ssim']['mean'][:, t].mean():6.4f}")
    lines.append(f"{'mean':>5}  {scores['psnr']['best'].mean():9.2f}  {scores['psnr']['mean'].mean():9.2f}  "
                 f"{scores['ssim']['best'].mean():9.4f}  {scores['ssim']['mean'].mean():9.4f}  "
                 f"{baseline['psnr']['mean'].mean():14.2f}  {baseline['ssim']['mean'].mean():6.4f}")
    return "\n".join(lines)


def _metrics_json(scores: dict, baseline: dict) -> dict:
    out = {}
    for label, src, kinds in (("model", scores, ("best", "mean")), ("copy_last_frame", baseline, ("mean",))):
        for metric, by_kind in src.items():
            for kind in kinds:
                m, half = summarize(by_kind[kind])
                key = f"{label}/{metric}_{kind}" if label == "model" else f"{label}/{metric}"
                out[key] = {"mean": m, "ci95": half, "per_step": by_kind[kind].mean(0).tolist()}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _check_args(args)
    device = resolve_device(args.device)
    if args.checkpoint is None:
        with resources.as_file(ASSETS / DEFAULT_CHECKPOINT) as path:
            ckpt = load_checkpoint(path, expect_kind=FRAME_KIND)
        ckpt_name = f"shipped {DEFAULT_CHECKPOINT}"
    else:
        ckpt = load_checkpoint(args.checkpoint, expect_kind=FRAME_KIND)
        ckpt_name = str(args.checkpoint)
    model = model_from_checkpoint(ckpt).to(device).eval()
    mcfg = model.cfg
    seqs = _load_input(args, mcfg.channels, mcfg.image_size)
    frames = torch.from_numpy(seqs.frames[:args.max_sequences])
    context = frames[:, args.start:args.start + args.context]
    truth = frames[:, args.start + args.context:args.start + args.context + args.horizon]
    has_truth = truth.shape[1] == args.horizon
    if not has_truth and truth.shape[1] > 0:
        seqs.notes.append(f"only {truth.shape[1]} ground-truth frame(s) after the context: no scores")

    out_dir = args.out or Path("predictions") / time.strftime("%Y-%m-%d_%H-%M-%S")
    if out_dir.exists():
        raise UserError(f"output folder {out_dir} already exists; give a new --out")
    print(f"checkpoint: {ckpt_name} ({mcfg.variant}, step {ckpt.get('step', '?')})  input: {seqs.source} "
          f"({frames.shape[0]} sequence(s))  {args.context} -> {args.horizon}, {args.samples} samples, {device}")
    for note in seqs.notes:
        print(f"note: {note}")

    torch.manual_seed(args.seed)
    samples = predict(model, context, args.horizon, args.samples, args.feedback, args.batch_size, device)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        show = slice(0, args.show)
        save_png(rollout_grid(context[show], truth[show] if has_truth else None, samples[show]), staging / "grid.png")
        save_gif(rollout_animation(context[show], truth[show] if has_truth else None, samples[show]),
                 staging / "rollout.gif")
        arrays = {"context": context, "samples": samples}
        if has_truth:
            arrays["truth"] = truth
        np.savez_compressed(staging / "predictions.npz",
                            **{k: (v.numpy() * 255).round().astype(np.uint8) for k, v in arrays.items()})
        report = {"checkpoint": ckpt_name, "input": seqs.source, "context": args.context, "horizon": args.horizon,
                  "samples": args.samples, "sequences": int(frames.shape[0]), "seed": args.seed,
                  "feedback": args.feedback}
        if has_truth:
            scores = score_samples(samples, truth)
            baseline = score_samples(copy_last_frame(context, args.horizon), truth)
            report["metrics"] = _metrics_json(scores, baseline)
        (staging / "metrics.json").write_text(json.dumps(report, indent=2))
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if has_truth:
        print(f"per-step scores over {frames.shape[0]} sequence(s) (best of {args.samples} samples, and mean):")
        print(_table(scores, baseline, args.horizon))
    print(f"wrote {out_dir}/: grid.png, rollout.gif, predictions.npz, metrics.json")
    return 0


def cli() -> None:
    sys.exit(run_cli(main, prog="framevrnn.predict"))


if __name__ == "__main__":
    cli()
