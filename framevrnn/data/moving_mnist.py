"""Moving MNIST: deterministic bounce (Srivastava et al. 2015) and stochastic bounce (SVG's SM-MNIST).

Digits move with integer velocities of at most ``max_speed`` pixels per frame. On a wall hit the
deterministic variant reflects the normal velocity component; the stochastic variant (Denton &
Fergus 2018) redraws it in 1..max_speed away from the wall and redraws the other component in
-max_speed..max_speed. Overlapping digits are summed and clipped to 1.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from framevrnn.errors import UserError

DYNAMICS = ("stochastic", "deterministic")


@dataclass(frozen=True)
class MovingMNISTSpec:
    """What a Moving MNIST sequence looks like."""

    num_digits: int = 2
    image_size: int = 64
    digit_size: int = 28
    seq_len: int = 10
    max_speed: int = 4
    dynamics: str = "stochastic"

    def __post_init__(self) -> None:
        if self.dynamics not in DYNAMICS:
            raise UserError(f"dynamics must be one of {DYNAMICS}, got {self.dynamics!r}")
        if not 0 < self.digit_size <= self.image_size:
            raise UserError(f"digit_size must be in 1..image_size ({self.image_size}), got {self.digit_size}")
        if self.num_digits < 1 or self.seq_len < 1 or self.max_speed < 1:
            raise UserError("num_digits, seq_len and max_speed must be positive")

    @property
    def limit(self) -> int:
        """Largest top-left coordinate that keeps a digit inside the frame."""
        return self.image_size - self.digit_size


def bounce(pos: np.ndarray, vel: np.ndarray, spec: MovingMNISTSpec, rng: np.random.Generator) -> None:
    """Apply the wall rule in place to positions / velocities (..., 2) that may have left [0, limit]."""
    lim, vmax = spec.limit, spec.max_speed
    for axis in (0, 1):
        other = 1 - axis
        for wall, direction in ((pos[..., axis] < 0, 1), (pos[..., axis] > lim, -1)):
            if not wall.any():
                continue
            pos[..., axis][wall] = 0 if direction == 1 else lim
            if spec.dynamics == "stochastic":
                k = int(wall.sum())
                vel[..., axis][wall] = direction * rng.integers(1, vmax + 1, size=k)
                vel[..., other][wall] = rng.integers(-vmax, vmax + 1, size=k)
            else:
                vel[..., axis][wall] = -vel[..., axis][wall]


def trajectories(spec: MovingMNISTSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """Top-left digit positions, int64 (n, T, D, 2) as (row, col), always within [0, spec.limit]."""
    pos = rng.integers(0, spec.limit + 1, size=(n, spec.num_digits, 2))
    vel = rng.integers(-spec.max_speed, spec.max_speed + 1, size=(n, spec.num_digits, 2))
    out = np.empty((n, spec.seq_len, spec.num_digits, 2), dtype=np.int64)
    for t in range(spec.seq_len):
        bounce(pos, vel, spec, rng)
        out[:, t] = pos
        pos = pos + vel
    return out


def render(digits: np.ndarray, positions: np.ndarray, spec: MovingMNISTSpec) -> np.ndarray:
    """Paint ``digits`` (n, D, s, s) uint8 at ``positions`` (n, T, D, 2): float32 (n, T, H, W) in [0, 1]."""
    n, t_len, d_num, _ = positions.shape
    s = spec.digit_size
    frames = np.zeros((n, t_len, spec.image_size, spec.image_size), dtype=np.float32)
    glyphs = digits.astype(np.float32) / 255.0
    for i in range(n):
        for d in range(d_num):
            for t in range(t_len):
                r, c = positions[i, t, d]
                frames[i, t, r:r + s, c:c + s] += glyphs[i, d]
    np.clip(frames, 0.0, 1.0, out=frames)
    return frames


def _resize_digits(digits: np.ndarray, size: int) -> np.ndarray:
    if digits.shape[-1] == size:
        return digits
    import cv2

    return np.stack([cv2.resize(d, (size, size), interpolation=cv2.INTER_AREA) for d in digits])


def generate(digit_pool: np.ndarray, spec: MovingMNISTSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` sequences drawn from ``digit_pool`` (N, 28, 28) uint8: float32 (n, T, H, W) in [0, 1]."""
    idx = rng.integers(0, len(digit_pool), size=(n, spec.num_digits))
    digits = _resize_digits(digit_pool, spec.digit_size) if spec.digit_size != digit_pool.shape[-1] else digit_pool
    return render(digits[idx], trajectories(spec, n, rng), spec)


def fixed_set(digit_pool: np.ndarray, spec: MovingMNISTSpec, n: int, seed: int, chunk: int = 500) -> np.ndarray:
    """A reproducible set of ``n`` sequences: uint8 (n, T, H, W), the same for the same seed."""
    rng = np.random.default_rng(seed)
    pool = _resize_digits(digit_pool, spec.digit_size)
    parts = [generate(pool, spec, min(chunk, n - i), rng) for i in range(0, n, chunk)]
    return np.round(np.concatenate(parts) * 255.0).astype(np.uint8)


class MovingMNISTSequences(Dataset):
    """Endless training sequences: sequence ``i`` is a pure function of (seed, i), float32 (T, 1, H, W).

    Because every sequence is addressed by its index, a resumed run continues exactly where it
    stopped and distributed ranks draw disjoint sequences (see ``StepSampler``).
    """

    def __init__(self, digit_pool: np.ndarray, spec: MovingMNISTSpec, seed: int = 0) -> None:
        self.pool = _resize_digits(digit_pool, spec.digit_size)
        self.spec, self.seed = spec, seed

    def __len__(self) -> int:
        return 2 ** 62

    def __getitem__(self, index: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, int(index)])
        return torch.from_numpy(generate(self.pool, self.spec, 1, rng)[0]).unsqueeze(1)


class StepSampler(Sampler[int]):
    """Sequence indices for one rank from training step ``start_step`` on, without end.

    At step s, rank r of W with per-rank batch B reads indices (s W + r) B ... (s W + r) B + B - 1, so
    no two ranks or steps share a sequence and step s's batch never depends on what came before.
    """

    def __init__(self, batch_size: int, start_step: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.batch_size, self.start_step, self.rank, self.world_size = batch_size, start_step, rank, world_size

    def __iter__(self) -> Iterator[int]:
        for step in itertools.count(self.start_step):
            first = (step * self.world_size + self.rank) * self.batch_size
            yield from range(first, first + self.batch_size)


def load_mnist_test_seq(path: str | Path) -> np.ndarray:
    """Read the standard ``mnist_test_seq.npy`` (T, N, 64, 64) uint8: returns (N, T, 64, 64) uint8."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p} does not exist (expected mnist_test_seq.npy of shape (20, N, 64, 64))")
    try:
        arr = np.load(p, mmap_mode="r")
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {p} as a .npy array ({err})") from None
    if arr.ndim != 4 or arr.shape[2:] != (64, 64):
        raise UserError(f"{p} has shape {arr.shape}; expected (T, N, 64, 64) as in mnist_test_seq.npy")
    return np.ascontiguousarray(np.swapaxes(arr, 0, 1)).astype(np.uint8, copy=False)
