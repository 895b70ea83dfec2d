"""Moving MNIST generator invariants, digit sources and the mnist_test_seq.npy loader."""
from __future__ import annotations

import gzip
import itertools

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from framevrnn.data.mnist_digits import load_mnist
from framevrnn.data.moving_mnist import (MovingMNISTSequences, MovingMNISTSpec, StepSampler, bounce, fixed_set,
                                         generate, load_mnist_test_seq, trajectories)
from framevrnn.errors import UserError


def _velocities(pos):
    return np.diff(pos, axis=1)                             # (n, T-1, D, 2)


@pytest.mark.parametrize("dynamics", ["stochastic", "deterministic"])
def test_digits_stay_in_frame_and_speed_is_bounded(dynamics):
    spec = MovingMNISTSpec(seq_len=60, dynamics=dynamics)
    pos = trajectories(spec, 300, np.random.default_rng(0))
    assert pos.min() >= 0 and pos.max() <= spec.limit
    assert np.abs(_velocities(pos)).max() <= spec.max_speed
    # sixty frames at up to 4 px/frame in a 36-px range: walls are hit many times
    assert (pos == 0).any() and (pos == spec.limit).any()


def test_deterministic_bounce_reflects():
    spec = MovingMNISTSpec(dynamics="deterministic")
    pos = np.array([[-3, 10], [20, spec.limit + 2], [5, 6]])
    vel = np.array([[-3, 2], [1, 4], [2, -1]])
    bounce(pos, vel, spec, np.random.default_rng(0))
    assert pos.tolist() == [[0, 10], [20, spec.limit], [5, 6]]
    assert vel.tolist() == [[3, 2], [1, -4], [2, -1]]


def test_stochastic_bounce_redraws_away_from_wall():
    spec = MovingMNISTSpec(dynamics="stochastic", max_speed=4)
    rng = np.random.default_rng(0)
    normal_low, normal_high, tangential = set(), set(), set()
    for _ in range(200):
        pos = np.array([[-2, 10], [10, spec.limit + 3], [7, 7]])
        vel = np.array([[-2, 3], [3, 3], [1, 1]])
        bounce(pos, vel, spec, rng)
        assert pos.tolist() == [[0, 10], [10, spec.limit], [7, 7]]
        normal_low.add(int(vel[0, 0]))
        normal_high.add(int(vel[1, 1]))
        tangential.update((int(vel[0, 1]), int(vel[1, 0])))
        assert vel[2].tolist() == [1, 1]                      # no wall, no change
    assert normal_low == {1, 2, 3, 4}                         # away from the low wall, 1..max_speed
    assert normal_high == {-1, -2, -3, -4}                    # away from the high wall
    assert tangential == set(range(-4, 5))                    # the other component redrawn in -4..4


def test_stochastic_and_deterministic_differ_after_a_hit():
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    a = trajectories(MovingMNISTSpec(seq_len=30, dynamics="stochastic"), 50, rng_a)
    b = trajectories(MovingMNISTSpec(seq_len=30, dynamics="deterministic"), 50, rng_b)
    assert np.array_equal(a[:, 0], b[:, 0]) and not np.array_equal(a, b)


def test_render_range_and_fixed_set_reproducible(synthetic_digits):
    spec = MovingMNISTSpec(seq_len=6)
    frames = generate(synthetic_digits, spec, 8, np.random.default_rng(0))
    assert frames.shape == (8, 6, 64, 64) and frames.dtype == np.float32
    assert frames.min() >= 0 and frames.max() <= 1 and frames.max() == 1
    # each frame holds both digits' mass (overlaps clip, so at least the larger one)
    assert (frames.reshape(8, 6, -1).sum(-1) > 0).all()
    a = fixed_set(synthetic_digits, spec, 20, seed=42)
    b = fixed_set(synthetic_digits, spec, 20, seed=42)
    c = fixed_set(synthetic_digits, spec, 20, seed=43)
    assert a.dtype == np.uint8 and np.array_equal(a, b) and not np.array_equal(a, c)


def test_training_sequences_are_addressed_by_index_and_ranks_are_disjoint(synthetic_digits):
    spec = MovingMNISTSpec(seq_len=4, image_size=32, digit_size=16)
    data = MovingMNISTSequences(synthetic_digits, spec, seed=0)
    assert data[5].shape == (4, 1, 32, 32) and torch.equal(data[5], data[5])
    assert not torch.equal(data[5], data[6])
    assert not torch.equal(data[5], MovingMNISTSequences(synthetic_digits, spec, seed=1)[5])

    def first(sampler, n):
        return list(itertools.islice(iter(sampler), n))

    rank0, rank1 = first(StepSampler(4, 0, 0, 2), 12), first(StepSampler(4, 0, 1, 2), 12)
    assert not set(rank0) & set(rank1) and len(set(rank0)) == 12
    # resuming at step 2 continues exactly where an uninterrupted sampler would be
    assert first(StepSampler(4, 2, 0, 2), 4) == rank0[8:12]
    # DataLoader workers keep the order, so batches are the same with and without workers
    plain = next(iter(DataLoader(data, batch_size=4, sampler=StepSampler(4, 3))))
    workers = next(iter(DataLoader(data, batch_size=4, sampler=StepSampler(4, 3), num_workers=2)))
    assert torch.equal(plain, workers)


def test_mnist_sources(tmp_path, mnist_npz, synthetic_digits):
    train, test = load_mnist(mnist_npz)
    assert train.shape == (150, 28, 28) and test.shape == (50, 28, 28) and train.dtype == np.uint8
    idx = tmp_path / "idx"
    idx.mkdir()
    for name, arr in (("train-images-idx3-ubyte.gz", synthetic_digits[:120]), ("t10k-images-idx3-ubyte", synthetic_digits[120:])):
        header = b"".join(int(v).to_bytes(4, "big") for v in (2051, len(arr), 28, 28))
        data = header + arr.tobytes()
        (idx / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    train2, test2 = load_mnist(idx)
    assert np.array_equal(train2, synthetic_digits[:120]) and np.array_equal(test2, synthetic_digits[120:])


def test_missing_mnist_says_how_to_provide(tmp_path, monkeypatch):
    monkeypatch.delenv("FRAMEVRNN_MNIST", raising=False)
    with pytest.raises(UserError, match="mnist_path"):
        load_mnist(tmp_path / "absent.npz")
    with pytest.raises(UserError, match="IDX"):
        load_mnist(tmp_path)                                  # an empty folder
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((2, 28, 28)))
    with pytest.raises(UserError, match="x_train"):
        load_mnist(bad)


def test_real_mnist_split(mnist_path):
    train, test = load_mnist(mnist_path)
    assert train.shape[1:] == (28, 28) and test.shape == (10000, 28, 28)


def test_mnist_test_seq_loader(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, size=(20, 3, 64, 64), dtype=np.uint8)
    np.save(tmp_path / "mnist_test_seq.npy", arr)
    out = load_mnist_test_seq(tmp_path / "mnist_test_seq.npy")
    assert out.shape == (3, 20, 64, 64) and np.array_equal(out[1, 7], arr[7, 1])
    np.save(tmp_path / "wrong.npy", arr[:, :, :32])
    with pytest.raises(UserError, match="shape"):
        load_mnist_test_seq(tmp_path / "wrong.npy")
