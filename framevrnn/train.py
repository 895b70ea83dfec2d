"""Train a ConvVRNN on Moving MNIST.

    python -m framevrnn.train data.mnist_path=PATH/mnist.npz trainer.max_steps=20000
    python -m framevrnn.train +experiment=mmnist_reference data.mnist_path=...   # the shipped model's recipe

``train(cfg)`` does the work and returns the final metrics; ``main`` is a thin Hydra wrapper.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from framevrnn import config_schema  # noqa: F401  (registers the structured-config schemas)
from framevrnn.checkpoint import atomic_save, load_checkpoint, make_checkpoint
from framevrnn.data.mnist_digits import load_mnist
from framevrnn.data.moving_mnist import MovingMNISTSpec, MovingMNISTStream, fixed_set
from framevrnn import distributed
from framevrnn.devices import describe_hardware, resolve_device
from framevrnn.distributed import DistInfo
from framevrnn.errors import UserError
from framevrnn.models.build import FRAME_KIND, build_model, model_from_checkpoint
from framevrnn.scoring import score_samples
from framevrnn.viz import rollout_grid

LAST = "last.pt"


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


def make_optimizer(model: torch.nn.Module, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam, with the fused implementation on CUDA (one kernel for all parameters)."""
    return torch.optim.Adam(model.parameters(), lr=lr, fused=device.type == "cuda")


def train_step(model, optimizer: torch.optim.Optimizer, x: torch.Tensor, beta: float, grad_clip: float,
               precision: str = "fp32") -> torch.Tensor:
    """One update on frames x (B, T, C, H, W); returns (loss, nll, kl) per frame as a device tensor.

    The loss is the negative ELBO with KL weight ``beta``, summed over time and averaged over the
    batch (so DDP's gradient averaging over ranks equals one process with the whole batch). Under
    bf16 autocast the networks run in bfloat16; likelihoods and KL stay float32.
    """
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        nll, kl = model(x)
    loss = (nll + beta * kl).sum(1).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return torch.stack([loss.detach(), nll.detach().mean(), kl.detach().mean()])


def prepare_model(model, device: torch.device, dist_info: DistInfo, compile_model: bool, channels_last: bool):
    """Move to device, then optionally channels_last, torch.compile (in place: state_dict keys unchanged), DDP."""
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compile_model:
        for module in model.core.children():
            module.compile()
    if dist_info.enabled:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return model


def train(cfg: DictConfig) -> dict[str, float]:
    """Train per ``cfg`` (see configs/train.yaml); returns the last validation metrics and step.

    Under torchrun every rank runs this; rank 0 alone logs, validates, saves and shows progress.
    """
    t, d = cfg.trainer, cfg.data
    if t.precision not in ("fp32", "bf16"):
        raise UserError(f"trainer.precision must be fp32 or bf16, got {t.precision!r}")
    dist_info, device = distributed.setup(resolve_device(t.device))
    main_rank = dist_info.is_main
    try:
        return _train(cfg, t, d, dist_info, device, main_rank)
    finally:
        distributed.teardown(dist_info)


def _train(cfg, t, d, dist_info: DistInfo, device: torch.device, main_rank: bool) -> dict[str, float]:
    torch.manual_seed(t.seed)
    run_dir = distributed.broadcast_object(_run_dir(cfg), dist_info)
    ckpt_dir = run_dir / "checkpoints"
    resolved = OmegaConf.to_container(cfg, resolve=True)
    model_cfg = {k: v for k, v in resolved["model"].items() if k != "name"}
    model = build_model(FRAME_KIND, model_cfg)
    step, train_seconds, session_start = 0, 0.0, time.time()
    ckpt = None
    if t.resume and (ckpt_dir / LAST).is_file():
        ckpt = load_checkpoint(ckpt_dir / LAST, map_location="cpu", expect_kind=FRAME_KIND)
        if ckpt["model_config"] != model_cfg:
            raise UserError(f"{ckpt_dir / LAST} was trained with another model config; "
                            "use a new trainer.run_dir or trainer.resume=false")
        model = model_from_checkpoint(ckpt)
        step = ckpt["step"]
        train_seconds = float(ckpt.get("info", {}).get("train_seconds", 0.0))
        if main_rank:
            print(f"resuming from {ckpt_dir / LAST} at step {step}", file=sys.stderr)
    plain = model.to(device)                      # the unwrapped module: validation and checkpoints
    model = prepare_model(plain, device, dist_info, t.compile, t.channels_last)
    optimizer = make_optimizer(plain, t.lr, device)
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
    torch.manual_seed(t.seed * 1_000_003 + step + 7919 * dist_info.rank)   # ranks draw their own latent noise

    train_digits, test_digits = load_mnist(d.mnist_path)
    spec = data_spec(d)
    stream = MovingMNISTStream(train_digits, spec, seed=t.seed * 1_000_003 + step, rank=dist_info.rank)
    loader = DataLoader(stream, batch_size=t.batch_size, num_workers=d.num_workers,
                        pin_memory=device.type == "cuda", persistent_workers=d.num_workers > 0)
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
        info = {"metrics": metrics, "hardware": hardware, "world_size": dist_info.world_size,
                "train_seconds": train_seconds + time.time() - session_start}
        atomic_save(make_checkpoint(plain, FRAME_KIND, model_cfg, step, optimizer=optimizer, config=resolved,
                                    info=info), ckpt_dir / LAST)

    metrics: dict[str, float] = {}
    window = torch.zeros(3, device=device)   # loss, nll, kl summed on the device between logs
    seen, start = 0, time.time()
    bar = tqdm(total=t.max_steps, initial=step, disable=not (t.progress and main_rank), desc="train",
               dynamic_ncols=True)
    model.train()
    batches = iter(loader)
    memory_format = torch.channels_last if t.channels_last else torch.contiguous_format
    while step < t.max_steps:
        x = next(batches).to(device, non_blocking=True)                 # (B, T, C, H, W)
        if t.channels_last:
            x = x.flatten(0, 1).contiguous(memory_format=memory_format).unflatten(0, x.shape[:2])
        beta = kl_weight(step, t.beta, t.kl_warmup_steps)
        window += train_step(model, optimizer, x, beta, t.grad_clip, t.precision)
        step += 1
        seen += 1
        bar.update(1)
        if step % t.log_every == 0 or step == t.max_steps:
            avg = (window / seen).tolist()
            if not all(math.isfinite(v) for v in avg):
                raise UserError(f"non-finite loss between steps {step - seen + 1} and {step}; the last good "
                                f"checkpoint is kept in {ckpt_dir} (lower trainer.lr or raise model.min_scale)")
            if main_rank:
                for name, v in zip(("train/loss", "train/nll_per_frame", "train/kl_per_frame"), avg):
                    writer.add_scalar(name, v, step)
                writer.add_scalar("train/beta", beta, step)
                frames = seen * x.shape[0] * x.shape[1] * dist_info.world_size
                writer.add_scalar("train/frames_per_s", frames / (time.time() - start), step)
                bar.set_postfix(loss=f"{avg[0]:.1f}", nll=f"{avg[1]:.1f}", kl=f"{avg[2]:.1f}")
            window.zero_()
            seen, start = 0, time.time()
        if main_rank and (step % t.val_every == 0 or step == t.max_steps):
            metrics, (ctx, truth, pred) = validate(plain, val_frames, d.context, t.val_samples, 2 * t.batch_size,
                                                   device)
            for k, v in metrics.items():
                writer.add_scalar(k, v, step)
            writer.add_image("val/rollouts", rollout_grid(ctx, truth, pred, max_samples=3), step)
            bar.write(f"step {step}: " + "  ".join(f"{k.split('/')[1]} {v:.3f}" for k, v in metrics.items()))
            start = time.time()
        if main_rank and (step % t.ckpt_every == 0 or step == t.max_steps):
            save(metrics)
    bar.close()
    if writer is not None:
        writer.close()
    distributed.barrier(dist_info)
    return {"step": step, **metrics}


@hydra.main(version_base="1.3", config_path="pkg://framevrnn.configs", config_name="train")
def main(cfg: DictConfig) -> None:
    """Hydra entry point; a UserError becomes a one-line message and exit status 2."""
    try:
        train(cfg)
    except UserError as err:
        print(f"framevrnn.train: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
