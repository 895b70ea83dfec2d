"""framevrnn.predict end to end: outputs, input kinds, no peeking at the future, and its error paths."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from framevrnn.checkpoint import atomic_save, make_checkpoint
from framevrnn.errors import run_cli
from framevrnn.models.build import FRAME_KIND
from framevrnn.predict import ASSETS, DEFAULT_CHECKPOINT, main
from tests.conftest import tiny_model

OUTPUTS = {"grid.png", "rollout.gif", "predictions.npz", "metrics.json"}


@pytest.fixture
def tiny_ckpt(tmp_path) -> Path:
    model = tiny_model(variant="vrnn")
    return atomic_save(make_checkpoint(model, FRAME_KIND, model.cfg.to_dict(), 3, half=True), tmp_path / "tiny.pt")


def _predict(argv, capsys):
    rc = run_cli(main, [str(a) for a in argv], prog="framevrnn.predict")
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_demo_input_writes_grid_gif_and_scores(tmp_path, tiny_ckpt, capsys):
    out = tmp_path / "out"
    rc, stdout, _ = _predict(["--checkpoint", tiny_ckpt, "--context", 5, "--horizon", 5, "--samples", 3,
                              "--out", out], capsys)
    assert rc == 0
    assert {p.name for p in out.iterdir()} == OUTPUTS
    for t in range(1, 6):
        assert f"t+{t}" in stdout
    report = json.loads((out / "metrics.json").read_text())
    psnr = report["metrics"]["model/psnr_best"]
    assert len(psnr["per_step"]) == 5 and np.isfinite(psnr["mean"])
    assert "copy_last_frame/psnr" in report["metrics"]
    with np.load(out / "predictions.npz") as npz:
        assert npz["samples"].shape == (8, 3, 5, 1, 16, 16)       # demo frames resized to the model's 16x16
    with Image.open(out / "rollout.gif") as gif:
        assert gif.n_frames == 10                                # 5 context + 5 predicted frames


def test_predictions_never_see_the_future(tmp_path, tiny_ckpt, capsys):
    frames = np.random.default_rng(0).random((2, 8, 16, 16)).astype(np.float32)
    changed = frames.copy()
    changed[:, 4:] = 1.0 - changed[:, 4:]                       # only frames after the context differ
    np.save(tmp_path / "a.npy", frames)
    np.save(tmp_path / "b.npy", changed)
    for name in ("a", "b"):
        assert _predict(["--checkpoint", tiny_ckpt, "--input", tmp_path / f"{name}.npy", "--context", 4,
                         "--horizon", 4, "--samples", 2, "--seed", 1, "--out", tmp_path / f"out_{name}"], capsys)[0] == 0
    with np.load(tmp_path / "out_a" / "predictions.npz") as a, np.load(tmp_path / "out_b" / "predictions.npz") as b:
        assert np.array_equal(a["samples"], b["samples"])
        assert not np.array_equal(a["truth"], b["truth"])


def test_video_and_image_folder_inputs(tmp_path, tiny_ckpt, capsys):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (40, 30))
    for t in range(9):
        img = np.zeros((30, 40, 3), np.uint8)
        img[5:15, 2 + 3 * t:12 + 3 * t] = (0, 200, 255)
        writer.write(img)
    writer.release()
    rc, stdout, _ = _predict(["--checkpoint", tiny_ckpt, "--input", video, "--samples", 2, "--out", tmp_path / "v"], capsys)
    assert rc == 0 and "resized frames from 30x40 to 16x16" in stdout and "converted 3-channel" in stdout
    folder = tmp_path / "frames"
    folder.mkdir()
    for t in range(6):
        cv2.imwrite(str(folder / f"{t:03d}.png"), np.full((16, 16), 20 * t, np.uint8))
    rc, stdout, _ = _predict(["--checkpoint", tiny_ckpt, "--input", folder, "--context", 4, "--horizon", 2,
                              "--samples", 2, "--out", tmp_path / "f"], capsys)
    assert rc == 0 and {p.name for p in (tmp_path / "f").iterdir()} == OUTPUTS


def _bad_inputs(tmp: Path, ckpt: Path) -> dict[str, tuple[list, str]]:
    (tmp / "empty").mkdir()
    (tmp / "texts").mkdir()
    (tmp / "texts" / "a.txt").write_text("hello")
    np.save(tmp / "short.npy", np.zeros((3, 16, 16), np.float32))
    nan = np.zeros((8, 16, 16), np.float32)
    nan[2, 3, 4] = np.nan
    np.save(tmp / "nan.npy", nan)
    np.save(tmp / "range.npy", np.full((8, 16, 16), 300.0, np.float32))
    np.save(tmp / "chan.npy", np.zeros((1, 8, 5, 16, 16), np.float32))
    (tmp / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    model = tiny_model()
    speech = atomic_save(make_checkpoint(model, "speech_vrnn", model.cfg.to_dict(), 1), tmp / "speech.pt")
    (tmp / "exists").mkdir()
    c = ["--checkpoint", ckpt]
    return {
        "context 0": (c + ["--context", 0], "--context must be at least 1"),
        "negative horizon": (c + ["--horizon", -1], "--horizon must be at least 1"),
        "zero samples": (c + ["--samples", 0], "--samples must be at least 1"),
        "missing input": (c + ["--input", tmp / "nope.npy"], "does not exist"),
        "empty folder": (c + ["--input", tmp / "empty"], "holds no images"),
        "non-image folder": (c + ["--input", tmp / "texts"], "holds no images"),
        "too few frames": (c + ["--input", tmp / "short.npy"], "at least 5 are needed"),
        "NaN array": (c + ["--input", tmp / "nan.npy"], "NaN"),
        "out-of-range array": (c + ["--input", tmp / "range.npy"], "expected [0, 1] or [0, 255]"),
        "odd channel count": (c + ["--input", tmp / "chan.npy"], "5 channels"),
        "unreadable video": (c + ["--input", tmp / "broken.mp4"], "video"),
        "unknown file type": (c + ["--input", tmp / "texts" / "a.txt"], "unsupported file type"),
        "missing checkpoint": (["--checkpoint", tmp / "none.pt"], "does not exist"),
        "wrong checkpoint kind": (["--checkpoint", speech], "speech_vrnn"),
        "not a checkpoint": (["--checkpoint", tmp / "nan.npy"], "cannot read checkpoint"),
        "nonexistent device": (c + ["--device", "cuda:7"], "cuda:7"),
        "unknown device": (c + ["--device", "tpu"], "device"),
        "existing output folder": (c + ["--out", tmp / "exists"], "already exists"),
    }


def test_bad_inputs_give_one_line_and_write_nothing(tmp_path, tiny_ckpt, capsys):
    work = tmp_path / "work"
    work.mkdir()
    cases = _bad_inputs(work, tiny_ckpt)
    for name, (argv, message) in cases.items():
        out = tmp_path / "out" / name.replace(" ", "_")
        if "--out" not in argv:
            argv = argv + ["--out", out]
        rc, stdout, stderr = _predict(argv, capsys)
        assert rc == 2, name
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("framevrnn.predict: error:"), (name, stderr)
        assert message in lines[0], (name, lines[0])
        assert "Traceback" not in stderr
        if name != "existing output folder":
            assert not out.exists(), name
    leftovers = [p for p in (tmp_path / "out").rglob("*")] if (tmp_path / "out").exists() else []
    assert leftovers == [], leftovers


def test_shipped_checkpoint_no_arguments(tmp_path):
    """The main job as a user types it: no network, no arguments but context and horizon."""
    if not (ASSETS / DEFAULT_CHECKPOINT).is_file():
        pytest.fail(f"the shipped checkpoint framevrnn/assets/{DEFAULT_CHECKPOINT} is missing")
    env = {**os.environ, "NO_PROXY": "*", "HTTP_PROXY": "http://0.0.0.0:9", "HTTPS_PROXY": "http://0.0.0.0:9"}
    proc = subprocess.run([sys.executable, "-m", "framevrnn.predict", "--context", "5", "--horizon", "5"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    outs = list((tmp_path / "predictions").iterdir())
    assert len(outs) == 1 and {p.name for p in outs[0].iterdir()} == OUTPUTS
    assert "t+5" in proc.stdout and "copy-last" in proc.stdout
