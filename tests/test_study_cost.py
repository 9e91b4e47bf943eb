"""benchmarks/study_cost.py's table writer, on a small made-up set of measurements (nothing is timed here).

The figures are chosen so that every total can be worked out by hand; the page's markers must survive,
the text around them must not change, and each row must say whether it was measured (and where) or
assumed (and by which rule).
"""

from __future__ import annotations

import dataclasses

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def table():
    spec = importlib.util.spec_from_file_location("study_cost_table", ROOT / "benchmarks" / "study_cost_table.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def made_up(table, *, device: str = "cpu", gpu: str | None = None):
    """1,000 tracks, two audio embedders (one in the CPU workers), one other, 1 fusion: 4 tables, 2 seeds."""
    t = table
    study = t.Study(tracks=1000, audio_embedders=("mfcc_104", "bigmodel"), other_embedders=("lyrics",), fusions=1,
                    seeds=2, content_models=("knn", "snn", "bert4rec"), baselines=("random", "pop"))
    return t.Measurements(
        machine=t.Machine(cpu="Test CPU 9000", cores=2, gpu=gpu, date="2026-12-07", load=(1.0, 2.0, 3.0)),
        study=study,
        embedders=(
            t.EmbedderCost("mfcc_104", 22050, clips=2, batch=2, wall_per_clip=0.05, cpu_per_clip=0.04, device="cpu",
                           gpu_runs=False),
            t.EmbedderCost("bigmodel", 24000, clips=2, batch=2, wall_per_clip=10.0, cpu_per_clip=18.0, device=device),
        ),
        decodes=(t.DecodeCost(0, 4, 0.2, 0.1), t.DecodeCost(22050, 4, 0.05, 0.02), t.DecodeCost(24000, 4, 0.06, 0.03)),
        runs=(
            t.RunCost("knn", "", "cpu", 0.0, 0.0, 0.0, 0, 0, 0, "", run_seconds=36.0, run_cpu_seconds=72.0),
            t.RunCost("snn", "", device, 20.0, 1000.0, 1800.0, 5, 537, 30, "an assumed count"),
            t.RunCost("bert4rec", "loss=softmax", device, 30.0, 30000.0, 5000.0, 12, 329, 126, "MovieLens"),
            t.RunCost("bert4rec", "loss=gbce", device, 30.0, 300.0, 500.0, 12, 329, 126, "MovieLens"),
        ),
        matmul_gflops=50.0,
        gpu_tflops=100.0,
        notes=("a note",),
    )


PAGE = "# Scale\n\nintro kept\n\n## Worked estimate\n\n{begin}\nold hand-written figures\n{end}\n\ntail kept\n"


def test_the_section_replaces_what_lies_between_the_markers_only(table, tmp_path):
    page = tmp_path / "scale.md"
    page.write_text(PAGE.format(begin=table.BEGIN, end=table.END))
    table.write_section(page, table.section(made_up(table)))
    text = page.read_text()
    assert text.startswith("# Scale\n\nintro kept\n\n## Worked estimate\n\n" + table.BEGIN)
    assert text.endswith(table.END + "\n\ntail kept\n")
    assert text.count(table.BEGIN) == 1 and text.count(table.END) == 1
    assert "old hand-written figures" not in text
    # a second write replaces the first rather than adding to it
    table.write_section(page, table.section(made_up(table)))
    assert page.read_text() == text


def test_a_page_without_the_markers_is_refused_and_left_alone(table, tmp_path):
    page = tmp_path / "scale.md"
    page.write_text("# Scale\n\nno markers\n")
    with pytest.raises(ValueError, match="markers"):
        table.write_section(page, "body")
    assert page.read_text() == "# Scale\n\nno markers\n"
    page.write_text(f"{table.END}\n{table.BEGIN}\n")  # in the wrong order
    with pytest.raises(ValueError, match="markers"):
        table.write_section(page, "body")


def rows(text: str, start: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(start)]


def test_every_row_says_measured_where_or_assumed_by_which_rule(table):
    text = table.section(made_up(table))
    machine = "measured (Test CPU 9000, 2 cores, GPU: none, 2026-12-07)"
    for start in ("| decode", "| resample", "| `mfcc_104`", "| `bigmodel`", "| `knn`", "| `snn`", "| `bert4rec"):
        found = rows(text, start)
        assert found, start
        assert all(machine in row for row in found), start
    # GPU figures without a GPU: assumptions, by the rule stated on the page
    for start in ("| `bigmodel`", "| `snn`", "| `bert4rec"):
        assert all("ASSUMPTION" in row for row in rows(text, start)), start
    assert "ASSUMPTION" not in rows(text, "| `knn`")[0] and "ASSUMPTION" not in rows(text, "| `mfcc_104`")[0]
    assert "50 GFLOP/s" in text and "100 TFLOP/s" in text and "10 ms per optimiser step" in text
    assert "2 x (2 + 3 x 4) = **28 runs**" in text
    assert "- a note" in text


def test_on_a_gpu_the_gpu_rows_are_measured(table):
    text = table.section(made_up(table, device="cuda", gpu="NVIDIA H100 80GB HBM3"))
    assert "GPU: NVIDIA H100 80GB HBM3" in text
    for start in ("| `bigmodel`", "| `snn`", "| `bert4rec"):
        assert all("ASSUMPTION" not in row for row in rows(text, start)), start


def test_the_totals_by_hand(table):
    m = made_up(table)
    totals = table.totals(m)
    # each embedder decodes its own copy: 1000 x ((0.1 + 0.02) + (0.1 + 0.03)) CPU-s
    assert totals.decode_each_cpu_s == pytest.approx(250.0)
    # one decode, one resampling per rate: 1000 x (0.1 + 0.02 + 0.03)
    assert totals.decode_once_cpu_s == pytest.approx(150.0)
    assert totals.cpu_model_cpu_s == pytest.approx(40.0)  # MFCC in the workers: 1000 x 0.04
    # the GPU rule: 10 s here x 50 GFLOP/s / 100 TFLOP/s = 0.005 s per clip
    assert totals.gpu_model_s == pytest.approx(5.0) and not totals.gpu_model_measured
    runs = 2 * 4  # seeds x tables, per content model
    assert totals.knn_cpu_s == pytest.approx(runs * 72.0)
    # setup stays CPU time; an epoch by the rule, but at least 10 ms per step
    snn = 20.0 + 30 * max(1000.0 * 50 / 100_000, 537 * 0.010)  # the floor: 5.37 s
    softmax = 30.0 + 126 * max(30000.0 * 50 / 100_000, 329 * 0.010)  # the rule: 15 s
    gbce = 30.0 + 126 * max(300.0 * 50 / 100_000, 329 * 0.010)  # the floor: 3.29 s
    assert totals.trained_gpu_s == pytest.approx({"loss=softmax": runs * (snn + softmax),
                                                  "loss=gbce": runs * (snn + gbce)})


def test_everything_on_cpus_by_hand(table):
    m = made_up(table)
    runs = 2 * 4
    embedding = 250.0 + 1000 * (0.04 + 18.0)
    snn = 20.0 + 30 * 1800.0
    expected = {variant: embedding + runs * 72.0 + runs * (snn + 30.0 + 126 * epoch)
                for variant, epoch in (("loss=softmax", 5000.0), ("loss=gbce", 500.0))}
    assert table.cpu_only(m) == pytest.approx(expected)


def test_a_content_model_named_twice_counts_its_runs_twice(table):
    """A study that runs knn and snn also as shuffle controls (two entries each) pays for them twice."""
    m = made_up(table)
    doubled = dataclasses.replace(m, study=dataclasses.replace(
        m.study, content_models=("knn", "snn", "bert4rec", "knn", "snn"),
        content_labels=("knn", "snn", "bert4rec", "knn-shuffled", "snn-shuffled")))
    once, twice = table.totals(m), table.totals(doubled)
    runs = 2 * 4
    assert doubled.study.runs == 2 * (2 + 5 * 4)
    assert twice.knn_cpu_s == pytest.approx(2 * once.knn_cpu_s)
    snn = 20.0 + 30 * max(1000.0 * 50 / 100_000, 537 * 0.010)
    for variant, seconds in once.trained_gpu_s.items():
        assert twice.trained_gpu_s[variant] == pytest.approx(seconds + runs * snn)
    for variant, seconds in table.cpu_only(m).items():
        assert table.cpu_only(doubled)[variant] == pytest.approx(
            seconds + runs * 72.0 + runs * (20.0 + 30 * 1800.0))
    assert "`knn-shuffled`, `snn-shuffled`) x 2 seeds" in table.section(doubled)


def test_measurements_survive_their_json(table):
    m = made_up(table)
    assert table.Measurements.from_json(m.to_json()) == m


def test_the_docs_page_holds_the_markers_once_in_order(table):
    text = (ROOT / "docs" / "scale.md").read_text()
    assert text.count(table.BEGIN) == 1 and text.count(table.END) == 1
    assert text.index(table.BEGIN) < text.index(table.END)
    generated = text[text.index(table.BEGIN) : text.index(table.END)]
    assert "Generated by `python benchmarks/study_cost.py`" in generated
    assert "measured (" in generated
