"""``sonic ARGS`` run in the test's own process, as the entry point runs it, with its output captured.

Command tests use this rather than a subprocess (a fresh interpreter per call costs a second or more);
a few tests in test_cli.py keep calling the installed entry point itself.
"""

from __future__ import annotations

import contextlib
import io
import subprocess

from sonic.cli import main


def sonic(*args) -> subprocess.CompletedProcess:
    """Run ``sonic ARGS`` in this process; its exit status, stdout and stderr as a CompletedProcess."""
    arguments = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(arguments)
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    return subprocess.CompletedProcess(["sonic", *arguments], code, out.getvalue(), err.getvalue())
