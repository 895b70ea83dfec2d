"""Train a ConvVRNN on Moving MNIST.

    python -m framevrnn.train data.mnist_path=PATH/mnist.npz trainer.max_steps=20000
    python -m framevrnn.train +experiment=mmnist_reference data.mnist_path=...   # the shipped model's recipe

``train(cfg)`` does the work and returns the final metrics; ``main`` is a thin Hydra wrapper.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader
from tqdm import tqdm

from framevrnn import config_schema  # noqa: F401  (registers the structured-config schemas)
from framevrnn.checkpoint import latest_valid, make_checkpoint, remove_stale_temporaries, save_rotating
from framevrnn.data.mnist_digits import load_mnist
from framevrnn.data.moving_mnist import MovingMNISTSequences, MovingMNISTSpec, StepSampler, fixed_set
from framevrnn import distributed
from framevrnn.devices import describe_hardware, resolve_device
from framevrnn.distributed import DistInfo
from framevrnn.errors import UserError
from framevrnn.models.build import FRAME_KIND, build_model, model_from_checkpoint
from framevrnn.training_step import make_optimizer, prepare_model, train_step
from framevrnn.scoring import score_samples
from framevrnn.viz import rollout_grid


def kl_weight(step: int, beta: float, warmup: int) -> float:
    """Linear KL warm-up from 0 to ``beta`` over ``warmup`` steps."""
    return beta if warmup <= 0 else beta * min(1.0, step / warmup)


def data_spec(data: DictConfig) -> MovingMNISTSpec:
    return MovingMNISTSpec(num_digits=data.num_digits, image_size=data.image_size, digit_size=data.digit_size,
                           seq_len=data.context + data.horizon, max_speed=data.max_speed, dynamics=data.dynamics)


@torch.no_grad()
def validate(model, frames: torch.Tensor, context: int, samples: int, batch_size: int,
             device: torch.device) -> tuple[dict[str, float], tuple[torch.Tensor, ...]]:
    """ELBO terms per frame and rollout PSNR / SSIM (best of ``samples``, and mean) on a fixed set.

    frames: uint8 (N, T, H, W). Returns the metrics and the first batch's (context, truth, samples).
    """
    model.eval()
    sums: dict[str, float] = {}
    first = None
    n_total = frames.shape[0]
    for i in range(0, n_total, batch_size):
        x = frames[i:i + batch_size].to(device).float().div_(255).unsqueeze(2)   # (B, T, 1, H, W)
        nll, kl = model.elbo_terms(x)
        pred = model.rollout(x[:, :context], x.shape[1] - context, samples=samples)
        scores = score_samples(pred, x[:, context:])
        parts = {"val/nll_per_frame": nll.mean(1), "val/kl_per_frame": kl.mean(1),
                 "val/psnr_best": scores["psnr"]["best"].mean(1), "val/psnr_mean": scores["psnr"]["mean"].mean(1),
                 "val/ssim_best": scores["ssim"]["best"].mean(1), "val/ssim_mean": scores["ssim"]["mean"].mean(1)}
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v.sum().item()
        if first is None:
            first = (x[:4, :context].cpu(), x[:4, context:].cpu(), pred[:4].cpu())
    model.train()
    out = {k: v / n_total for k, v in sums.items()}
    out["val/elbo_per_frame"] = -(out["val/nll_per_frame"] + out["val/kl_per_frame"])
    return out, first


def _run_dir(cfg: DictConfig) -> Path:
    if cfg.trainer.run_dir:
        return Path(cfg.trainer.run_dir)
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except ValueError:  # not under @hydra.main (e.g. train() called from Python)
        return Path("outputs/train") / time.strftime("%Y-%m-%d_%H-%M-%S")


def check_config(cfg: DictConfig) -> None:
    """Refuse values that would otherwise fail deep inside PyTorch, naming the key to change."""
    t, d = cfg.trainer, cfg.data
    positive = {"trainer.max_steps": t.max_steps, "trainer.batch_size": t.batch_size, "trainer.log_every": t.log_every,
                "trainer.val_every": t.val_every, "trainer.ckpt_every": t.ckpt_every,
                "trainer.val_samples": t.val_samples, "trainer.max_bad_steps": t.max_bad_steps,
                "data.context": d.context, "data.horizon": d.horizon, "data.val_sequences": d.val_sequences}
    for key, value in positive.items():
        if value < 1:
            raise UserError(f"{key} must be at least 1, got {value}")
    if not t.lr > 0 or not t.grad_clip > 0 or t.beta < 0 or d.num_workers < 0 or t.keep_last < 1:
        raise UserError("trainer.lr and trainer.grad_clip must be positive, trainer.beta, data.num_workers >= 0, "
                        "trainer.keep_last >= 1")
    if t.precision not in ("fp32", "bf16"):
        raise UserError(f"trainer.precision must be fp32 or bf16, got {t.precision!r}")
    if cfg.model.image_size != d.image_size:
        raise UserError(f"model.image_size ({cfg.model.image_size}) differs from data.image_size ({d.image_size})")


def train(cfg: DictConfig) -> dict[str, float]:
    """Train per ``cfg`` (see configs/train.yaml); returns the last validation metrics and step.

    Under torchrun every rank runs this; rank 0 alone logs, validates, saves and shows progress.
    """
    t, d = cfg.trainer, cfg.data
    check_config(cfg)
    dist_info, device = distributed.setup(resolve_device(t.device))
    main_rank = dist_info.is_main
    try:
        return _train(cfg, t, d, dist_info, device, main_rank)
    finally:
        distributed.teardown(dist_info)


def _rng_states(dist_info: DistInfo, device: torch.device) -> list:
    """Every rank's RNG state (torch CPU, and CUDA where used), gathered so rank 0 can save them."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return distributed.all_gather_object(state, dist_info)


def _restore_rng(states: list | None, dist_info: DistInfo, device: torch.device, seed: int) -> None:
    if states and len(states) == dist_info.world_size:
        torch.set_rng_state(states[dist_info.rank]["cpu"])
        if device.type == "cuda" and "cuda" in states[dist_info.rank]:
            torch.cuda.set_rng_state(states[dist_info.rank]["cuda"], device)
    else:                                       # a fresh run, or another number of ranks
        torch.manual_seed(seed + 7919 * dist_info.rank)


def _resume(ckpt_dir: Path, model_cfg: dict, main_rank: bool) -> dict | None:
    remove_stale_temporaries(ckpt_dir) if main_rank else None
    found = latest_valid(ckpt_dir, FRAME_KIND, warn=lambda m: print(m, file=sys.stderr) if main_rank else None)
    if found is None:
        return None
    path, ckpt = found
    if ckpt["model_config"] != model_cfg:
        raise UserError(f"{path} was trained with another model config; "
                        "use a new trainer.run_dir or trainer.resume=false")
    if main_rank:
        print(f"resuming from {path} at step {ckpt['step']}", file=sys.stderr)
    return ckpt


def _train(cfg, t, d, dist_info: DistInfo, device: torch.device, main_rank: bool) -> dict[str, float]:
    torch.manual_seed(t.seed)                   # the same initial weights on every rank
    run_dir = distributed.broadcast_object(_run_dir(cfg), dist_info)
    ckpt_dir = run_dir / "checkpoints"
    resolved = OmegaConf.to_container(cfg, resolve=True)
    model_cfg = {k: v for k, v in resolved["model"].items() if k != "name"}
    ckpt = _resume(ckpt_dir, model_cfg, main_rank) if t.resume else None
    distributed.barrier(dist_info)              # stale temporaries are gone before anyone writes
    plain = (model_from_checkpoint(ckpt) if ckpt else build_model(FRAME_KIND, model_cfg)).to(device)
    step = ckpt["step"] if ckpt else 0
    train_seconds = float(ckpt["info"].get("train_seconds", 0.0)) if ckpt else 0.0
    session_start = time.time()
    model = prepare_model(plain, device, dist_info, t.compile, t.channels_last)
    optimizer = make_optimizer(plain, t.lr, device)
    if ckpt:
        optimizer.load_state_dict(ckpt["optimizer"])
    _restore_rng(ckpt.get("rng") if ckpt else None, dist_info, device, t.seed)
    skipped_total = int(ckpt["info"].get("skipped_steps", 0)) if ckpt else 0

    train_digits, test_digits = load_mnist(d.mnist_path)
    spec = data_spec(d)
    loader = DataLoader(MovingMNISTSequences(train_digits, spec, seed=t.seed), batch_size=t.batch_size,
                        sampler=StepSampler(t.batch_size, step, dist_info.rank, dist_info.world_size),
                        num_workers=d.num_workers, pin_memory=device.type == "cuda",
                        persistent_workers=d.num_workers > 0,
                        generator=torch.Generator().manual_seed(t.seed))   # leaves the global RNG alone
    writer = None
    if main_rank:
        from torch.utils.tensorboard import SummaryWriter

        val_frames = torch.from_numpy(fixed_set(test_digits, spec, d.val_sequences, seed=d.val_seed))
        writer = SummaryWriter(str(run_dir / "tb"))
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
        print(f"run directory: {run_dir}" + (f" ({dist_info.world_size} ranks)" if dist_info.enabled else ""),
              file=sys.stderr)
    hardware = describe_hardware(device) + (f" x {dist_info.world_size}" if dist_info.enabled else "")

    def save(metrics: dict) -> None:
        rng = _rng_states(dist_info, device)    # a collective: every rank takes part
        if not all(bool(torch.isfinite(p).all()) for p in plain.parameters()):
            raise UserError(f"the weights became non-finite by step {step}; not saved: the last good checkpoint "
                            f"is kept in {ckpt_dir}; lower trainer.lr")
        if main_rank:
            info = {"metrics": metrics, "hardware": hardware, "world_size": dist_info.world_size,
                    "train_seconds": train_seconds + time.time() - session_start, "skipped_steps": skipped_total}
            out = make_checkpoint(plain, FRAME_KIND, model_cfg, step, optimizer=optimizer, config=resolved,
                                  info=info)
            out["rng"] = rng
            save_rotating(out, ckpt_dir, keep=t.keep_last)

    metrics: dict[str, float] = {}
    window = torch.zeros(3, device=device)     # loss, nll, kl summed over good steps between logs
    good = torch.zeros((), device=device)
    streak = torch.zeros((), device=device)    # non-finite steps in a row
    worst = torch.zeros((), device=device)
    seen, start = 0, time.time()
    bar = tqdm(total=t.max_steps, initial=step, disable=not (t.progress and main_rank), desc="train",
               dynamic_ncols=True)
    model.train()
    batches = iter(loader)
    while step < t.max_steps:
        x = next(batches).to(device, non_blocking=True)                 # (B, T, C, H, W)
        if t.channels_last:
            x = x.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, x.shape[:2])
        beta = kl_weight(step, t.beta, t.kl_warmup_steps)
        stats, skipped = train_step(model, optimizer, x, beta, t.grad_clip, t.precision)
        window += torch.where(skipped.bool(), torch.zeros_like(stats), stats)
        good += 1 - skipped
        streak = (streak + skipped) * skipped
        worst = torch.maximum(worst, streak)
        step += 1
        seen += 1
        bar.update(1)
        if step % t.log_every == 0 or step == t.max_steps:
            n_good, n_worst = int(good), int(worst)
            skipped_total += seen - n_good
            if n_worst >= t.max_bad_steps:
                raise UserError(f"{n_worst} steps in a row had non-finite loss or gradients by step {step} (each "
                                f"skipped); the last good checkpoint is kept in {ckpt_dir}; lower trainer.lr")
            avg = (window / max(n_good, 1)).tolist()
            if main_rank:
                for name, v in zip(("train/loss", "train/nll_per_frame", "train/kl_per_frame"), avg):
                    writer.add_scalar(name, v, step)
                writer.add_scalar("train/beta", beta, step)
                writer.add_scalar("train/skipped_steps", skipped_total, step)
                frames = seen * x.shape[0] * x.shape[1] * dist_info.world_size
                writer.add_scalar("train/frames_per_s", frames / (time.time() - start), step)
                bar.set_postfix(loss=f"{avg[0]:.1f}", nll=f"{avg[1]:.1f}", kl=f"{avg[2]:.1f}", skipped=skipped_total)
            window.zero_()
            good.zero_()
            worst.zero_()
            seen, start = 0, time.time()
        if main_rank and (step % t.val_every == 0 or step == t.max_steps):
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                metrics, (ctx, truth, pred) = validate(plain, val_frames, d.context, t.val_samples,
                                                       2 * t.batch_size, device)
            for k, v in metrics.items():
                writer.add_scalar(k, v, step)
            writer.add_image("val/rollouts", rollout_grid(ctx, truth, pred, max_samples=3), step)
            bar.write(f"step {step}: " + "  ".join(f"{k.split('/')[1]} {v:.3f}" for k, v in metrics.items()))
            start = time.time()
        if step % t.ckpt_every == 0 or step == t.max_steps:
            save(metrics)
    bar.close()
    if writer is not None:
        writer.close()
    distributed.barrier(dist_info)
    return {"step": step, "skipped_steps": skipped_total, **metrics}


@hydra.main(version_base="1.3", config_path="pkg://framevrnn.configs", config_name="train")
def main(cfg: DictConfig) -> None:
    """Hydra entry point; a UserError becomes a one-line message and exit status 2."""
    try:
        train(cfg)
    except UserError as err:
        print(f"framevrnn.train: error: {err}", file=sys.stderr)
        sys.exit(2)
    except torch.OutOfMemoryError:
        print("framevrnn.train: error: out of device memory; lower trainer.batch_size (the last checkpoint is "
              "kept; the same command resumes)", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
