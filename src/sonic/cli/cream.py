"""`sonic` commands of cream."""

from sonic.cli.app import app  # noqa: F401
