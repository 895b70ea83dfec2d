"""LPIPS: the lpips package's own example figures with an offline trunk, and no number without weights."""
from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import SHARED_LPIPS
from framevrnn.errors import UserError
from framevrnn.evaluation import lpips_metric
from framevrnn.evaluation.lpips_metric import ENV_VAR, LPIPSMetric, build_lpips

BACKBONE = SHARED_LPIPS / "alexnet_features.pth"
EXAMPLES_ENV = "FRAMEVRNN_LPIPS_EXAMPLES"


def _example_dir() -> Path | None:
    """The lpips repository's imgs/ folder (ex_ref.png, ex_p0.png, ex_p1.png), where one is at hand."""
    import lpips

    pkg = Path(lpips.__file__).parent
    for d in (os.environ.get(EXAMPLES_ENV), pkg / "imgs", pkg.parent / "imgs", SHARED_LPIPS / "imgs", SHARED_LPIPS):
        if d and (Path(d) / "ex_ref.png").is_file():
            return Path(d)
    return None


def _image(path: Path) -> torch.Tensor:
    """An RGB PNG as (1, 3, H, W) in [0, 1]."""
    arr = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0)


@pytest.fixture
def backbone() -> Path:
    if not BACKBONE.is_file():
        pytest.skip(f"AlexNet trunk weights not found at {BACKBONE} (the development data folder ../shared/data)")
    return BACKBONE


def test_reproduces_the_lpips_example_figures(backbone):
    folder = _example_dir()
    if folder is None:
        pytest.skip("the lpips example images (ex_ref.png, ex_p0.png, ex_p1.png) are not shipped in the lpips "
                    f"wheel; put the lpips repository's imgs/ folder at ${EXAMPLES_ENV} to run this check")
    metric = build_lpips(backbone, torch.device("cpu"))
    ref = _image(folder / "ex_ref.png")
    assert metric(_image(folder / "ex_p0.png"), ref).item() == pytest.approx(0.722, abs=1e-3)
    assert metric(_image(folder / "ex_p1.png"), ref).item() == pytest.approx(0.138, abs=1e-3)


def test_offline_trunk_lands_in_every_slice(backbone):
    metric = build_lpips(backbone, torch.device("cpu"))
    state = torch.load(backbone, weights_only=True)
    loaded = {k.split(".", 1)[1]: v for k, v in metric.net.net.state_dict().items()}   # "slice2.3.weight" -> "3.weight"
    assert sorted(loaded) == sorted(state)
    for k, v in state.items():
        assert torch.equal(loaded[k], v), k
    frames = torch.rand(2, 3, 4, 1, 32, 32)                   # (B, N, T, C, H, W), grayscale
    truth = torch.rand(2, 1, 4, 1, 32, 32)
    d = metric(frames, truth)
    assert d.shape == (2, 3, 4) and (d > 0).all()
    assert metric(truth, truth).abs().max() < 1e-6


def test_absent_without_weights(monkeypatch, tmp_path):
    """Offline with no path: said once, LPIPS is None (never a figure from a random trunk)."""
    import torchvision.models._api as tv_api

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(tv_api, "load_state_dict_from_url", offline)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv(ENV_VAR, raising=False)
    said: list[str] = []
    assert build_lpips(None, torch.device("cpu"), said.append) is None
    assert len(said) == 1 and "--lpips-backbone" in said[0] and "n/a" in said[0]
    assert build_lpips("none", torch.device("cpu"), said.append) is None


def test_backbone_from_environment(backbone, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(backbone))
    metric = build_lpips(None, torch.device("cpu"))
    assert isinstance(metric, LPIPSMetric) and str(backbone) in metric.source


def test_bad_backbone_paths(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        build_lpips(tmp_path / "missing.pth", torch.device("cpu"))
    wrong = tmp_path / "wrong.pth"
    torch.save({"0.weight": torch.zeros(1)}, wrong)
    with pytest.raises(UserError, match="lacks|does not fit"):
        build_lpips(wrong, torch.device("cpu"))


def test_chunks_give_the_same_distances():
    net = lpips_metric._quiet_lpips(pnet_rand=True)    # a random trunk is fine for a shape / chunking check
    x, y = torch.rand(5, 1, 32, 32), torch.rand(5, 1, 32, 32)
    whole = LPIPSMetric(net, torch.device("cpu"), "random")(x, y)
    parts = LPIPSMetric(net, torch.device("cpu"), "random", chunk=2)(x, y)
    torch.testing.assert_close(whole, parts)


def test_matches_the_lpips_package_reference_usage():
    """Frames in [0, 1], grayscale: the same distance as lpips' own im2tensor on uint8 RGB, net(x, y)."""
    import lpips

    torch.manual_seed(0)
    net = lpips_metric._quiet_lpips(pnet_rand=True)
    metric = LPIPSMetric(net, torch.device("cpu"), "random trunk")
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 256, (64, 64), dtype=np.uint8) for _ in range(2))
    ref = net(*(lpips.im2tensor(np.repeat(g[..., None], 3, -1)) for g in (a, b))).item()
    ours = metric(*(torch.from_numpy(g).float().div(255).view(1, 1, 64, 64) for g in (a, b))).item()
    assert ours == pytest.approx(ref, rel=1e-5)
    assert ours > 0
