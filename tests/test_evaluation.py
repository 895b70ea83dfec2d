"""Evaluation suite: OpenSTL metrics, best-of-N selection, protocols, test sets and the eval CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import tiny_model
from framevrnn.checkpoint import atomic_save, make_checkpoint
from framevrnn.errors import UserError, run_cli
from framevrnn.eval import main as eval_main
from framevrnn.evaluation.protocols import available, load_protocol, parse_protocol, reduce
from framevrnn.evaluation.scores import Accumulator
from framevrnn.evaluation.testsets import generated
from framevrnn.metrics import mae_sum, mse_sum
from framevrnn.models.build import FRAME_KIND
from framevrnn.scoring import select


def test_openstl_sums_match_their_definition():
    pred, true = torch.rand(3, 4, 1, 8, 8), torch.rand(3, 4, 1, 8, 8)
    p, t = pred.numpy(), true.numpy()
    # OpenSTL: np.mean(err, axis=(0, 1)).sum() over (B, T, C, H, W)
    assert mse_sum(pred, true).mean().item() == pytest.approx(np.mean((p - t) ** 2, axis=(0, 1)).sum(), rel=1e-5)
    assert mae_sum(pred, true).mean().item() == pytest.approx(np.mean(np.abs(p - t), axis=(0, 1)).sum(), rel=1e-5)


def test_best_sample_follows_each_metric_direction():
    per = {"psnr": torch.tensor([[[10.0, 10.0], [20.0, 0.0], [12.0, 12.0]]]),      # (B=1, N=3, T=2)
           "mse_sum": torch.tensor([[[5.0, 5.0], [1.0, 20.0], [3.0, 3.0]]])}
    out = select(per)
    assert out["psnr"]["best"].tolist() == [[12.0, 12.0]]           # highest time-average, not per step
    assert out["mse_sum"]["best"].tolist() == [[3.0, 3.0]]          # lowest for an error
    torch.testing.assert_close(out["psnr"]["mean"], per["psnr"].mean(1))


def test_shipped_protocols_match_the_papers():
    assert {"srvp_smmnist", "mission_5to5", "openstl_mmnist"} <= set(available())
    srvp = load_protocol("srvp_smmnist")
    assert (srvp.context, srvp.horizon, srvp.samples) == (5, 20, 100)
    d = srvp.data
    assert (d.sequences, d.seed, d.num_digits, d.digit_size, d.image_size, d.max_speed, d.dynamics) == \
        (5000, 42, 2, 28, 64, 4, "stochastic")
    assert {p["method"] for p in srvp.published} == {"SVG-LP", "SRVP", "SLAMP"}
    mission = load_protocol("mission_5to5")
    assert (mission.context, mission.horizon) == (5, 5) and {"lpips", "nll"} <= set(mission.metrics)
    openstl = load_protocol("openstl_mmnist")
    assert (openstl.context, openstl.horizon, openstl.data.dynamics) == (10, 10, "deterministic")
    assert "mse_sum" in openstl.metrics


def test_reduction_is_labelled():
    quick = reduce(load_protocol("srvp_smmnist"), quick=True)
    assert quick.reduction == "quick: 100 of 5000 sequences, 10 of 100 samples"
    assert reduce(load_protocol("srvp_smmnist"), samples=500).reduction == ""      # overrides only shrink
    with pytest.raises(UserError, match="--sequences must be a positive integer"):
        reduce(load_protocol("srvp_smmnist"), sequences=0)


def test_protocol_errors(tmp_path):
    with pytest.raises(UserError, match="unknown protocol 'nope'; known: "):
        load_protocol("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndescription: y\ncontext: 5\nhorizon: 5\nsamples: 1\nmetrics: [psnr]\nhorizn: 3\n")
    with pytest.raises(UserError, match="unknown key"):
        load_protocol(str(bad))
    with pytest.raises(UserError, match="unknown metric"):
        parse_protocol({"name": "x", "description": "", "context": 1, "horizon": 1, "samples": 1,
                        "metrics": ["fid"]}, "here")
    with pytest.raises(UserError, match="horizon must be a positive integer"):
        parse_protocol({"name": "x", "description": "", "context": 1, "horizon": 0, "samples": 1,
                        "metrics": ["psnr"]}, "here")


def test_reduced_test_set_is_a_prefix_of_the_full_one(synthetic_digits):
    proto = load_protocol("mission_5to5")
    small = generated(reduce(proto, sequences=3), synthetic_digits)
    larger = generated(reduce(proto, sequences=600), synthetic_digits)
    assert small.shape == (3, 10, 64, 64) and small.dtype == np.uint8
    np.testing.assert_array_equal(small, larger[:3])


@pytest.fixture
def checkpoints(tmp_path):
    """A tiny 64x64 vrnn and rnn, saved as framevrnn checkpoints."""
    paths = {}
    for variant in ("vrnn", "rnn"):
        model = tiny_model(image_size=64, variant=variant)
        paths[variant] = atomic_save(make_checkpoint(model, FRAME_KIND, model.cfg.to_dict(), step=1),
                                     tmp_path / f"{variant}.pt")
    return paths


def _run(args) -> int:
    return run_cli(eval_main, [str(a) for a in args], prog="framevrnn.eval")


def test_cli_end_to_end(checkpoints, mnist_npz, tmp_path, capsys):
    out = tmp_path / "report"
    rc = _run(["--protocol", "mission_5to5", "--checkpoint", checkpoints["vrnn"], "--baseline-checkpoint",
               checkpoints["rnn"], "--quick", "--sequences", 3, "--samples", 2, "--nll-samples", 2,
               "--mnist", mnist_npz, "--lpips-backbone", "none", "--out", out, "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["mission_5to5_psnr.png", "mission_5to5_ssim.png",
                                                     "report.json", "report.md"]
    report = json.loads((out / "report.json").read_text())
    (result,) = report["protocols"]
    assert result["reduction"] == "quick: 3 of 5000 sequences, 2 of 100 samples, 2 of 100 NLL importance samples"
    labels = [e["label"] for e in result["entries"]]
    assert labels == ["vrnn (vrnn.pt)", "copy last frame", "rnn baseline (rnn.pt)"]
    vrnn, copy, rnn = result["entries"]
    assert len(vrnn["metrics"]["psnr"]["best"]["per_step"]) == 5 and vrnn["samples"] == 2 and rnn["samples"] == 1
    assert vrnn["metrics"]["lpips"] is None                               # absent, never a made-up number
    assert vrnn["nll"]["k"] == 2 and copy["nll"] is None
    assert rnn["nll"]["iw_nats_per_frame"]["mean"] == pytest.approx(rnn["nll"]["elbo_nats_per_frame"]["mean"])
    md = (out / "report.md").read_text()
    assert "quick: 3 of 5000 sequences" in md and "| copy last frame | 1 |" in md and "n/a" in md


def test_cli_openstl_reads_mnist_test_seq(checkpoints, tmp_path, capsys):
    seq = tmp_path / "mnist_test_seq.npy"
    np.save(seq, np.random.default_rng(0).integers(0, 256, size=(20, 3, 64, 64), dtype=np.uint8))
    out = tmp_path / "openstl"
    rc = _run(["--protocol", "openstl_mmnist", "--checkpoint", checkpoints["rnn"], "--mnist-test-seq", seq,
               "--out", out, "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    result = json.loads((out / "report.json").read_text())["protocols"][0]
    assert result["sequences"] == 3 and "holds 3 sequences" in result["notes"][0]
    assert {"mse_sum", "mae_sum", "psnr", "ssim"} == set(result["entries"][0]["metrics"])
    assert (out / "openstl_mmnist_mse_sum.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["--checkpoint", "{tmp}/missing.pt"], "checkpoint {tmp}/missing.pt does not exist"),
    (["--protocol", "nope"], "unknown protocol 'nope'"),
    (["--sequences", "0"], "--sequences must be a positive integer"),
    (["--samples", "-3"], "--samples must be a positive integer"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--baseline-checkpoint", "{tmp}/nothing.pt"], "baseline checkpoint {tmp}/nothing.pt does not exist"),
])
def test_cli_errors_are_one_line(args, message, checkpoints, tmp_path, capsys):
    args = [a.format(tmp=tmp_path) for a in args]
    if "--checkpoint" not in args:
        args += ["--checkpoint", str(checkpoints["vrnn"])]
    assert _run(args + ["--out", tmp_path / "out"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message.format(tmp=tmp_path) in err
    assert not (tmp_path / "out").exists()


def test_cli_leaves_nothing_on_a_failed_run(tmp_path, mnist_npz, capsys):
    """A checkpoint of the wrong frame size fails mid-run: no output folder, no staging folder."""
    small = tmp_path / "small.pt"
    model = tiny_model()                                              # 16x16 frames; protocols use 64x64
    atomic_save(make_checkpoint(model, FRAME_KIND, model.cfg.to_dict(), step=1), small)
    out = tmp_path / "runs" / "report"
    assert _run(["--protocol", "srvp_smmnist", "--checkpoint", small, "--sequences", 2, "--samples", 1,
                 "--mnist", mnist_npz, "--out", out, "--no-progress"]) == 2
    assert "16x16" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob("runs/.report*"))


def test_cli_refuses_an_existing_output_folder(checkpoints, tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    assert _run(["--checkpoint", checkpoints["vrnn"], "--out", tmp_path / "taken"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_missing_mnist_is_a_clear_error(checkpoints, tmp_path, monkeypatch, capsys):
    """Said before any slow set-up (LPIPS, which may try a download), with the flag to use."""
    from framevrnn.evaluation import suite

    def no_lpips(*args, **kwargs):
        raise AssertionError("LPIPS was built before the MNIST digits were checked")

    monkeypatch.setattr(suite, "build_lpips", no_lpips)
    monkeypatch.delenv("FRAMEVRNN_MNIST", raising=False)
    assert _run(["--checkpoint", checkpoints["vrnn"], "--mnist", tmp_path / "none.npz", "--quick",
                 "--out", tmp_path / "o", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "MNIST path" in err and "--mnist PATH" in err


def test_one_sequence_has_no_interval():
    acc = Accumulator()
    acc.add_scores(select({"psnr": torch.full((1, 2, 3), 20.0)}))
    summary = acc.summary()["metrics"]["psnr"]["best"]
    assert summary["mean"] == pytest.approx(20.0) and summary["ci95"] is None
    json.dumps(summary, allow_nan=False)


@pytest.mark.slow
def test_quick_variant_of_every_protocol_offline_with_the_shipped_checkpoint(mnist_path, tmp_path):
    """What README's Evaluate command does on a fresh install: no network, every protocol, --quick."""
    import os
    import subprocess
    import sys

    from conftest import SHARED_LPIPS
    from framevrnn.predict import ASSETS, DEFAULT_CHECKPOINT

    if not (ASSETS / DEFAULT_CHECKPOINT).is_file():
        pytest.fail(f"the shipped checkpoint framevrnn/assets/{DEFAULT_CHECKPOINT} is missing")
    env = {**os.environ, "NO_PROXY": "", "HTTP_PROXY": "http://0.0.0.0:9", "HTTPS_PROXY": "http://0.0.0.0:9",
           "OMP_NUM_THREADS": "2"}
    backbone = SHARED_LPIPS / "alexnet_features.pth"
    out = tmp_path / "quick"
    proc = subprocess.run([sys.executable, "-m", "framevrnn.eval", "--protocol", "all", "--quick", "--mnist",
                           str(mnist_path), "--lpips-backbone", str(backbone) if backbone.is_file() else "none",
                           "--out", str(out), "--no-progress"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert [r["protocol"] for r in report["protocols"]] == ["mission_5to5", "openstl_mmnist", "srvp_smmnist"]
    for result in report["protocols"]:
        assert result["reduction"].startswith("quick: ")
        model, copy = result["entries"][:2]
        assert copy["label"] == "copy last frame"
        # the shipped model predicts better than repeating the last frame on every protocol
        assert model["metrics"]["psnr"]["best"]["mean"] > copy["metrics"]["psnr"]["best"]["mean"]
    assert (out / "srvp_smmnist_psnr.png").is_file() and (out / "mission_5to5_ssim.png").is_file()
