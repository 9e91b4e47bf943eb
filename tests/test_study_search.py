"""Settings chosen on validation: a study's search runs trials on val only, chooses, and only the choice sees test."""

from __future__ import annotations

import itertools
import json
import math

import optuna
import pandas as pd
import pytest
from cli_runner import sonic
from search_fixtures import register_fragile, search_study, taste_with_cold

from sonic.study import check_study, read_study, run_experiment, store
from sonic.study.steps import plan_steps
from sonic.study.tuning import trial_table

TPE = "search = { l2 = { low = 0.5, high = 5000.0, log = true } }\ntrials = 8"


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    return taste_with_cold(tmp_path_factory.mktemp("events") / "events.csv")


@pytest.fixture(scope="module")
def searched(events, tmp_path_factory):
    """A TPE search of ease's l2 on a fixed split with two run seeds, run once."""
    root = tmp_path_factory.mktemp("tpe")
    path = search_study(root / "study.toml", events, search=TPE, seeds=(7, 8))
    lines = []
    result = run_experiment(path, root / "out", echo=lines.append)
    assert not result.failures, result.failures
    return result, lines


def records(out, kind):
    return {path.name: json.loads(path.read_text()) for path in sorted((out / "steps").glob(f"{kind}.*.json"))}


def test_the_trials_are_the_ones_optunas_seeded_tpe_asks_for(searched):
    result, _ = searched
    trials = store.trials(result.store_dir)
    assert list(trials["number"]) == list(range(8)) and set(trials["search"]) == {"ease---split11"}
    # the reference: Optuna's own TPE, seeded and started alike, told the same validation scores
    sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=5)
    reference = optuna.create_study(direction="maximize", sampler=sampler)
    for row in trials.itertuples():
        trial = reference.ask()
        assert trial.suggest_float("l2", 0.5, 5000.0, log=True) == json.loads(row.params)["l2"]
        reference.tell(trial, row.value)
    assert reference.best_trial.number == int(trials.loc[trials["value"].idxmax(), "number"])


def test_the_search_chooses_the_best_validation_score(searched):
    result, lines = searched
    trials = store.trials(result.store_dir)
    best = trials.loc[trials["value"].idxmax()]
    assert trials["value"].nunique() > 4  # l2 matters on this data: the choice is not a tie
    runs = store.runs(result.store_dir).set_index("run")
    for run in ("ease---seed7", "ease---seed8"):  # one search for the fixed split, reused for both seeds
        chosen = json.loads(runs.loc[run, "chosen_by"])
        assert chosen == {"search": "ease---split11", "trial": int(best["number"]),
                          "params": json.loads(best["params"]), "value": best["value"], "metric": "NDCG", "k": 10,
                          "slice": "val"}
        assert json.loads(runs.loc[run, "options"]) == json.loads(best["params"])
    assert not isinstance(runs.loc["pop---seed7"].get("chosen_by"), str)
    assert any(line.startswith("[3/6] search ease---split11: chose trial") for line in lines)
    # the run fitted with the chosen l2 and the same seed scores on val what its trial scored
    val = result.results.query("model == 'ease' and seed == 7 and split == 'val' and metric == 'NDCG' and k == 10")
    assert val["mean"].item() == pytest.approx(best["value"], abs=1e-12)


def test_test_and_cold_test_are_evaluated_only_with_the_chosen_setting(searched):
    result, _ = searched
    out = result.out_dir
    trials = store.trials(result.store_dir)
    chosen = json.loads(trials.loc[trials["value"].idxmax(), "params"])
    for name, record in records(out, "trial").items():  # trials: val only, no model kept
        folder = out / "trials" / record["key"].removeprefix("trial/")
        config = json.loads((folder / "config.json").read_text())
        assert config["modes"] == ["val"], name
        metrics = pd.DataFrame(json.loads((folder / "metrics.json").read_text())["metrics"])
        assert set(metrics["slice"]) == {"val"} and not (folder / "model").exists()
    evaluated = {}
    for name, record in records(out, "run").items():
        config = json.loads((out / "runs" / record["key"].removeprefix("run/") / "config.json").read_text())
        assert config["modes"] == ["val", "test", "cold_test"]
        evaluated[record["settings"]["label"], record["settings"]["seed"]] = config["options"]
    assert evaluated[("ease", 7)] == evaluated[("ease", 8)] == chosen
    slices = store.query(result.store_dir, "model = 'ease' AND split IN ('test', 'cold_test')")
    assert set(slices["run"]) == {"ease---seed7", "ease---seed8"}


def test_a_rerun_replays_the_search_and_redoes_nothing(searched):
    result, _ = searched
    before = {path.name: path.read_bytes() for path in (result.out_dir / "steps").glob("*.json")}
    lines = []
    again = run_experiment(result.out_dir, result.out_dir, echo=lines.append)  # its study.resolved.toml
    assert not again.failures
    assert sum(line.endswith("(done earlier)") for line in lines) == 8
    assert sum(line.endswith("done earlier, skipped") for line in lines) == 5  # split and the four runs
    assert {path.name: path.read_bytes() for path in (result.out_dir / "steps").glob("*.json")} == before


def test_more_trials_keep_the_earlier_ones(events, tmp_path):
    short = search_study(tmp_path / "short.toml", events, search=TPE.replace("trials = 8", "trials = 4"))
    run_experiment(short, tmp_path / "out")
    first = store.trials(tmp_path / "out" / "results")
    lines = []
    run_experiment(search_study(tmp_path / "short.toml", events, search=TPE.replace("trials = 8", "trials = 6")),
                   tmp_path / "out", echo=lines.append)
    longer = store.trials(tmp_path / "out" / "results")
    assert sum(line.endswith("(done earlier)") for line in lines) == 4
    pd.testing.assert_frame_equal(longer.head(4), first)
    assert len(longer) == 6


def test_a_grid_search_tries_every_point_of_its_grid_once(events, tmp_path):
    grid = ('search = { l2 = [1.0, 30.0, 900.0], min_listeners = { low = 1, high = 2, step = 1 } }\n'
            'sampler = "grid"\nsearch_seed = 3')
    result = run_experiment(search_study(tmp_path / "grid.toml", events, search=grid), tmp_path / "out")
    trials = store.trials(result.store_dir)
    tried = [tuple(sorted(json.loads(params).items())) for params in trials["params"]]
    expected = [(("l2", l2), ("min_listeners", m)) for l2, m in itertools.product((1.0, 30.0, 900.0), (1, 2))]
    assert sorted(tried) == sorted(expected) and len(set(tried)) == 6  # all six, each once (trials: the grid's size)
    assert all(isinstance(json.loads(params)["min_listeners"], int) for params in trials["params"])
    chosen = json.loads(store.runs(result.store_dir).set_index("run").loc["ease---seed7", "chosen_by"])
    assert chosen["value"] == trials["value"].max()


def test_a_failed_trial_is_recorded_and_the_search_goes_on(events, tmp_path):
    register_fragile()
    search = "search = { l2 = [1.0, 100.0, 1000.0] }\nsampler = \"grid\""
    result = run_experiment(search_study(tmp_path / "s.toml", events, search=search, model="fragile"), tmp_path / "out")
    failed = [outcome.key for outcome in result.failures]
    assert failed == ["trial/fragile---split11-t" + f"{number:03d}" for number in range(3)
                      if json.loads((tmp_path / "out" / "steps" / f"trial.fragile---split11-t{number:03d}.json")
                                    .read_text())["status"] == "failed"]  # fmt: skip
    assert len(failed) == 1
    trials = store.trials(result.store_dir)
    assert sorted(json.loads(params)["l2"] for params in trials["params"]) == [100.0, 1000.0]
    assert (result.results["model"] == "fragile").any()

    every = run_experiment(search_study(tmp_path / "t.toml", events, search="search = { l2 = [1.0, 2.0] }\n"
                                        "sampler = \"grid\"", model="fragile"), tmp_path / "all-fail")
    keys = {outcome.key: outcome.status for outcome in every.failures}
    assert keys["search/fragile---split11"] == "failed" and keys["run/fragile---seed7"] == "blocked"
    assert not (every.results["model"] == "fragile").any()


def test_one_search_per_split_and_embedding(events, tmp_path):
    fixed = check_study(read_study(search_study(tmp_path / "a.toml", events, search=TPE, seeds=(1, 2))))
    per_seed = check_study(read_study(search_study(tmp_path / "b.toml", events, search=TPE, seeds=(1, 2),
                                                   split_seed=None)))
    assert [step.name for step in plan_steps(fixed) if step.kind == "search"] == ["ease---split11"]
    steps = plan_steps(per_seed)
    assert [step.name for step in steps if step.kind == "search"] == ["ease---split1", "ease---split2"]
    runs = {step.name: step.needs for step in steps if step.kind == "run" and step.name.startswith("ease")}
    assert runs == {"ease---seed1": ("split/seed-1", "search/ease---split1"),
                    "ease---seed2": ("split/seed-2", "search/ease---split2")}


def test_sonic_results_lists_the_trials_and_the_report_shows_them(searched, tmp_path):
    result, _ = searched
    listed = sonic("results", result.out_dir, "--trials")
    assert listed.returncode == 0, listed.stderr
    table = trial_table(result.store_dir)
    best = int(table.loc[table["value"].idxmax(), "number"])
    lines = listed.stdout.splitlines()
    assert lines[0].startswith("search ease---split11: ease on -, split seed 11, 8 trials, maximising val NDCG@10")
    starred = [line for line in lines if line.startswith("*")]
    assert starred[0].split()[1] == str(best) and "ease---seed7, ease---seed8" in starred[1]
    both = sonic("results", result.out_dir, "--trials", "--where", "k = 10")
    assert both.returncode == 2 and "--where filters the leaderboard" in both.stderr

    page = sonic("report", result.out_dir, "--out", tmp_path / "report")
    assert page.returncode == 0, page.stderr
    html = (tmp_path / "report" / "index.html").read_text()
    assert "Settings chosen on validation" in html and "search-trials.png" in html
    csv = pd.read_csv(tmp_path / "report" / "data" / "trials.csv")
    assert len(csv) == 8 and csv["chosen"].sum() == 1 and int(csv.loc[csv["chosen"], "number"].item()) == best


def test_a_study_without_a_search_says_so_in_the_report(events, tmp_path):
    path = search_study(tmp_path / "s.toml", events, search="options = { l2 = 50.0 }")
    result = run_experiment(path, tmp_path / "out")
    assert store.trials(result.store_dir).empty
    assert sonic("results", tmp_path / "out", "--trials").stdout.startswith("no finished search trial")
    assert sonic("report", tmp_path / "out").returncode == 0
    assert "No recommender in this study has a search" in (tmp_path / "out" / "report" / "index.html").read_text()


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("search = { l3 = [1.0] }\ntrials = 2",
         "search names unknown option 'l3' of ease; known: l2, max_tracks, min_listeners"),
        ("search = { min_listeners = [1.5, 2] }\ntrials = 2", "min_listeners value 1.5 is not an integer"),
        ("search = { min_listeners = { low = 1.0, high = 3.0 } }\ntrials = 2", "must be a range of integers"),
        ("search = { l2 = [\"big\"] }\ntrials = 2", "l2 value 'big' is not a number"),
        ("search = { l2 = { low = -1.0, high = 10.0 } }\ntrials = 2", "l2 = -1.0 is refused: ease l2 must be positive"),
        ("search = { l2 = { low = 1.0, high = 10.0 } }\nsampler = \"grid\"", "sampler 'grid' needs lists or ranges "
         "with a step; search l2 is a range without step"),
        ("search = { l2 = [1.0, 2.0] }\nsampler = \"grid\"\ntrials = 3", "asks for 3 trials, but the grid has only 2"),
        ("search = { l2 = { low = 1.0, high = 10.0 } }",
         "needs trials = N, the number of settings sampler 'tpe' tries"),
        ("search = { l2 = [1.0] }\nsampler = \"random\"\ntrials = 1", "sampler must be one of tpe, grid, got 'random'"),
        ("search = { l2 = [1.0] }\ntrials = 0", "trials must be a positive integer, got 0"),
        ("search = { l2 = [1.0] }\ntrials = 1\nsearch_seed = -1", "search_seed must be a non-negative integer"),
        ("trials = 4", "sets trials but has no search"),
        ("search = { l2 = [1.0] }\ntrials = 1\noptions = { l2 = 5.0 }", "searches 'l2', which options also sets"),
        ("search = { l2 = { low = 10.0, high = 1.0 } }\ntrials = 1", "needs low < high"),
        ("search = { l2 = { low = 0.0, high = 1.0, log = true } }\ntrials = 1", "log = true needs low > 0"),
        ("search = { l2 = { low = 1.0, high = 9.0, log = true, step = 2.0 } }\ntrials = 1",
         "takes log = true or a step"),
        ("search = { l2 = { low = 1.0, high = 10.0, step = 2.0 } }\ntrials = 1",
         "high must be low plus a whole number"),
        ("search = { l2 = { low = 1.0, high = 10.0, scale = 2 } }\ntrials = 1", "unknown key 'scale' in"),
        ("search = { l2 = [] }\ntrials = 1", "search l2 is an empty list"),
        ("search = { l2 = [1.0, 1.0] }\ntrials = 1", "lists a value twice"),
        ("search = [1.0]\ntrials = 1", "search must be a table of options to choose"),
    ],
)
def test_a_search_space_mistake_is_one_sentence(events, tmp_path, search, expected):
    path = search_study(tmp_path / "s.toml", events, search=search)
    with pytest.raises(Exception) as error:
        check_study(read_study(path))
    assert type(error.value).__name__ in ("SonicError", "UnknownNameError")
    assert expected in str(error.value) and "\n" not in str(error.value)
    assert str(path) in str(error.value)


def test_a_literal_option_lists_its_choices_and_the_objective_is_checked(events, tmp_path):
    knn = '[[recommenders]]\nname = "knn"\nsearch = { count_weight = ["none", "square"] }\nsampler = "grid"\n'
    study = read_study(search_study(tmp_path / "s.toml", events, search=TPE, others=knn))
    with pytest.raises(Exception, match="count_weight value 'square' is not one of none, count, log"):
        check_study(study)
    with pytest.raises(Exception, match="unknown search_metric 'AUC'"):
        check_study(read_study(search_study(tmp_path / "m.toml", events, search=TPE, extra='search_metric = "AUC"\n')))
    with pytest.raises(Exception, match="a search maximises NDCG@20 on val, but 20 is not one of the evaluation ks"):
        check_study(read_study(search_study(tmp_path / "k.toml", events, search=TPE, extra="search_k = 20\n")))


def test_the_objective_can_be_another_metric(events, tmp_path):
    path = search_study(tmp_path / "s.toml", events, search=TPE.replace("trials = 8", "trials = 3"),
                        extra='search_metric = "HitRate"\nsearch_k = 5\n')
    result = run_experiment(path, tmp_path / "out")
    trials = store.trials(result.store_dir)
    assert set(trials["metric"]) == {"HitRate"} and set(trials["k"]) == {5}
    assert all(math.isfinite(value) for value in trials["value"])


def test_none_stands_for_none_in_the_list_of_an_option_that_may_be_none(tmp_path):
    from study_fixtures import study_file, tiny_catalogue

    catalogue = tiny_catalogue(tmp_path / "catalogue")
    knn = ('[[recommenders]]\nname = "knn"\nlabel = "knn-tuned"\nsampler = "grid"\n'
           'search = { recency_half_life_days = ["none", 60.0], count_weight = ["none", "log"] }\n')
    path = study_file(tmp_path / "study.toml", catalogue, models=("pop",), seeds=(3,), modes=("val", "test"),
                      extra=knn)
    result = run_experiment(path, tmp_path / "out")
    assert not result.failures
    trials = store.trials(result.store_dir)
    tried = sorted((params["recency_half_life_days"] is None, params["recency_half_life_days"], params["count_weight"])
                   for params in map(json.loads, trials["params"]))
    assert tried == [(False, 60.0, "log"), (False, 60.0, "none"), (True, None, "log"), (True, None, "none")]
    chosen = json.loads(store.runs(result.store_dir).set_index("run").loc["knn-tuned-mfcc_104-seed3", "options"])
    assert chosen in [json.loads(params) for params in trials.loc[trials["value"] == trials["value"].max(), "params"]]
