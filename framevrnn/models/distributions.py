"""Distribution heads: raw network outputs -> ``torch.distributions`` objects.

Scales go through softplus plus a small floor, so no head can produce a zero or negative scale.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Bernoulli, Distribution, Laplace, Normal

OBSERVATIONS = ("bernoulli", "gaussian", "laplace")
SCALES = ("fixed", "learned")


def positive_scale(raw: torch.Tensor, floor: float) -> torch.Tensor:
    return F.softplus(raw) + floor


def diagonal_normal(params: torch.Tensor, floor: float = 1e-3) -> Normal:
    """Split ``params`` (B, 2K, ...) along dim 1 into loc and raw scale: Normal over (B, K, ...)."""
    loc, raw = params.chunk(2, dim=1)
    return Normal(loc, positive_scale(raw, floor), validate_args=False)


class ObservationHead(nn.Module):
    """p(x_t | .) for frames: Bernoulli logits, or Gaussian / Laplace with a fixed or learned scale.

    ``forward(out)`` takes the decoder's raw output (B, params_per_channel * C, H, W) and returns a
    distribution whose ``log_prob(x)`` has shape (B, C, H, W) and whose ``mean`` is the frame.
    Intensities are in [0, 1]; Bernoulli uses them as soft targets (validation off), as is usual
    for Moving MNIST.
    """

    def __init__(self, kind: str = "bernoulli", scale: str = "fixed", fixed_scale: float = 0.1,
                 min_scale: float = 1e-3) -> None:
        super().__init__()
        if kind not in OBSERVATIONS:
            raise ValueError(f"observation must be one of {OBSERVATIONS}, got {kind!r}")
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
        self.kind, self.scale, self.fixed_scale, self.min_scale = kind, scale, fixed_scale, min_scale

    @property
    def params_per_channel(self) -> int:
        return 2 if self.kind != "bernoulli" and self.scale == "learned" else 1

    def forward(self, out: torch.Tensor) -> Distribution:
        out = out.float()  # likelihoods stay in float32 under autocast
        if self.kind == "bernoulli":
            return Bernoulli(logits=out, validate_args=False)
        if self.scale == "learned":
            loc, raw = out.chunk(2, dim=1)
            scale = positive_scale(raw, self.min_scale)
        else:
            loc, scale = out, torch.full_like(out, self.fixed_scale)
        family = Normal if self.kind == "gaussian" else Laplace
        return family(loc, scale, validate_args=False)
