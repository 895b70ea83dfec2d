"""LPIPS (Zhang et al. 2018) through the ``lpips`` package: v0.1, AlexNet trunk, built once.

Frames in [0, 1] are mapped to [-1, 1] and grayscale is repeated to 3 channels, as the field does.
The trunk's ImageNet weights come from torchvision's download (or its cache); offline, give a path
to a ``state_dict`` of torchvision's ``alexnet().features`` (keys ``0.weight`` ... ``10.bias``) with
``--lpips-backbone`` or FRAMEVRNN_LPIPS_BACKBONE. The linear calibration layers ship inside ``lpips``.
With no weights, LPIPS is absent (None): a random trunk would give a number that means nothing.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from einops import rearrange

from framevrnn.errors import UserError

ENV_VAR = "FRAMEVRNN_LPIPS_BACKBONE"
DISABLED = "none"


class LPIPSMetric:
    """A frozen LPIPS network on one device; ``__call__`` scores frame pairs."""

    def __init__(self, net: torch.nn.Module, device: torch.device, source: str, chunk: int = 4096) -> None:
        self.net = net.to(device).eval().requires_grad_(False)
        self.device, self.source, self.chunk = device, source, chunk

    @torch.no_grad()
    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Distance per frame: (..., C, H, W) in [0, 1] -> (...); leading dimensions broadcast."""
        pred, target = torch.broadcast_tensors(pred, target)
        lead = pred.shape[:-3]
        x = rearrange(pred, "... c h w -> (...) c h w")
        y = rearrange(target, "... c h w -> (...) c h w")
        if x.shape[1] == 1:  # the trunk wants RGB
            x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
        out = [self.net(x[i:i + self.chunk].float(), y[i:i + self.chunk].float(), normalize=True).flatten()
               for i in range(0, x.shape[0], self.chunk)]
        return torch.cat(out).reshape(lead)


def load_trunk(net: torch.nn.Module, path: str | os.PathLike) -> None:
    """Copy an ``alexnet().features`` state_dict into the LPIPS slices (which keep its layer indices)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"LPIPS backbone {p} does not exist (expected a state_dict of torchvision's "
                        "alexnet().features, keys 0.weight ... 10.bias)")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # any unreadable file is the user's to fix
        raise UserError(f"cannot read LPIPS backbone {p} ({type(err).__name__})") from None
    for _, part in net.net.named_children():  # slice1 ... slice5
        keys = part.state_dict().keys()
        missing = [k for k in keys if k not in state]
        if missing:
            raise UserError(f"LPIPS backbone {p} lacks {missing[:3]}: not an AlexNet features state_dict")
        try:
            part.load_state_dict({k: state[k] for k in keys})
        except RuntimeError as err:
            raise UserError(f"LPIPS backbone {p} does not fit AlexNet ({str(err).splitlines()[0]})") from None


def _quiet_lpips(pnet_rand: bool) -> torch.nn.Module:
    import lpips

    with warnings.catch_warnings():  # lpips 0.1.4 uses torchvision's deprecated `pretrained=` argument
        warnings.simplefilter("ignore", UserWarning)
        return lpips.LPIPS(net="alex", version="0.1", pnet_rand=pnet_rand, verbose=False)


def build_lpips(backbone: str | os.PathLike | None, device: torch.device,
                log=print) -> LPIPSMetric | None:
    """LPIPS on ``device``, or None when no trunk weights can be had (said once through ``log``).

    ``backbone``: a path to the trunk state_dict; "none" to switch LPIPS off; None to use the
    FRAMEVRNN_LPIPS_BACKBONE environment variable, then torchvision's cache or download.
    """
    if backbone is None or str(backbone) == "":
        backbone = os.environ.get(ENV_VAR) or None
    if backbone is not None and str(backbone).lower() == DISABLED:
        log("LPIPS: switched off (--lpips-backbone none); reported as n/a")
        return None
    if backbone is not None:
        net = _quiet_lpips(pnet_rand=True)
        load_trunk(net, backbone)
        return LPIPSMetric(net, device, f"lpips v0.1 alex, trunk from {backbone}")
    try:
        net = _quiet_lpips(pnet_rand=False)  # torchvision fetches the ImageNet trunk (or finds it cached)
    except Exception as err:  # offline: URLError / OSError / RuntimeError from the download
        log(f"LPIPS: no AlexNet weights ({type(err).__name__}: torchvision could not fetch them); LPIPS is "
            f"reported as n/a. Offline, pass --lpips-backbone PATH or set {ENV_VAR}")
        return None
    return LPIPSMetric(net, device, "lpips v0.1 alex, trunk from torchvision")
