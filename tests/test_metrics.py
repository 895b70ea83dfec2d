"""PSNR and SSIM against their definitions and scikit-image's reference implementation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from framevrnn.data.moving_mnist import MovingMNISTSpec, generate
from framevrnn.metrics import psnr, ssim
from framevrnn.scoring import copy_last_frame, score_samples, summarize


def _sk_ssim(a: np.ndarray, b: np.ndarray) -> float:
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
    if a.shape[0] == 1:
        return structural_similarity(a[0], b[0], **kw)
    return structural_similarity(a, b, channel_axis=0, **kw)


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_matches_scikit_image_on_random_frames(channels):
    rng = np.random.default_rng(0)
    a = rng.random((6, channels, 48, 40)).astype(np.float32)
    b = np.clip(a + 0.2 * rng.standard_normal(a.shape), 0, 1).astype(np.float32)
    ours = ssim(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    ref = np.array([_sk_ssim(x.astype(np.float64), y.astype(np.float64)) for x, y in zip(a, b)])
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_ssim_and_psnr_match_scikit_image_on_moving_mnist(synthetic_digits):
    frames = generate(synthetic_digits, MovingMNISTSpec(seq_len=8), 4, np.random.default_rng(1))
    pred, truth = frames[:, :-1], frames[:, 1:]                 # copy-last-frame style pairs
    ours = ssim(torch.from_numpy(pred)[:, :, None], torch.from_numpy(truth)[:, :, None]).numpy()
    ref = np.array([[_sk_ssim(p[None].astype(np.float64), t[None].astype(np.float64)) for p, t in zip(ps, ts)]
                    for ps, ts in zip(pred, truth)])
    np.testing.assert_allclose(ours, ref, atol=1e-4)
    ours_psnr = psnr(torch.from_numpy(pred)[:, :, None], torch.from_numpy(truth)[:, :, None]).numpy()
    ref_psnr = np.array([[peak_signal_noise_ratio(t, p, data_range=1.0) for p, t in zip(ps, ts)]
                         for ps, ts in zip(pred, truth)])
    np.testing.assert_allclose(ours_psnr, ref_psnr, rtol=1e-4)


def test_identical_frames_score_perfectly():
    x = torch.rand(2, 3, 1, 32, 32)
    torch.testing.assert_close(ssim(x, x), torch.ones(2, 3))
    assert (psnr(x, x) > 90).all()


def test_best_of_n_picks_the_best_sample_per_metric():
    truth = torch.rand(2, 4, 1, 16, 16)
    good = truth.unsqueeze(1) + 0.01 * torch.randn(2, 1, 4, 1, 16, 16)
    bad = torch.rand(2, 3, 4, 1, 16, 16)
    scores = score_samples(torch.cat([bad, good], 1).clamp(0, 1), truth)
    torch.testing.assert_close(scores["psnr"]["best"], psnr(good[:, 0].clamp(0, 1), truth))
    assert (scores["psnr"]["mean"] < scores["psnr"]["best"]).all()
    base = copy_last_frame(truth[:, :2], 3)
    assert base.shape == (2, 1, 3, 1, 16, 16) and torch.equal(base[:, 0, 2], truth[:, 1])
    mean, half = summarize(torch.tensor([[1.0, 3.0], [3.0, 5.0]]))
    assert mean == pytest.approx(3.0) and half == pytest.approx(1.96 * np.std([2.0, 4.0], ddof=1) / np.sqrt(2))
