"""`sonic` commands of cream: listening data and time splits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sonic.cli.app import app


@app.command("data-split")
def data_split(
    interactions: Annotated[
        Path,
        typer.Option("--interactions", "--interactions-file",
                     help="Listening events: .tsv/.csv (maybe .bz2 .gz .xz .zst .zip) or .parquet/.pqt."),
    ],
    protocol: Annotated[
        str, typer.Option(help="Split protocol: sonic, tamm2024, tamm2025 or leave-last-out.")
    ] = "sonic",
    out: Annotated[
        Optional[Path],
        typer.Option(help="Folder for train/val/test[/cold_test].parquet, stats.csv, split.json (default: split/)."),
    ] = None,
    start_date: Annotated[Optional[str], typer.Option(help="Window start, inclusive (default: protocol's).")] = None,
    test_date: Annotated[Optional[str], typer.Option(help="Train before it, evaluation on/after it.")] = None,
    end_date: Annotated[Optional[str], typer.Option(help="Window end, exclusive (default: the protocol's).")] = None,
    exclude_file: Annotated[
        Optional[Path], typer.Option(help="csv/tsv/parquet with a track_id column: tracks dropped everywhere.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the val/test user draw.")] = 42,
    memory_limit: Annotated[
        str, typer.Option(help="Memory DuckDB may use while splitting (e.g. 4GB); beyond it, it spills to disk.")
    ] = "4GB",
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace a split folder holding a split made otherwise (sonic's own only)."),
    ] = False,
) -> None:
    """Split listening events in time by a published protocol and write the parts (any size of log)."""
    import time

    from sonic.cream.data import SplitConfig, refuse_other_split, split_file
    from sonic.project import SPLIT_DIR

    started = time.perf_counter()
    out = SPLIT_DIR if out is None else out
    dates = {"start_date": start_date, "test_date": test_date, "end_date": end_date}
    config = SplitConfig.for_protocol(protocol, seed=seed, **dates)
    if not overwrite:
        refuse_other_split(out, config, interactions=interactions, exclude_file=exclude_file)
    split = split_file(interactions, config, out, exclude_file=exclude_file, memory_limit=memory_limit)
    typer.echo(config.describe() + f", seed {config.seed}")
    typer.echo(split.statistics.to_string())
    files = ", ".join(f"{name}.parquet" for name in split.parts)
    typer.echo(f"read {interactions}; wrote {files}, stats.csv and split.json to {out}/ "
               f"in {time.perf_counter() - started:.1f} s")


@app.command("convert")
def convert(
    audio_dir: Annotated[Path, typer.Option(help="Folder searched recursively for audio files.")],
    out_dir: Annotated[Path, typer.Option(help="Folder for the converted files (same sub-folders).")],
    sample_rate: Annotated[int, typer.Option(help="Sample rate of the output, Hz.")],
    file_format: Annotated[str, typer.Option("--format", help="wav (32-bit float) or flac (24-bit).")] = "wav",
    mono: Annotated[bool, typer.Option(help="Mix the channels down to one (their mean).")] = False,
    num_workers: Annotated[
        Optional[int], typer.Option(help="Converting processes (default: one per CPU; 0 or 1: none).")
    ] = None,
) -> None:
    """Convert every audio file under a folder to wav or flac at one rate; files already done are skipped."""
    from sonic.cream.audio import convert_folder

    result = convert_folder(
        audio_dir, out_dir, sample_rate=sample_rate, file_format=file_format, mono=mono, num_workers=num_workers
    )
    for name, reason in result.failures:
        typer.echo(f"failed: {name}: {reason}")
    typer.echo(f"{result.summary()} ({result.elapsed_seconds:.1f} s)")
    if result.n_failed:
        typer.echo(f"reasons in {result.failures_path}")


@app.command("find-corrupt")
def find_corrupt(
    audio_dir: Annotated[Path, typer.Option(help="Folder searched recursively for audio files.")],
    out: Annotated[Path, typer.Option(help="Output table (.parquet or .csv): track_id, path, problem, reason.")],
    loudness_threshold: Annotated[
        float, typer.Option(help="Files whose RMS level is below this many dBFS are 'quiet'.")
    ] = -60.0,
    min_seconds: Annotated[float, typer.Option(help="Files shorter than this are 'too_short'.")] = 1.0,
    num_workers: Annotated[
        Optional[int], typer.Option(help="Scanning processes (default: one per CPU; 0 or 1: none).")
    ] = None,
) -> None:
    """List undecodable, truncated, empty, too short, silent and near-silent audio files (for --exclude-file)."""
    from sonic.cream.audio import find_corrupt as find

    result = find(
        audio_dir,
        out,
        loudness_threshold_dbfs=loudness_threshold,
        min_seconds=min_seconds,
        num_workers=num_workers,
    )
    typer.echo(result.summary())
    typer.echo(f"wrote {result.out_path} and {result.manifest_path.name} in {result.elapsed_seconds:.1f} s")


@app.command("visualize")
def visualize_command(
    out: Annotated[Path, typer.Option(help="Folder for <track_id>.<kind>.png (the audio folder's structure kept).")],
    audio: Annotated[Optional[Path], typer.Option(help="One audio file.")] = None,
    audio_dir: Annotated[Optional[Path], typer.Option(help="Folder searched recursively for audio files.")] = None,
    kind: Annotated[str, typer.Option(help="Picture: mel, chroma, fft, tempogram or all.")] = "all",
    num_workers: Annotated[
        Optional[int], typer.Option(min=0, help="Drawing processes (default: one per CPU; 0 or 1: none).")
    ] = None,
    offset_seconds: Annotated[float, typer.Option(min=0.0, help="Start of the window in each file.")] = 0.0,
    duration_seconds: Annotated[
        Optional[float], typer.Option(help="Length of the window (default: to the end of the file).")
    ] = None,
    sample_rate: Annotated[
        Optional[int], typer.Option(min=1, help="Resample to this rate, Hz (default: each file's own).")
    ] = None,
) -> None:
    """Draw mel spectrogram, chromagram, FFT spectrum and tempogram PNGs of audio files."""
    from sonic.cream.spectra import visualize
    from sonic.errors import SonicError

    if (audio is None) == (audio_dir is None):
        raise SonicError("give exactly one of --audio FILE or --audio-dir FOLDER")
    if audio is not None and audio.is_dir():
        raise SonicError(f"--audio takes a file, but '{audio}' is a folder; use --audio-dir")
    if audio_dir is not None and audio_dir.is_file():
        raise SonicError(f"--audio-dir takes a folder, but '{audio_dir}' is a file; use --audio")
    options = {"offset_seconds": offset_seconds, "duration_seconds": duration_seconds, "sample_rate": sample_rate}
    result = visualize(audio or audio_dir, out, kind=kind, num_workers=num_workers, **options)
    for name, reason in result.failures:
        typer.echo(f"failed: {name}: {reason}")
    failed = f"; {len(result.failures)} of {result.n_files} files failed" if result.failures else ""
    figures = f"{len(result.written)} figure" + ("s" if len(result.written) != 1 else "")
    typer.echo(f"wrote {figures} to {out} in {result.elapsed_seconds:.1f} s{failed}")
