"""The built-in demo: a synthetic Music4All-shaped catalogue, the demo study run on it, and its report."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sonic.demo.catalogue import Catalogue, CatalogueConfig, generate_catalogue

__all__ = ["Catalogue", "CatalogueConfig", "DemoResult", "STUDY_FILE", "demo_study", "generate_catalogue", "has_torch",
           "run_demo"]

#: The demo's study file (paths relative to the demo's output folder); examples/demo.toml is a copy.
STUDY_FILE = Path(__file__).with_name("study.toml")


@dataclass(frozen=True)
class DemoResult:
    """The demo study's outcome (:class:`sonic.study.execute.ExperimentResult`) and its report."""

    experiment: object
    report_path: Path

    @property
    def results(self):
        return self.experiment.results

    @property
    def results_path(self) -> Path:
        return self.experiment.results_path

    @property
    def out_dir(self) -> Path:
        return self.experiment.out_dir


#: Parts of the demo study that run on PyTorch (``pip install -e '.[models]'``): left out, with a note, without it.
TORCH_EMBEDDERS = ("musicnn", "dino_vits16_random")
TORCH_RECOMMENDERS = ("snn", "bert4rec", "elsa")
#: The demo's random-weights DINO control, and the published model a checkpoint turns it into.
DINO_CONTROL, DINO_PUBLISHED = "dino_vits16_random", "dino_vits16"


def has_torch() -> bool:
    """Whether PyTorch imports here (the demo's PyTorch parts then use it anyway)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def demo_study(out_dir: str | os.PathLike, *, with_torch: bool | None = None, dino_checkpoint: str | None = None,
               **replace: object):
    """The demo study with its paths under ``out_dir``; ``replace`` swaps whole sections (``evaluation=...``).

    ``with_torch`` False (default: whether PyTorch is installed) leaves out the parts that need it
    (:data:`TORCH_EMBEDDERS`, :data:`TORCH_RECOMMENDERS`) and says so in a report note.
    ``dino_checkpoint``: a published DINO ViT-S/16 checkpoint (a timm folder or the release's ``.pth``)
    that replaces the random-weights control ``dino_vits16_random`` by ``dino_vits16`` on those weights.
    """
    import dataclasses

    from sonic.study.config import parse_study

    study = parse_study(tomllib.loads(STUDY_FILE.read_text()), base_dir=Path(out_dir).resolve(), source=STUDY_FILE)
    if dino_checkpoint is not None:
        study = _with_published_dino(study, str(Path(dino_checkpoint).expanduser().resolve()))
    if not (has_torch() if with_torch is None else with_torch):
        study = _without_torch(study)
    return dataclasses.replace(study, **replace) if replace else study


def _with_published_dino(study, checkpoint: str):
    import dataclasses

    embeddings = study.embeddings
    options = {name: dict(values) for name, values in embeddings.options}
    options[DINO_PUBLISHED] = {**options.pop(DINO_CONTROL, {}), "checkpoint": checkpoint}
    names = tuple(DINO_PUBLISHED if name == DINO_CONTROL else name for name in embeddings.names)
    fusions = tuple("+".join(DINO_PUBLISHED if part == DINO_CONTROL else part for part in fusion.split("+"))
                    for fusion in embeddings.fusions)
    embeddings = dataclasses.replace(embeddings, names=names, fusions=fusions,
                                     options=tuple((name, tuple(sorted(values.items())))
                                                   for name, values in options.items()))
    return dataclasses.replace(study, embeddings=embeddings)


def _without_torch(study):
    import dataclasses

    embeddings = study.embeddings
    left_out = [name for name in embeddings.names if name in TORCH_EMBEDDERS or name == DINO_PUBLISHED]
    recommenders = [spec for spec in study.recommenders if spec.name in TORCH_RECOMMENDERS]
    # a recommender restricted to embeddings that are all left out goes too; the others keep the tables left
    orphans = [spec for spec in study.recommenders if spec.embeddings and spec not in recommenders
               and not set(spec.embeddings) - set(left_out)]
    if not left_out and not recommenders:
        return study
    embeddings = dataclasses.replace(
        embeddings,
        names=tuple(name for name in embeddings.names if name not in left_out),
        fusions=tuple(fusion for fusion in embeddings.fusions if not set(fusion.split("+")) & set(left_out)),
        options=tuple((name, values) for name, values in embeddings.options if name not in left_out),
    )  # fmt: skip
    parts = [*left_out, *dict.fromkeys(spec.name for spec in recommenders),
             *(spec.label for spec in orphans)]
    note = (f"PyTorch is not installed, so this demo left out {', '.join(parts[:-1])} and {parts[-1]} "
            f"(they run after: python3 -m pip install -c constraints.txt -e '.[models]')." if len(parts) > 1 else
            f"PyTorch is not installed, so this demo left out {parts[0]} (it runs after: "
            f"python3 -m pip install -c constraints.txt -e '.[models]').")
    report = dataclasses.replace(study.report, notes=(*study.report.notes, note))
    kept = tuple(dataclasses.replace(spec, embeddings=tuple(name for name in spec.embeddings if name not in left_out))
                 for spec in study.recommenders if spec not in recommenders and spec not in orphans)
    return dataclasses.replace(study, embeddings=embeddings, recommenders=kept, report=report)


def run_demo(out_dir: str | os.PathLike = "sonic-demo", *, seed: int = 0,
             catalogue: CatalogueConfig | None = None, study=None, num_workers: int | None = None,
             progress: bool = True, echo: Callable[[str], None] | None = None,
             warn: Callable[[str], None] | None = None, dino_checkpoint: str | None = None) -> DemoResult:
    """Build the demo catalogue under ``out_dir/data``, run the demo study (or ``study``) under
    ``out_dir``, and write its report to ``out_dir/report/index.html``.

    ``out_dir`` is claimed first (:func:`sonic.files.output_folder`, kind :data:`FOLDER_KIND`: new,
    empty, or a demo sonic wrote) and held for the whole demo; the study inside it is run in the same
    folder. ``dino_checkpoint``: see :func:`demo_study` (ignored when ``study`` is given). The study's
    report notes (what was left out and why) go to ``echo`` first.
    """
    from sonic.files import output_folder
    from sonic.study.execute import run_experiment
    from sonic.study.report import write_report

    out_dir = Path(out_dir)
    study = study or demo_study(out_dir, dino_checkpoint=dino_checkpoint)
    with output_folder(out_dir, FOLDER_KIND, adopt=lambda entry: entry.name in DEMO_NAMES):
        for note in study.report.notes:
            if echo is not None:
                echo(note)
        catalogue = catalogue or CatalogueConfig(seed=seed)
        generate_catalogue(out_dir / "data", catalogue, num_workers=num_workers)
        experiment = run_experiment(study, out_dir, num_workers=num_workers, progress=progress, echo=echo, warn=warn)
        report = write_report(out_dir, out_dir / "report", num_workers=num_workers)
    return DemoResult(experiment, report)


#: The kind of output folder a demo is (:func:`sonic.files.output_folder`); the study run inside it accepts it.
FOLDER_KIND = "demo"
#: What an older sonic's unmarked demo folder holds: the catalogue and what its study and report write.
DEMO_NAMES = frozenset({"data", "study.toml", "steps", "split", "embeddings", "runs", "results", "results.csv",
                        "report"})  # fmt: skip
