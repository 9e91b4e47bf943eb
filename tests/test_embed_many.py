"""One pass over the audio for several embedders (sonic.tails.many): tables equal bit for bit to
separate runs, resume per embedder, one sentence for an unknown name, and the study's embed stage."""

from __future__ import annotations

import numpy as np
import pytest
from audio_fixtures import noise, tone, write

from sonic.cli import main
from sonic.tails.many import embed_many
from sonic.tails.models.mfcc import MFCCConfig, MFCCEmbedder
from sonic.tails.runner import embed_folder
from sonic.tails.table import read_embeddings
from sonic.testing import EMBEDDER_FIXTURES

RATE = 44100  # none of the embedders' rates: every one resamples


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """9 clips of distinct lengths at 44.1 kHz (one stereo, one too short), and one broken file."""
    root = tmp_path_factory.mktemp("clips")
    for i in range(9):
        seconds = 0.5 if i == 4 else 1.6 + i / 7
        waveform = tone(180.0 + 55 * i, seconds, RATE) + noise(seconds, RATE, seed=i)
        write(root / f"c{i}", np.stack([waveform, 0.5 * waveform], axis=1) if i == 2 else waveform, RATE)
    (root / "c3b.wav").write_bytes(b"not audio")
    return root


@pytest.fixture(scope="module")
def embedders(tmp_path_factory):
    """mfcc_104 (by name, embedded in the workers), a tiny waveform transformer (music2vec, 16 kHz) and a
    tiny picture embedder (the random DINO control, 22.05 kHz), all on random weights."""
    root = tmp_path_factory.mktemp("weights")
    return ["mfcc_104", EMBEDDER_FIXTURES["music2vec-v1"](root / "m2v"),
            EMBEDDER_FIXTURES["dino_vits16_random"](root / "dino")]


def _table(path):
    table = read_embeddings(path)
    return table.track_ids, table.vectors


def _same(first, second):
    ids, vectors = _table(first.table_path)
    other_ids, other_vectors = _table(second.table_path)
    assert np.array_equal(ids, other_ids) and np.array_equal(vectors, other_vectors)
    assert first.failures == second.failures


def test_one_pass_gives_the_tables_of_separate_runs_bit_for_bit(folder, embedders, tmp_path):
    together = embed_many(folder, embedders, tmp_path / "pass", num_workers=2, batch_size=3, shard_size=4,
                          progress=False)
    alone = [embed_folder(folder, item, tmp_path / "alone", num_workers=2, batch_size=3, shard_size=4,
                          progress=False) for item in embedders]

    assert [result.table_path.name for result in together] == ["mfcc_104.parquet", "music2vec-v1.parquet",
                                                                "dino_vits16_random.parquet"]
    for first, second in zip(together, alone, strict=True):
        _same(first, second)
        assert first.n_embedded == 8 and first.n_failed == 2  # the broken file and the too-short clip
    assert not list((tmp_path / "pass").glob("*.shards"))


class _FailsAfter(MFCCEmbedder):
    """mfcc_20 in the main process that fails after ``calls`` batches (the same name and manifest)."""

    runs_in_workers = False

    def __init__(self, calls: int) -> None:
        super().__init__(MFCCConfig(n_mfcc=20, sample_rate=16000))
        self.calls = calls

    def embed(self, batch):
        if self.calls == 0:
            raise RuntimeError("stopped on purpose")
        self.calls -= 1
        return super().embed(batch)


def test_an_embedder_that_fails_leaves_the_others_and_resumes_alone(folder, embedders, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="stopped on purpose"):
        embed_many(folder, [embedders[0], _FailsAfter(calls=2)], out, num_workers=0, batch_size=2, shard_size=4,
                   progress=False)
    assert (out / "mfcc_104.parquet").is_file() and not (out / "mfcc_20.parquet").exists()
    assert len(list((out / "mfcc_20.shards").glob("*.parquet"))) == 1  # 2 batches of 2: the first shard

    again = embed_many(folder, "mfcc_104,mfcc_20", out, model_options={"mfcc_20": {"sample_rate": 16000}},
                       num_workers=2, batch_size=3, shard_size=4, progress=False)

    assert again[0].skipped and not again[1].skipped  # the finished table is kept; the other resumes
    assert again[1].n_reused == 4
    alone = embed_folder(folder, "mfcc_20", tmp_path / "alone", model_options={"sample_rate": 16000},
                         num_workers=0, shard_size=4, progress=False)
    _same(again[1], alone)


def test_cli_several_names_and_an_unknown_one(folder, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_status:
        main(["embed", "--model-type", "MFCC,mfcc_20", "--audio-dir", str(folder), "--out", str(tmp_path / "out"),
              "--num-workers", "0"])
    assert exit_status.value.code == 0
    assert sorted(path.name for path in (tmp_path / "out").glob("*.parquet")) == ["mfcc_104.parquet",
                                                                                  "mfcc_20.parquet"]
    capsys.readouterr()

    with pytest.raises(SystemExit) as exit_status:
        main(["embed", "--model-type", "mfcc_104,mret", "--audio-dir", str(folder), "--out", str(tmp_path / "x")])

    assert exit_status.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("sonic: error: unknown embedder 'mret'; known: ") and "musicnn" in line
    assert not (tmp_path / "x").exists()


def test_the_study_embeds_two_audio_embedders_in_one_pass_as_separate_runs_would(tmp_path):
    from study_fixtures import study_file, tiny_catalogue

    from sonic.study import run_experiment

    catalogue = tiny_catalogue(tmp_path / "catalogue")
    extra = '\n[embeddings.options]\nmfcc_20 = { sample_rate = 16000 }\n'
    study = study_file(tmp_path / "study.toml", catalogue, embedders=("mfcc_104", "mfcc_20"), models=("pop",),
                       seeds=(1,), extra="")
    text = study.read_text().replace("[evaluation]", extra.strip() + "\n[evaluation]", 1)
    study.write_text(text)
    said = []
    result = run_experiment(study, tmp_path / "out", num_workers=2, progress=False, echo=said.append)

    assert not result.failures
    for name, options in (("mfcc_104", None), ("mfcc_20", {"sample_rate": 16000})):
        alone = embed_folder(catalogue.audio_dir, name, tmp_path / "alone", model_options=options, num_workers=2,
                             progress=False)
        ids, vectors = _table(tmp_path / "out" / "embeddings" / f"{name}.parquet")
        assert np.array_equal(ids, _table(alone.table_path)[0])
        assert np.array_equal(vectors, _table(alone.table_path)[1])
        assert (tmp_path / "out" / "steps" / f"embed.{name}.json").is_file()
    again = run_experiment(study, tmp_path / "out", num_workers=2, progress=False)
    assert {outcome.key: outcome.status for outcome in again.outcomes if outcome.key.startswith("embed/")} == {
        "embed/mfcc_104": "skipped", "embed/mfcc_20": "skipped"}


class _CtrlCAfter(_FailsAfter):
    """As :class:`_FailsAfter`, but the 'failure' is Ctrl-C: the whole pass stops."""

    def embed(self, batch):
        if self.calls == 0:
            raise KeyboardInterrupt
        self.calls -= 1
        return MFCCEmbedder.embed(self, batch)


def test_ctrl_c_stops_the_pass_says_what_each_keeps_and_a_rerun_ends_with_the_same_tables(folder, tmp_path):
    from sonic.errors import Interrupted

    out = tmp_path / "out"
    with pytest.raises(Interrupted) as stopped:
        embed_many(folder, ["mfcc_104", _CtrlCAfter(calls=3)], out, num_workers=0, batch_size=2, shard_size=4,
                   progress=False)
    message = str(stopped.value)
    assert message.startswith("3 of 3 shards of mfcc_104, 2 of 3 shards of mfcc_20 are kept in ")  # 3 batches
    assert message.endswith("run the same command again to continue")
    assert not list(out.glob("*.parquet"))

    again = embed_many(folder, "mfcc_104,mfcc_20", out, model_options={"mfcc_20": {"sample_rate": 16000}},
                       num_workers=2, batch_size=3, shard_size=4, progress=False)
    whole = embed_many(folder, "mfcc_104,mfcc_20", tmp_path / "whole",
                       model_options={"mfcc_20": {"sample_rate": 16000}}, num_workers=0, shard_size=4, progress=False)
    assert all(result.n_reused >= 4 for result in again)
    for first, second in zip(again, whole, strict=True):
        _same(first, second)
