"""Checkpoints: plain dicts of tensors and plain data, written atomically, read with weights_only=True.

Layout: {"format", "version", "kind", "model_config", "model" (state_dict of the unwrapped module),
"step", "optimizer" (optional), "config" (the resolved run config, plain data), "info" (optional)}.
Nothing in a checkpoint is ever passed to Hydra's ``instantiate``: models are rebuilt from
``model_config`` by ``framevrnn.models.build.build_model``.
"""
from __future__ import annotations

import os
import pickle
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from framevrnn.errors import UserError

FORMAT = "framevrnn-checkpoint"
VERSION = 1


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The plain module behind DistributedDataParallel and torch.compile wrappers."""
    while True:
        if hasattr(module, "module") and isinstance(module.module, torch.nn.Module):
            module = module.module
        elif hasattr(module, "_orig_mod"):
            module = module._orig_mod
        else:
            return module


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def make_checkpoint(model: torch.nn.Module, kind: str, model_config: dict, step: int, *,
                    optimizer: torch.optim.Optimizer | None = None, config: dict | None = None,
                    info: dict | None = None, half: bool = False) -> dict:
    state = unwrap(model).state_dict()
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    ckpt = {"format": FORMAT, "version": VERSION, "kind": kind, "model_config": dict(model_config),
            "model": state, "step": int(step), "config": config or {}, "info": info or {}}
    if optimizer is not None:
        ckpt["optimizer"] = optimizer.state_dict()
    return ckpt


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu",
                    expect_kind: str | None = None) -> dict:
    """Load a framevrnn checkpoint safely; raise UserError with a clear message on any problem."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"checkpoint {p} does not exist")
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"unsupported GLOBAL (\S+)", str(err))
        if found:
            raise UserError(f"refusing to load {p}: it holds a pickled Python object ({found.group(1)}), "
                            "not plain weights; nothing from it was run") from None
        raise UserError(f"cannot read checkpoint {p}: not a valid PyTorch file or truncated") from None
    except (RuntimeError, zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        raise UserError(f"cannot read checkpoint {p}: not a valid PyTorch file or truncated "
                        f"({type(err).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{p} is not a framevrnn checkpoint (no '{FORMAT}' marker)")
    if expect_kind is not None and ckpt.get("kind") != expect_kind:
        raise UserError(f"{p} holds a {ckpt.get('kind')!r} model; this command needs a {expect_kind!r} model")
    return ckpt


STEP_PATTERN = "step_*.pt"
LAST = "last.pt"


def save_rotating(ckpt: dict, folder: str | os.PathLike, keep: int = 3) -> Path:
    """Write ``step_<step>.pt`` atomically, point ``last.pt`` at it, keep the newest ``keep`` step files."""
    folder = Path(folder)
    path = atomic_save(ckpt, folder / f"step_{ckpt['step']:09d}.pt")
    link = folder / f".{LAST}.{os.getpid()}.tmp"
    link.unlink(missing_ok=True)
    try:
        os.link(path, link)                      # a hard link costs nothing and renames atomically
        os.replace(link, folder / LAST)
    except OSError:                              # file systems without hard links
        link.unlink(missing_ok=True)
        atomic_save(ckpt, folder / LAST)
    for old in sorted(folder.glob(STEP_PATTERN))[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete temporary files left by a writer that was killed mid-write."""
    stale = list(Path(folder).glob(".*.tmp")) if Path(folder).is_dir() else []
    for f in stale:
        f.unlink(missing_ok=True)
    return stale


def latest_valid(folder: str | os.PathLike, expect_kind: str | None = None,
                 warn=lambda msg: None) -> tuple[Path, dict] | None:
    """The newest checkpoint in ``folder`` that loads (step files newest first, then last.pt)."""
    folder = Path(folder)
    candidates = sorted(folder.glob(STEP_PATTERN), reverse=True) + [folder / LAST]
    for path in candidates:
        if not path.is_file():
            continue
        try:
            return path, load_checkpoint(path, expect_kind=expect_kind)
        except UserError as err:
            if "holds a" in str(err):           # another kind of model: not ours to skip silently
                raise
            warn(f"skipping unusable checkpoint: {err}")
    return None
