"""The evaluation suite as one function: protocols x (models + baselines) -> a plain-data report."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from framevrnn.data.mnist_digits import load_mnist
from framevrnn.devices import describe_hardware
from framevrnn.evaluation.lpips_metric import build_lpips
from framevrnn.evaluation.protocols import Protocol
from framevrnn.evaluation.runner import Entry, checkpoint_entry, copy_last_entry, evaluate
from framevrnn.evaluation.testsets import load_testset, needs_digits


@dataclass
class SuiteOptions:
    checkpoints: list[Path]
    baseline_checkpoint: Path | None = None
    mnist: str | None = None
    mnist_test_seq: Path | None = None
    lpips_backbone: str | None = None
    batch_size: int | None = None
    seed: int = 0
    progress: bool = True
    command: str = ""


def _entries(opts: SuiteOptions, device: torch.device, feedback: str, log) -> list[Entry]:
    entries = [checkpoint_entry(p, device, "model", feedback) for p in opts.checkpoints]
    entries.append(copy_last_entry())
    if opts.baseline_checkpoint is not None:
        base = checkpoint_entry(opts.baseline_checkpoint, device, "baseline", feedback)
        base.label = f"{base.info['variant']} baseline ({os.path.basename(str(opts.baseline_checkpoint))})"
        if base.info["variant"] != "rnn":
            log(f"note: the baseline checkpoint is a {base.info['variant']!r} model, not the rnn variant")
        entries.append(base)
    return entries


def _entry_result(entry: Entry, proto: Protocol, scores: dict) -> dict:
    # a metric the protocol asks for but that could not be computed (LPIPS without weights) is None
    metrics = {m: scores["metrics"].get(m) for m in proto.metrics if m != "nll"}
    return {"label": entry.label, "role": entry.role, "samples": proto.samples if entry.stochastic else 1,
            "info": entry.info, "metrics": metrics, "nll": scores["nll"]}


def run_suite(protocols: list[Protocol], opts: SuiteOptions, device: torch.device, log=print) -> dict:
    """Evaluate every protocol; returns the report that ``write_report`` writes."""
    # MNIST first (read once for all protocols): a missing source fails before any slow set-up
    digits = load_mnist(opts.mnist)[1] if any(needs_digits(p, opts.mnist_test_seq) for p in protocols) else None
    needs_lpips = any("lpips" in p.metrics for p in protocols)
    lpips = build_lpips(opts.lpips_backbone, device, log) if needs_lpips else None
    results, by_feedback = [], {}
    for proto in protocols:
        if proto.feedback not in by_feedback:  # models load once per feedback rule, not once per protocol
            by_feedback[proto.feedback] = _entries(opts, device, proto.feedback, log)
        entries = by_feedback[proto.feedback]
        data = load_testset(proto, digits, opts.mnist_test_seq)
        for note in data.notes:
            log(f"note: {note}")
        start = time.perf_counter()
        scores = evaluate(proto, entries, data.frames, device, lpips=lpips, batch_size=opts.batch_size,
                          seed=opts.seed, progress=opts.progress)
        results.append({
            "protocol": proto.name, "description": proto.description, "reduction": proto.reduction,
            "context": proto.context, "horizon": proto.horizon, "samples": proto.samples,
            "nll_samples": proto.nll_samples if "nll" in proto.metrics else None,
            "sequences": int(data.frames.shape[0]), "test_set": data.source, "notes": data.notes,
            "feedback": proto.feedback, "metrics": list(proto.metrics),
            "lpips": lpips.source if lpips is not None else None,
            "seconds": round(time.perf_counter() - start, 1),
            "entries": [_entry_result(e, proto, scores[e.label]) for e in entries],
            "published": list(proto.published),
        })
    return {"command": opts.command, "device": f"{device} ({describe_hardware(device)})",
            "checkpoints": [str(p) for p in opts.checkpoints], "seed": opts.seed,
            "created": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "protocols": results}
