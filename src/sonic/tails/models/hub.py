"""Checkpoints from the Hugging Face Hub, the way transformers and timm get them, or from a local folder.

A model names the files it reads (:class:`HubFiles`); a hub name downloads exactly those on first use
into the Hugging Face cache through ``huggingface_hub`` (never a whole repository), and later runs read
them from there. ``huggingface_hub``'s own settings apply: ``HF_HUB_OFFLINE=1`` (cache only),
``HF_HOME`` / ``HF_HUB_CACHE`` (where the cache is), ``HF_ENDPOINT`` (a mirror), ``HF_TOKEN`` or a
stored login (gated repositories). ``revision`` pins a branch, tag or commit.

A missing file is one sentence naming ``sonic fetch`` and ``--checkpoint``. Without a network the hub is
asked once, without retries and with a short timeout, so the sentence comes in seconds, not minutes.

:class:`Checkpoint` is what a model loads from: the local folder, the commit it came from (hub names),
and each file read, whose sha256 goes into the manifest.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sonic.errors import SonicError

#: Seconds to wait for the hub's first answer (``HF_HUB_ETAG_TIMEOUT`` overrides it).
CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class HubFiles:
    """The files a model reads from a checkpoint folder or hub repository ``repo``.

    ``required``: every one must be there. ``weights``: the first present of these (in order of
    preference) is read. ``optional``: read when present.
    """

    repo: str
    required: tuple[str, ...] = ()
    weights: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    def names(self) -> tuple[str, ...]:
        return (*self.required, *self.weights, *self.optional)


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint ready to load: ``folder`` holds ``files`` (name -> path; absent optional files left out).

    ``source`` is what the user named (a hub name or a folder); ``revision`` is the hub commit the files
    came from (None for a local folder).
    """

    source: str
    folder: Path
    files: dict[str, Path] = field(default_factory=dict)
    revision: str | None = None

    def path(self, name: str) -> Path:
        return self.files.get(name, self.folder / name)

    def has(self, name: str) -> bool:
        return name in self.files

    def weights(self, spec: HubFiles) -> Path:
        """The weights file chosen from ``spec.weights``."""
        for name in spec.weights:
            if name in self.files:
                return self.files[name]
        raise SonicError(
            f"checkpoint {self.source!r} holds no weights file; expected one of {', '.join(spec.weights)}"
        )

    def describe(self) -> dict[str, Any]:
        """Manifest entry: where the checkpoint came from, its commit and the sha256 of each file read."""
        return {
            "checkpoint": self.source,
            "revision": self.revision,
            "files": {name: sha256_of(path) for name, path in sorted(self.files.items())},
        }


def sha256_of(path: str | os.PathLike) -> str:
    """The sha256 of a file in hex (computed once per file, size and time)."""
    stat = os.stat(path)
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _sha256(path: str, size: int, mtime_ns: int) -> str:  # noqa: ARG001 - size and time key the cache
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def is_hub_name(text: str) -> bool:
    """Whether ``text`` has the form ``owner/model`` (and is not a path that exists)."""
    return text.count("/") == 1 and not text.startswith((".", "/", "~")) and not text.endswith("/")


def checkpoint_files(
    checkpoint: str | os.PathLike, spec: HubFiles, *, name: str, revision: str | None = None
) -> Checkpoint:
    """The files of ``spec`` for ``checkpoint``: a local folder as it is, a hub name through the cache.

    ``name`` is the embedder the files are for (the error sentences suggest ``sonic fetch NAME``).
    """
    path = Path(checkpoint).expanduser()
    if path.exists():
        if revision is not None:
            raise SonicError(f"revision={revision!r} applies to hub names; {str(path)!r} is a local folder")
        return local_checkpoint(path, spec)
    text = str(checkpoint)
    if not is_hub_name(text):
        raise SonicError(f"checkpoint {text!r} is neither an existing folder nor a hub name of the form owner/model")
    return download(HubFiles(text, spec.required, spec.weights, spec.optional), name=name, revision=revision)


def local_checkpoint(folder: Path, spec: HubFiles) -> Checkpoint:
    """``spec``'s files in the local ``folder``; a missing one is one sentence naming what a folder holds."""
    if not folder.is_dir():
        raise SonicError(f"checkpoint {str(folder)!r} must be a folder holding {', '.join(spec.names())}")
    files = {name: folder / name for name in spec.names() if (folder / name).is_file()}
    missing = [name for name in spec.required if name not in files]
    if spec.weights and not any(name in files for name in spec.weights):
        missing.append(" or ".join(spec.weights))
    if missing:
        holds = ", ".join([*spec.required, *([" or ".join(spec.weights)] if spec.weights else [])])
        raise SonicError(f"checkpoint folder {str(folder)!r} lacks {', '.join(missing)}; a checkpoint folder holds {holds}")
    weights = next((name for name in spec.weights if name in files), None)
    files = {key: value for key, value in files.items() if key not in spec.weights or key == weights}
    return Checkpoint(source=str(folder), folder=folder, files=files)


# --------------------------------------------------------------------------------------------- the hub


def offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) asks for the cache only, read now."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def cache_dir() -> Path:
    """The Hugging Face hub cache, read now: ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.path.expandvars(os.environ["HF_HUB_CACHE"])).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "huggingface"
    return Path(os.path.expandvars(str(home))).expanduser() / "hub"


def endpoint() -> str | None:
    """``HF_ENDPOINT``, read now (None: the public hub)."""
    return (os.environ.get("HF_ENDPOINT") or "").rstrip("/") or None


def _hub() -> Any:
    try:
        import huggingface_hub
    except ImportError:
        raise SonicError("downloading a checkpoint needs huggingface_hub: pip install 'sonic[models]'") from None
    return huggingface_hub


def _timeout() -> float:
    try:
        return float(os.environ.get("HF_HUB_ETAG_TIMEOUT") or CONNECT_TIMEOUT)
    except ValueError:
        return CONNECT_TIMEOUT


def _how(name: str, source: str) -> str:
    """What to do: ``sonic fetch NAME`` for an embedder's published weights, ``hf download REPO`` for any
    other repository (``name`` equal to ``source``)."""
    fetch = f"`hf download {source}`" if name == source else f"`sonic fetch {name}`"
    return (
        f"run {fetch} where the hub can be reached (then copy {cache_dir()} here), "
        f"or pass --checkpoint with a local folder holding the files of {source}"
    )


def download(spec: HubFiles, *, name: str, revision: str | None = None) -> Checkpoint:
    """``spec``'s files from the hub repository ``spec.repo`` into the cache (or from the cache alone when
    offline or the hub cannot be reached); a SonicError in one sentence when a needed file is missing."""
    hub = _hub()
    from huggingface_hub import errors

    where = f"{spec.repo!r}" + (f" at revision {revision!r}" if revision else "")
    reach_error: Exception | None = None
    first = (spec.required or spec.weights)[0]
    if not offline():
        try:
            hub.get_hf_file_metadata(
                hub.hf_hub_url(spec.repo, first, revision=revision, endpoint=endpoint()),
                timeout=_timeout(),
                endpoint=endpoint(),
            )
        except errors.GatedRepoError:
            raise SonicError(
                f"hub repository {spec.repo!r} is gated; accept its terms on the hub and log in "
                f"(hf auth login, or HF_TOKEN), or pass --checkpoint with a local folder"
            ) from None
        except errors.RepositoryNotFoundError:
            raise SonicError(
                f"hub repository {spec.repo!r} does not exist (or is private: log in with hf auth login or set "
                f"HF_TOKEN); pass --checkpoint with a local folder or another hub name"
            ) from None
        except errors.RevisionNotFoundError:
            raise SonicError(f"hub repository {spec.repo!r} has no revision {revision!r}") from None
        except errors.RemoteEntryNotFoundError:
            raise SonicError(f"hub repository {where} has no {first}; is it a {name} checkpoint?") from None
        except Exception as error:  # noqa: BLE001 - no network, a proxy, a timeout: fall back to the cache
            reach_error = error
    if offline() or reach_error is not None:
        return _from_cache(spec, name=name, revision=revision, reach_error=reach_error)
    files: dict[str, Path] = {}
    for file in spec.names():
        if file in spec.weights and any(chosen in files for chosen in spec.weights):
            continue  # the first weights file present is the one read; the others are not downloaded
        try:
            files[file] = Path(
                hub.hf_hub_download(
                    spec.repo, file, revision=revision, cache_dir=cache_dir(), endpoint=endpoint(),
                    etag_timeout=_timeout(),
                )
            )
        except errors.RemoteEntryNotFoundError:
            if file in spec.required:
                raise SonicError(f"hub repository {where} has no {file}; is it a {name} checkpoint?") from None
        except Exception as error:  # noqa: BLE001 - the connection broke during the download
            raise SonicError(
                f"downloading {file} of {where} failed ({_reason(error)}); run the command again to resume, "
                f"or {_how(name, spec.repo)}"
            ) from None
    if spec.weights and not any(file in files for file in spec.weights):
        raise SonicError(f"hub repository {where} has none of {', '.join(spec.weights)}; is it a {name} checkpoint?")
    return _checkpoint(spec, files)


def snapshot(repo: str, patterns: tuple[str, ...], *, required: str, name: str, revision: str | None = None) -> Path:
    """The files of ``repo`` matching ``patterns`` (a model whose file list lives in the repository itself,
    such as sentence-transformers' ``modules.json``), through the cache; ``required`` must be among them."""
    hub = _hub()
    download(HubFiles(repo, (required,)), name=name, revision=revision)  # fails fast, in one sentence
    try:
        folder = hub.snapshot_download(
            repo, revision=revision, allow_patterns=list(patterns), cache_dir=cache_dir(), endpoint=endpoint(),
            etag_timeout=_timeout(), local_files_only=offline(),
        )
    except Exception as error:  # noqa: BLE001 - the connection broke, or files are missing from the cache
        raise SonicError(f"fetching {repo!r} failed ({_reason(error)}); {_how(name, repo)}") from None
    return Path(folder)


def _from_cache(spec: HubFiles, *, name: str, revision: str | None, reach_error: Exception | None) -> Checkpoint:
    hub = _hub()
    files = {}
    for file in spec.names():
        found = hub.try_to_load_from_cache(spec.repo, file, cache_dir=str(cache_dir()), revision=revision)
        if isinstance(found, str):
            files[file] = Path(found)
    missing = [file for file in spec.required if file not in files]
    if spec.weights and not any(file in files for file in spec.weights):
        missing.append(" or ".join(spec.weights))
    if missing:
        where = f"{spec.repo!r}" + (f" at revision {revision!r}" if revision else "")
        why = (
            "HF_HUB_OFFLINE is set"
            if reach_error is None
            else f"the hub could not be reached ({_reason(reach_error)})"
        )
        raise SonicError(
            f"checkpoint {where} is not in the Hugging Face cache ({cache_dir()} lacks {', '.join(missing)}) "
            f"and {why}; {_how(name, spec.repo)}"
        )
    return _checkpoint(spec, files)


def _checkpoint(spec: HubFiles, files: dict[str, Path]) -> Checkpoint:
    weights = next((file for file in spec.weights if file in files), None)
    files = {key: value for key, value in files.items() if key not in spec.weights or key == weights}
    some = next(iter(files.values()))
    folder = some.parent
    revision = folder.name if folder.parent.name == "snapshots" else None
    return Checkpoint(source=spec.repo, folder=folder, files=files, revision=revision)


def _reason(error: BaseException) -> str:
    text = " ".join(str(error).split())
    cause = error.__cause__ or error.__context__
    if cause is not None and ("Name or service" in str(cause) or not text):
        text = " ".join(str(cause).split())
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def cached(spec: HubFiles, *, revision: str | None = None) -> Checkpoint | None:
    """``spec``'s files from the cache alone (None when a needed one is missing); never asks the hub."""
    hub = _hub()
    files = {}
    for file in spec.names():
        found = hub.try_to_load_from_cache(spec.repo, file, cache_dir=str(cache_dir()), revision=revision)
        if isinstance(found, str):
            files[file] = Path(found)
    if any(file not in files for file in spec.required):
        return None
    if spec.weights and not any(file in files for file in spec.weights):
        return None
    return _checkpoint(spec, files)


def described(checkpoints: Iterable[Checkpoint]) -> dict[str, Any]:
    """Manifest entry for a model read from several checkpoints (MuQ-MuLan and its backbone's config)."""
    return {checkpoint.source: checkpoint.describe() for checkpoint in checkpoints}
