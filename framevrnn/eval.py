"""Evaluate frame models under the field's protocols.

    python -m framevrnn.eval --protocol mission_5to5 --mnist PATH [--quick]

Protocols live in eval/protocols/*.yaml (srvp_smmnist, mission_5to5, openstl_mmnist, or "all").
Every report carries the copy-last-frame baseline, and the rnn variant when --baseline-checkpoint
is given. Writes report.json, report.md and per-step PNG plots to a new folder.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

from framevrnn.devices import resolve_device
from framevrnn.errors import UserError, run_cli
from framevrnn.evaluation.lpips_metric import ENV_VAR as LPIPS_ENV
from framevrnn.evaluation.protocols import available, load_protocol, reduce
from framevrnn.evaluation.report import protocol_markdown, write_report
from framevrnn.evaluation.suite import SuiteOptions, run_suite
from framevrnn.predict import ASSETS, DEFAULT_CHECKPOINT


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m framevrnn.eval", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--protocol", default="mission_5to5",
                   help=f"a protocol name ({', '.join(available())}), 'all', or a path to a protocol .yaml")
    p.add_argument("--checkpoint", type=Path, action="append", default=None,
                   help=f"a framevrnn checkpoint to score (repeat for several); default: the shipped {DEFAULT_CHECKPOINT}")
    p.add_argument("--baseline-checkpoint", type=Path, default=None,
                   help="an rnn-variant checkpoint trained on the same budget, reported as a baseline")
    p.add_argument("--quick", action="store_true",
                   help="a reduced run (each protocol's 'quick' sizes); the report says it is reduced")
    p.add_argument("--sequences", type=int, default=None, help="score only the first N test sequences")
    p.add_argument("--samples", type=int, default=None, help="samples per sequence (at most the protocol's)")
    p.add_argument("--nll-samples", type=int, default=None, help="importance samples K for the NLL estimate")
    p.add_argument("--mnist", default=None,
                   help="MNIST digits: mnist.npz, an IDX folder, or 'download' (torchvision, online); default: "
                        "$FRAMEVRNN_MNIST, else a previous download")
    p.add_argument("--mnist-test-seq", type=Path, default=None,
                   help="mnist_test_seq.npy for openstl_mmnist (without it a deterministic-bounce set is generated)")
    p.add_argument("--lpips-backbone", default=None,
                   help=f"AlexNet features state_dict for LPIPS offline, or 'none' (default: ${LPIPS_ENV}, "
                        "else torchvision's cache or download)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--batch-size", type=int, default=None,
                   help="test sequences per pass (default: as many as fit in memory)")
    p.add_argument("--seed", type=int, default=0, help="random seed for the samples")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (created; must not exist yet); default: outputs/eval/<date_time>")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    return p


def _checkpoints(given: list[Path] | None) -> list[Path]:
    if given:
        for path in given:
            if not path.is_file():
                raise UserError(f"checkpoint {path} does not exist")
        return given
    shipped = Path(str(ASSETS / DEFAULT_CHECKPOINT))
    if not shipped.is_file():
        raise UserError(f"no --checkpoint given and the shipped {DEFAULT_CHECKPOINT} is not in this install")
    return [shipped]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch_size is not None and args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    names = available() if args.protocol == "all" else [args.protocol]
    protocols = [reduce(load_protocol(n), args.quick, args.sequences, args.samples, args.nll_samples) for n in names]
    checkpoints = _checkpoints(args.checkpoint)
    if args.baseline_checkpoint is not None and not args.baseline_checkpoint.is_file():
        raise UserError(f"baseline checkpoint {args.baseline_checkpoint} does not exist")
    out = args.out or Path("outputs") / "eval" / time.strftime("%Y-%m-%d_%H-%M-%S")
    if out.exists():
        raise UserError(f"output folder {out} already exists; give a new --out")
    device = resolve_device(args.device)
    command = "python -m framevrnn.eval " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    opts = SuiteOptions(checkpoints=checkpoints, baseline_checkpoint=args.baseline_checkpoint, mnist=args.mnist,
                        mnist_test_seq=args.mnist_test_seq, lpips_backbone=args.lpips_backbone,
                        batch_size=args.batch_size, seed=args.seed, progress=not args.no_progress, command=command)
    for proto in protocols:
        print(f"{proto.name}: {proto.description}" + (f"  [{proto.reduction}]" if proto.reduction else ""))
    report = run_suite(protocols, opts, device)
    files = write_report(report, out)
    for result in report["protocols"]:
        print("\n" + protocol_markdown(result))
    print(f"wrote {out}/: {', '.join(files)}")
    return 0


def cli() -> None:
    sys.exit(run_cli(main, prog="framevrnn.eval"))


if __name__ == "__main__":
    cli()
