"""Convolutional networks for the frame VRNN: frame encoder, latent heads, transposed-conv decoder."""
from __future__ import annotations

from torch import nn
from torch.distributions import Distribution, Normal

from framevrnn.models.distributions import ObservationHead, diagonal_normal


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


class FrameEncoder(nn.Module):
    """phi_x: frames (B, C, S, S) -> feature maps (B, F, S / 2^n, S / 2^n), n = len(widths)."""

    def __init__(self, in_channels: int, widths: list[int]) -> None:
        super().__init__()
        layers, c = [], in_channels
        for w in widths:
            layers += [nn.Conv2d(c, w, 4, stride=2, padding=1), _act()]
            c = w
        layers += [nn.Conv2d(c, c, 3, padding=1), _act()]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class LatentEmbedding(nn.Module):
    """phi_z: latent map (B, Z, s, s) -> features (B, Fz, s, s)."""

    def __init__(self, z_channels: int, out_channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(z_channels, out_channels, 3, padding=1), _act())

    def forward(self, z):
        return self.net(z)


class GaussianMapHead(nn.Module):
    """A conv net to a diagonal Normal over a latent map: (B, C_in, s, s) -> Normal over (B, Z, s, s).

    Used as the prior p(z_t | h_{t-1}) (input h) and the posterior q(z_t | x_t, h_{t-1})
    (input [phi_x(x_t), h]).
    """

    def __init__(self, in_channels: int, hidden: int, z_channels: int, min_std: float = 1e-3) -> None:
        super().__init__()
        self.min_std = min_std
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1), _act(),
            nn.Conv2d(hidden, 2 * z_channels, 3, padding=1),
        )

    def forward(self, inp) -> Normal:
        return diagonal_normal(self.net(inp).float(), self.min_std)


class FrameDecoder(nn.Module):
    """p(x_t | z_t, h_{t-1}): features (B, F, s, s) -> a frame distribution over (B, C, S, S).

    Transposed convolutions double the size ``len(widths)`` times; the observation head turns the
    last layer's output into a ``torch.distributions`` object.
    """

    def __init__(self, in_channels: int, widths: list[int], out_channels: int, head: ObservationHead) -> None:
        super().__init__()
        layers, c = [nn.Conv2d(in_channels, widths[0], 3, padding=1), _act()], widths[0]
        for w in widths[1:]:
            layers += [nn.ConvTranspose2d(c, w, 4, stride=2, padding=1), _act()]
            c = w
        layers.append(nn.ConvTranspose2d(c, out_channels * head.params_per_channel, 4, stride=2, padding=1))
        self.net = nn.Sequential(*layers)
        self.head = head

    def forward(self, features) -> Distribution:
        return self.head(self.net(features))
