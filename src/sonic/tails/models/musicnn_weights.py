"""MusiCNN's published weights: the TF checkpoints inside the ``musicnn==0.1.0`` wheel on PyPI.

The package itself cannot be installed beside SONIC (it pins numpy<1.17 and TensorFlow 1), and it is
never imported: :func:`fetch_musicnn` runs ``pip download --no-deps musicnn==0.1.0`` into a temporary
folder, checks the wheel's sha256, and copies each model's checkpoint (``.index``, ``.data-*``,
``config.json``) into the cache, ``~/.cache/sonic/musicnn/0.1.0/<model>/`` (``SONIC_MUSICNN_CACHE``
moves it). An offline machine can point ``SONIC_MUSICNN_WHEEL`` at a copy of the wheel instead.
Every model folder is written under a temporary name and renamed (:func:`sonic.files.atomic_folder`),
so an interrupted fetch leaves nothing half-written. ``sonic fetch musicnn`` runs :func:`fetch_musicnn`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from sonic.errors import SonicError
from sonic.files import atomic_folder
from sonic.tails.neural import sha256_file

VERSION = "0.1.0"
WHEEL_NAME = f"musicnn-{VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"
MODELS = ("MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg")
CACHE_ENV = "SONIC_MUSICNN_CACHE"
WHEEL_ENV = "SONIC_MUSICNN_WHEEL"
#: Files kept per model, as named in the wheel (an empty checkpoint prefix) -> as named in the cache.
KEPT_FILES = {
    ".index": "model.index",
    ".data-00000-of-00001": "model.data-00000-of-00001",
    "config.json": "config.json",
}


def cache_dir() -> Path:
    """Where the checkpoints live: ``$SONIC_MUSICNN_CACHE`` or ``~/.cache/sonic/musicnn``, then the version."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "sonic" / "musicnn"
    return Path(root).expanduser() / VERSION


def cached_model(model: str, cache: Path | None = None) -> Path | None:
    """The cached checkpoint folder of ``model``, or None when it has not been fetched."""
    folder = (cache or cache_dir()) / model
    return folder if all((folder / name).is_file() for name in KEPT_FILES.values()) else None


def fetch_musicnn(cache: Path | None = None, *, wheel: str | os.PathLike | None = None, quiet: bool = False) -> Path:
    """Make sure the four checkpoints are in the cache; return the cache folder.

    ``wheel``: a local copy of the wheel (default ``$SONIC_MUSICNN_WHEEL``, else pip downloads it from
    PyPI). A wheel whose sha256 differs from the pinned one is refused.
    """
    cache = cache or cache_dir()
    if all(cached_model(model, cache) for model in MODELS):
        return cache
    wheel = wheel or os.environ.get(WHEEL_ENV)
    with tempfile.TemporaryDirectory(prefix="sonic-musicnn-") as scratch:
        path = Path(wheel).expanduser() if wheel else _pip_download(Path(scratch), quiet)
        if not path.is_file():
            raise SonicError(f"musicnn wheel {str(path)!r} does not exist; pass the file {WHEEL_NAME}")
        digest = sha256_file(path)
        if digest != WHEEL_SHA256:
            raise SonicError(f"{str(path)!r} has sha256 {digest}, not the pinned {WHEEL_NAME}'s {WHEEL_SHA256}")
        extract_checkpoints(path, cache)
    return cache


def _pip_download(folder: Path, quiet: bool) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--disable-pip-version-check", "--quiet", "-d", str(folder), f"musicnn=={VERSION}"]
    if not quiet:
        print(f"fetching the MusiCNN weights: {' '.join(command[2:])}", file=sys.stderr)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SonicError(
            f"pip download of musicnn=={VERSION} failed ({error}); set {WHEEL_ENV} to a copy of {WHEEL_NAME}"
        ) from None
    if result.returncode != 0 or not (folder / WHEEL_NAME).is_file():
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SonicError(
            f"pip could not download musicnn=={VERSION} ({last}); set {WHEEL_ENV} to a copy of {WHEEL_NAME}"
        )
    return folder / WHEEL_NAME


def extract_checkpoints(wheel: Path, cache: Path) -> None:
    """Copy each model's kept files out of the (already checked) wheel into ``cache/<model>/``, atomically."""
    cache.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for model in MODELS:
            if cached_model(model, cache):
                continue
            with atomic_folder(cache / model) as staging:  # an incomplete folder from an interrupted fetch is replaced
                staging.chmod(0o755)
                for inside, kept in KEPT_FILES.items():
                    with archive.open(f"musicnn/{model}/{inside}") as source, open(staging / kept, "wb") as target:
                        shutil.copyfileobj(source, target)
