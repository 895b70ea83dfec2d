"""Convolutional GRU cell (Ballas et al. 2016): a GRU whose matrix products are 2-D convolutions."""
from __future__ import annotations

import torch
from torch import nn


class ConvGRUCell(nn.Module):
    """h_t = ConvGRU(x_t, h_{t-1}); x (B, C_in, H, W), h (B, C_h, H, W) -> (B, C_h, H, W)."""

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.hidden_channels = hidden_channels
        self.gates = nn.Conv2d(in_channels + hidden_channels, 2 * hidden_channels, kernel_size, padding=pad)
        self.candidate_x = nn.Conv2d(in_channels, hidden_channels, kernel_size, padding=pad)
        self.candidate_h = nn.Conv2d(hidden_channels, hidden_channels, kernel_size, padding=pad, bias=False)

    def initial_state(self, like: torch.Tensor) -> torch.Tensor:
        """Zero state matching ``like`` (B, C_in, H, W) in batch, spatial size, device and dtype."""
        b, _, h, w = like.shape
        return like.new_zeros(b, self.hidden_channels, h, w)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        reset, update = torch.sigmoid(self.gates(torch.cat([x, h], dim=1))).chunk(2, dim=1)
        candidate = torch.tanh(self.candidate_x(x) + self.candidate_h(reset * h))
        return torch.lerp(h, candidate, update)
