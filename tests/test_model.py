"""ConvVRNN: shapes, KL, learning, rollout feedback, seeding, variants."""
from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from tests.conftest import tiny_model

VARIANTS = ["vrnn", "vrnn_i", "rnn"]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("observation,scale", [("bernoulli", "fixed"), ("gaussian", "learned"), ("laplace", "fixed")])
def test_shapes_and_finite(variant, observation, scale):
    model = tiny_model(variant=variant, observation=observation, scale=scale, channels=3)
    x = torch.rand(3, 6, 3, 16, 16)
    nll, kl = model.elbo_terms(x)
    assert nll.shape == (3, 6) and kl.shape == (3, 6)
    assert torch.isfinite(nll).all() and torch.isfinite(kl).all()
    pred = model.rollout(x[:, :4], horizon=5, samples=7)
    assert pred.shape == (3, 7, 5, 3, 16, 16)
    assert torch.isfinite(pred).all()


@pytest.mark.parametrize("variant", ["vrnn", "vrnn_i"])
def test_kl_is_nonnegative_and_zero_only_for_rnn(variant):
    model = tiny_model(variant=variant)
    _, kl = model.elbo_terms(torch.rand(4, 5, 1, 16, 16))
    assert (kl >= 0).all() and kl.sum() > 0
    _, kl_rnn = tiny_model(variant="rnn").elbo_terms(torch.rand(4, 5, 1, 16, 16))
    assert torch.equal(kl_rnn, torch.zeros_like(kl_rnn))


def test_vrnn_i_prior_is_fixed_standard_normal():
    model = tiny_model(variant="vrnn_i")
    assert sum(p.numel() for p in model.core.prior.parameters()) == 0
    torch.manual_seed(1)
    x = torch.rand(2, 3, 1, 16, 16)
    trace = model.core.posterior_pass(model.core.embed_sequence(x))
    assert torch.equal(trace.p.loc, torch.zeros_like(trace.p.loc))
    assert torch.equal(trace.p.scale, torch.ones_like(trace.p.scale))
    expected = kl_divergence(trace.q, Normal(0.0, 1.0)).flatten(2).sum(-1)
    torch.testing.assert_close(trace.kl(), expected)


@pytest.mark.parametrize("variant", VARIANTS)
def test_loss_falls_on_a_repeated_batch(variant):
    model = tiny_model(variant=variant)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x = torch.zeros(4, 5, 1, 16, 16)          # a bright square moving one pixel per frame
    for b in range(4):
        for t in range(5):
            x[b, t, 0, 2 + b:6 + b, 2 + 2 * t:6 + 2 * t] = 1.0
    losses = []
    for _ in range(60):
        nll, kl = model.elbo_terms(x)
        loss = (nll + kl).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5


def test_rollout_feeds_back_its_own_predictions():
    """During the horizon, phi_x must see the model's own predicted frames, not anything else."""
    model = tiny_model(variant="vrnn")
    seen = []
    hook = model.core.embed_x.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].detach().clone()))
    torch.manual_seed(0)
    context = torch.rand(2, 3, 1, 16, 16)
    pred = model.rollout(context, horizon=4, samples=3, feedback="mean")
    hook.remove()
    # first call embeds the whole (repeated) context at once, then one call per predicted step
    assert len(seen) == 1 + 4
    assert seen[0].shape[0] == 2 * 3 * 3
    for t in range(4):
        torch.testing.assert_close(seen[1 + t], pred[:, :, t].reshape(6, 1, 16, 16))


def test_sample_feedback_differs_from_mean_feedback():
    model = tiny_model(variant="rnn")
    context = torch.rand(2, 3, 1, 16, 16)
    torch.manual_seed(0)
    by_mean = model.rollout(context, horizon=3, feedback="mean")
    torch.manual_seed(0)
    by_sample = model.rollout(context, horizon=3, feedback="sample")
    torch.testing.assert_close(by_mean[:, :, 0], by_sample[:, :, 0])   # first step sees only the context
    assert not torch.allclose(by_mean[:, :, 1:], by_sample[:, :, 1:])


def test_same_seed_same_samples_and_samples_differ():
    model = tiny_model(variant="vrnn")
    context = torch.rand(2, 3, 1, 16, 16)
    torch.manual_seed(5)
    a = model.rollout(context, horizon=3, samples=4)
    torch.manual_seed(5)
    b = model.rollout(context, horizon=3, samples=4)
    torch.manual_seed(6)
    c = model.rollout(context, horizon=3, samples=4)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert (a[:, 0] - a[:, 1]).abs().max() > 0          # the N samples of one sequence differ
    det = tiny_model(variant="rnn").rollout(context, horizon=3, samples=4)
    assert torch.equal(det[:, 0], det[:, 3])            # the rnn variant has no latent: all equal


def test_bad_feedback_is_rejected():
    with pytest.raises(ValueError, match="feedback"):
        tiny_model().rollout(torch.rand(1, 2, 1, 16, 16), 2, feedback="oracle")
