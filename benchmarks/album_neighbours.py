"""Benchmark: same-album nearest neighbours of ``sonic embed`` embedders against each other and plain librosa.

The input is a folder of real recordings whose first-level subfolders are albums; files may sit
deeper (``<album>/<disc>/<track>.opus``). The script:

1. for each ``--model-type`` (default ``mfcc_104``; repeat the option for several, e.g. ``--model-type
   mfcc_104 --model-type musicnn``) runs the real command line, ``sonic embed --audio-dir DIR
   --model-type NAME --num-workers W --out OUT``, as a subprocess (timed, process start included),
   reads ``OUT/NAME.parquet`` and checks that every audio file under DIR has a row (track id: path
   relative to DIR without extension). Files the command listed in ``OUT/NAME.failures.csv`` are
   printed, and so is every file missing from a table; the comparison below then covers only the
   files every table holds, and the script exits with status 1 at the end;
2. computes the baseline one file at a time: ``librosa.load(path, sr=22050)`` (mono) then
   ``librosa.feature.mfcc(y=y, sr=sr, n_mfcc=104, n_fft=2048, hop_length=512, n_mels=128).mean(axis=1)``
   (timed, after a warm-up call so that numba compilation is not counted);
3. for both sets of vectors, ranks every other track by cosine similarity (the track itself excluded)
   and measures how often the neighbours come from the query's album: precision@1, precision@5 and
   mean average precision (the relevant items of a query are the other tracks of its album). Tracks
   alone in their album serve as distractors only. Every figure is computed on the raw vectors and
   again after z-scoring each dimension over the collection ("standardised"), since the raw cosine is
   dominated by coefficient 0 (loudness). The chance column is what a random ranking scores on average.

``--duration-seconds`` limits both sides to the first seconds of each file (offset 0).

Exit status 1 when a file is missing from a table, and also when ``mfcc_104`` (if it is among the
models) finds fewer same-album nearest neighbours (precision@1, counted in tracks) than the librosa
baseline by more than one track, on the raw or on the standardised vectors. The files are listed here
independently of ``sonic``'s own folder walk.

    python benchmarks/album_neighbours.py --audio-dir DIR --out OUT [--model-type NAME ...] [--workers 2]
        [--duration-seconds S]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sonic.tails.table import read_embeddings

MFCC = "mfcc_104"
AUDIO_SUFFIXES = {".flac", ".mp3", ".oga", ".ogg", ".opus", ".wav"}
TOP_K = 5
ALLOWED_SHORTFALL = 1  # tracks of precision@1 that ours may lose to the baseline


@dataclass(frozen=True)
class Scores:
    """Same-album retrieval figures over the queries (tracks whose album has another track)."""

    hits_at_1: int
    n_queries: int
    precision_at_k: float
    mean_average_precision: float

    @property
    def precision_at_1(self) -> float:
        return self.hits_at_1 / self.n_queries


def audio_files(root: Path) -> list[Path]:
    """Every audio file under ``root`` (recursively; hidden names skipped), sorted."""
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and path.suffix.lower() in AUDIO_SUFFIXES
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )


def track_id(path: Path, root: Path) -> str:
    """The id ``sonic embed`` gives a file: its path relative to ``root``, POSIX, without extension."""
    return path.relative_to(root).with_suffix("").as_posix()


def run_sonic_embed(audio_dir: Path, out_dir: Path, model: str, workers: int, duration: float | None) -> float:
    """Run the ``sonic embed`` command line; return its wall time in seconds (exit if it fails)."""
    program = [sys.executable, "-m", "sonic"]  # this interpreter, so PYTHONPATH picks the code under test
    command = [*program, "embed", "--audio-dir", str(audio_dir), "--model-type", model]
    command += ["--num-workers", str(workers), "--out", str(out_dir)]
    if duration is not None:
        command += ["--duration-seconds", str(duration)]
    print("$", " ".join(command), flush=True)
    started = time.perf_counter()
    completed = subprocess.run(command, check=False)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        sys.exit(f"sonic embed failed with exit status {completed.returncode}")
    return seconds


def read_failures(out_dir: Path, model: str) -> list[tuple[str, str]]:
    """(path, reason) rows of the failures csv the embed wrote, if any."""
    path = out_dir / f"{model}.failures.csv"
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as stream:
        return [(row["path"], row["reason"]) for row in csv.DictReader(stream)]


def librosa_vectors(paths: list[Path], duration: float | None) -> np.ndarray:
    """The baseline: librosa.load then librosa's MFCC-104, mean over time, one file at a time. (n, 104)."""
    import librosa

    vectors = []
    for path in paths:
        y, sr = librosa.load(path, sr=22050, mono=True, offset=0.0, duration=duration)
        mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=104, n_fft=2048, hop_length=512, n_mels=128)
        vectors.append(mfcc.mean(axis=1))
    return np.stack(vectors)


def warm_up_librosa() -> None:
    """Compile librosa's numba kernels and import its modules before the timed loop."""
    import librosa

    noise = np.random.default_rng(0).standard_normal(22050).astype(np.float32)
    librosa.feature.mfcc(y=noise, sr=22050, n_mfcc=104, n_fft=2048, hop_length=512, n_mels=128)
    librosa.resample(noise, orig_sr=22050, target_sr=16000)


def standardised(vectors: np.ndarray) -> np.ndarray:
    """Each dimension z-scored over the collection (constant dimensions left at zero)."""
    centred = vectors - vectors.mean(axis=0)
    std = vectors.std(axis=0)
    return centred / np.where(std > 0, std, 1.0)


def album_scores(vectors: np.ndarray, albums: np.ndarray, k: int = TOP_K) -> Scores:
    """Cosine nearest neighbours (self excluded) judged by whether they share the query's album."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    ranking = np.argsort(-similarity, axis=1, kind="stable")[:, :-1]  # (n, n - 1), self dropped (last)
    relevant = albums[ranking] == albums[:, None]  # (n, n - 1) bool, in rank order
    queries = relevant.any(axis=1)
    relevant = relevant[queries]
    ranks = np.arange(1, relevant.shape[1] + 1)
    precision_at_rank = np.cumsum(relevant, axis=1) / ranks
    average_precision = (precision_at_rank * relevant).sum(axis=1) / relevant.sum(axis=1)
    return Scores(
        hits_at_1=int(relevant[:, 0].sum()),
        n_queries=int(queries.sum()),
        precision_at_k=float(relevant[:, :k].mean()),
        mean_average_precision=float(average_precision.mean()),
    )


def chance_scores(albums: np.ndarray) -> tuple[float, float]:
    """Expected precision (at any rank) and expected average precision of a random ranking.

    For a query with ``r`` relevant among ``m`` candidates: precision ``r / m``; average precision
    ``p + (1 - p) H_m / m`` with ``p = (r - 1) / (m - 1)`` and ``H_m`` the m-th harmonic number.
    """
    _, inverse, counts = np.unique(albums, return_inverse=True, return_counts=True)
    relevant = counts[inverse] - 1
    relevant = relevant[relevant > 0]
    m = len(albums) - 1
    harmonic = float(np.sum(1.0 / np.arange(1, m + 1)))
    p = (relevant - 1) / max(m - 1, 1)
    return float(np.mean(relevant / m)), float(np.mean(p + (1 - p) * harmonic / m))


def print_table(results: dict[str, dict[str, Scores]], albums: np.ndarray) -> None:
    """Rows: vectors (raw / standardised) x metric; columns: each embedder, librosa, chance."""
    chance_precision, chance_ap = chance_scores(albums)
    names = list(next(iter(results.values())))
    width = max(17, *(len(name) + 2 for name in names))
    print(f"\n{'vectors':<13}{'metric':<14}" + "".join(f"{name:>{width}}" for name in names) + f"{'chance':>9}")
    for row, scores in results.items():
        lines = [
            ("precision@1", [f"{s.precision_at_1:.3f} ({s.hits_at_1})" for s in scores.values()], chance_precision),
            (f"precision@{TOP_K}", [f"{s.precision_at_k:.3f}" for s in scores.values()], chance_precision),
            ("MAP", [f"{s.mean_average_precision:.3f}" for s in scores.values()], chance_ap),
        ]
        for metric, cells, chance in lines:
            print(f"{row:<13}{metric:<14}" + "".join(f"{cell:>{width}}" for cell in cells) + f"{chance:>9.3f}")
    n_queries = next(iter(next(iter(results.values())).values())).n_queries
    print(f"(precision@1: share of the {n_queries} queries, count in brackets; chance: random ranking)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio-dir", type=Path, required=True, help="folder whose first-level subfolders are albums")
    parser.add_argument("--out", type=Path, required=True, help="output folder for sonic embed")
    parser.add_argument("--model-type", action="append", default=None, help=f"embedder to compare (default {MFCC})")
    parser.add_argument("--workers", type=int, default=2, help="sonic embed --num-workers (default 2)")
    parser.add_argument("--duration-seconds", type=float, default=None, help="use only the first seconds of each file")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="'(aifc|audioop|sunau)' is deprecated", category=DeprecationWarning)
    audio_dir: Path = args.audio_dir
    models: list[str] = args.model_type or [MFCC]

    paths = audio_files(audio_dir)
    if not paths:
        sys.exit(f"no audio files under {audio_dir}")
    ids = np.array([track_id(path, audio_dir) for path in paths])
    albums = np.array([track.split("/", 1)[0] for track in ids])
    names, sizes = np.unique(albums, return_counts=True)
    print(f"{len(paths)} audio files in {len(names)} albums: " + ", ".join(f"{n} {s}" for n, s in zip(names, sizes)))

    seconds, tables, found = {}, {}, np.ones(len(ids), dtype=bool)
    n_missing = 0
    for model in models:
        seconds[model] = run_sonic_embed(audio_dir, args.out, model, args.workers, args.duration_seconds)
        table = read_embeddings(args.out / f"{model}.parquet")
        failures = read_failures(args.out, model)
        for path, reason in failures:
            print(f"{model} failed: {path}: {reason}")
        rows, present = table.lookup(ids)
        print(f"sonic embed {model}: {len(table.track_ids)} rows for {len(paths)} files, {len(failures)} failures")
        for track in ids[~present]:
            print(f"missing from the {model} table: {track}")
        n_missing += int((~present).sum())
        tables[model] = table
        found &= present
    if not found.all():
        print(f"{int((~found).sum())} of {len(paths)} files lack a vector; comparing on the other {int(found.sum())}")
    paths, ids, albums = [path for path, ok in zip(paths, found) if ok], ids[found], albums[found]
    vectors = {model: tables[model].vectors[tables[model].lookup(ids)[0]].astype(np.float64) for model in models}

    warm_up_librosa()
    started = time.perf_counter()
    vectors["librosa mfcc"] = librosa_vectors(paths, args.duration_seconds)
    librosa_seconds = time.perf_counter() - started

    results = {
        "raw": {name: album_scores(v, albums) for name, v in vectors.items()},
        "standardised": {name: album_scores(standardised(v), albums) for name, v in vectors.items()},
    }
    window = "whole tracks" if args.duration_seconds is None else f"first {args.duration_seconds:g} s of each track"
    print(f"\nsame-album neighbours, cosine similarity, {len(paths)} tracks, {window}")
    print_table(results, albums)
    timing = "; ".join(f"sonic embed {model} {seconds[model]:.1f} s" for model in models)
    print(f"\nwall time ({args.workers} workers): {timing}; librosa MFCC loop (one process) {librosa_seconds:.1f} s")

    problems = []
    if n_missing:
        problems.append(f"{n_missing} vectors are missing from the tables")
    if MFCC in models:
        baseline = vectors["librosa mfcc"]
        worst = float(np.max(np.abs(vectors[MFCC] - baseline)) / np.max(np.abs(baseline)))
        print(f"largest |sonic mfcc_104 - librosa| = {worst:.1e} of the largest librosa coefficient")
        shortfalls = {
            row: scores["librosa mfcc"].hits_at_1 - scores[MFCC].hits_at_1 for row, scores in results.items()
        }
        if any(lost > ALLOWED_SHORTFALL for lost in shortfalls.values()):
            problems.append(f"mfcc_104 loses more than {ALLOWED_SHORTFALL} nearest-neighbour hit(s) to librosa: "
                            f"{shortfalls}")
    if problems:
        sys.exit("FAILED: " + "; ".join(problems))
    print("OK: every file embedded" + (", and mfcc_104's precision@1 within one track of librosa or better"
                                      if MFCC in models else ""))


if __name__ == "__main__":
    main()
