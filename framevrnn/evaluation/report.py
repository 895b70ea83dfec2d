"""Reports: one JSON file, one Markdown file and per-step PNG plots, written as a whole or not at all."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

LABELS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "lpips": "LPIPS", "mse_sum": "MSE / frame", "mae_sum": "MAE / frame"}
DIGITS = {"psnr": 2, "ssim": 4, "lpips": 4, "mse_sum": 2, "mae_sum": 2}
ARROWS = {"psnr": "↑", "ssim": "↑", "lpips": "↓", "mse_sum": "↓", "mae_sum": "↓"}


def _fmt(value: dict | None, digits: int) -> str:
    if value is None:
        return "n/a"
    half = value.get("ci95")
    return f"{value['mean']:.{digits}f}" + (f" ± {half:.{digits}f}" if half is not None else "")


def _frame_metrics(result: dict) -> list[str]:
    return [m for m in result["metrics"] if m in LABELS]


def protocol_markdown(result: dict) -> str:
    """A Markdown section for one protocol's result (one item of ``run_suite(...)["protocols"]``)."""
    metrics = _frame_metrics(result)
    lines = [f"## {result['protocol']}: {result['description']}", ""]
    if result.get("reduction"):
        lines += [f"**{result['reduction']}** (a reduced run: not the full protocol, compare with care)", ""]
    sampled = result["samples"] > 1
    lines += [f"- test set: {result['test_set']} ({result['sequences']} sequences), "
              f"{result['context']} -> {result['horizon']} frames",
              (f"- samples per sequence: {result['samples']} for stochastic models (best sample chosen per metric "
               "by its time-averaged score; \"mean\" averages over samples), 1 for deterministic ones"
               if sampled else "- one prediction per sequence") + "; ± is 1.96 std / sqrt(sequences)"]
    if "lpips" in metrics:
        lines.append(f"- LPIPS: {result.get('lpips') or 'n/a (no AlexNet weights)'}")
    if "nll" in result["metrics"]:
        lines.append(f"- NLL of the predicted frames given the context: ELBO bound and importance-sampled "
                     f"estimate with K = {result['nll_samples']} (nats per frame; bits per dimension)")
    lines += [f"- note: {n}" for n in result.get("notes", [])] + [""]
    head = ["method", "samples"]
    for m in metrics:
        head += [f"{LABELS[m]} {ARROWS[m]} best", f"{LABELS[m]} mean"] if sampled else [f"{LABELS[m]} {ARROWS[m]}"]
    if "nll" in result["metrics"]:
        head += ["NLL nats/frame (IS)", "NLL nats/frame (ELBO)", "bits/dim (IS)"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in result["entries"]:
        row = [e["label"], str(e["samples"])]
        for m in metrics:
            got = e["metrics"].get(m)
            row += [_fmt(got and got["best"], DIGITS[m])] + ([_fmt(got and got["mean"], DIGITS[m])] if sampled else [])
        if "nll" in result["metrics"]:
            nll = e.get("nll")
            row += [_fmt(nll and nll["iw_nats_per_frame"], 2), _fmt(nll and nll["elbo_nats_per_frame"], 2),
                    _fmt(nll and nll["iw_bits_per_dim"], 4)]
        lines.append("| " + " | ".join(row) + " |")
    for p in result.get("published", []):
        row = [f"{p['method']} (published)", str(p.get("samples", ""))]
        for m in metrics:
            row += [f"{p[m]:.{DIGITS[m]}f}" if m in p else ""] + ([""] if sampled else [])
        row += [""] * (len(head) - len(row))
        lines.append("| " + " | ".join(row) + " |")
    if result.get("published"):
        lines += [""] + [f"- {p['method']}: {p['source']}" for p in result["published"]]
    return "\n".join(lines) + "\n"


def plot_metric(result: dict, metric: str, path: Path) -> None:
    """Per-step curves of one metric, every entry (best solid, mean dashed) on one axis."""
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    steps = range(1, result["horizon"] + 1)
    for e in result["entries"]:
        got = e["metrics"].get(metric)
        if got is None:
            continue
        line, = ax.plot(steps, got["best"]["per_step"], marker="o", ms=3,
                        label=f"{e['label']} (best of {e['samples']})" if e["samples"] > 1 else e["label"])
        if e["samples"] > 1:
            ax.plot(steps, got["mean"]["per_step"], ls="--", color=line.get_color(), label=f"{e['label']} (mean)")
    title = f"{result['protocol']}: {LABELS[metric]} per predicted frame, {result['sequences']} sequences"
    if result.get("reduction"):
        title += "\n" + textwrap.fill(result["reduction"], 80)
    ax.set_title(title, fontsize=9)
    ax.set(xlabel="predicted frame (steps after the context)", ylabel=LABELS[metric])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(report: dict, out_dir: Path) -> list[str]:
    """Write report.json, report.md and <protocol>_<metric>.png into ``out_dir`` (which must not exist).

    Everything goes to a temporary folder beside it first, renamed into place at the end: an error
    leaves no partial output. Returns the file names written.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        (staging / "report.json").write_text(json.dumps(report, indent=2))
        md = [f"# Evaluation report\n\n- device: {report['device']}\n- checkpoints: "
              f"{', '.join(report['checkpoints'])}\n- command: `{report['command']}`\n"]
        md += [protocol_markdown(r) for r in report["protocols"]]
        (staging / "report.md").write_text("\n".join(md))
        for r in report["protocols"]:
            for m in _frame_metrics(r):
                if any(e["metrics"].get(m) for e in r["entries"]):
                    plot_metric(r, m, staging / f"{r['protocol']}_{m}.png")
        names = sorted(p.name for p in staging.iterdir())
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return names
