"""The VRNN step, generic over its networks (Chung et al. 2015).

Per time step t, with phi_x / phi_z the feature networks:

    prior      p(z_t | h_{t-1})                 prior(h)
    posterior  q(z_t | x_t, h_{t-1})            posterior([phi_x(x_t), h])
    decoder    p(x_t | z_t, h_{t-1})            decoder([phi_z(z_t), h])
    recurrence h_t = cell([phi_x(x_t), phi_z(z_t)], h_{t-1})

Tensors are batch-first and concatenated along dim 1, so the same core serves frames
(B, C, H, W) with conv networks and 1-D data (B, D) with MLPs. Variants:
``vrnn`` (learned prior on h), ``vrnn_i`` (fixed N(0, I) prior: latents independent across time),
``rnn`` (no latent: decoder and cell see only h and phi_x).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from einops import rearrange
from torch import nn
from torch.distributions import Distribution, Normal, kl_divergence

VARIANTS = ("vrnn", "vrnn_i", "rnn")


class FixedStandardPrior(nn.Module):
    """p(z_t) = N(0, I) over (B, z_channels, *h.shape[2:]), whatever h_{t-1} is."""

    def __init__(self, z_channels: int) -> None:
        super().__init__()
        self.z_channels = z_channels

    def forward(self, h: torch.Tensor) -> Normal:
        zeros = h.new_zeros(h.shape[0], self.z_channels, *h.shape[2:])
        return Normal(zeros, torch.ones_like(zeros), validate_args=False)


@dataclass
class PosteriorTrace:
    """What a teacher-forced pass leaves behind; every tensor is (B, T, ...)."""

    h_prev: torch.Tensor          # h_{t-1} for each t
    phi_z: torch.Tensor | None    # phi_z(z_t), z_t ~ q
    z: torch.Tensor | None
    q: Normal | None              # q(z_t | x_t, h_{t-1})
    p: Normal | None              # p(z_t | h_{t-1})
    h_last: torch.Tensor          # h_{T-1}, (B, ...)

    def kl(self) -> torch.Tensor:
        """KL(q || p) summed over latent dimensions: (B, T); zeros for the rnn variant."""
        if self.q is None:
            return self.h_prev.new_zeros(self.h_prev.shape[:2])
        return kl_divergence(self.q, self.p).flatten(2).sum(-1)


def _stack_normals(locs: list[torch.Tensor], scales: list[torch.Tensor]) -> Normal:
    return Normal(torch.stack(locs, 1), torch.stack(scales, 1), validate_args=False)


class VRNNCore(nn.Module):
    """A VRNN over feature tensors; the caller owns the data-specific encoder and decoder heads."""

    def __init__(self, *, embed_x: nn.Module, cell: nn.Module, decoder: nn.Module, variant: str = "vrnn",
                 embed_z: nn.Module | None = None, prior: nn.Module | None = None,
                 posterior: nn.Module | None = None) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        if variant != "rnn" and (embed_z is None or prior is None or posterior is None):
            raise ValueError(f"variant {variant!r} needs embed_z, prior and posterior networks")
        self.variant = variant
        self.embed_x, self.cell, self.decoder = embed_x, cell, decoder
        self.embed_z = embed_z if variant != "rnn" else None
        self.prior = prior if variant != "rnn" else None
        self.posterior = posterior if variant != "rnn" else None

    @property
    def has_latent(self) -> bool:
        return self.variant != "rnn"

    def embed_sequence(self, x: torch.Tensor) -> torch.Tensor:
        """phi_x for every frame at once: (B, T, ...) -> (B, T, ...features)."""
        b = x.shape[0]
        return rearrange(self.embed_x(rearrange(x, "b t ... -> (b t) ...")), "(b t) ... -> b t ...", b=b)

    def initial_state(self, phi_x0: torch.Tensor) -> torch.Tensor:
        return self.cell.initial_state(phi_x0)

    def posterior_pass(self, phi_x: torch.Tensor, h: torch.Tensor | None = None) -> PosteriorTrace:
        """Teacher-forced pass over features phi_x (B, T, ...), sampling z_t ~ q (reparameterised)."""
        steps = phi_x.shape[1]
        if h is None:
            h = self.initial_state(phi_x[:, 0])
        h_prev, phi_zs, zs, q_loc, q_scale, p_loc, p_scale = [], [], [], [], [], [], []
        for t in range(steps):
            h_prev.append(h)
            if self.has_latent:
                q = self.posterior(torch.cat([phi_x[:, t], h], 1))
                p = self.prior(h)
                z = q.rsample()
                phi_z = self.embed_z(z)
                h = self.cell(torch.cat([phi_x[:, t], phi_z], 1), h)
                zs.append(z)
                phi_zs.append(phi_z)
                q_loc.append(q.loc)
                q_scale.append(q.scale)
                p_loc.append(p.loc)
                p_scale.append(p.scale)
            else:
                h = self.cell(phi_x[:, t], h)
        if not self.has_latent:
            return PosteriorTrace(torch.stack(h_prev, 1), None, None, None, None, h)
        return PosteriorTrace(torch.stack(h_prev, 1), torch.stack(phi_zs, 1), torch.stack(zs, 1),
                              _stack_normals(q_loc, q_scale), _stack_normals(p_loc, p_scale), h)

    def decoder_input(self, phi_z: torch.Tensor | None, h: torch.Tensor) -> torch.Tensor:
        return h if phi_z is None else torch.cat([phi_z, h], 1)

    def decode_sequence(self, trace: PosteriorTrace) -> Distribution:
        """p(x_t | z_t, h_{t-1}) for all t in one batched decoder call; batch shape (B*T, ...)."""
        h = rearrange(trace.h_prev, "b t ... -> (b t) ...")
        phi_z = None if trace.phi_z is None else rearrange(trace.phi_z, "b t ... -> (b t) ...")
        return self.decoder(self.decoder_input(phi_z, h))

    def imagine(self, h: torch.Tensor, steps: int,
                choose: Callable[[Distribution], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Roll out ``steps`` frames from state h: z_t ~ p(z_t | h_{t-1}), x̂_t = choose(p(x_t | .)),
        fed back through phi_x. Returns the predicted means (B, steps, ...) and the last state."""
        means = []
        for _ in range(steps):
            phi_z = self.embed_z(self.prior(h).sample()) if self.has_latent else None
            dist = self.decoder(self.decoder_input(phi_z, h))
            means.append(dist.mean)
            phi_x = self.embed_x(choose(dist))
            h = self.cell(phi_x if phi_z is None else torch.cat([phi_x, phi_z], 1), h)
        return torch.stack(means, 1), h
