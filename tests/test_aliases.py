"""The original SONIC's names: aliases in the registries, resolved in any case to the names they stand for.

The reference for each alias is the original project's code (ArielBubis/SONIC): its MFCC embedder takes
104 coefficients, its MERT embedder loads ``m-a-p/MERT-v1-330M``, its M2V one ``m-a-p/music2vec-v1``, its
lyrics one ``sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2`` (``--model-type lyrical``), and
its ``--model-name bert`` runs BERT4Rec.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from audio_fixtures import tone
from cli_runner import sonic

from sonic.errors import UnknownNameError
from sonic.registry import Registry
from sonic.rouge.base import RECOMMENDERS
from sonic.tails.base import ALIASES, EMBEDDERS, info
from sonic.tails.models.lyrics import MINILM_MODEL, MINILM_NAME

SEED_NAMES = {
    "MFCC": "mfcc_104",
    "MERT": "mert-v1-330m",
    "EncodecMAE": "encodecmae-base",
    "M2V": "music2vec-v1",
    "paraphrase-multilingual-MiniLM-L12-v2": MINILM_NAME,
    "lyrical": MINILM_NAME,
}


@pytest.mark.parametrize(("alias", "name"), SEED_NAMES.items())
def test_each_original_name_resolves_in_any_case(alias, name):
    for spelling in (alias, alias.lower(), alias.upper()):
        assert EMBEDDERS.resolve(spelling) == name
        assert spelling in EMBEDDERS
    assert info(alias).name == ("mfcc_<N>" if name.startswith("mfcc_") else name)


def test_registered_names_match_in_any_case_and_families_keep_their_number():
    assert EMBEDDERS.resolve("MSD_MUSICNN") == "MSD_musicnn"
    assert EMBEDDERS.resolve("MFCC_20") == "mfcc_20"
    assert EMBEDDERS.resolve("Dino_ViTS16") == "dino_vits16"
    assert RECOMMENDERS.resolve("KNN") == "knn"
    assert RECOMMENDERS.resolve("bert") == RECOMMENDERS.resolve("BERT4Rec") == "bert4rec"


def test_an_alias_builds_the_part_it_stands_for_under_its_own_name():
    embedder = EMBEDDERS.create("MFCC")
    assert embedder.name == "mfcc_104" and embedder.dim == 104
    assert type(RECOMMENDERS.create("Bert")).__name__ == type(RECOMMENDERS.create("bert4rec")).__name__


def test_no_two_models_share_a_name():
    """The original's lyrics model has its own name: its table is never the default lyrics model's."""
    assert EMBEDDERS.resolve("paraphrase-multilingual-MiniLM-L12-v2") != EMBEDDERS.resolve("lyrics")
    assert len({entry.alias.lower() for entry in ALIASES}) == len(ALIASES)
    assert not {entry.alias.lower() for entry in ALIASES} & {name.lower() for name in EMBEDDERS.names()}


def test_unknown_names_list_the_known_names_and_the_aliases():
    with pytest.raises(UnknownNameError) as caught:
        EMBEDDERS.create("mret")
    message = str(caught.value)
    assert message.startswith("unknown embedder 'mret'; known: ") and "mert-v1-95m" in message
    for alias, name in SEED_NAMES.items():
        if alias != "lyrical":
            assert f"{alias} = {name}" in message
    assert "Lyrical = lyrics-minilm" in message
    with pytest.raises(UnknownNameError, match=r"; aliases: bert = bert4rec$"):
        RECOMMENDERS.create("bort")


def test_a_registry_refuses_an_alias_that_is_a_name_or_names_nothing():
    registry = Registry("thing", {"alpha": dict}, aliases={"A": "alpha"})
    assert registry.create("a") == {}
    with pytest.raises(ValueError, match="already a name"):
        registry.alias("ALPHA", "alpha")
    with pytest.raises(ValueError, match="not a registered name"):
        registry.alias("B", "beta")
    with pytest.raises(ValueError, match="registered twice"):
        registry.add("a", dict)


@pytest.mark.parametrize(("alias", "name"), [("MERT", "mert-v1-330m"), ("M2V", "music2vec-v1"),
                                             ("EncodecMAE", "encodecmae-base")])
def test_an_alias_without_weights_says_how_to_get_them(alias, name, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    audio = tmp_path / "audios"
    audio.mkdir()
    import soundfile

    soundfile.write(audio / "a.wav", tone(440.0, 1.0, 22050), 22050)

    result = sonic("embed", "--audio-dir", audio, "--model-type", alias, "--out", tmp_path / "emb")

    assert result.returncode == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sonic: error: ")
    assert f"sonic fetch {name}" in lines[0] and "--checkpoint" in lines[0]
    assert not (tmp_path / "emb" / f"{alias}.parquet").exists()


def test_a_table_written_through_an_alias_is_named_by_its_name_and_records_the_alias(tmp_path, monkeypatch):
    import soundfile

    audio = tmp_path / "audios"
    audio.mkdir()
    for number, pitch in enumerate((220.0, 330.0, 440.0)):
        soundfile.write(audio / f"t{number}.wav", tone(pitch, 1.0, 22050), 22050, subtype="FLOAT")

    result = sonic("embed", "--audio-dir", audio, "--model-type", "mfcc", "--out", tmp_path / "emb",
                   "--num-workers", "0")

    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in (tmp_path / "emb").glob("*.parquet")) == ["mfcc_104.parquet"]
    manifest = json.loads((tmp_path / "emb" / "mfcc_104.manifest.json").read_text())
    assert manifest["embedder"] == "mfcc_104" and manifest["requested_as"] == "mfcc"
    direct = EMBEDDERS.create("mfcc_104").embed([tone(220.0, 1.0, 22050)])[0]
    table = pd.read_parquet(tmp_path / "emb" / "mfcc_104.parquet").set_index("track_id")
    np.testing.assert_allclose(np.asarray(table.loc["t0", "embedding"]), direct, rtol=1e-5, atol=1e-5)


def test_the_lyrics_alias_is_the_original_model_and_takes_a_local_copy():
    from sonic.tails.models.lyrics import LyricsEmbedder

    with pytest.raises(Exception) as caught:  # offline, no cache: one sentence naming the model
        LyricsEmbedder.from_name(MINILM_NAME)
    assert MINILM_MODEL in str(caught.value) and "--checkpoint" in str(caught.value)
    with pytest.raises(Exception, match="give a local copy with checkpoint="):
        LyricsEmbedder.from_name(MINILM_NAME, model="other/model")
