"""Checkpoints: weights_only round trip, half precision, refusal of pickled objects and wrong kinds."""
from __future__ import annotations

import os
import pytest
import torch

from framevrnn.checkpoint import atomic_save, load_checkpoint, make_checkpoint, unwrap
from framevrnn.errors import UserError
from framevrnn.models.build import FRAME_KIND, model_from_checkpoint
from tests.conftest import tiny_model


def test_round_trip_with_weights_only(tmp_path):
    model = tiny_model()
    opt = torch.optim.Adam(model.parameters())
    model.elbo_terms(torch.rand(1, 2, 1, 16, 16))[0].sum().backward()
    opt.step()
    path = atomic_save(make_checkpoint(model, FRAME_KIND, model.cfg.to_dict(), 7, optimizer=opt,
                                       config={"a": {"b": [1, 2]}}), tmp_path / "c.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["step"] == 7 and raw["config"] == {"a": {"b": [1, 2]}}
    rebuilt = model_from_checkpoint(load_checkpoint(path))
    for (k, a), b in zip(model.state_dict().items(), rebuilt.state_dict().values()):
        assert torch.equal(a, b), k
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file may be left behind"


def test_half_precision_export_loads_as_float32(tmp_path):
    model = tiny_model()
    path = atomic_save(make_checkpoint(model, FRAME_KIND, model.cfg.to_dict(), 1, half=True), tmp_path / "h.pt")
    raw = torch.load(path, weights_only=True)
    assert all(v.dtype == torch.float16 for v in raw["model"].values() if v.is_floating_point())
    rebuilt = model_from_checkpoint(load_checkpoint(path))
    ref = model.state_dict()
    for k, v in rebuilt.state_dict().items():
        assert v.dtype == ref[k].dtype
        torch.testing.assert_close(v, ref[k], atol=2e-3, rtol=2e-3)


def test_unwrap_strips_wrappers():
    model = tiny_model()
    compiled_like = torch.nn.Module()
    compiled_like._orig_mod = model
    assert unwrap(compiled_like) is model


class _Payload:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickled_objects_are_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"format": "framevrnn-checkpoint", "payload": _Payload(marker)}, path)
    with pytest.raises(UserError, match="pickled Python object .*system"):
        load_checkpoint(path)
    assert not marker.exists()


def test_wrong_kind_and_garbage_are_named(tmp_path):
    model = tiny_model()
    path = atomic_save(make_checkpoint(model, "speech_vrnn", model.cfg.to_dict(), 1), tmp_path / "s.pt")
    with pytest.raises(UserError, match="speech_vrnn"):
        load_checkpoint(path, expect_kind=FRAME_KIND)
    torch.save({"state_dict": model.state_dict()}, tmp_path / "plain.pt")
    with pytest.raises(UserError, match="not a framevrnn checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError, match="cannot read"):
        load_checkpoint(tmp_path / "junk.pt")
    good = (tmp_path / "s.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(good[: len(good) // 2])
    with pytest.raises(UserError, match="cannot read"):
        load_checkpoint(tmp_path / "cut.pt")
