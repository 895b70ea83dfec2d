"""ConvVRNN: the frame-prediction VRNN (conv prior / posterior, transposed-conv decoder, ConvGRU)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from einops import rearrange, repeat
from torch import nn

from framevrnn.models.conv_gru import ConvGRUCell
from framevrnn.models.conv_nets import FrameDecoder, FrameEncoder, GaussianMapHead, LatentEmbedding
from framevrnn.models.distributions import ObservationHead
from framevrnn.models.vrnn_core import FixedStandardPrior, VRNNCore

FEEDBACK = ("mean", "sample")


@dataclass
class ConvVRNNConfig:
    """Plain-data description of a ConvVRNN; stored in checkpoints and rebuilt from them."""

    variant: str = "vrnn"                 # vrnn | vrnn_i | rnn
    channels: int = 1                     # 1 grayscale, 3 RGB
    image_size: int = 64
    encoder_widths: list[int] = field(default_factory=lambda: [32, 64, 64])
    decoder_widths: list[int] = field(default_factory=lambda: [64, 64, 32])
    hidden_channels: int = 64             # ConvGRU state
    z_channels: int = 8                   # latent map channels
    z_feature_channels: int = 16          # phi_z output
    head_channels: int = 64               # prior / posterior hidden width
    observation: str = "bernoulli"        # bernoulli | gaussian | laplace
    scale: str = "fixed"                  # fixed | learned (gaussian / laplace)
    fixed_scale: float = 0.1
    min_scale: float = 1e-3

    @property
    def latent_size(self) -> int:
        return self.image_size // 2 ** len(self.encoder_widths)

    def validate(self) -> None:
        if len(self.decoder_widths) != len(self.encoder_widths):
            raise ValueError("decoder_widths must have as many entries as encoder_widths (one per 2x scale)")
        if self.image_size % 2 ** len(self.encoder_widths):
            raise ValueError(f"image_size {self.image_size} is not divisible by 2^{len(self.encoder_widths)}")

    def to_dict(self) -> dict:
        return asdict(self)


class ConvVRNN(nn.Module):
    """Video VRNN. Frames are (B, T, C, H, W) with intensities in [0, 1]."""

    def __init__(self, cfg: ConvVRNNConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        feat = cfg.encoder_widths[-1]
        has_z = cfg.variant != "rnn"
        head = ObservationHead(cfg.observation, cfg.scale, cfg.fixed_scale, cfg.min_scale)
        if cfg.variant == "vrnn":
            prior = GaussianMapHead(cfg.hidden_channels, cfg.head_channels, cfg.z_channels)
        else:
            prior = FixedStandardPrior(cfg.z_channels)
        zf = cfg.z_feature_channels if has_z else 0
        self.core = VRNNCore(
            variant=cfg.variant,
            embed_x=FrameEncoder(cfg.channels, cfg.encoder_widths),
            embed_z=LatentEmbedding(cfg.z_channels, zf) if has_z else None,
            prior=prior if has_z else None,
            posterior=GaussianMapHead(feat + cfg.hidden_channels, cfg.head_channels, cfg.z_channels) if has_z else None,
            decoder=FrameDecoder(zf + cfg.hidden_channels, cfg.decoder_widths, cfg.channels, head),
            cell=ConvGRUCell(feat + zf, cfg.hidden_channels),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Same as ``elbo_terms``; calling the module is what DistributedDataParallel needs."""
        return self.elbo_terms(x)

    def elbo_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Negative log-likelihood and KL per frame, each (B, T), for frames x (B, T, C, H, W).

        The ELBO is -(nll + kl).sum(1); x_t is reconstructed from z_t ~ q and h_{t-1}.
        """
        b = x.shape[0]
        trace = self.core.posterior_pass(self.core.embed_sequence(x))
        dist = self.core.decode_sequence(trace)
        nll = -dist.log_prob(rearrange(x, "b t ... -> (b t) ...").float())
        nll = rearrange(nll, "(b t) c h w -> b t (c h w)", b=b).sum(-1)
        return nll, trace.kl()

    def rollout(self, context: torch.Tensor, horizon: int, samples: int = 1, feedback: str = "mean") -> torch.Tensor:
        """Predict ``horizon`` frames after ``context`` (B, Tc, C, H, W).

        The posterior filters the context; the prior drives the horizon, each prediction fed back
        (its mean, or a sample of p(x_t | .) with feedback="sample"). The N samples of every
        sequence run as one batch. Returns predicted means (B, N, horizon, C, H, W).
        """
        if feedback not in FEEDBACK:
            raise ValueError(f"feedback must be one of {FEEDBACK}, got {feedback!r}")
        b = context.shape[0]
        ctx = repeat(context, "b t ... -> (b n) t ...", n=samples)
        trace = self.core.posterior_pass(self.core.embed_sequence(ctx))
        choose = (lambda d: d.mean) if feedback == "mean" else (lambda d: d.sample())
        means, _ = self.core.imagine(trace.h_last, horizon, choose)
        return rearrange(means, "(b n) t ... -> b n t ...", b=b)
