"""Device selection with a clear error for devices that do not exist."""
from __future__ import annotations

import torch

from framevrnn.errors import UserError


def resolve_device(name: str | None = "auto") -> torch.device:
    """"auto" picks CUDA when available, else the CPU; "cuda:N" is checked against the devices present."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {name!r} asked for, but no CUDA GPU is available; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"device {name!r} does not exist: {torch.cuda.device_count()} CUDA device(s) present")
    elif device.type not in ("cpu", "mps"):
        raise UserError(f"unsupported device {name!r}; use cpu, cuda, cuda:N or auto")
    return device


def describe_hardware(device: torch.device) -> str:
    """A short human-readable description, e.g. "NVIDIA H100 80GB HBM3" or "CPU, 2 threads"."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    n = torch.get_num_threads()
    return f"CPU, {n} thread{'s' if n != 1 else ''}"
