"""NLL of predicted frames given the context: exact for the rnn variant, IWAE behaviour for latent ones."""
from __future__ import annotations

import math

import pytest
import torch
from einops import repeat
from torch import nn
from torch.distributions import Normal

from conftest import tiny_model
from framevrnn.evaluation.likelihood import predictive_log_likelihood
from framevrnn.models.distributions import diagonal_normal
from framevrnn.models.vrnn_core import VRNNCore

CONTEXT = 2


def _frames(b: int = 4, t: int = 6) -> torch.Tensor:
    torch.manual_seed(1)
    return (torch.rand(b, t, 1, 16, 16) > 0.7).float()


def test_rnn_variant_both_estimates_are_the_exact_likelihood():
    model = tiny_model(variant="rnn").eval()
    x = _frames()
    ll = predictive_log_likelihood(model.core, x, CONTEXT, k=3)
    with torch.no_grad():
        nll, kl = model.elbo_terms(x)                 # teacher-forced and deterministic: exact
    exact = -nll[:, CONTEXT:].sum(1)
    torch.testing.assert_close(ll.iw, exact)
    torch.testing.assert_close(ll.elbo, exact)
    frames, dims = x.shape[1] - CONTEXT, 16 * 16
    torch.testing.assert_close(ll.nats_per_frame()["iw"], -exact / frames)
    torch.testing.assert_close(ll.bits_per_dim()["elbo"], -exact / (frames * dims * math.log(2)))


@pytest.mark.parametrize("variant", ["vrnn", "vrnn_i"])
def test_importance_estimate_rises_above_the_elbo_with_k(variant):
    model = tiny_model(variant=variant).eval()
    x = repeat(_frames(), "b ... -> (r b) ...", r=24)   # repeats average out the sampling noise
    torch.manual_seed(0)
    est = {k: predictive_log_likelihood(model.core, x, CONTEXT, k=k) for k in (1, 8, 64)}
    elbo = est[64].elbo.mean().item()
    iw = {k: v.iw.mean().item() for k, v in est.items()}
    noise = 3 * est[1].iw.std().item() / x.shape[0] ** 0.5
    assert abs(iw[1] - elbo) < noise                    # E[IS_1] = ELBO
    assert elbo < iw[8] < iw[64]                         # tighter with K ...
    assert iw[64] - iw[8] < iw[8] - iw[1]                # ... by less and less
    assert iw[64] - elbo > noise


def test_k_chunks_fold_into_one_estimate():
    model = tiny_model().eval()
    x = _frames(2)
    torch.manual_seed(3)
    whole = predictive_log_likelihood(model.core, x, CONTEXT, k=6)
    torch.manual_seed(3)
    split = predictive_log_likelihood(model.core, x, CONTEXT, k=6, max_rows=4)   # 2 samples per pass
    assert whole.k == split.k == 6 and split.iw.shape == (2,)
    assert torch.isfinite(split.iw).all() and (split.iw - whole.iw).abs().max() < 50


def test_argument_checks():
    model = tiny_model().eval()
    with pytest.raises(ValueError, match="context"):
        predictive_log_likelihood(model.core, _frames(), 6, k=2)
    with pytest.raises(ValueError, match="k must"):
        predictive_log_likelihood(model.core, _frames(), 2, k=0)


class _GRU(nn.Module):
    """A GRUCell with the initial_state the core asks of its recurrence."""

    def __init__(self, inp: int, hidden: int) -> None:
        super().__init__()
        self.cell, self.hidden = nn.GRUCell(inp, hidden), hidden

    def initial_state(self, like: torch.Tensor) -> torch.Tensor:
        return like.new_zeros(like.shape[0], self.hidden)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.cell(x, h)


class _Gauss(nn.Module):
    def __init__(self, inp: int, out: int) -> None:
        super().__init__()
        self.lin = nn.Linear(inp, 2 * out)

    def forward(self, x: torch.Tensor) -> Normal:
        return diagonal_normal(self.lin(x))


def test_works_for_a_one_dimensional_head():
    """The same estimator on a VRNNCore over (B, T, D) vectors, as the speech / stroke heads use."""
    torch.manual_seed(0)
    d, f, h, z = 5, 8, 12, 3
    core = VRNNCore(variant="vrnn", embed_x=nn.Linear(d, f), embed_z=nn.Linear(z, f), cell=_GRU(2 * f, h),
                    prior=_Gauss(h, z), posterior=_Gauss(f + h, z), decoder=_Gauss(f + h, d)).eval()
    x = torch.randn(3, 7, d)
    ll = predictive_log_likelihood(core, x, 3, k=16)
    assert ll.iw.shape == ll.elbo.shape == (3,) and ll.frames == 4 and ll.dims == d
    assert torch.isfinite(ll.iw).all() and (ll.iw.mean() > ll.elbo.mean() - 1.0)
