"""Contracts of the component layer, parametrised over the detector and backend registries:
a family's parameter schema (``params``) and its annotated parameter attributes declare the
same names with agreeing types, and every default passes the one validator
(:func:`automl_asd.components.params.validate`) that recipes and search spaces use.
A family added to a registry is checked here for free."""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pytest
import sklearn.base
from numpy.typing import NDArray

from automl_asd.backends import BACKENDS, Backend, make_backend
from automl_asd.calibration import DomainNormalizer, ScoreStats
from automl_asd.components.params import ParamError, ParamSpec, validate
from automl_asd.components.registry import Registry
from automl_asd.detectors import REGISTRY, Detector, TrainSet, make_detector
from automl_asd.errors import AutomlAsdError
from automl_asd.pipeline import FittedMachine, score_clips
from automl_asd.recipe import load_recipe

#: The Python type a ``ParamSpec.type`` declares.
_PY_TYPES: dict[str, Any] = {"int": int, "float": float, "bool": bool, "str": str,
                             "backend": dict[str, Any]}

_FAMILIES = [("detector", name, cls) for name, cls in sorted(REGISTRY.items())] + \
    [("backend", name, cls) for name, cls in sorted(BACKENDS.items())]


def _own_parameter_annotations(cls: type) -> dict[str, Any]:
    """Resolved annotations the family declares itself (its classes below the Detector/Backend
    base), without ClassVars: the parameter attributes ``__init__`` sets."""
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass in (Detector, Backend) or not issubclass(klass, (Detector, Backend)):
            continue
        hints = typing.get_type_hints(klass, include_extras=False)
        for name in klass.__dict__.get("__annotations__", {}):
            hint = hints[name]
            if typing.get_origin(hint) is typing.ClassVar:
                continue
            out[name] = hint
    return out


@pytest.mark.parametrize(("kind", "name", "cls"), _FAMILIES, ids=[f[1] for f in _FAMILIES])
def test_params_schema_equals_annotated_attributes(kind: str, name: str, cls: type) -> None:
    schema: dict[str, ParamSpec] = cls.params  # type: ignore[attr-defined]
    annotated = _own_parameter_annotations(cls)
    assert set(schema) == set(annotated), (
        f"{kind} {name}: params schema and annotated attributes differ: only in schema "
        f"{sorted(set(schema) - set(annotated))}, only annotated "
        f"{sorted(set(annotated) - set(schema))}")
    for key, spec in schema.items():
        assert spec.type in _PY_TYPES, f"{kind} {name}.{key}: unknown type {spec.type!r}"
        assert annotated[key] == _PY_TYPES[spec.type], (
            f"{kind} {name}.{key}: ParamSpec type {spec.type!r} but annotated "
            f"{annotated[key]!r}")


@pytest.mark.parametrize(("kind", "name", "cls"), _FAMILIES, ids=[f[1] for f in _FAMILIES])
def test_defaults_pass_the_validator(kind: str, name: str, cls: type) -> None:
    for key, spec in cls.params.items():  # type: ignore[attr-defined]
        if spec.type == "backend":
            assert spec.default["name"] in BACKENDS
            continue
        value = validate(spec, spec.default, f"{name}.{key}")
        assert value == spec.default and type(value) is type(spec.default), (kind, name, key)
        # An instance built with defaults holds exactly them, as the annotated attributes.
        inst = cls(seed=0)
        assert getattr(inst, key) == spec.default


@pytest.mark.parametrize(("kind", "name", "cls"), _FAMILIES, ids=[f[1] for f in _FAMILIES])
def test_init_stores_exactly_the_schema_and_refuses_unknown_keywords(
        kind: str, name: str, cls: type) -> None:
    inst = cls(seed=3)
    params = inst.get_params()
    assert set(params) == {*cls.params, "seed"} and params["seed"] == 3
    # get_params feeds __init__ back (scikit-learn's clone contract), seed included
    assert cls(**params).get_params() == params
    copy = sklearn.base.clone(inst)
    assert type(copy) is cls and copy is not inst and copy.get_params() == params
    assert inst.set_params(seed=4) is inst and inst.seed == 4  # type: ignore[attr-defined]
    prefix = "backend " if kind == "backend" else ""
    with pytest.raises(TypeError, match=f"^{prefix}{name}: unknown parameter\\(s\\) "
                                        r"\['no_such_param'\]"):
        cls(seed=0, no_such_param=1)
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['no_such_param'\]; valid: "):
        inst.set_params(no_such_param=1)
    longest = max(cls.params, key=len)
    with pytest.raises(TypeError, match=f"did you mean {longest!r}"):
        cls(seed=0, **{longest + "x": 1})
    # several unknown names: each close one gets its own suggestion
    with pytest.raises(TypeError, match=(rf"\['aaa', '{longest}x'\] \('{longest}x': did you "
                                         rf"mean '{longest}'\?\)")):
        inst.set_params(aaa=1, **{longest + "x": 1})


def test_validator_accepts_and_refuses_like_a_recipe() -> None:
    spec = ParamSpec("int", 5, low=1, high=10)
    assert validate(spec, 7, "p") == 7
    for bad, needle in [(0, "p: 0 is below the minimum 1"), (11, "p: 11 is above the maximum 10"),
                        (3.0, "p: expected an integer, got float 3.0"),
                        (True, "p: expected an integer, got bool True"),
                        (None, "p: null is not allowed here")]:
        with pytest.raises(ParamError, match=needle.replace(".", r"\.")):
            validate(spec, bad, "p")
    f = ParamSpec("float", 0.5, low=0.0, high=1.0)
    assert validate(f, 1, "q") == 1.0 and isinstance(validate(f, 1, "q"), float)
    with pytest.raises(ParamError, match="not a finite number"):
        validate(f, float("nan"), "q")
    s = ParamSpec("str", "a", choices=("a", "b"))
    with pytest.raises(ParamError, match="'c' is not one of 'a', 'b'"):
        validate(s, "c", "r")
    assert issubclass(ParamError, AutomlAsdError) and issubclass(ParamError, ValueError)


def test_registry_names_unknown_once() -> None:
    class _A:
        name = "a_thing"

    class _B:
        name = "a_thing"

    reg: Registry[Any] = Registry("widget")
    assert reg.register(_A) is _A and reg.register(_A) is _A  # idempotent
    with pytest.raises(ValueError, match="widget name 'a_thing' registered twice"):
        reg.register(_B)
    with pytest.raises(KeyError, match="unknown widget 'nope'; valid widgets: a_thing"):
        reg.get("nope")
    assert reg.names() == ["a_thing"] and "a_thing" in reg and len(reg) == 1
    reg.unregister("a_thing")
    assert reg.names() == []


class _NoHooks(Detector):
    """A family that implements only the abstract methods (no optional hooks)."""

    name = "no_hooks_toy"
    params: dict[str, ParamSpec] = {}

    def fit(self, train: TrainSet) -> Self:
        self.fitted_ = True
        return self

    def score_samples(self, features: Sequence[NDArray[np.float32]]) -> NDArray[np.float64]:
        return np.asarray([float(f.mean()) for f in features], dtype=np.float64)

    def get_state(self) -> dict[str, NDArray[Any]]:
        return {}

    def set_state(self, state: dict[str, NDArray[Any]]) -> Self:
        return self


def test_base_hooks_default_to_unsupported_and_pipeline_uses_global_stats() -> None:
    det = _NoHooks(seed=0)
    det.set_device("cuda:7")  # the base hook is a no-op: no error even without that GPU
    feats = [np.full((4, 3), v, np.float32) for v in (1.0, 2.0, 5.0)]
    assert det.nearest_domain(feats) is None
    assert _NoHooks.test_params == {} and Backend.test_params == {}
    # score_clips normalises with the global statistics when the family has no nearest domain
    # (the source/target statistics would give other numbers).
    norm = DomainNormalizer("domain_zscore", ScoreStats(1.0, 2.0),
                            {"source": ScoreStats(10.0, 1.0), "target": ScoreStats(-5.0, 3.0)})
    fitted = FittedMachine(load_recipe("fast_default"), "fan", 0, [det], [ScoreStats(0.0, 1.0)],
                           norm, 0.9)
    scores, decisions = score_clips(fitted, feats)
    np.testing.assert_array_equal(scores, [0.0, 0.5, 2.0])
    np.testing.assert_array_equal(decisions, [0, 0, 1])


def test_backend_without_nearest_domain_falls_back_to_the_nearest_clip() -> None:
    # knn_smote declares no nearest_domain (base: None), so domain_rule "backend" gives the
    # domain of the nearest training clip, like domain_rule "nearest_clip".
    rng = np.random.default_rng(0)
    levels = [0.0] * 8 + [10.0] * 4
    feats = [rng.normal(v, 0.1, (6, 4)).astype(np.float32) for v in levels]
    doms = np.array(["source"] * 8 + ["target"] * 4)
    train = TrainSet(feats, doms, np.array(["a"] * 12), np.array(["00"] * 12),
                     np.array(["fan"] * 12))
    test = [rng.normal(v, 0.1, (6, 4)).astype(np.float32) for v in (0.0, 10.0, 0.2)]
    out = {}
    for rule in ("backend", "nearest_clip"):
        params = {"backend": {"name": "knn_smote", "params": {}}, "domain_rule": rule}
        det = make_detector("pooled_stats", params, seed=0).fit(train)
        assert make_backend("knn_smote", {}, seed=0).nearest_domain(
            np.zeros((1, 4), np.float32)) is None
        out[rule] = det.nearest_domain(test)
    assert out["backend"] is not None and out["nearest_clip"] is not None
    assert out["backend"].tolist() == out["nearest_clip"].tolist() == ["source", "target", "source"]


def test_every_domain_error_derives_from_the_package_base() -> None:
    # One base for every error class the package defines (the CLI turns them into one line);
    # the builtin mixins (ValueError, RuntimeError) stay for callers' except clauses.
    import importlib
    import pkgutil

    import automl_asd

    found: dict[str, type] = {}
    for mod in pkgutil.walk_packages(automl_asd.__path__, "automl_asd."):
        module = importlib.import_module(mod.name)
        for obj in vars(module).values():
            if (isinstance(obj, type) and issubclass(obj, Exception)
                    and obj.__module__ == module.__name__ and not obj.__name__.startswith("_")):
                found[f"{obj.__module__}.{obj.__name__}"] = obj
    assert {"automl_asd.data.DataError", "automl_asd.audio.AudioError",
            "automl_asd.recipe.RecipeError", "automl_asd.bundle.format.BundleError",
            "automl_asd.download.DownloadError", "automl_asd.synth._sizes.SynthError",
            "automl_asd.components.device.DeviceError"} <= set(found)
    stray = sorted(name for name, cls in found.items() if not issubclass(cls, AutomlAsdError))
    assert stray == []
    from automl_asd.bundle.format import BundleError
    from automl_asd.download import DownloadError
    assert issubclass(BundleError, ValueError) and issubclass(DownloadError, RuntimeError)
