"""Read user-supplied frame sequences for prediction: .npy/.npz arrays, videos (OpenCV), image folders.

Everything comes out as float32 (N, T, C, H, W) in [0, 1], resized to the model's frame size and
converted to its channel count; what was changed is reported in ``notes``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from framevrnn.errors import UserError

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".gif"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


@dataclass
class FrameSequences:
    frames: np.ndarray                       # float32 (N, T, C, H, W) in [0, 1]
    source: str
    notes: list[str] = field(default_factory=list)


def _to_unit_range(arr: np.ndarray, source: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise UserError(f"{source}: array of dtype {arr.dtype} is not a frame array")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise UserError(f"{source}: array holds NaN or infinite values")
    lo, hi = float(arr.min()), float(arr.max())
    if lo >= 0.0 and hi <= 1.0:
        return arr
    if lo >= 0.0 and hi <= 255.0:
        return arr / 255.0
    raise UserError(f"{source}: values range over [{lo:g}, {hi:g}]; expected [0, 1] or [0, 255]")


def _array_to_ntchw(arr: np.ndarray, source: str) -> np.ndarray:
    """Accept (T, H, W), (T, H, W, C), (N, T, H, W), (N, T, H, W, C) or (N, T, C, H, W)."""
    if arr.ndim == 3:
        arr = arr[None, :, None]
    elif arr.ndim == 4:
        arr = arr[None].transpose(0, 1, 4, 2, 3) if arr.shape[-1] in (1, 3) else arr[:, :, None]
    elif arr.ndim == 5:
        if arr.shape[-1] in (1, 3) and arr.shape[2] not in (1, 3):
            arr = arr.transpose(0, 1, 4, 2, 3)
    else:
        raise UserError(f"{source}: array of shape {arr.shape} is not a frame sequence; expected "
                        "(T, H, W), (N, T, H, W), (N, T, H, W, C) or (N, T, C, H, W)")
    if arr.shape[2] not in (1, 3):
        raise UserError(f"{source}: frames have {arr.shape[2]} channels; expected 1 (grayscale) or 3 (RGB)")
    return arr


def read_array(path: Path) -> np.ndarray:
    try:
        if path.suffix == ".npz":
            with np.load(path) as npz:
                key = "frames" if "frames" in npz.files else (npz.files[0] if npz.files else None)
                if key is None:
                    raise UserError(f"{path}: the .npz file holds no arrays")
                arr = npz[key]
        else:
            arr = np.load(path, allow_pickle=False)
    except UserError:
        raise
    except (OSError, ValueError, EOFError) as err:
        raise UserError(f"cannot read {path} as a NumPy array ({str(err).splitlines()[0]})") from None
    return _array_to_ntchw(_to_unit_range(np.asarray(arr), str(path)), str(path))


def read_video(path: Path, max_frames: int | None = None) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise UserError(f"cannot open video {path} (unreadable or unsupported format)")
    frames = []
    try:
        while max_frames is None or len(frames) < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    if not frames:
        raise UserError(f"video {path} has no readable frames (empty or truncated)")
    return (np.stack(frames).astype(np.float32) / 255.0).transpose(0, 3, 1, 2)[None]


def read_image_folder(path: Path) -> np.ndarray:
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"folder {path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    frames = []
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise UserError(f"cannot read image {f}")
        if img.dtype != np.uint8:
            img = (img.astype(np.float32) / np.iinfo(img.dtype).max * 255).astype(np.uint8)
        if img.ndim == 2:
            img = img[..., None]
        elif img.shape[-1] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
        else:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        frames.append(img)
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise UserError(f"images in {path} differ in size or channels: {sorted(shapes)}")
    return (np.stack(frames).astype(np.float32) / 255.0).transpose(0, 3, 1, 2)[None]


def conform(frames: np.ndarray, channels: int, size: int, notes: list[str]) -> np.ndarray:
    """Resize (N, T, C, H, W) frames to size x size and convert to ``channels``; record what changed."""
    n, t, c, h, w = frames.shape
    if c != channels:
        if channels == 1:
            weights = np.array([0.299, 0.587, 0.114], dtype=np.float32).reshape(1, 1, 3, 1, 1)
            frames = (frames * weights).sum(2, keepdims=True)
        else:
            frames = np.repeat(frames, channels, axis=2)
        notes.append(f"converted {c}-channel frames to {channels} channel(s)")
    if (h, w) != (size, size):
        flat = frames.reshape(n * t, channels, h, w).transpose(0, 2, 3, 1)
        interp = cv2.INTER_AREA if h > size or w > size else cv2.INTER_LINEAR
        resized = np.stack([cv2.resize(f, (size, size), interpolation=interp).reshape(size, size, channels)
                            for f in flat])
        frames = resized.transpose(0, 3, 1, 2).reshape(n, t, channels, size, size)
        notes.append(f"resized frames from {h}x{w} to {size}x{size}")
    return np.ascontiguousarray(np.clip(frames, 0.0, 1.0), dtype=np.float32)


def load_frames(path: str | Path, channels: int, size: int, min_frames: int) -> FrameSequences:
    """Read ``path`` and conform it to the model; at least ``min_frames`` frames per sequence."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"input {p} does not exist")
    if p.is_dir():
        arr = read_image_folder(p)
    elif p.suffix.lower() in (".npy", ".npz"):
        arr = read_array(p)
    elif p.suffix.lower() in VIDEO_SUFFIXES:
        arr = read_video(p)
    else:
        raise UserError(f"input {p}: unsupported file type {p.suffix!r}; give a .npy/.npz array, a video "
                        f"({', '.join(sorted(VIDEO_SUFFIXES))}) or a folder of images")
    if arr.shape[1] < min_frames:
        raise UserError(f"input {p} has {arr.shape[1]} frame(s) per sequence; at least {min_frames} are needed "
                        "(the context)")
    notes: list[str] = []
    return FrameSequences(conform(arr, channels, size, notes), str(p), notes)
