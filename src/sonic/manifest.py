"""Manifests: every artifact says what produced it."""

from __future__ import annotations

import datetime as _dt
import platform
from importlib import metadata
from typing import Any

from sonic.files import write_json  # noqa: F401  (the one atomic JSON writer; here for older imports)

_TRACKED_PACKAGES = ("sonic", "numpy", "pandas", "pyarrow", "scipy", "soundfile", "soxr", "av", "faiss-cpu")


def package_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Installed versions of the packages that shape SONIC's numbers."""
    versions = {"python": platform.python_version()}
    for name in (*_TRACKED_PACKAGES, *extra):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def base_manifest(kind: str, **fields: Any) -> dict[str, Any]:
    """A manifest skeleton: what kind of artifact, when, with which versions, plus ``fields``."""
    return {
        "artifact": kind,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
        **fields,
    }
