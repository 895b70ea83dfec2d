"""Evaluation protocols: one YAML file each in the top-level eval/protocols/ folder.

A protocol fixes the test set, the context / horizon split, the number of samples, the metrics and
the published figures to print beside ours. ``load_protocol`` takes a name (a file in eval/protocols,
which installs as the package ``framevrnn.protocols``) or a path.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from framevrnn.errors import UserError
from framevrnn.models.conv_vrnn import FEEDBACK

METRIC_NAMES = ("psnr", "ssim", "lpips", "mse_sum", "mae_sum", "nll")
SOURCES = ("generated", "mnist_test_seq")


@dataclass(frozen=True)
class DataSpec:
    """How the test sequences are made: generated from MNIST test digits, or read from a file."""

    source: str = "generated"
    dynamics: str = "stochastic"
    sequences: int = 5000
    seed: int = 42
    num_digits: int = 2
    digit_size: int = 28
    image_size: int = 64
    max_speed: int = 4


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    data: DataSpec
    context: int
    horizon: int
    samples: int
    metrics: tuple[str, ...]
    feedback: str = "mean"
    nll_samples: int = 100
    quick: dict[str, int] = field(default_factory=dict)
    published: tuple[dict[str, Any], ...] = ()
    reduction: str = ""   # e.g. "quick: 100 of 5000 sequences, 10 of 100 samples"; set by ``reduce``

    @property
    def reduced(self) -> bool:
        return bool(self.reduction)


def protocol_dirs() -> list[Path]:
    """Where shipped protocol files live: eval/protocols, installed as the package framevrnn.protocols."""
    try:
        folder = Path(str(resources.files("framevrnn.protocols")))
    except (ModuleNotFoundError, TypeError):
        return []
    return [folder] if folder.is_dir() else []


def available() -> list[str]:
    """Names of the protocols shipped with the project."""
    return sorted({p.stem for d in protocol_dirs() for p in d.glob("*.yaml")})


def _fields(cls, values: dict, where: str) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {unknown}; known: {sorted(names)}")
    return values


def parse_protocol(raw: Any, where: str) -> Protocol:
    """Validate a protocol mapping (as read from YAML) and build a Protocol."""
    if not isinstance(raw, dict):
        raise UserError(f"{where}: a protocol file must hold a mapping")
    raw = dict(_fields(Protocol, raw, where))
    try:
        data = DataSpec(**_fields(DataSpec, dict(raw.pop("data", {}) or {}), f"{where} data"))
        proto = Protocol(**{**raw, "data": data, "metrics": tuple(raw.get("metrics", ())),
                            "published": tuple(raw.get("published", ()) or ()), "quick": dict(raw.get("quick") or {})})
    except TypeError as err:
        raise UserError(f"{where}: {err}") from None
    bad = [m for m in proto.metrics if m not in METRIC_NAMES]
    if bad:
        raise UserError(f"{where}: unknown metric(s) {bad}; known: {list(METRIC_NAMES)}")
    if proto.feedback not in FEEDBACK:
        raise UserError(f"{where}: feedback must be one of {FEEDBACK}, got {proto.feedback!r}")
    if data.source not in SOURCES:
        raise UserError(f"{where}: data.source must be one of {SOURCES}, got {data.source!r}")
    for name, value in (("context", proto.context), ("horizon", proto.horizon), ("samples", proto.samples),
                        ("nll_samples", proto.nll_samples), ("data.sequences", data.sequences)):
        if not isinstance(value, int) or value < 1:
            raise UserError(f"{where}: {name} must be a positive integer, got {value!r}")
    return proto


def load_protocol(name_or_path: str) -> Protocol:
    """A protocol by name (see ``available()``) or from a YAML file path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        found = [d / f"{name_or_path}.yaml" for d in protocol_dirs() if (d / f"{name_or_path}.yaml").is_file()]
        if not found:
            raise UserError(f"unknown protocol {name_or_path!r}; known: {', '.join(available()) or 'none found'} "
                            "(or give a path to a protocol .yaml file)")
        path = found[0]
    if not path.is_file():
        raise UserError(f"protocol file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UserError(f"cannot parse protocol file {path} ({str(err).splitlines()[0]})") from None
    return parse_protocol(raw, str(path))


def reduce(proto: Protocol, quick: bool = False, sequences: int | None = None, samples: int | None = None,
           nll_samples: int | None = None) -> Protocol:
    """The protocol shrunk by ``--quick`` and explicit overrides (which can only shrink it).

    The result's ``reduction`` says what was cut, e.g. "quick: 100 of 5000 sequences, 10 of 100 samples".
    """
    want = dict(proto.quick) if quick else {}
    want.update({k: v for k, v in (("sequences", sequences), ("samples", samples), ("nll_samples", nll_samples))
                 if v is not None})
    for k, v in want.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise UserError(f"--{k.replace('_', '-')} must be a positive integer, got {v!r}")
    current = {"sequences": proto.data.sequences, "samples": proto.samples, "nll_samples": proto.nll_samples}
    if "nll" not in proto.metrics:
        want.pop("nll_samples", None)
    new = {k: v for k, v in want.items() if k in current and v < current[k]}
    if not new:
        return proto
    note = ", ".join(f"{v} of {current[k]} {'NLL importance samples' if k == 'nll_samples' else k}"
                     for k, v in new.items())
    data = dataclasses.replace(proto.data, sequences=new.get("sequences", proto.data.sequences))
    return dataclasses.replace(proto, data=data, samples=new.get("samples", proto.samples),
                               nll_samples=new.get("nll_samples", proto.nll_samples),
                               reduction=f"{'quick' if quick else 'reduced'}: {note}")
