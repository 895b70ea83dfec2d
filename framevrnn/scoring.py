"""Scoring stochastic rollouts: per-step metrics, best-of-N and mean over samples, baselines."""
from __future__ import annotations

from typing import Callable

import torch

from framevrnn.metrics import psnr, ssim

FrameMetric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

METRICS: dict[str, FrameMetric] = {"psnr": psnr, "ssim": ssim}
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "lpips": False, "mse_sum": False, "mae_sum": False}


def per_sample(samples: torch.Tensor, truth: torch.Tensor, metrics: dict[str, FrameMetric]) -> dict[str, torch.Tensor]:
    """Scores of every sample and step: samples (B, N, T, C, H, W), truth (B, T, C, H, W) -> (B, N, T) each."""
    target = truth.unsqueeze(1)
    return {name: fn(samples, target) for name, fn in metrics.items()}


def select(per: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """{"best": (B, T), "mean": (B, T)} per metric from (B, N, T) scores.

    "best" is the sample whose time-averaged score is best for that sequence, chosen per metric
    (as SVG / SRVP / SLAMP report); "mean" averages over the N samples.
    """
    out = {}
    for name, scores in per.items():
        key = scores.mean(-1)                                          # (B, N)
        idx = key.argmax(1) if HIGHER_IS_BETTER[name] else key.argmin(1)
        best = scores.gather(1, idx.view(-1, 1, 1).expand(-1, 1, scores.shape[-1])).squeeze(1)
        out[name] = {"best": best, "mean": scores.mean(1)}
    return out


def score_samples(samples: torch.Tensor, truth: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
    """PSNR and SSIM of N samples, best and mean: samples (B, N, T, C, H, W), truth (B, T, C, H, W)."""
    return select(per_sample(samples, truth, METRICS))


def copy_last_frame(context: torch.Tensor, horizon: int) -> torch.Tensor:
    """The trivial baseline: the last context frame repeated, as one sample (B, 1, horizon, C, H, W)."""
    return context[:, -1:].unsqueeze(1).expand(-1, 1, horizon, *context.shape[2:])


def summarize(per_seq: torch.Tensor) -> tuple[float, float]:
    """Mean over sequences and time, with the 95% interval half-width 1.96 std / sqrt(N) over sequences."""
    seq_means = per_seq.float().mean(-1)
    n = seq_means.numel()
    half = 1.96 * seq_means.std(unbiased=True).item() / n ** 0.5 if n > 1 else float("nan")
    return seq_means.mean().item(), half
