"""The faster training paths compute the same thing as plain fp32 eager."""
from __future__ import annotations

import pytest
import torch

from framevrnn.distributed import DistInfo
from framevrnn.training_step import make_optimizer, prepare_model, train_step
from tests.conftest import tiny_model


def _losses(precision="fp32", channels_last=False, compile_model=False, steps=3):
    plain = tiny_model(variant="rnn")
    model = prepare_model(plain, torch.device("cpu"), DistInfo(), compile_model, channels_last)
    opt = make_optimizer(plain, 1e-3, torch.device("cpu"))
    x = (torch.rand(2, 3, 1, 16, 16, generator=torch.Generator().manual_seed(0)) > 0.7).float()
    out = [train_step(model, opt, x, 1.0, 100.0, precision)[0][0].item() for _ in range(steps)]
    return out, plain


def test_channels_last_matches_eager():
    ref, _ = _losses()
    got, _ = _losses(channels_last=True)
    assert got == pytest.approx(ref, rel=1e-4)


def test_bf16_autocast_is_close_and_keeps_likelihoods_in_float32():
    ref, _ = _losses()
    got, _ = _losses(precision="bf16")
    assert got == pytest.approx(ref, rel=2e-2)
    model = tiny_model(variant="vrnn")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        nll, kl = model(torch.rand(2, 3, 1, 16, 16))
    assert nll.dtype == torch.float32 and kl.dtype == torch.float32


@pytest.mark.slow
def test_compiled_networks_match_eager_and_keep_clean_state_dict_keys():
    ref, _ = _losses()
    got, plain = _losses(compile_model=True)
    assert got == pytest.approx(ref, rel=1e-4)
    assert not any("_orig_mod" in k for k in plain.state_dict())


def test_a_non_finite_step_changes_nothing():
    plain = tiny_model(variant="vrnn")
    opt = make_optimizer(plain, 1e-3, torch.device("cpu"))
    x = torch.rand(2, 3, 1, 16, 16)
    train_step(plain, opt, x, 1.0, 100.0)
    before = {k: v.clone() for k, v in plain.state_dict().items()}
    steps_before = [s["step"].clone() for s in opt.state.values()]
    bad = x.clone()
    bad[0, 1, 0, 3, 3] = float("nan")
    _, skipped = train_step(plain, opt, bad, 1.0, 100.0)
    assert skipped.item() == 1.0
    assert all(torch.equal(before[k], v) for k, v in plain.state_dict().items())
    assert all(torch.equal(a, s["step"]) for a, s in zip(steps_before, opt.state.values()))
    _, skipped = train_step(plain, opt, x, 1.0, 100.0)
    assert skipped.item() == 0.0
    assert any(not torch.equal(before[k], v) for k, v in plain.state_dict().items())
