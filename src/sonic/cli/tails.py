"""`sonic` commands of tails."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sonic.cli.app import app
from sonic.tails.base import EMBEDDERS

_MODEL_HELP = (
    "Embedder name, or several separated by commas (audio and image ones then share one decode of each file), "
    "one of: " + ", ".join(EMBEDDERS.names()) + " (mfcc_<N>: N coefficients, e.g. mfcc_104); "
    "or, in any case, an alias: " + ", ".join(f"{alias} = {name}" for alias, name in EMBEDDERS.aliases().items()) + "."
)


@app.command()
def embed(
    model_type: Annotated[str, typer.Option("--model-type", help=_MODEL_HELP)],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for <name>.parquet, its manifest and failures csv (default: embeddings/)."),
    ] = None,
    audio_dir: Annotated[
        Path | None, typer.Option("--audio-dir", help="Folder searched recursively for audio files (audio, image).")
    ] = None,
    lyrics_dir: Annotated[
        Path | None, typer.Option("--lyrics-dir", help="Folder of <track_id>.txt lyrics files (text embedders).")
    ] = None,
    metadata_file: Annotated[
        Path | None,
        typer.Option("--metadata-file", help="csv, tsv or Parquet table with a track_id column (tabular embedders)."),
    ] = None,
    music4all_root: Annotated[
        Path | None,
        typer.Option("--music4all-root", help="Music4All release: its lyrics/ (text) or id_metadata.csv (tabular)."),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Inputs per embedding call.")] = 16,
    num_workers: Annotated[
        int | None,
        typer.Option("--num-workers", min=0, help="Decoding processes (default: one per CPU; 0 or 1: none)."),
    ] = None,
    offset_seconds: Annotated[
        float, typer.Option("--offset-seconds", min=0.0, help="Start of the window in each file.")
    ] = 0.0,
    duration_seconds: Annotated[
        float | None, typer.Option("--duration-seconds", help="Length of the window (default: to the end of the file).")
    ] = None,
    exclude_file: Annotated[
        Path | None,
        typer.Option("--exclude-file", help="csv or Parquet file whose track_id column lists tracks to skip."),
    ] = None,
    shard_size: Annotated[
        int, typer.Option("--shard-size", min=1, help="Inputs per shard written as the run goes (a rerun reuses them).")
    ] = 256,
    engine: Annotated[
        str, typer.Option("--engine", help="Where the shards are computed: local (worker processes) or ray.")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", help="Ray cluster: auto, ray://head:10001 (default: a local Ray for the run)."),
    ] = None,
    ray_gpus_per_actor: Annotated[
        float, typer.Option("--ray-gpus-per-actor", min=0.0, help="GPUs per model actor on Ray (0: model on CPU).")
    ] = 0.0,
    ray_actors: Annotated[
        int | None,
        typer.Option("--ray-actors", min=1, help="Model actors on Ray (default: one per GPU asked for, else one)."),
    ] = None,
    checkpoint: Annotated[
        str | None,
        typer.Option("--checkpoint", help="Model weights: a local folder or file, or a cached hub name."),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", help="An embedder option KEY=VALUE, repeatable (e.g. layer=6, tokens=patch_mean)."),
    ] = None,
    layer: Annotated[
        str | None, typer.Option("--layer", help="Neural models: last (default), mean (of all layers) or an index.")
    ] = None,
    window_seconds: Annotated[
        float | None,
        typer.Option("--window-seconds", help="Neural models: length of the equal windows a clip is cut into."),
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="Neural models: auto (default: CUDA when present), cpu, cuda[:N].")
    ] = None,
) -> None:
    """Embed every track (audio files, lyrics or metadata rows) into one embedding table; resumable."""
    from sonic.errors import SonicError
    from sonic.project import EMBEDDINGS_DIR
    from sonic.tails.many import embed_many, model_types
    from sonic.tails.ray_engine import RayOptions

    out = EMBEDDINGS_DIR if out is None else out
    ray = RayOptions(address=ray_address, actors=ray_actors, gpus_per_actor=ray_gpus_per_actor)
    options = embedder_options(option or [])
    given = {"checkpoint": checkpoint, "layer": layer, "window_seconds": window_seconds, "device": device}
    options.update({key: value for key, value in given.items() if value is not None})
    names = model_types(model_type)
    if len(names) > 1 and options:
        raise SonicError(f"embedder options (--option, --checkpoint, --layer, --window-seconds, --device) go with "
                         f"one --model-type; {', '.join(map(str, names))} each take their defaults when named together")
    results = embed_many(
        audio_dir,
        names,
        out,
        model_options={names[0]: options} if options else None,
        lyrics_dir=lyrics_dir,
        metadata_file=metadata_file,
        music4all_root=music4all_root,
        batch_size=batch_size,
        num_workers=num_workers,
        offset_seconds=offset_seconds,
        duration_seconds=duration_seconds,
        exclude=exclude_file,
        shard_size=shard_size,
        engine=engine,
        ray=ray,
    )
    source = next((path for path in (audio_dir, lyrics_dir, metadata_file, music4all_root) if path is not None), None)
    for result in results:
        if result.skipped:
            typer.echo(f"{result.table_path} is already complete for these inputs and settings; kept as it is")
            continue
        if result.n_reused:
            typer.echo(f"reused {result.n_reused} tracks from an earlier interrupted run")
        typer.echo(f"embedded {result.n_embedded} tracks" + (f" from {source}" if source is not None else "")
                   + f" into {result.table_path}")
        if result.n_failed:
            typer.echo(f"failed {result.n_failed} files; reasons in {result.failures_path}")
        typer.echo(f"{result.tracks_per_second:.1f} tracks/s ({result.elapsed_seconds:.1f} s)")


@app.command()
def fetch(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Embedders whose weights to fetch, e.g. mert-v1-95m musicnn (see --list)."),
    ] = None,
    list_: Annotated[
        bool, typer.Option("--list", help="Say which fetchable weights are present, and where; fetch nothing.")
    ] = False,
    revision: Annotated[
        str | None, typer.Option("--revision", help="Hub branch, tag or commit to fetch (hub models).")
    ] = None,
    wheel: Annotated[
        Path | None, typer.Option("--wheel", help="musicnn: a local copy of its wheel, instead of pip download.")
    ] = None,
) -> None:
    """Fetch published weights into the local caches (Hugging Face cache; musicnn from its PyPI wheel)."""
    from sonic.errors import SonicError
    from sonic.tails.models.fetch import fetch_status, fetch_weights, fetchable

    if list_:
        for entry in fetch_status():
            where = entry.where if entry.present else f"missing (from {entry.source})"
            typer.echo(f"{entry.name}\t{'present' if entry.present else 'absent'}\t{where}")
        return
    if not names:
        raise SonicError(f"name the embedders to fetch (or --list); fetchable: {', '.join(fetchable())}")
    for name in names:
        folders = fetch_weights(name, revision=revision, wheel=wheel)
        typer.echo(f"{name} weights in {', '.join(str(folder) for folder in folders)}")


def embedder_options(pairs: list[str]) -> dict[str, object]:
    """``["layer=6", "fit=resize"]`` -> ``{"layer": 6, "fit": "resize"}`` (numbers as numbers)."""
    from sonic.errors import SonicError

    options: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SonicError(f"--option takes KEY=VALUE, got {pair!r}")
        for kind in (int, float):
            try:
                options[key.strip()] = kind(value)
                break
            except ValueError:
                continue
        else:
            options[key.strip()] = value
    return options
