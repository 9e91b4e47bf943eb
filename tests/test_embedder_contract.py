"""The contract every registered embedder keeps, on inputs with a known answer.

Every catalogue entry is built and checked here. Its fixture comes from :mod:`sonic.testing`: a neural
model on tiny random weights (written in the real checkpoint format and loaded through the same code path
as the published weights), or, for a name in ``NEEDS_NO_FIXTURE``, the name built as a user would build
it, which must then work offline. A registered name with neither fails.
"""

from __future__ import annotations

import numpy as np
import pytest
from audio_fixtures import noise, tone

from sonic.errors import SonicError, UnknownNameError
from sonic.registry import Registry
from sonic.tails.base import CATALOGUE, EMBEDDERS, MODALITIES, Embedder, _FromModule, _not_available, info
from sonic.testing import EMBEDDER_FIXTURES, NEEDS_NO_FIXTURE, embedder_fixture

#: Names built for a family of numbered names.
FAMILY_EXAMPLES = {"mfcc_<N>": ["mfcc_104", "mfcc_20"]}
#: Pitches a semitone apart over two octaves from A3.
PITCHES_HZ = 220.0 * 2.0 ** (np.arange(25) / 12)
#: Intervals (in semitones) that count as far apart, against one semitone as near.
FAR_SEMITONES = 6
#: A Music4All metadata row (the columns of ``id_metadata.csv``).
METADATA_ROW = {
    "spotify_id": "0abc", "popularity": 41.0, "release": 2009, "danceability": 0.61, "energy": 0.72, "key": 5,
    "mode": 1, "valence": 0.44, "tempo": 121.5, "duration_ms": 215000,
}


#: Every registered name, with a family's examples in place of its pattern.
AVAILABLE = [(name, entry) for entry in CATALOGUE for name in FAMILY_EXAMPLES.get(entry.name, [entry.name])]


@pytest.fixture(scope="module", params=[name for name, _ in AVAILABLE])
def built(request, tmp_path_factory) -> tuple[Embedder, object, bool]:
    """(embedder, its catalogue line, whether it is the real model rather than a tiny random one)."""
    name = request.param
    entry = info(name)
    fixture = embedder_fixture(name)
    if fixture is not None:
        return fixture(tmp_path_factory.mktemp(name)), entry, False
    embedder = EMBEDDERS.create(name)
    if callable(getattr(embedder, "fit", None)):  # as the runner does: fitted on the whole table first
        embedder.fit(_payloads(embedder, 8, seed=11))
    return embedder, entry, True


def _payloads(embedder: Embedder, count: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    if embedder.modality in ("audio", "image"):
        rate = embedder.sample_rate
        clips = [tone(440.0, 1.0, rate), noise(2.5, rate, seed=seed), np.zeros(rate, np.float32)]
        clips += [tone(rng.uniform(100, 1000), 1.5, rate) for _ in range(count)]
        return clips[:count]
    if embedder.modality == "text":
        texts = ["la la la, love you baby", "Je ne regrette rien", "Der Mond ist aufgegangen", "o sole mio"]
        return [texts[i % len(texts)] + " " + str(rng.integers(100)) for i in range(count)]
    return [{**METADATA_ROW, "danceability": float(rng.uniform()), "tempo": float(rng.uniform(60, 180))}
            for _ in range(count)]


def test_the_catalogue_and_the_registry_name_the_same_embedders():
    assert sorted(entry.name for entry in CATALOGUE) == EMBEDDERS.names()
    assert len({entry.name for entry in CATALOGUE}) == len(CATALOGUE)
    for entry in CATALOGUE:
        assert entry.modality in MODALITIES
        assert (entry.sample_rate > 0) == (entry.modality in ("audio", "image")), entry.name
        assert entry.module.startswith("sonic.tails.models."), entry.name
    assert any(name == "mfcc_104" for name, _ in AVAILABLE)


def _missing_fixtures(registry: Registry) -> list[str]:
    """The lookup's sentence for each name of ``registry`` that has no fixture in sonic.testing."""
    missing = []
    for name in registry.names():
        try:
            embedder_fixture(name)
        except LookupError as error:
            missing.append(str(error))
    return missing


def test_every_registered_embedder_has_a_fixture_or_needs_none():
    assert _missing_fixtures(EMBEDDERS) == []
    assert sorted({*EMBEDDER_FIXTURES, *NEEDS_NO_FIXTURE}) == EMBEDDERS.names(), "a fixture of no registered name"


def test_a_registered_embedder_without_a_fixture_fails_the_lookup():
    registry = Registry("embedder", {name: EMBEDDERS.create for name in EMBEDDERS.names()})
    registry.add("brand-new-model", _FromModule("sonic.tails.models.brand_new_model", "brand-new-model"))

    missing = _missing_fixtures(registry)

    assert len(missing) == 1 and missing[0].startswith("embedder 'brand-new-model' has no fixture in sonic.testing")


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match=r"unknown embedder 'mret'; known: .*mert-v1-95m.*musicnn"):
        EMBEDDERS.create("mret")


def test_a_known_name_without_its_module_is_one_sentence():
    with pytest.raises(SonicError, match=r"^embedder 'mert-v1-95m' is known but not part of this installation"):
        _FromModule("sonic.tails.models.not_written_yet", "mert-v1-95m")()
    missing_torch = ModuleNotFoundError("No module named 'torch'", name="torch")
    message = str(_not_available("muq", "sonic.tails.models.muq", missing_torch))
    expected = "embedder 'muq' needs the Python package 'torch', which is not installed: pip install 'sonic[models]'"
    assert message == expected
    other = ModuleNotFoundError("No module named 'yaml'", name="yaml")
    assert _not_available("muq", "sonic.tails.models.muq", other) is other  # a bug, not a user's mistake


def test_declares_the_protocol_as_the_catalogue_says(built):
    embedder, entry, real = built
    assert isinstance(embedder, Embedder)
    assert embedder.modality == entry.modality
    assert embedder.sample_rate == entry.sample_rate
    assert isinstance(embedder.dim, int) and embedder.dim > 0
    if entry.dim is not None and real:  # a tiny random model is narrower than the published one
        assert embedder.dim == entry.dim
    description = embedder.describe()
    assert "model" in description


def test_output_shape_dtype_and_finite(built):
    embedder, _, _ = built
    vectors = embedder.embed(_payloads(embedder, 3))

    assert vectors.shape == (3, embedder.dim)
    assert vectors.dtype == np.float32
    assert np.isfinite(vectors).all()


def test_deterministic_and_independent_of_batching(built):
    embedder, _, _ = built
    batch = _payloads(embedder, 4, seed=7)[1:3]

    first = embedder.embed(batch)

    np.testing.assert_array_equal(first, embedder.embed(batch))
    np.testing.assert_allclose(first[1], embedder.embed(batch[1:])[0], rtol=1e-4, atol=1e-5)


def test_tones_a_semitone_apart_are_nearer_than_tones_far_apart(built):
    """A real audio model hears pitch: on average over two octaves, tones one semitone apart lie closer
    than tones six or more apart. (A learned tagger need not keep the order tone by tone; MFCC does,
    see tests/test_mfcc.py.)"""
    embedder, _, real = built
    if embedder.modality != "audio" or not real:
        pytest.skip("asked of real audio models, not of tiny random weights or other modalities")
    rate = embedder.sample_rate
    vectors = embedder.embed([tone(pitch, 1.0, rate) for pitch in PITCHES_HZ]).astype(np.float64)
    distance = np.linalg.norm(vectors[:, None] - vectors[None, :], axis=-1)  # (25, 25)
    first, second = np.triu_indices(len(PITCHES_HZ), 1)
    gap = second - first

    near = distance[first[gap == 1], second[gap == 1]].mean()
    far = distance[first[gap >= FAR_SEMITONES], second[gap >= FAR_SEMITONES]].mean()

    assert near < far, (near, far)


def test_the_docs_table_of_embedders_is_the_catalogue():
    """The embedder catalogue of the docs site is made from the code, and no hand-written page holds a copy."""
    import importlib.util
    from pathlib import Path

    from sonic.tails.base import alias_table, catalogue_table

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("gen_reference", root / "docs" / "gen_reference.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    page = generator.embedders_page()
    assert catalogue_table() in page and alias_table() in page
    header = catalogue_table().splitlines()[0]
    for written in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        assert header not in written.read_text(encoding="utf-8"), f"{written.name} holds a copy of the catalogue"
