"""The ``sonic`` command line: a thin skin over the library.

Each command parses options, calls one library function and prints. A user's mistake
(:class:`sonic.errors.SonicError`), and an operating-system error a user can mend (a full or
read-only disk, no permission), is printed as one line on stderr, exit status 2. Ctrl-C prints one line
(``sonic: interrupted``, and what was kept where the command can continue), exit status 130.
"""

from __future__ import annotations

import sys

from sonic.cli import cream, demo, rouge, study, tails, serve  # noqa: F401, I001  (commands register in this order)
from sonic.cli.app import app
from sonic.errors import SonicError
from sonic.files import is_user_os_error, os_error_message


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``sonic`` console script and ``python -m sonic``."""
    try:
        app(args=argv, prog_name="sonic")
    except SonicError as error:
        print(f"sonic: error: {error}", file=sys.stderr)
        sys.exit(2)
    except OSError as error:
        if not is_user_os_error(error):
            raise
        print(f"sonic: error: {os_error_message(error)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as stop:  # workers ignore Ctrl-C; the work that stopped says what it kept
        _interrupted(stop)
    except SystemExit as stop:  # typer turns Ctrl-C into a silent exit 130; say it in one line instead
        interrupt = _interrupt_behind(stop)
        if interrupt is None:
            raise
        _interrupted(interrupt)


def _interrupted(stop: KeyboardInterrupt) -> None:
    kept = f"; {stop}" if str(stop) else ""
    print(f"sonic: interrupted{kept}", file=sys.stderr)
    sys.exit(130)


def _interrupt_behind(error: BaseException) -> KeyboardInterrupt | None:
    """The :class:`KeyboardInterrupt` that ``error`` was raised while handling, if any."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None
