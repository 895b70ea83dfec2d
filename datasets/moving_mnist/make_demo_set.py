"""Build the demo test sequences shipped in framevrnn/assets/demo_mmnist.npz.

    python datasets/moving_mnist/make_demo_set.py --mnist ../shared/data/mnist/mnist.npz

16 stochastic Moving MNIST sequences of 25 frames (64x64, 2 digits, 28x28 MNIST *test* digits,
speed up to 4 px/frame, seed 2015), stored as uint8 under the key "frames", shape (16, 25, 64, 64).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from framevrnn.data.mnist_digits import load_mnist
from framevrnn.data.moving_mnist import MovingMNISTSpec, fixed_set

OUT = Path(__file__).resolve().parents[2] / "framevrnn" / "assets" / "demo_mmnist.npz"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mnist", default=None, help="mnist.npz or IDX folder (default: $FRAMEVRNN_MNIST)")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--sequences", type=int, default=16)
    p.add_argument("--frames", type=int, default=25)
    p.add_argument("--seed", type=int, default=2015)
    args = p.parse_args()
    _, test_digits = load_mnist(args.mnist)
    spec = MovingMNISTSpec(seq_len=args.frames, dynamics="stochastic")
    frames = fixed_set(test_digits, spec, args.sequences, seed=args.seed)
    np.savez_compressed(args.out, frames=frames, seed=np.int64(args.seed))
    print(f"wrote {args.out}: frames {frames.shape} {frames.dtype}")


if __name__ == "__main__":
    main()
