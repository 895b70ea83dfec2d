"""Pictures of rollouts: a PNG grid (context | ground truth | samples) and an animated GIF."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from einops import rearrange, repeat
from PIL import Image
from torchvision.utils import make_grid

CONTEXT_COLOUR = (0.1, 0.8, 0.1)   # green frame around observed frames
PREDICT_COLOUR = (0.9, 0.1, 0.1)   # red frame around predicted frames


def _rgb(frames: torch.Tensor) -> torch.Tensor:
    """(..., C, H, W) with C in {1, 3} -> (..., 3, H, W) float in [0, 1] on the CPU."""
    frames = frames.detach().float().cpu().clamp(0, 1)
    return frames.expand(*frames.shape[:-3], 3, *frames.shape[-2:]) if frames.shape[-3] == 1 else frames


def _border(frames: torch.Tensor, colour: tuple[float, float, float], width: int = 2) -> torch.Tensor:
    out = frames.clone()
    c = torch.tensor(colour).view(3, 1, 1)
    out[..., :, :width, :] = c
    out[..., :, -width:, :] = c
    out[..., :, :, :width] = c
    out[..., :, :, -width:] = c
    return out


def rollout_grid(context: torch.Tensor, truth: torch.Tensor | None, samples: torch.Tensor,
                 max_samples: int = 5) -> torch.Tensor:
    """One block per sequence: a row of context + ground truth, then one row per sample.

    context (B, Tc, C, H, W), truth (B, Th, C, H, W) or None, samples (B, N, Th, C, H, W).
    Returns an image tensor (3, H_img, W_img) in [0, 1].
    """
    b, n = samples.shape[:2]
    n = min(n, max_samples)
    ctx = _border(_rgb(context), CONTEXT_COLOUR)
    blank = torch.zeros_like(ctx)
    rows = []
    for i in range(b):
        if truth is not None:
            rows.append(torch.cat([ctx[i], _rgb(truth[i])], 0))
        for k in range(n):
            rows.append(torch.cat([ctx[i] if truth is None and k == 0 else blank[i],
                                   _border(_rgb(samples[i, k]), PREDICT_COLOUR)], 0))
    tiles = torch.stack(rows)  # (rows, Tc + Th, 3, H, W)
    return make_grid(rearrange(tiles, "r t c h w -> (r t) c h w"), nrow=tiles.shape[1], padding=2, pad_value=0.5)


def rollout_animation(context: torch.Tensor, truth: torch.Tensor | None, samples: torch.Tensor,
                      max_samples: int = 4) -> list[np.ndarray]:
    """Frames of an animation: each shows ground truth and samples side by side, one row per sequence.

    Observed frames carry a green border, predicted ones a red border. Returns uint8 (H, W, 3) images.
    """
    b, n, th = samples.shape[:3]
    n = min(n, max_samples)
    ctx = _border(_rgb(context), CONTEXT_COLOUR)
    pred = _border(_rgb(samples[:, :n]), PREDICT_COLOUR)                   # (B, n, Th, 3, H, W)
    cols = [repeat(ctx, "b t c h w -> b k t c h w", k=n + (truth is not None))]
    future = [_rgb(truth).unsqueeze(1)] if truth is not None else []
    cols.append(torch.cat(future + [pred], 1))
    movie = torch.cat(cols, 2)                                              # (B, cols, T, 3, H, W)
    out = []
    for t in range(movie.shape[2]):
        grid = make_grid(rearrange(movie[:, :, t], "b k c h w -> (b k) c h w"), nrow=movie.shape[1],
                         padding=2, pad_value=0.5)
        out.append((grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    return out


def _atomic_target(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def save_png(image: torch.Tensor, path: str | os.PathLike, scale: int = 2) -> Path:
    """Write a (3, H, W) tensor in [0, 1] as PNG, upscaled ``scale`` times (nearest), atomically."""
    path = Path(path)
    arr = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    img = Image.fromarray(arr).resize((arr.shape[1] * scale, arr.shape[0] * scale), Image.NEAREST)
    tmp = _atomic_target(path)
    img.save(tmp, format="PNG")
    os.replace(tmp, path)
    return path


def save_gif(frames: list[np.ndarray], path: str | os.PathLike, fps: float = 4.0, scale: int = 2) -> Path:
    """Write uint8 (H, W, 3) frames as a looping animated GIF, atomically."""
    path = Path(path)
    images = [Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST) for f in frames]
    tmp = _atomic_target(path)
    images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    os.replace(tmp, path)
    return path
