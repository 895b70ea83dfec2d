"""Scoring stochastic rollouts: per-step metrics, best-of-N and mean over samples, baselines."""
from __future__ import annotations

from typing import Callable

import torch

from framevrnn.metrics import psnr, ssim

METRICS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {"psnr": psnr, "ssim": ssim}


def score_samples(samples: torch.Tensor, truth: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
    """Per-sequence, per-step scores of N samples against the truth.

    samples (B, N, T, C, H, W), truth (B, T, C, H, W). For each metric returns
    {"best": (B, T), "mean": (B, T)}: "best" is the sample whose time-averaged score is highest for
    that sequence (chosen per metric, as SVG / SRVP report), "mean" averages over the N samples.
    """
    out = {}
    for name, fn in METRICS.items():
        per = fn(samples, truth.unsqueeze(1))                   # (B, N, T)
        best = per.mean(-1).argmax(1)                          # (B,)
        out[name] = {"best": per[torch.arange(per.shape[0]), best], "mean": per.mean(1)}
    return out


def copy_last_frame(context: torch.Tensor, horizon: int) -> torch.Tensor:
    """The trivial baseline: the last context frame repeated, as one sample (B, 1, horizon, C, H, W)."""
    return context[:, -1:].unsqueeze(1).expand(-1, 1, horizon, *context.shape[2:])


def summarize(per_seq: torch.Tensor) -> tuple[float, float]:
    """Mean over sequences and time, with the 95% interval half-width 1.96 std / sqrt(N) over sequences."""
    seq_means = per_seq.float().mean(-1)
    n = seq_means.numel()
    half = 1.96 * seq_means.std(unbiased=True).item() / n ** 0.5 if n > 1 else float("nan")
    return seq_means.mean().item(), half
