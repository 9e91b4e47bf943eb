"""`sonic` commands of tails."""

from sonic.cli.app import app  # noqa: F401
