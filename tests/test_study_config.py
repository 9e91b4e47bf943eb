"""The study file: typed sections, unknown keys and names refused before anything runs."""

from __future__ import annotations

import textwrap

import pytest

from sonic.cream.data import PROTOCOLS
from sonic.errors import SonicError
from sonic.study import check_study, read_study, run_experiment
from sonic.study.config import RecommenderSpec

KNOWN_PROTOCOLS = ", ".join(sorted(PROTOCOLS))
STUDY = """
title = "t"
[data]
events = "events.tsv"
audio = "audios"
[split]
protocol = "sonic"
[embeddings]
names = ["mfcc_104"]
[[recommenders]]
name = "pop"
[[recommenders]]
name = "knn"
label = "knn-train"
[evaluation]
modes = ["val", "test"]
ks = [5, 10]
seeds = [1, 2]
{extra}
"""


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "events.tsv").write_text("user_id\ttrack_id\ttimestamp\nu1\tt1\t2018-06-01 00:00:00\n")
    (tmp_path / "audios").mkdir()
    return tmp_path


def write(folder, text: str, extra: str = ""):
    path = folder / "study.toml"
    path.write_text(textwrap.dedent(STUDY.format(extra=extra) if text is None else text))
    return path


def test_a_study_file_reads_into_typed_sections(folder):
    study = read_study(write(folder, None))
    assert study.data.events == folder.resolve() / "events.tsv"
    assert study.embeddings.names == ("mfcc_104",)
    assert study.recommenders[1] == RecommenderSpec("knn", "knn-train")
    assert study.evaluation.ks == (5, 10) and study.evaluation.seeds == (1, 2)
    assert study.split_seeds() == (1, 2) and study.split_seed_for(2) == 2
    assert study.report.metric == "NDCG"


def test_a_typo_in_a_key_names_it_with_the_valid_keys(folder):
    path = write(folder, STUDY.format(extra="").replace("names =", "name ="))
    with pytest.raises(SonicError) as error:
        read_study(path)
    message = str(error.value)
    assert "unknown key 'name' in [embeddings] (did you mean 'names'?)" in message
    assert "known: names, fusions, offset_seconds, duration_seconds, batch_size" in message
    assert "\n" not in message


def test_an_unknown_table_and_a_wrong_type_are_refused(folder):
    with pytest.raises(SonicError, match=r"unknown key 'evaluaton' at the top level \(did you mean 'evaluation'\?\)"):
        read_study(write(folder, None, extra="[evaluaton]\nks = [1]"))
    with pytest.raises(SonicError, match=r"\[evaluation\] ks must be an integer, got '10'"):
        read_study(write(folder, STUDY.format(extra="").replace("ks = [5, 10]", 'ks = ["10"]')))
    with pytest.raises(SonicError, match="needs events"):
        read_study(write(folder, "[data]\naudio = 'a'\n"))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('names = ["mfcc_104"]', 'names = ["mfcc_200"]', "unknown embedder 'mfcc_200'; known MFCC names are mfcc_1"),
        ('names = ["mfcc_104"]', 'names = ["mret"]', "unknown embedder 'mret'; known: "),  # mert: MERT's alias
        ('name = "pop"', 'name = "popp"', "unknown recommender 'popp'; known: "),
        ('label = "knn-train"', 'options = { catalog = "all" }', "unknown option 'catalog' for knn; known: catalogue"),
        ('label = "knn-train"', 'label = "pop"', "two recommenders have the label 'pop'"),
        ('protocol = "sonic"', 'protocol = "tamm"', f"unknown split protocol 'tamm'; known: {KNOWN_PROTOCOLS}"),
        ('modes = ["val", "test"]', 'modes = ["val", "cold_test"]', "mode 'cold_test' needs a protocol with a cold"),
        ('seeds = [1, 2]', 'seeds = [1, 1]', "seeds lists a seed twice"),
    ],
)
def test_unknown_names_fail_before_anything_is_written(folder, old, new, expected):
    path = write(folder, STUDY.format(extra="").replace(old, new))
    out = folder / "out"
    with pytest.raises(SonicError) as error:
        run_experiment(path, out, progress=False)
    assert expected in str(error.value)
    assert not out.exists()


def test_embedder_names_resolve_as_the_registry_does(folder):
    study = read_study(write(folder, STUDY.format(extra="").replace('"mfcc_104"', '"mfcc_0104"')))
    resolved = check_study(study)
    assert resolved.embedders == ("mfcc_104",) and resolved.tables == ("mfcc_104",)
    twice = read_study(write(folder, STUDY.format(extra="").replace('["mfcc_104"]', '["mfcc_104", "mfcc_0104"]')))
    with pytest.raises(SonicError, match="embedders 'mfcc_104' and 'mfcc_0104' are both 'mfcc_104'"):
        check_study(twice)


def test_missing_data_and_unusable_report_settings_are_named(folder):
    with pytest.raises(SonicError, match="events file '.*nowhere.tsv' does not exist"):
        check_study(read_study(write(folder, STUDY.format(extra="").replace("events.tsv", "nowhere.tsv"))))
    with pytest.raises(SonicError, match=r"report k = 50 is not one of the evaluation ks \[5, 10\]"):
        check_study(read_study(write(folder, None, extra="[report]\nk = 50")))
    with pytest.raises(SonicError, match="fusion 'mfcc_104\\+lyrics' joins 'lyrics', which is not in"):
        fused = STUDY.format(extra="").replace("[[recommenders]]", "fusions = ['mfcc_104+lyrics']\n[[recommenders]]", 1)
        check_study(read_study(write(folder, fused)))


def test_the_example_study_files_read(tmp_path):
    from pathlib import Path

    from sonic.demo import STUDY_FILE

    examples = Path(__file__).resolve().parent.parent / "examples"
    assert (examples / "demo.toml").read_text() == STUDY_FILE.read_text()
    onion = read_study(examples / "music4all-onion.toml")
    assert onion.split.protocol == "tamm2025" and "cold_test" in onion.evaluation.modes
    assert any(name.startswith("dino") for name in onion.embeddings.names)
    assert {"lyrics", "metadata"} <= {part for fusion in onion.embeddings.fusions for part in fusion.split("+")}
    assert len(onion.evaluation.ks) >= 5 and len(onion.evaluation.seeds) >= 2
    assert {"ease", "elsa"} <= {spec.name for spec in onion.recommenders}  # the journal's collaborative row
    controls = {spec.name: spec.embeddings for spec in onion.recommenders if spec.shuffle}
    assert set(controls) == {"knn", "snn", "bert4rec"}
    assert all(embeddings == onion.embeddings.names for embeddings in controls.values())  # every embedding


def test_a_recommender_can_be_restricted_to_some_embeddings(folder):
    import tomllib

    import tomli_w

    from sonic.study.config import parse_study
    from sonic.study.steps import plan_steps

    names = 'names = ["mfcc_104"]'
    base = STUDY.format(extra="").replace(names, 'names = ["mfcc_104", "mfcc_13"]\nfusions = ["mfcc_104+mfcc_13"]')
    control = '[[recommenders]]\nname = "knn"\nlabel = "knn-shuffled"\nshuffle = true\nembeddings = ["mfcc_13", "mfcc_104+mfcc_13"]\n'
    study = read_study(write(folder, base.replace("[evaluation]", control + "[evaluation]")))
    assert study.recommenders[-1].embeddings == ("mfcc_13", "mfcc_104+mfcc_13")
    runs = [step.settings for step in plan_steps(check_study(study)) if step.kind == "run"]
    tables = {(s["label"], s["embedding"]) for s in runs if s["seed"] == 1}
    assert {table for label, table in tables if label == "knn-shuffled"} == {"mfcc_13", "mfcc_104+mfcc_13"}
    assert {table for label, table in tables if label == "knn-train"} == {"mfcc_104", "mfcc_13", "mfcc_104+mfcc_13"}
    assert parse_study(tomllib.loads(tomli_w.dumps(study.to_dict())), source=study.source) == study
    with pytest.raises(SonicError, match="recommender 'knn-shuffled' names embedding 'lyrics', which is not in "
                                         r"\[embeddings\] names or fusions; known: mfcc_104, mfcc_13"):
        check_study(read_study(write(folder, base.replace("[evaluation]", control.replace('"mfcc_13", ', '"lyrics", ')
                                                          + "[evaluation]"))))
    with pytest.raises(SonicError, match="recommender 'pop' uses no embedding, so it takes no embeddings"):
        check_study(read_study(write(folder, base.replace('name = "pop"', 'name = "pop"\nembeddings = ["mfcc_13"]'))))
    with pytest.raises(SonicError, match="embeddings must be a list of embedding names"):
        read_study(write(folder, base.replace('name = "pop"', 'name = "pop"\nembeddings = "mfcc_13"')))


def test_cold_candidates_are_cold_or_all(folder):
    study = read_study(write(folder, None, extra="cold_candidates = 'all'"))
    assert study.evaluation.cold_candidates == "all"
    with pytest.raises(SonicError, match="cold_candidates must be one of cold, all, got 'hot'"):
        check_study(read_study(write(folder, None, extra="cold_candidates = 'hot'")))


def test_embedder_options_reach_the_embedder_its_step_and_the_written_study(folder):
    import tomllib

    import tomli_w

    from sonic.study.config import parse_study
    from sonic.study.steps import plan_steps

    names = 'names = ["mfcc_104"]'
    text = STUDY.format(extra="").replace(names, f"{names}\n[embeddings.options]\nmfcc_104 = {{ n_fft = 1024 }}")
    study = read_study(write(folder, text))
    assert study.embeddings.options_for("mfcc_104") == {"n_fft": 1024} and study.embeddings.options_for("x") == {}
    resolved = check_study(study)
    assert resolved.options == {"mfcc_104": {"n_fft": 1024}}
    embed = [step for step in plan_steps(resolved) if step.kind == "embed"]
    assert embed[0].settings["options"] == {"n_fft": 1024}
    plain = [step for step in plan_steps(check_study(read_study(write(folder, None)))) if step.kind == "embed"]
    assert "options" not in plain[0].settings  # a study without options keeps its step hashes
    assert embed[0].settings["describe"] != plain[0].settings["describe"]  # the embedder was built with n_fft 1024
    written = study.to_dict()
    assert written["embeddings"]["options"] == {"mfcc_104": {"n_fft": 1024}}
    assert parse_study(tomllib.loads(tomli_w.dumps(written)), source=study.source) == study
    assert "options" not in read_study(write(folder, None)).to_dict()["embeddings"]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("mfcc_20 = { n_fft = 1024 }", "[embeddings.options] names 'mfcc_20', which is not in [embeddings] names; "
                                       "known: mfcc_104"),
        ("mfcc_104 = { nfft = 1024 }", "unknown option 'nfft' for embedder 'mfcc_104'; known: n_fft"),
        ("mfcc_104 = 3", "[embeddings] options must be a table of one table per embedder"),
    ],
)
def test_bad_embedder_options_are_one_sentence_before_anything_runs(folder, options, expected):
    names = 'names = ["mfcc_104"]'
    path = write(folder, STUDY.format(extra="").replace(names, f"{names}\n[embeddings.options]\n{options}"))
    with pytest.raises(SonicError) as error:
        run_experiment(path, folder / "out", progress=False)
    assert expected in str(error.value) and "\n" not in str(error.value)
    assert not (folder / "out").exists()


def test_an_embedders_own_window_overrides_the_studys_for_it_alone(folder):
    from sonic.study.steps import plan_steps

    names = 'names = ["mfcc_104"]'
    text = STUDY.format(extra="").replace(names, 'names = ["mfcc_104", "mfcc_20"]\nduration_seconds = 20.0\n'
                                                 '[embeddings.options]\nmfcc_20 = { offset_seconds = 3, '
                                                 'duration_seconds = 1.5, n_fft = 1024 }')
    study = read_study(write(folder, text))
    assert study.embeddings.window_for("mfcc_20") == (3.0, 1.5) and study.embeddings.window_for("mfcc_104") == (0.0,
                                                                                                                20.0)
    assert study.embeddings.options_for("mfcc_20") == {"n_fft": 1024}  # the window is not an embedder option
    steps = {step.name: step.settings for step in plan_steps(check_study(study)) if step.kind == "embed"}
    assert (steps["mfcc_20"]["offset_seconds"], steps["mfcc_20"]["duration_seconds"]) == (3.0, 1.5)
    assert (steps["mfcc_104"]["offset_seconds"], steps["mfcc_104"]["duration_seconds"]) == (0.0, 20.0)
    assert steps["mfcc_20"]["options"] == {"n_fft": 1024}
    bad = text.replace("duration_seconds = 1.5", 'duration_seconds = "1.5"')
    with pytest.raises(SonicError, match="mfcc_20 duration_seconds must be a number of seconds >= 0, got '1.5'"):
        read_study(write(folder, bad))
