"""Frame metrics in torch, batched on any device. Frames are (..., C, H, W) in [0, 1].

PSNR = 10 log10(1 / MSE) per frame. SSIM uses an 11x11 Gaussian window (sigma 1.5) with the
constants K1 = 0.01, K2 = 0.03 and data range 1, averaged over the valid region and channels: the
definition of scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1)``. ``mse_sum`` / ``mae_sum`` are OpenSTL's MSE / MAE:
errors summed over a frame's pixels on the 0..1 scale (the caller averages over frames and sequences).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per frame: (..., C, H, W) -> (...)."""
    return (pred.float() - target.float()).pow(2).flatten(-3).mean(-1)


def mse_sum(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error summed over a frame's pixels (OpenSTL's MSE per frame): (..., C, H, W) -> (...)."""
    return (pred.float() - target.float()).pow(2).flatten(-3).sum(-1)


def mae_sum(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Absolute error summed over a frame's pixels (OpenSTL's MAE per frame): (..., C, H, W) -> (...)."""
    return (pred.float() - target.float()).abs().flatten(-3).sum(-1)


def psnr(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Peak signal-to-noise ratio per frame in dB, data range 1: (..., C, H, W) -> (...)."""
    return 10.0 * torch.log10(1.0 / mse(pred, target).clamp_min(eps))


def gaussian_window(size: int = 11, sigma: float = 1.5, device=None) -> torch.Tensor:
    """Normalised 1-D Gaussian weights (size,)."""
    x = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    w = torch.exp(-0.5 * (x / sigma) ** 2)
    return (w / w.sum()).float()


def ssim(pred: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5,
         data_range: float = 1.0) -> torch.Tensor:
    """Structural similarity per frame: (..., C, H, W) -> (...); leading dimensions broadcast."""
    pred, target = torch.broadcast_tensors(pred, target)
    lead = pred.shape[:-3]
    c, h, w = pred.shape[-3:]
    x = pred.float().reshape(-1, 1, h, w)
    y = target.float().reshape(-1, 1, h, w)
    g = gaussian_window(window, sigma, x.device)
    # one separable blur pass over the five maps stacked along the batch
    maps = torch.cat([x, y, x * x, y * y, x * y], 0)
    maps = F.conv2d(F.conv2d(maps, g.view(1, 1, 1, -1)), g.view(1, 1, -1, 1))
    mu_x, mu_y, xx, yy, xy = maps.chunk(5, 0)
    var_x, var_y, cov = xx - mu_x ** 2, yy - mu_y ** 2, xy - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return s.flatten(1).mean(-1).reshape(*lead, c).mean(-1)
