"""Structured-config schemas behind the YAML in configs/: a typo in a key or a wrong type fails loudly."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf


@dataclass
class MovingMNISTDataConfig:
    name: str = "moving_mnist"
    mnist_path: Optional[str] = None      # mnist.npz, an IDX folder, "download"; None: $FRAMEVRNN_MNIST
    dynamics: str = "stochastic"          # stochastic (SVG's SM-MNIST) | deterministic (bounce)
    num_digits: int = 2
    image_size: int = 64
    digit_size: int = 28
    max_speed: int = 4
    context: int = 5                      # frames the model conditions on
    horizon: int = 5                      # frames it predicts; training sequences are context + horizon
    val_sequences: int = 256              # fixed validation set from MNIST test digits
    val_seed: int = 1
    num_workers: int = 0


@dataclass
class ConvVRNNModelConfig:
    name: str = "conv_vrnn"
    variant: str = "vrnn"                 # vrnn | vrnn_i | rnn
    channels: int = 1
    image_size: int = 64
    encoder_widths: list[int] = field(default_factory=lambda: [32, 64, 64])
    decoder_widths: list[int] = field(default_factory=lambda: [64, 64, 32])
    hidden_channels: int = 64
    z_channels: int = 8
    z_feature_channels: int = 16
    head_channels: int = 64
    observation: str = "bernoulli"        # bernoulli | gaussian | laplace
    scale: str = "fixed"                  # fixed | learned
    fixed_scale: float = 0.1
    min_scale: float = 1e-3


@dataclass
class TrainerConfig:
    max_steps: int = 10_000
    batch_size: int = 32
    lr: float = 1e-3
    beta: float = 1.0                     # weight of the KL term
    kl_warmup_steps: int = 1_000          # beta grows linearly from 0 over these steps
    grad_clip: float = 100.0
    log_every: int = 50
    val_every: int = 500
    ckpt_every: int = 500
    val_samples: int = 5                  # rollout samples per validation sequence (best-of for PSNR)
    device: str = "auto"                  # auto | cpu | cuda | cuda:N (under torchrun: cuda:LOCAL_RANK)
    precision: str = "fp32"               # fp32 | bf16 (autocast; likelihoods and KL stay float32)
    compile: bool = False                 # torch.compile the per-step networks
    channels_last: bool = False           # NHWC memory format for the conv networks
    seed: int = 0
    resume: bool = True                   # continue from the newest valid checkpoint in run_dir
    keep_last: int = 3                    # step_*.pt files kept besides last.pt
    max_bad_steps: int = 20               # stop after this many non-finite steps in a row (each is skipped)
    progress: bool = True
    run_dir: Optional[str] = None         # default: Hydra's run directory


@dataclass
class TrainConfig:
    data: Any = MISSING
    model: Any = MISSING
    trainer: Any = MISSING


def register() -> None:
    # ${or_default:a,b}: a unless it is null or empty (lets Hydra's run directory follow trainer.run_dir)
    if not OmegaConf.has_resolver("or_default"):
        OmegaConf.register_new_resolver("or_default", lambda value, default: default if value in (None, "") else value)
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(group="data", name="moving_mnist_schema", node=MovingMNISTDataConfig)
    cs.store(group="model", name="conv_vrnn_schema", node=ConvVRNNModelConfig)
    cs.store(group="trainer", name="trainer_schema", node=TrainerConfig)


register()
