"""Hydra configs compose; train() runs, logs, checkpoints and resumes on a tiny model."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from framevrnn import config_schema  # noqa: F401
from framevrnn.checkpoint import load_checkpoint
from framevrnn.models.build import model_from_checkpoint
from framevrnn.train import kl_weight, train

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _compose(overrides=()):
    with initialize_config_module(config_module="framevrnn.configs", version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


@pytest.mark.parametrize("group", ["data", "model", "trainer"])
def test_every_config_group_option_composes(group):
    options = _options(group)
    assert options
    for option in options:
        cfg = _compose([f"{group}={option}"])
        OmegaConf.resolve(cfg)
        assert cfg[group] is not None


def test_experiment_composes_and_builds_the_model():
    cfg = _compose(["+experiment=mmnist_reference"])
    assert list(cfg.model.encoder_widths) == [16, 32, 64] and cfg.model.image_size == cfg.data.image_size


@pytest.mark.parametrize("variant_file,variant", [("conv_vrnn", "vrnn"), ("conv_vrnn_i", "vrnn_i"), ("conv_rnn", "rnn")])
def test_model_files_select_the_variant(variant_file, variant):
    assert _compose([f"model={variant_file}"]).model.variant == variant


def test_typos_and_wrong_types_fail_loudly():
    with pytest.raises(ConfigCompositionException, match="max_stepz"):
        _compose(["trainer.max_stepz=3"])
    with pytest.raises((ConfigCompositionException, ValidationError), match="max_steps"):
        _compose(["trainer.max_steps=many"])


def test_kl_warmup():
    assert kl_weight(0, 1.0, 100) == 0.0 and kl_weight(50, 2.0, 100) == 1.0 and kl_weight(500, 2.0, 100) == 2.0
    assert kl_weight(0, 0.5, 0) == 0.5


def _tiny_overrides(mnist_npz, run_dir, steps):
    return ["trainer=debug", f"trainer.max_steps={steps}", "trainer.batch_size=2", "trainer.val_every=2",
            "trainer.ckpt_every=2", "trainer.log_every=1", "trainer.val_samples=2", "trainer.progress=false",
            f"trainer.run_dir={run_dir}", f"data.mnist_path={mnist_npz}", "data.image_size=16", "data.digit_size=8",
            "data.val_sequences=3", "data.context=2", "data.horizon=2",
            "model.encoder_widths=[4,8]", "model.decoder_widths=[8,4]", "model.hidden_channels=8",
            "model.z_channels=2", "model.z_feature_channels=4", "model.head_channels=8"]


def test_train_writes_checkpoint_logs_and_resumes(tmp_path, mnist_npz, capsys):
    run = tmp_path / "run"
    metrics = train(_compose(_tiny_overrides(mnist_npz, run, 4)))
    assert metrics["step"] == 4
    for key in ("val/elbo_per_frame", "val/psnr_best", "val/ssim_mean"):
        assert key in metrics and torch.isfinite(torch.tensor(metrics[key]))
    assert list((run / "tb").glob("events.out.tfevents.*"))
    assert (run / "config.yaml").is_file()
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["step"] == 4 and "optimizer" in ckpt and not any(k.startswith(("module.", "_orig_mod."))
                                                                   for k in ckpt["model"])
    before = model_from_checkpoint(ckpt)

    metrics = train(_compose(_tiny_overrides(mnist_npz, run, 6)))
    assert metrics["step"] == 6
    assert "resuming from" in capsys.readouterr().err
    after = model_from_checkpoint(load_checkpoint(run / "checkpoints" / "last.pt"))
    changed = any(not torch.equal(a, b) for a, b in zip(before.state_dict().values(), after.state_dict().values()))
    assert changed, "resumed training must keep updating the weights"


def test_resume_refuses_another_model_config(tmp_path, mnist_npz):
    from framevrnn.errors import UserError

    run = tmp_path / "run"
    train(_compose(_tiny_overrides(mnist_npz, run, 2)))
    with pytest.raises(UserError, match="another model config"):
        train(_compose(_tiny_overrides(mnist_npz, run, 4) + ["model.hidden_channels=6"]))


def _state(path):
    return load_checkpoint(path)["model"]


def test_resumed_run_equals_uninterrupted_run(tmp_path, mnist_npz):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(_compose(_tiny_overrides(mnist_npz, straight, 6)))
    train(_compose(_tiny_overrides(mnist_npz, split, 4)))          # "interrupted" after step 4
    train(_compose(_tiny_overrides(mnist_npz, split, 6)))          # resumed: data, RNG, optimizer restored
    a, b = _state(straight / "checkpoints" / "last.pt"), _state(split / "checkpoints" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoints_rotate_and_resume_skips_a_corrupt_newest(tmp_path, mnist_npz, capsys):
    run = tmp_path / "run"
    train(_compose(_tiny_overrides(mnist_npz, run, 8) + ["trainer.keep_last=2"]))
    steps = sorted(p.name for p in (run / "checkpoints").glob("step_*.pt"))
    assert steps == ["step_000000006.pt", "step_000000008.pt"]
    newest = run / "checkpoints" / "step_000000008.pt"
    (run / "checkpoints" / "last.pt").unlink()
    newest.write_bytes(newest.read_bytes()[:1000])                  # torn write of the newest file
    (run / "checkpoints" / ".step_000000010.pt.123.tmp").write_bytes(b"partial")
    metrics = train(_compose(_tiny_overrides(mnist_npz, run, 10) + ["trainer.keep_last=2"]))
    err = capsys.readouterr().err
    assert "skipping unusable checkpoint" in err and "at step 6" in err
    assert metrics["step"] == 10 and not list((run / "checkpoints").glob(".*.tmp"))


def test_non_finite_steps_are_skipped_then_the_run_stops(tmp_path, mnist_npz, monkeypatch):
    import framevrnn.train as train_module
    from framevrnn.errors import UserError

    real_step = train_module.train_step
    calls = {"n": 0}

    def poisoned(model, optimizer, x, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 4:                                           # from step 5 on, every batch holds a NaN
            x = x.clone()
            x[0, 0, 0, 0, 0] = float("nan")
        return real_step(model, optimizer, x, *args, **kwargs)

    monkeypatch.setattr(train_module, "train_step", poisoned)
    run = tmp_path / "run"
    with pytest.raises(UserError, match="3 steps in a row had non-finite"):
        train(_compose(_tiny_overrides(mnist_npz, run, 20) + ["trainer.max_bad_steps=3"]))
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    assert ckpt["step"] >= 4


@pytest.mark.parametrize("override,message", [
    ("trainer.batch_size=0", "trainer.batch_size must be at least 1"),
    ("data.context=0", "data.context must be at least 1"),
    ("data.horizon=-1", "data.horizon must be at least 1"),
    ("trainer.lr=0", "trainer.lr"),
    ("trainer.precision=fp8", "fp32 or bf16"),
    ("trainer.device=cuda:9", "cuda:9"),
    ("model.image_size=32", "differs from data.image_size"),
])
def test_bad_training_values_are_refused_before_any_work(tmp_path, mnist_npz, override, message):
    from framevrnn.errors import UserError

    run = tmp_path / "run"
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        train(_compose(_tiny_overrides(mnist_npz, run, 2) + [override]))
    assert not (run / "checkpoints").exists()


def test_train_cli_gives_one_line_and_status_2(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "framevrnn.train", f"trainer.run_dir={tmp_path / 'r'}",
                           f"data.mnist_path={tmp_path / 'missing.npz'}"], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("framevrnn.train: error: MNIST path") and "Traceback" not in proc.stderr
