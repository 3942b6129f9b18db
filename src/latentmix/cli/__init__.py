"""The ``latentmix`` command line: ``main()`` is the console script.

Exit codes
----------
0
    Success.
1
    Internal error (a bug): one line on stderr; ``--debug`` shows the traceback.
2
    Bad usage or bad input: unknown option, missing or unreadable data file, unknown
    format, non-numeric, empty or missing columns, a feature count that does not match
    the model, data the model cannot be fitted to.
3
    Bad model file: missing, corrupted, not a latentmix model, unfitted, or of a kind
    the command cannot use.
4
    The feature is not available in this build (a library part not there yet, or an
    optional dependency such as PyTorch not installed).
130
    Interrupted (Ctrl-C).
141
    The reader of standard output went away (``latentmix predict ... | head``), as
    for a process stopped by SIGPIPE; nothing is printed.

No Python traceback reaches the user unless ``--debug`` is given, and no partial output
file is left behind: every file is written to a temporary name and renamed at the end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

from latentmix.cli._common import (
    EXIT_BAD_INPUT,
    EXIT_BAD_MODEL,
    EXIT_BROKEN_PIPE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    CLIError,
    StdoutClosed,
)

_click: Any
try:  # typer >= 0.24 ships its own copy of click
    from typer._click import exceptions as _click
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as _click

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_BAD_MODEL",
    "EXIT_BROKEN_PIPE",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "main",
]


def _error(message: str) -> None:
    text = " ".join(str(message).split())
    sys.stderr.write(f"latentmix: error: {text}\n")
    sys.stderr.flush()


def _report_warnings(caught: list[warnings.WarningMessage]) -> None:
    seen: set[str] = set()
    for w in caught:
        text = " ".join(str(w.message).split())
        line = f"{w.category.__name__}: {text}"
        if line not in seen:
            seen.add(line)
            sys.stderr.write(f"latentmix: warning: {line}\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    ``--debug`` anywhere on the line shows tracebacks and the library's log messages.
    """
    # Plots are drawn off screen: never open a window or need a display.
    os.environ.setdefault("MPLBACKEND", "Agg")
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    if debug:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    import typer

    from latentmix.cli._app import app

    code = EXIT_OK
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            returned = app(args=args, prog_name="latentmix", standalone_mode=False)
            # Without standalone mode, click turns Ctrl-C into Abort and typer hands back
            # an exit code of 130 as the return value instead of raising it.
            if returned == EXIT_INTERRUPTED:
                _error("interrupted")
                code = EXIT_INTERRUPTED
        except SystemExit as exc:  # typer.Exit / click's own exits
            code = exc.code if isinstance(exc.code, int) else EXIT_INTERNAL
        except typer.Exit as exc:
            code = exc.exit_code
        except typer.Abort:
            code = EXIT_INTERRUPTED
            _error("interrupted")
        except _click.NoArgsIsHelpError:
            code = EXIT_BAD_INPUT  # the help was printed: a command is missing
        except _click.ClickException as exc:
            # Usage errors: the usage line, then one error line.
            if isinstance(exc, _click.UsageError) and exc.ctx is not None:
                sys.stderr.write(exc.ctx.get_usage() + "\n")
            _error(exc.format_message() + " (see --help)")
            code = EXIT_BAD_INPUT
        except KeyboardInterrupt:
            _error("interrupted")
            code = EXIT_INTERRUPTED
        except (BrokenPipeError, StdoutClosed):
            # The reader of stdout went away (`| head`): stop quietly, with the status a
            # process killed by SIGPIPE has; point stdout at /dev/null so that the flush at
            # exit does not fail again.
            with contextlib.suppress(OSError, ValueError, AttributeError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            code = EXIT_BROKEN_PIPE
        except Exception as exc:
            code = _handle(exc, debug)
    _report_warnings(caught)
    return int(code) if code is not None else EXIT_OK


def _handle(exc: Exception, debug: bool) -> int:
    from latentmix._exceptions import ModelFileError
    from latentmix.io._readers import DataError

    if debug:
        traceback.print_exception(exc)
    if isinstance(exc, CLIError):
        _error(str(exc))
        return exc.code
    if isinstance(exc, DataError):
        _error(str(exc))
        return EXIT_BAD_INPUT
    if isinstance(exc, ModelFileError):
        _error(f"{exc}; give a model file written by 'latentmix fit'")
        return EXIT_BAD_MODEL
    if isinstance(exc, MemoryError):
        _error("out of memory; use fewer rows, features or components")
        return EXIT_INTERNAL
    if isinstance(exc, OSError) and exc.filename is not None:
        _error(f"{exc.filename}: {exc.strerror}")
        return EXIT_BAD_INPUT
    hint = "" if debug else "; run with --debug for the traceback and please report it"
    _error(f"internal error: {type(exc).__name__}: {exc}{hint}")
    return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
