"""Synthetic machine-sound data sets in the exact DCASE 2025 Task 2 layout.

The embedded default data for the demo, the tests and the benchmarks. Eleven machine types,
each from its own physical model (see ``_machines.py``): seven development-style types
(``DEV_MACHINE_TYPES``: fan, gearbox, bearing, valve, slider, ToyCar, ToyTrain) and four other
types that play the role of novel first-shot types (``NOVEL_MACHINE_TYPES``: pump, compressor,
grinder, conveyor). bearing, slider, ToyTrain and grinder are ``noAttribute`` types (their
attributes change the sound but are hidden from file names).

Layout written by :func:`generate` (one section, ``00``, per type)::

    <out>/<mt>/attributes_00.csv         file_name,d1p,d1v[,d2p,d2v,...] (train + test rows)
    <out>/<mt>/train/section_00_{source|target}_train_normal_{NNNN}_{attr}.wav
    <out>/<mt>/test/section_00_{source|target}_test_{normal|anomaly}_{NNNN}_{attr}.wav
    <out>/<mt>/supplemental/section_00_source_supplemental_{machine|noise}_{NNNN}.wav

``{attr}`` is ``key_value`` tokens (e.g. ``spd_2_mic_1``) or ``noAttribute``. The real 2025
supplemental file names are not confirmed; ours follow the pattern above. Each type has either
clean machine-only or noise-only supplemental clips (``SUPPLEMENTAL_KIND``). With
``eval_layout=True`` test clips are anonymised as ``section_00_NNNN.wav`` (shuffled) and the
official evaluator's headerless ground truth is written to
``<out>/ground_truth_{data,domain,attributes}/ground_truth_<mt>_section_00_test.csv``
(``name,0|1`` label, ``name,0|1`` domain 0=source, ``name,<labelled name without .wav>``).
Random types (``random_type_names(n, seed)``, e.g. ``rndfan03``; see ``_random.py``) are drawn
from eight physical families with random parameters, attributes, operating cycles, domain
shifts, anomaly kinds and SNRs; ``<out>/synth_info.json`` records every generated type's family
(:func:`family_of`). A hidden ``<out>/<mt>/.synth.json`` marker lets a rerun with the same
parameters skip work; it lists the files the generator wrote, the only ones a rerun with other
parameters replaces (a folder holding anything else is refused unless ``overwrite``).

Sizes (per machine type; test = 4 groups source/target x normal/anomaly):

======  ============  ============  ==========  ============  ========
size    source train  target train  test/group  supplemental  duration
======  ============  ============  ==========  ============  ========
full    990           10            50          100           10 s
small   190           10            25          20            6 s
tiny    54            6             10          8             2 s
======  ============  ============  ==========  ============  ========

Audio: 16 kHz mono 16-bit PCM. Every clip = machine signal (with at most one anomaly of a
type-specific kind at a log-uniform severity from subtle to obvious) + a factory/suburb
background at a clip-varying SNR, then normalised to a level drawn stratified within its group
between -40 and -30 dBFS, so loudness carries no label information. The target domain changes
attribute values, the background environment, the SNR range and the microphone response.
Determinism: each clip's RNG derives from (seed, machine type, split, domain, label, index).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from automl_asd.synth._sizes import SAMPLE_RATE, SIZES, SizeSpec, SynthError

if TYPE_CHECKING:
    from automl_asd.synth._generate import (
        ClipParts,
        ClipPlan,
        clip_parts,
        generate,
        plan_extra,
        plan_machine,
        render_clip,
    )
    from automl_asd.synth._machines import MODELS as MODELS
    from automl_asd.synth._machines import MachineModel
    from automl_asd.synth._random import (
        FAMILIES,
        INFO_FILE,
        NAMED_FAMILY,
        family_of,
        is_random_type,
        random_type_names,
    )

    HIDDEN_ATTRIBUTE_TYPES: tuple[str, ...]
    SUPPLEMENTAL_KIND: dict[str, str]

__all__ = [
    "generate",
    "plan_machine",
    "plan_extra",
    "render_clip",
    "clip_parts",
    "ClipParts",
    "MACHINE_TYPES",
    "DEV_MACHINE_TYPES",
    "NOVEL_MACHINE_TYPES",
    "HIDDEN_ATTRIBUTE_TYPES",
    "SUPPLEMENTAL_KIND",
    "SIZES",
    "SizeSpec",
    "ClipPlan",
    "SynthError",
    "SAMPLE_RATE",
    "FAMILIES",
    "NAMED_FAMILY",
    "INFO_FILE",
    "family_of",
    "is_random_type",
    "random_type_names",
    "machine_model",
]

#: Development-style types (search runs on these).
DEV_MACHINE_TYPES: tuple[str, ...] = (
    "fan", "gearbox", "bearing", "valve", "slider", "ToyCar", "ToyTrain")
#: Other types, disjoint from the dev types, used as novel first-shot types.
NOVEL_MACHINE_TYPES: tuple[str, ...] = ("pump", "compressor", "grinder", "conveyor")
#: Every synthetic type, dev types first.
MACHINE_TYPES: tuple[str, ...] = DEV_MACHINE_TYPES + NOVEL_MACHINE_TYPES

_GENERATOR_NAMES = ("generate", "plan_machine", "plan_extra", "render_clip", "ClipPlan",
                    "clip_parts", "ClipParts")
_RANDOM_NAMES = ("FAMILIES", "INFO_FILE", "NAMED_FAMILY", "family_of", "is_random_type",
                 "random_type_names")


def __getattr__(name: str) -> Any:
    # Lazy: the generator needs numpy and scipy (~1 s to import); `synth --help` and the
    # constants above do not.
    if name in _GENERATOR_NAMES:
        from automl_asd.synth import _generate  # noqa: PLC0415 (lazy: scipy)

        return getattr(_generate, name)
    if name in _RANDOM_NAMES:
        from automl_asd.synth import _random  # noqa: PLC0415 (lazy: scipy)

        return getattr(_random, name)
    if name in ("MODELS", "HIDDEN_ATTRIBUTE_TYPES", "SUPPLEMENTAL_KIND"):
        from automl_asd.synth._machines import MODELS as MODELS  # noqa: PLC0415 (lazy: scipy)

        assert set(MACHINE_TYPES) == set(MODELS) and all("_" not in m for m in MACHINE_TYPES)
        values: dict[str, Any] = {
            "MODELS": MODELS,
            #: Types whose file names say ``noAttribute``.
            "HIDDEN_ATTRIBUTE_TYPES": tuple(m for m in MACHINE_TYPES if MODELS[m].hidden),
            #: ``"machine"`` (clean machine-only clips) or ``"noise"`` (background only).
            "SUPPLEMENTAL_KIND": {m: MODELS[m].supplemental for m in MACHINE_TYPES},
        }
        globals().update(values)
        return values[name]
    raise AttributeError(f"module 'automl_asd.synth' has no attribute {name!r}")


def machine_model(machine_type: str, seed: int = 0) -> MachineModel:
    """The model of a named type, or of random type ``machine_type`` under ``seed``."""
    from automl_asd.synth._generate import _model  # noqa: PLC0415 (lazy: scipy)

    return _model(machine_type, seed)
