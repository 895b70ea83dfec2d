"""The frame metrics a protocol can name, and the accumulation of per-sequence scores over batches."""
from __future__ import annotations

import torch

from framevrnn.evaluation.likelihood import PredictiveLikelihood
from framevrnn.metrics import mae_sum, mse_sum, psnr, ssim
from framevrnn.scoring import FrameMetric, summarize

FRAME_METRICS: dict[str, FrameMetric] = {"psnr": psnr, "ssim": ssim, "mse_sum": mse_sum, "mae_sum": mae_sum}


def _finite(x: float) -> float | None:
    return x if x == x else None      # no interval from one sequence; JSON has no NaN


class Accumulator:
    """Collects per-sequence results batch by batch (on the host) and summarises them."""

    def __init__(self) -> None:
        self.frames: dict[str, dict[str, list[torch.Tensor]]] = {}
        self.nll: dict[str, list[torch.Tensor]] = {}
        self.nll_k = 0

    def add_scores(self, selected: dict[str, dict[str, torch.Tensor]]) -> None:
        for name, kinds in selected.items():
            for kind, value in kinds.items():
                self.frames.setdefault(name, {}).setdefault(kind, []).append(value.detach().cpu())

    def add_nll(self, ll: PredictiveLikelihood) -> None:
        self.nll_k = ll.k
        for unit, values in (("nats_per_frame", ll.nats_per_frame()), ("bits_per_dim", ll.bits_per_dim())):
            for est, v in values.items():
                self.nll.setdefault(f"{est}_{unit}", []).append(v.detach().cpu())

    def summary(self) -> dict:
        """{"metrics": {name: {kind: {mean, ci95, per_step}}}, "nll": {estimate_unit: {mean, ci95}} | None}."""
        metrics = {}
        for name, kinds in self.frames.items():
            metrics[name] = {}
            for kind, parts in kinds.items():
                per_seq = torch.cat(parts)                              # (sequences, T)
                mean, half = summarize(per_seq)
                metrics[name][kind] = {"mean": mean, "ci95": _finite(half), "per_step": per_seq.mean(0).tolist()}
        nll = None
        if self.nll:
            nll = {"k": self.nll_k}
            for key, parts in self.nll.items():
                mean, half = summarize(torch.cat(parts).unsqueeze(1))
                nll[key] = {"mean": mean, "ci95": _finite(half)}
        return {"metrics": metrics, "nll": nll}
