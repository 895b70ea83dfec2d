"""The training hot path: optimizer, one update, and the model wrappers (channels_last, compile, DDP)."""
from __future__ import annotations

import torch
from torch.nn.parallel import DistributedDataParallel

from framevrnn.distributed import DistInfo


def make_optimizer(model: torch.nn.Module, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam, fused (one kernel for all parameters, and a skip of non-finite steps without a host sync)
    where the device supports it."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=device.type in ("cuda", "cpu"))
    except RuntimeError:
        return torch.optim.Adam(model.parameters(), lr=lr)


def train_step(model, optimizer: torch.optim.Optimizer, x: torch.Tensor, beta: float, grad_clip: float,
               precision: str = "fp32") -> tuple[torch.Tensor, torch.Tensor]:
    """One update on frames x (B, T, C, H, W).

    The loss is the negative ELBO with KL weight ``beta``, summed over time and averaged over the
    batch (so DDP's gradient averaging over ranks equals one process with the whole batch). Under
    bf16 autocast the networks run in bfloat16; likelihoods and KL stay float32. A step whose
    gradients are not finite changes nothing: the fused optimizer skips it on the device.
    Returns (loss, nll, kl) per frame and a 0/1 "skipped" flag, both as device tensors.
    """
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        nll, kl = model(x)
    loss = (nll + beta * kl).sum(1).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    skipped = (~torch.isfinite(norm)).float()
    if optimizer.defaults.get("fused"):
        optimizer.found_inf = skipped          # read by the fused kernel: no update when 1
        optimizer.step()
    elif not bool(skipped):                    # unfused fallback: one host sync per step
        optimizer.step()
    return torch.stack([loss.detach(), nll.detach().mean(), kl.detach().mean()]), skipped


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
