"""Likelihood of the predicted part of a sequence given its context, on any VRNNCore head.

For x (B, T, ...) and ``context`` = c the target is log p(x_{c:T} | x_{<c}) with the context read the
way prediction reads it: z_{<c} ~ q filters x_{<c} into h_{c-1}. With z_{c:T} ~ q(z_t | x_t, h_{t-1})
and importance weights

    log w = sum_{t >= c}  log p(x_t | z_t, h_{t-1}) + log p(z_t | h_{t-1}) - log q(z_t | x_t, h_{t-1})

the ELBO is E[log w] (with the KL in closed form) and the importance-sampled estimate is
log (1/K) sum_k w_k (Burda et al. 2016): E[IS_K] rises with K towards the log-likelihood and
E[IS_1] = ELBO. For the ``rnn`` variant there is no latent and both are the exact log-likelihood.
The K samples of a sequence are folded into the batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from einops import rearrange, reduce, repeat

from framevrnn.models.vrnn_core import VRNNCore


@dataclass
class PredictiveLikelihood:
    """Per-sequence log-likelihoods of the predicted frames, in nats summed over frames: (B,) each."""

    elbo: torch.Tensor
    iw: torch.Tensor         # importance-sampled estimate, log-mean-exp of K weights
    frames: int              # predicted frames per sequence
    dims: int                # values per frame
    k: int

    def nats_per_frame(self) -> dict[str, torch.Tensor]:
        """Negative log-likelihood per predicted frame, (B,) for "elbo" and "iw"."""
        return {"elbo": -self.elbo / self.frames, "iw": -self.iw / self.frames}

    def bits_per_dim(self) -> dict[str, torch.Tensor]:
        scale = self.frames * self.dims * math.log(2.0)
        return {"elbo": -self.elbo / scale, "iw": -self.iw / scale}


def _future_terms(core: VRNNCore, x: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One posterior sample per row of x (R, T, ...): (log w, ELBO with closed-form KL), each (R,)."""
    rows = x.shape[0]
    phi_x = core.embed_sequence(x)
    h = core.posterior_pass(phi_x[:, :context]).h_last          # z_{<c} ~ q filters the context
    trace = core.posterior_pass(phi_x[:, context:], h)
    obs = core.decode_sequence(trace).log_prob(rearrange(x[:, context:].float(), "r t ... -> (r t) ..."))
    log_px = reduce(obs.reshape(rows * (x.shape[1] - context), -1), "(r t) d -> r", "sum", r=rows)
    if trace.q is None:
        return log_px, log_px
    log_ratio = (trace.p.log_prob(trace.z) - trace.q.log_prob(trace.z)).flatten(1).sum(-1)
    return log_px + log_ratio, log_px - trace.kl().sum(1)


@torch.no_grad()
def predictive_log_likelihood(core: VRNNCore, x: torch.Tensor, context: int, k: int = 100,
                              max_rows: int = 4096) -> PredictiveLikelihood:
    """ELBO and K-sample importance estimate of log p(x_{c:T} | x_{<c}) for x (B, T, ...).

    The K samples run as one batch of B*K rows, split so that no pass holds more than ``max_rows``.
    """
    b, steps = x.shape[:2]
    if not 0 < context < steps:
        raise ValueError(f"context must be in 1..{steps - 1}, got {context}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    per_pass = max(1, max_rows // b)
    log_w, elbo = [], []
    for start in range(0, k, per_pass):
        n = min(per_pass, k - start)
        w, e = _future_terms(core, repeat(x, "b t ... -> (b n) t ...", n=n), context)
        log_w.append(rearrange(w, "(b n) -> b n", b=b))
        elbo.append(rearrange(e, "(b n) -> b n", b=b))
    log_w = torch.cat(log_w, 1)                                   # (B, K)
    iw = torch.logsumexp(log_w, 1) - math.log(k)
    return PredictiveLikelihood(elbo=torch.cat(elbo, 1).mean(1), iw=iw, frames=steps - context,
                                dims=x[0, 0].numel(), k=k)
