"""`sonic` commands of rouge."""

from sonic.cli.app import app  # noqa: F401
