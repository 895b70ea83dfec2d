"""Export a training checkpoint for release: half-precision weights, no optimizer state.

    python -m framevrnn.export outputs/train/RUN/checkpoints/last.pt my_model.pt [--note "..."]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from framevrnn.checkpoint import atomic_save, load_checkpoint, make_checkpoint
from framevrnn.errors import UserError, run_cli
from framevrnn.models.build import model_from_checkpoint


def export(src: Path, dst: Path, half: bool = True, note: str | None = None) -> dict:
    """Write ``src``'s model as a release checkpoint at ``dst``; returns the new checkpoint dict."""
    ckpt = load_checkpoint(src)
    model = model_from_checkpoint(ckpt)
    info = dict(ckpt.get("info") or {})
    if note:
        info["note"] = note
    out = make_checkpoint(model, ckpt["kind"], ckpt["model_config"], ckpt["step"], config=ckpt.get("config"),
                          info=info, half=half)
    atomic_save(out, dst)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m framevrnn.export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", type=Path, help="training checkpoint (e.g. .../checkpoints/last.pt)")
    p.add_argument("dst", type=Path, help="where to write the release checkpoint")
    p.add_argument("--full-precision", action="store_true", help="keep float32 weights")
    p.add_argument("--note", default=None, help="free text stored in the checkpoint's info")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    args = p.parse_args(argv)
    if args.dst.exists() and args.dst.resolve() == args.src.resolve():
        raise UserError("dst must differ from src")
    out = export(args.src, args.dst, half=not args.full_precision, note=args.note)
    size = args.dst.stat().st_size / 2**20
    print(f"wrote {args.dst} ({out['kind']}, step {out['step']}, {size:.2f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="framevrnn.export"))
