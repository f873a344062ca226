"""Random machine types (``synth --random-types N``): names, families, determinism, variety,
the data layer's scan, the CLI; and the named types' audio pinned across the family-core
refactor."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from automl_asd import download, synth
from automl_asd.cli import main
from automl_asd.data import Domain, Label, Split, scan

TINY = synth.SIZES["tiny"]


def _wavs(root: Path) -> list[Path]:
    return sorted(root.rglob("*.wav"))


@pytest.fixture(scope="module")
def random_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two random types of seed 3 (tiny), written together."""
    root = tmp_path_factory.mktemp("rnd")
    synth.generate(root, machine_types=synth.random_type_names(2, 3), size="tiny", seed=3)
    return root


# ------------------------------------------------------------------------------ names, families

def test_names_never_collide_and_carry_their_family() -> None:
    real = {m.lower() for m in download.DEV_MACHINE_TYPES}
    real |= {m.lower() for ts in download._EVAL_MACHINE_TYPES.values() for m in ts}
    named = {m.lower() for m in synth.MACHINE_TYPES}
    for seed in (0, 1, 7):
        names = synth.random_type_names(40, seed)
        assert len(set(names)) == 40
        for name in names:
            assert re.fullmatch(r"rnd[a-z]+\d{2,}", name) and "_" not in name
            assert name.lower() not in real | named
            assert synth.is_random_type(name)
            assert synth.family_of(name) in synth.FAMILIES
        # every block of len(FAMILIES) types covers every family once
        k = len(synth.FAMILIES)
        assert Counter(synth.family_of(n) for n in names[:k]) == {f: 1 for f in synth.FAMILIES}
        assert synth.random_type_names(12, seed) == names[:12]
    assert synth.random_type_names(8, 0) != synth.random_type_names(8, 1)
    assert synth.family_of("fan") == "fan" and synth.family_of("compressor") == "rec"
    assert synth.family_of("ToyRCCar") is None
    assert not synth.is_random_type("rndzzz01") and not synth.is_random_type("rnd_fan01")


def test_unknown_random_family_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(synth.SynthError, match="rnd<family><index>"):
        synth.generate(tmp_path, machine_types=["rndzzz01"], size="tiny")


def test_random_types_vary_in_the_documented_ways() -> None:
    models = [synth.machine_model(n, 0) for n in synth.random_type_names(32, 0)]
    descs = " ".join(m.description for m in models)
    assert "cycle onoff" in descs and "cycle sweep" in descs and "cycle steady" in descs
    assert any(m.hidden for m in models) and not all(m.hidden for m in models)
    assert {m.supplemental for m in models} == {"machine", "noise"}
    assert min(m.snr_db["source"][0] for m in models) < 0.0  # noisy-factory SNRs occur
    assert any(m.snr_db["target"][0] < m.snr_db["source"][0] for m in models)
    keys = {a.key for m in models for a in m.attributes}
    assert len(keys) >= 6
    assert any(a.source != a.target for m in models for a in m.attributes)  # attribute shift
    assert any(m.envs["source"] != m.envs["target"] for m in models)  # background shift
    for m in models:
        assert 2 <= len(m.anomalies) and len(set(m.anomalies)) == len(m.anomalies)
        # the target differs in an attribute or in the background, as for the named types
        shifted = any(a.source != a.target for a in m.attributes) or \
            m.envs["source"] != m.envs["target"]
        assert shifted, m.name
    # the same name under another seed is another machine
    a, b = synth.machine_model("rndfan00", 0), synth.machine_model("rndfan00", 1)
    assert a.description != b.description


# ------------------------------------------------------------------------------ determinism

def test_same_seed_same_bytes_independent_of_other_types(random_root: Path,
                                                         tmp_path: Path) -> None:
    name = synth.random_type_names(2, 3)[1]
    synth.generate(tmp_path, machine_types=[name], size="tiny", seed=3)
    ours, ref = _wavs(tmp_path / name), _wavs(random_root / name)
    assert len(ours) == TINY.n_clips and [p.name for p in ours] == [p.name for p in ref]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(ours, ref, strict=True))
    assert (tmp_path / name / "attributes_00.csv").read_bytes() == \
        (random_root / name / "attributes_00.csv").read_bytes()


@pytest.mark.slow
def test_parallel_workers_write_the_same_bytes(random_root: Path, tmp_path: Path) -> None:
    name = synth.random_type_names(1, 3)[0]
    synth.generate(tmp_path, machine_types=[name], size="tiny", seed=3, workers=2)
    ours, ref = _wavs(tmp_path / name), _wavs(random_root / name)
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(ours, ref, strict=True))


def test_different_seed_gives_different_audio() -> None:
    for name in synth.random_type_names(8, 0):
        p0 = synth.plan_machine(name, "tiny", 0)[0]
        p1 = synth.plan_machine(name, "tiny", 1)[0]
        a = synth.render_clip(name, p0, 0.5)
        b = synth.render_clip(name, p1, 0.5)
        assert a.shape == b.shape == (8000,) and np.isfinite(a).all()
        assert abs(float(np.corrcoef(a, b)[0, 1])) < 0.5, name
        assert np.array_equal(a, synth.render_clip(name, p0, 0.5))


# ------------------------------------------------------------------------------ data layer

def test_random_tree_passes_the_scan(random_root: Path) -> None:
    names = synth.random_type_names(2, 3)
    data = scan(random_root)
    assert sorted(data) == sorted(names)
    for mt, md in data.items():
        model = synth.machine_model(mt, 3)
        c = Counter((x.split, x.domain, x.label) for x in md.clips)
        assert c[(Split.TRAIN, Domain.SOURCE, Label.NORMAL)] == TINY.n_source_train
        assert c[(Split.TRAIN, Domain.TARGET, Label.NORMAL)] == TINY.n_target_train
        for dom in (Domain.SOURCE, Domain.TARGET):
            for lab in (Label.NORMAL, Label.ANOMALY):
                assert c[(Split.TEST, dom, lab)] == TINY.n_test_per_group
        assert {x.kind for x in md.supplemental} == {model.supplemental}
        keys = {tuple(k for k, _ in x.attributes or ()) for x in md.train}
        assert keys == ({()} if model.hidden else {tuple(a.key for a in model.attributes)})
        assert synth.family_of(mt, random_root) == synth.family_of(mt)
    info = json.loads((random_root / synth.INFO_FILE).read_text())["types"]
    assert {n: info[n]["family"] for n in names} == {n: synth.family_of(n) for n in names}


def test_family_of_reads_the_tree_info(tmp_path: Path) -> None:
    (tmp_path / synth.INFO_FILE).write_text(json.dumps({"types": {"mything": {"family": "x"}}}))
    assert synth.family_of("mything", tmp_path) == "x"
    assert synth.family_of("rndgear04", tmp_path) == "gear"


def test_cli_random_types_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", "--out", str(tmp_path), "--random-types", "2", "--size", "tiny",
                 "--seed", "5"]) == 0
    out = capsys.readouterr().out
    names = synth.random_type_names(2, 5)
    assert all(f"family {synth.family_of(n)}" in out for n in names)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == sorted(names)
    assert sum(len(_wavs(tmp_path / n)) for n in names) == 2 * TINY.n_clips
    assert main(["synth", "--list", "--random-types", "3"]) == 0
    listing = capsys.readouterr().out
    assert all(n in listing for n in synth.random_type_names(3, 0))


# ------------------------------------------------------------------------------ named types pinned

#: Samples 100, 1000, 3000 of the first train clip and the first anomaly clip (seed 0, 0.25 s)
#: of each named type, recorded before the renderers were factored into family cores.
_PINNED = {
    "fan": [[0.027274, -0.025054, -0.02653], [0.007836, 0.015066, 0.063416]],
    "gearbox": [[-0.012929, -0.002209, -0.004765], [-0.013058, 0.003644, 0.002049]],
    "bearing": [[-0.001667, -0.023222, 0.023349], [-0.005133, 0.011506, 0.007586]],
    "valve": [[-0.006881, -0.006923, -0.010291], [0.055665, -0.016801, 0.035444]],
    "slider": [[0.004515, -0.004312, 0.02782], [-0.005232, 0.026228, -0.001444]],
    "ToyCar": [[0.033791, 0.003744, 0.000731], [0.002577, 0.008952, -0.014317]],
    "ToyTrain": [[-0.003088, 0.009637, 0.005213], [0.016032, 0.004977, 0.047841]],
    "pump": [[-0.012664, -0.026703, -0.017946], [0.020243, 0.009523, 0.007728]],
    "compressor": [[0.003953, 0.001384, 0.000872], [0.008512, -0.004106, 0.007648]],
    "grinder": [[-0.007572, 0.009115, -0.023764], [0.003638, 0.002041, 0.012449]],
    "conveyor": [[-0.007431, -0.001491, 0.008992], [0.000707, -0.000705, 0.011102]],
}


def test_named_types_audio_is_unchanged() -> None:
    assert set(_PINNED) == set(synth.MACHINE_TYPES)
    for mt, expected in _PINNED.items():
        plans = synth.plan_machine(mt, "tiny", 0)
        anomaly = next(p for p in plans if p.label == "anomaly")
        for plan, want in zip((plans[0], anomaly), expected, strict=True):
            x = synth.render_clip(mt, plan, 0.25)
            np.testing.assert_allclose(x[[100, 1000, 3000]], want, atol=2e-6, err_msg=mt)
