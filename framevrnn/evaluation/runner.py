"""Run one protocol: roll out every model and baseline on the test set and score them on the device."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from framevrnn.checkpoint import load_checkpoint
from framevrnn.errors import UserError
from framevrnn.evaluation.likelihood import predictive_log_likelihood
from framevrnn.evaluation.lpips_metric import LPIPSMetric
from framevrnn.evaluation.protocols import Protocol
from framevrnn.evaluation.scores import FRAME_METRICS, Accumulator
from framevrnn.models.build import FRAME_KIND, model_from_checkpoint
from framevrnn.models.vrnn_core import VRNNCore
from framevrnn.scoring import FrameMetric, copy_last_frame, per_sample, select

# (B, Tc, C, H, W) context, horizon, samples -> (B, N, horizon, C, H, W)
Predictor = Callable[[torch.Tensor, int, int], torch.Tensor]
BYTES_PER_VALUE = 4 * 16   # float32, times the peak number of live copies while scoring (SSIM maps, LPIPS)


@dataclass
class Entry:
    """One row of a report: a model or a baseline."""

    label: str
    role: str                                   # "model" | "baseline"
    predict: Predictor
    stochastic: bool
    core: VRNNCore | None = None                # for NLL
    info: dict = field(default_factory=dict)


def copy_last_entry() -> Entry:
    return Entry("copy last frame", "baseline", lambda ctx, h, n: copy_last_frame(ctx, h), stochastic=False,
                 info={"what": "the last context frame repeated"})


def checkpoint_entry(path: str | os.PathLike, device: torch.device, role: str, feedback: str) -> Entry:
    """A ConvVRNN from a checkpoint, on ``device``, as a report entry."""
    ckpt = load_checkpoint(path, expect_kind=FRAME_KIND)
    model = model_from_checkpoint(ckpt).to(device).eval()
    variant = model.cfg.variant
    info = {"checkpoint": str(path), "variant": variant, "step": ckpt.get("step"),
            "image_size": model.cfg.image_size, "channels": model.cfg.channels}

    def predict(ctx: torch.Tensor, horizon: int, n: int) -> torch.Tensor:
        if (ctx.shape[-3], ctx.shape[-1]) != (model.cfg.channels, model.cfg.image_size):
            raise UserError(f"{path} models {model.cfg.channels}x{model.cfg.image_size}x{model.cfg.image_size} "
                            f"frames; this protocol's are {ctx.shape[-3]}x{ctx.shape[-2]}x{ctx.shape[-1]}")
        return model.rollout(ctx, horizon, n, feedback)

    return Entry(f"{variant} ({os.path.basename(str(path))})", role, predict,
                 stochastic=model.core.has_latent, core=model.core, info=info)


def max_rows(device: torch.device, horizon: int, frame_numel: int) -> int:
    """Rollouts (sequences x samples) that fit one pass: half the free GPU memory, or 1 GiB on the CPU."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = free // 2
    else:
        budget = 1 << 30
    return max(1, int(budget // (horizon * frame_numel * BYTES_PER_VALUE)))


def _sampled_scores(entry: Entry, ctx: torch.Tensor, truth: torch.Tensor, samples: int, chunk: int,
                    metrics: dict[str, FrameMetric]) -> dict[str, torch.Tensor]:
    """(B, N, T) scores per metric; samples are drawn ``chunk`` at a time so memory stays bounded."""
    parts: dict[str, list[torch.Tensor]] = {}
    for start in range(0, samples, chunk):
        pred = entry.predict(ctx, truth.shape[1], min(chunk, samples - start)).clamp(0, 1)
        for name, v in per_sample(pred, truth, metrics).items():
            parts.setdefault(name, []).append(v)
    return {name: torch.cat(v, 1) for name, v in parts.items()}


@torch.no_grad()
def evaluate(proto: Protocol, entries: list[Entry], frames: np.ndarray, device: torch.device,
             lpips: LPIPSMetric | None = None, batch_size: int | None = None, seed: int = 0,
             progress: bool = True) -> dict[str, dict]:
    """Score ``entries`` on ``frames`` uint8 (N, T, H, W) under ``proto``: {label: Accumulator.summary()}."""
    c, h = proto.context, proto.horizon
    metrics = {m: FRAME_METRICS[m] for m in proto.metrics if m in FRAME_METRICS}
    if "lpips" in proto.metrics and lpips is not None:
        metrics["lpips"] = lpips
    rows = max_rows(device, h, int(np.prod(frames.shape[2:])))
    batch = batch_size or max(1, rows // proto.samples)
    chunk = max(1, rows // batch)
    acc = {e.label: Accumulator() for e in entries}
    torch.manual_seed(seed)
    bar = tqdm(range(0, frames.shape[0], batch), desc=proto.name, unit="batch", disable=not progress,
               leave=False)
    for i in bar:
        x = torch.from_numpy(frames[i:i + batch, :c + h]).to(device).float().div_(255).unsqueeze(2)
        ctx, truth = x[:, :c], x[:, c:]                                # (B, Tc, 1, H, W), (B, Th, 1, H, W)
        for e in entries:
            n = proto.samples if e.stochastic else 1
            acc[e.label].add_scores(select(_sampled_scores(e, ctx, truth, n, chunk, metrics)))
            if "nll" in proto.metrics and e.core is not None:
                acc[e.label].add_nll(predictive_log_likelihood(e.core, x, c, proto.nll_samples, max_rows=rows))
    return {e.label: acc[e.label].summary() for e in entries}
