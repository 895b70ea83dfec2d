"""User-facing errors: one line on stderr and exit status 2, a traceback only with --debug."""
from __future__ import annotations

import sys
import traceback
from typing import Callable, Sequence


class UserError(Exception):
    """A problem with what the user gave us (a path, a flag, a file); the message says what to do."""


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None,
            prog: str = "framevrnn") -> int:
    """Run ``main(argv)``; turn a UserError (or out-of-memory) into a one-line message and status 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        return int(main(args) or 0)
    except UserError as err:
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except MemoryError:
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: out of memory; try fewer --samples or a smaller --batch-size", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except RuntimeError as err:
        if "out of memory" in str(err).lower():
            if debug:
                traceback.print_exc()
            print(f"{prog}: error: device out of memory; try fewer --samples or a smaller --batch-size",
                  file=sys.stderr)
            return 2
        raise
