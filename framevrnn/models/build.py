"""Build models from plain-data configs (never from ``instantiate`` on user-supplied files)."""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch

from framevrnn.errors import UserError
from framevrnn.models.conv_vrnn import ConvVRNN, ConvVRNNConfig

FRAME_KIND = "conv_vrnn"


def conv_vrnn_config(values: Mapping[str, Any]) -> ConvVRNNConfig:
    """A ConvVRNNConfig from a mapping; unknown keys are an error (a typo must not pass silently)."""
    names = {f.name for f in dataclasses.fields(ConvVRNNConfig)}
    values = {k: v for k, v in dict(values).items() if k != "name"}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UserError(f"unknown model option(s) {unknown}; known: {sorted(names)}")
    values = {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in values.items()}
    cfg = ConvVRNNConfig(**values)
    try:
        cfg.validate()
    except ValueError as err:
        raise UserError(str(err)) from None
    return cfg


def build_model(kind: str, model_config: Mapping[str, Any]) -> torch.nn.Module:
    if kind == FRAME_KIND:
        try:
            return ConvVRNN(conv_vrnn_config(model_config))
        except ValueError as err:
            raise UserError(f"invalid model config: {err}") from None
    raise UserError(f"unknown model kind {kind!r}")


def model_from_checkpoint(ckpt: Mapping[str, Any]) -> torch.nn.Module:
    """Rebuild the model a checkpoint describes and load its weights (half precision is upcast)."""
    model = build_model(ckpt["kind"], ckpt["model_config"])
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise UserError(f"checkpoint weights do not fit its own model config ({str(err).splitlines()[0]})") from None
    return model
