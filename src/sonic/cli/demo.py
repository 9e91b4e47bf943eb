"""`sonic` commands of demo."""

from sonic.cli.app import app  # noqa: F401
