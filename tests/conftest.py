"""Shared fixtures: tiny model configs, synthetic digits, and the shared MNIST file when present."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from framevrnn.models.conv_vrnn import ConvVRNN, ConvVRNNConfig

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist" / "mnist.npz"
SHARED_LPIPS = REPO.parent / "shared" / "data" / "lpips"


def tiny_config(**overrides) -> ConvVRNNConfig:
    """A ConvVRNN small enough to train a step in milliseconds: 16x16 frames, 4x4 latent maps."""
    base = dict(image_size=16, encoder_widths=[4, 8], decoder_widths=[8, 4], hidden_channels=8, z_channels=2,
                z_feature_channels=4, head_channels=8)
    base.update(overrides)
    return ConvVRNNConfig(**base)


def tiny_model(**overrides) -> ConvVRNN:
    torch.manual_seed(0)
    return ConvVRNN(tiny_config(**overrides))


@pytest.fixture
def synthetic_digits() -> np.ndarray:
    """200 fake 28x28 'digits' (bright squares of random size), uint8, for generator tests."""
    rng = np.random.default_rng(0)
    out = np.zeros((200, 28, 28), dtype=np.uint8)
    for d in out:
        a, b = rng.integers(4, 12, size=2)
        d[a:a + 10, b:b + 12] = 255
    return out


@pytest.fixture
def mnist_path() -> Path:
    if not SHARED_MNIST.is_file():
        pytest.skip(f"MNIST digits not found at {SHARED_MNIST} (the development data folder ../shared/data)")
    return SHARED_MNIST


@pytest.fixture
def mnist_npz(tmp_path, synthetic_digits) -> Path:
    """A Keras-layout mnist.npz built from synthetic digits, so data-pipeline tests run anywhere."""
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=synthetic_digits[:150], y_train=np.zeros(150, np.uint8),
             x_test=synthetic_digits[150:], y_test=np.zeros(50, np.uint8))
    return path
