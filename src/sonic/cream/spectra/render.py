"""PNG figures of audio files: ``<out>/<track_id>.<kind>.png`` for each picture kind.

:func:`visualize` draws the pictures of :mod:`sonic.cream.spectra.pictures` (``mel``, ``chroma``, ``fft``,
``tempogram``, or ``all`` of them) for one audio file, or for every audio file under a folder, in
worker processes with a progress bar. Track ids are paths relative to the folder without extension
(``album/track.ogg`` -> ``<out>/album/track.mel.png``; one file's id is its name without extension).
In a folder, a file that cannot be read, decoded or drawn is listed with the reason and never stops
the run; when two files give the same id, the first in sorted order is drawn and the others are listed.
A single file that fails raises its :class:`~sonic.errors.SonicError`. ``out`` is claimed before any
file is decoded (:func:`sonic.files.output_folder`, kind ``figures``: new, empty, or figures sonic
drew); a full disk or Ctrl-C stops the run with one sentence, the figures drawn so far kept.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sonic.cream.audio import audio_folder, check_window, decode, load_decoders
from sonic.cream.spectra.pictures import chromagram, fft_spectrum, mel_spectrogram, tempogram
from sonic.errors import AudioError, Interrupted, SonicError, UnknownNameError
from sonic.files import OutputFolderError, is_user_os_error, os_error_message, output_folder, remove_temporaries
from sonic.parallel import map_files, worker_count

#: Picture kind -> function of ``(waveform, sample_rate)`` computing it with its default options.
PICTURES: dict[str, Callable[[np.ndarray, int], object]] = {
    "mel": mel_spectrogram,
    "chroma": chromagram,
    "fft": fft_spectrum,
    "tempogram": tempogram,
}
#: The kind that means every picture.
ALL_KINDS = "all"
#: The kind of output folder figures go in (:func:`sonic.files.output_folder`).
FOLDER_KIND = "figures"


@dataclass(frozen=True)
class VisualizeResult:
    """What :func:`visualize` wrote and how it went."""

    written: tuple[Path, ...]  # PNG paths, sorted
    failures: tuple[tuple[str, str], ...]  # (file path relative to the folder, reason), sorted
    n_files: int  # audio files found
    elapsed_seconds: float


def picture_kinds(kind: str) -> tuple[str, ...]:
    """The picture kinds ``kind`` names: one of :data:`PICTURES`, or all of them for ``"all"``."""
    if kind == ALL_KINDS:
        return tuple(PICTURES)
    if kind not in PICTURES:
        raise UnknownNameError(f"unknown picture kind '{kind}'; known: {', '.join(sorted([*PICTURES, ALL_KINDS]))}")
    return (kind,)


def visualize(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    kind: str = ALL_KINDS,
    num_workers: int | None = None,
    offset_seconds: float = 0.0,
    duration_seconds: float | None = None,
    sample_rate: int | None = None,
    progress: bool = True,
) -> VisualizeResult:
    """Draw ``kind`` pictures of the audio file ``source``, or of every audio file under the folder
    ``source``, into ``out`` (see the module docstring).

    Each file is decoded to mono (:func:`~sonic.cream.audio.decode`): the window ``offset_seconds`` ..
    ``+duration_seconds`` (None: to the end), resampled to ``sample_rate`` Hz (None: the file's own
    rate). ``num_workers`` processes (None: one per CPU; 0 or 1: this process) draw a folder's files.
    """
    started = time.perf_counter()
    source, out = Path(source), Path(out)
    kinds = picture_kinds(kind)
    _check_sample_rate(sample_rate)
    job = _FigureJob(out, kinds, sample_rate, *check_window(offset_seconds, duration_seconds))
    workers = worker_count(num_workers)
    if not source.is_dir() and not source.is_file():
        raise AudioError(f"audio file or folder '{source}' does not exist")
    with output_folder(out, FOLDER_KIND, adopt=_is_figure_entry):
        remove_temporaries(out, recursive=True)
        if not source.is_dir():
            written = job((str(source), source.name))
            return VisualizeResult(tuple(written), (), 1, time.perf_counter() - started)
        folder = audio_folder(source)
        kept, failures = folder.unique()
        items = [(str(folder.paths[i]), folder.relative[i]) for i in kept]
        written = []
        load_decoders(folder.paths[i] for i in kept)
        try:
            for result in map_files(job, items, num_workers=workers, progress=progress, description="drawing"):
                if result.ok:
                    written.extend(result.value)
                else:
                    failures.append((result.item[1], result.reason))
        except KeyboardInterrupt:
            kept = f"the {len(written)} figures drawn so far are kept in '{out}'" if written else ""
            raise Interrupted(kept) from None
        except OSError as error:
            if not is_user_os_error(error):
                raise
            kept = f"the {len(written)} figures drawn so far are kept"
            raise OutputFolderError(f"{os_error_message(error, out)}; {kept}") from None
    return VisualizeResult(tuple(sorted(written)), tuple(sorted(failures)), len(folder), time.perf_counter() - started)


def _is_figure_entry(entry: Path) -> bool:
    """Whether ``entry`` of an unmarked folder is what an older sonic drew: a figure, or a folder of them."""
    suffixes = tuple(f".{kind}.png" for kind in PICTURES)
    if entry.is_dir() and not entry.is_symlink():
        return all(path.is_dir() or path.name.endswith(suffixes) for path in entry.rglob("*"))
    return entry.name.endswith(suffixes)


@dataclass(frozen=True)
class _FigureJob:
    """Decode one file and save its pictures (a picklable callable for worker processes)."""

    out: Path
    kinds: tuple[str, ...]
    sample_rate: int | None
    offset_seconds: float
    duration_seconds: float | None

    def __call__(self, item: tuple[str, str]) -> list[Path]:
        """``item`` is (audio path, path relative to the folder); returns the PNGs written."""
        from sonic.cream.spectra.figures import save_figure

        path, name = item
        waveform, rate = decode(
            path,
            sample_rate=self.sample_rate,
            offset_seconds=self.offset_seconds,
            duration_seconds=self.duration_seconds,
        )
        track_id = os.path.splitext(name)[0]
        written = []
        for kind in self.kinds:
            picture = PICTURES[kind](waveform, rate)
            target = self.out / f"{track_id}.{kind}.png"
            try:
                written.append(save_figure(picture, target, title=name))
            except OSError as error:
                if is_user_os_error(error):  # a full or read-only disk stops the run, not just this file
                    raise
                raise SonicError(f"cannot write '{target}': {error.strerror or error}") from None
        return written


def _check_sample_rate(sample_rate: int | None) -> None:
    if sample_rate is not None and not (isinstance(sample_rate, int) and sample_rate > 0):
        raise SonicError(
            f"sample rate must be a positive integer (Hz) or None for each file's own, got {sample_rate!r}"
        )
