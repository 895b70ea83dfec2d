"""The test sequences a protocol names: uint8 (N, T, 64, 64), with a line saying where they came from."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from framevrnn.data.moving_mnist import MovingMNISTSpec, fixed_set, load_mnist_test_seq
from framevrnn.errors import UserError
from framevrnn.evaluation.protocols import Protocol

GENERATOR_CHUNK = 500  # fixed_set draws in chunks of this size: a reduced set is a prefix of the full one


@dataclass
class EvalSet:
    frames: np.ndarray            # uint8 (N, T, H, W)
    source: str
    notes: list[str] = field(default_factory=list)


def generated(proto: Protocol, digits: np.ndarray) -> np.ndarray:
    """The first ``proto.data.sequences`` sequences of the protocol's seeded set, uint8 (N, T, H, W).

    Whole generator chunks are drawn and cut, so a reduced run scores a prefix of the full test set.
    """
    d = proto.data
    spec = MovingMNISTSpec(num_digits=d.num_digits, image_size=d.image_size, digit_size=d.digit_size,
                           seq_len=proto.context + proto.horizon, max_speed=d.max_speed,
                           dynamics=d.dynamics)
    n_draw = -(-d.sequences // GENERATOR_CHUNK) * GENERATOR_CHUNK
    return fixed_set(digits, spec, n_draw, d.seed, chunk=GENERATOR_CHUNK)[:d.sequences]


def needs_digits(proto: Protocol, mnist_test_seq: str | os.PathLike | None = None) -> bool:
    """Whether the protocol's test set is generated from MNIST digits (rather than read from a file)."""
    return not (proto.data.source == "mnist_test_seq" and mnist_test_seq is not None)


def load_testset(proto: Protocol, test_digits: np.ndarray | None = None,
                 mnist_test_seq: str | os.PathLike | None = None) -> EvalSet:
    """Build or read the protocol's test set from MNIST test digits uint8 (N, 28, 28) or a file."""
    d, length = proto.data, proto.context + proto.horizon
    if not needs_digits(proto, mnist_test_seq):
        frames = load_mnist_test_seq(mnist_test_seq)
        if frames.shape[1] < length:
            raise UserError(f"{mnist_test_seq} has {frames.shape[1]} frames per sequence; "
                            f"{proto.name} needs {length}")
        notes = []
        if frames.shape[0] < d.sequences:
            notes.append(f"{mnist_test_seq} holds {frames.shape[0]} sequences, fewer than the protocol's "
                         f"{d.sequences}: all are used")
        return EvalSet(frames[:d.sequences, :length], f"{mnist_test_seq}", notes)
    if test_digits is None:
        raise ValueError(f"{proto.name} generates its test set: MNIST test digits are needed")
    frames = generated(proto, test_digits)
    source = (f"generated: seed {d.seed}, MNIST test digits, {d.num_digits} digits of {d.digit_size}px, "
              f"{d.image_size}x{d.image_size}, speed up to {d.max_speed}, {d.dynamics} bounce")
    notes = []
    if d.source == "mnist_test_seq":
        notes.append("no --mnist-test-seq given: scored on a generated deterministic-bounce set instead of the "
                     "standard mnist_test_seq.npy, so figures are not directly comparable with OpenSTL's")
    return EvalSet(frames, source, notes)
