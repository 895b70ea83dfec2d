"""MNIST digit sources: a Keras-layout ``mnist.npz``, an IDX folder, or torchvision's download.

Every source returns ``(train_images, test_images)`` as uint8 arrays of shape (N, 28, 28).
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from framevrnn.errors import UserError

ENV_VAR = "FRAMEVRNN_MNIST"
DEFAULT_DOWNLOAD_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "framevrnn" / "mnist"

HOW_TO_PROVIDE = (
    "provide MNIST digits with data.mnist_path=PATH when training, --mnist PATH when evaluating, or the "
    "FRAMEVRNN_MNIST environment variable: a Keras-layout mnist.npz (keys x_train, x_test) or a folder "
    "holding the IDX files (train-images-idx3-ubyte[.gz], t10k-images-idx3-ubyte[.gz]); online, the "
    "path 'download' fetches them with torchvision"
)


def _read_idx_images(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 16 or int.from_bytes(raw[0:4], "big") != 2051:
        raise UserError(f"{path} is not an IDX image file (bad magic number)")
    n, rows, cols = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    data = np.frombuffer(raw, dtype=np.uint8, offset=16)
    if data.size != n * rows * cols:
        raise UserError(f"{path} is truncated: expected {n * rows * cols} pixels, found {data.size}")
    return data.reshape(n, rows, cols)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (stem, stem + ".gz", stem.replace("-idx3", ".idx3"), stem.replace("-idx3", ".idx3") + ".gz"):
        for sub in (folder, folder / "MNIST" / "raw", folder / "raw"):
            if (sub / candidate).is_file():
                return sub / candidate
    return None


def load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path) as npz:
            return np.asarray(npz["x_train"], dtype=np.uint8), np.asarray(npz["x_test"], dtype=np.uint8)
    except KeyError as err:
        raise UserError(f"{path} has no {err} array; expected the Keras mnist.npz layout") from None
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {path} as an .npz file ({err})") from None


def load_idx_folder(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    train = _find_idx(folder, "train-images-idx3-ubyte")
    test = _find_idx(folder, "t10k-images-idx3-ubyte")
    if train is None or test is None:
        raise UserError(f"{folder} holds no MNIST IDX files; {HOW_TO_PROVIDE}")
    return _read_idx_images(train), _read_idx_images(test)


def download(root: Path = DEFAULT_DOWNLOAD_ROOT) -> tuple[np.ndarray, np.ndarray]:
    """Fetch MNIST with torchvision into ``root`` (needs network the first time)."""
    from torchvision.datasets import MNIST

    try:
        train = MNIST(str(root), train=True, download=True)
        test = MNIST(str(root), train=False, download=True)
    except Exception as err:  # torchvision raises plain RuntimeError/URLError when offline
        raise UserError(f"could not download MNIST into {root} ({type(err).__name__}); {HOW_TO_PROVIDE}") from None
    return train.data.numpy(), test.data.numpy()


def load_mnist(path: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST digits from ``path`` (npz file, IDX folder, or "download").

    With ``path=None`` the FRAMEVRNN_MNIST environment variable is used, then a previous torchvision
    download in the cache folder. Returns (train, test), uint8 (N, 28, 28).
    """
    if path is None or str(path) == "":
        path = os.environ.get(ENV_VAR) or None
    if path is None:
        if _find_idx(DEFAULT_DOWNLOAD_ROOT, "train-images-idx3-ubyte") is not None:
            return load_idx_folder(DEFAULT_DOWNLOAD_ROOT)
        raise UserError(f"no MNIST digits found; {HOW_TO_PROVIDE}")
    if str(path) == "download":
        return download()
    p = Path(path).expanduser()
    if p.is_file():
        return load_npz(p)
    if p.is_dir():
        return load_idx_folder(p)
    raise UserError(f"MNIST path {p} does not exist; {HOW_TO_PROVIDE}")
