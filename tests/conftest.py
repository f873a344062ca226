"""Shared test fixtures: tiny synthetic DCASE-2025 trees written once per test session.

Fixtures (session-scoped, under pytest's temporary folder; do not modify the trees in tests —
copy them first if a test needs to change files):

- ``tiny_dev_root``: ``<root>/{fan,gearbox,bearing}/`` = ``TINY_DEV_TYPES``, seed 0.
  fan: attributes ``spd_*_mic_*``, clean *machine* supplemental clips;
  gearbox: attributes ``volt_*_wt_*``, *noise* supplemental clips;
  bearing: ``noAttribute`` names, clean *machine* supplemental clips.
- ``tiny_novel_root``: ``<root>/{compressor,grinder}/`` = ``TINY_NOVEL_TYPES`` (disjoint from
  the dev types), seed 0. compressor: ``press_*``, noise supplemental; grinder: ``noAttribute``,
  machine supplemental.
- ``tiny_dev_types`` / ``tiny_novel_types``: the type names of the two trees.

Every tiny machine type has (``automl_asd.synth.SIZES["tiny"]``) 54 source + 6 target normal
train clips, 10 clips in each test group (source/target x normal/anomaly, 40 in all),
8 supplemental clips; 2 s, 16 kHz, mono int16.

Fixtures from ``tests/fixtures/`` (registered below as plugins, so any test may request them):
``ray_session`` (one local Ray runtime per session, ``fixtures/ray_fixture.py``) and
``two_node_cluster`` (a real multi-node Ray cluster, ``fixtures/cluster_fixture.py``);
``fixtures/loopback_guard.py`` refuses and fails any connection of a test off this machine and
any test not marked ``ray`` that leaves Ray running (``loopback_guard`` fixture). Helpers
shared by several test modules live in ``tests/fixtures/`` too (e.g. ``fixtures/recipes.py``).

Layout: ``tests/unit/<area>/`` mirrors the package (one folder per package or module),
``tests/contracts/`` holds the tests parametrised over the registries, ``tests/integration/``
the Ray, cluster, end-to-end, demo and packaging tests; ``tests/test_layers.py`` pins the import
layering. Every folder is a package (``__init__.py``), so test modules may share a file name and
import helpers as ``tests.fixtures.<module>``; run the suite from the repository root
(``python -m pytest -q``).

Environment for the whole session: ``RAY_USAGE_STATS_ENABLED=0`` (unless already set) and
``AUTOML_ASD_CACHE`` pointing to a session temporary folder, so tests never read or write the
user's feature cache.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
_CACHE_DIR = tempfile.mkdtemp(prefix="automl-asd-test-cache-")
os.environ["AUTOML_ASD_CACHE"] = _CACHE_DIR

pytest_plugins = ("tests.fixtures.ray_fixture", "tests.fixtures.cluster_fixture",
                  "tests.fixtures.loopback_guard")

TINY_DEV_TYPES: tuple[str, ...] = ("fan", "gearbox", "bearing")
TINY_NOVEL_TYPES: tuple[str, ...] = ("compressor", "grinder")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_CACHE_DIR, ignore_errors=True)


@pytest.fixture(autouse=True)
def _member_memo_as_it_was() -> Iterator[None]:
    """A search trial run in the test process turns its hedge member memo on (as it does in a
    search worker): put it back, so that later tests see the library's default (off)."""
    from automl_asd.detectors import hedge

    configured = hedge._MEMO.configured
    yield
    hedge._MEMO.configured = configured
    hedge._MEMO.clear()


@pytest.fixture(scope="session")
def tiny_dev_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny synthetic tree of three dev-style types (see the module docstring)."""
    from automl_asd.synth import generate

    root = tmp_path_factory.mktemp("tiny_dev")
    generate(root, machine_types=TINY_DEV_TYPES, size="tiny", seed=0)
    return root


@pytest.fixture(scope="session")
def tiny_novel_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny synthetic tree of two novel types (see the module docstring)."""
    from automl_asd.synth import generate

    root = tmp_path_factory.mktemp("tiny_novel")
    generate(root, machine_types=TINY_NOVEL_TYPES, size="tiny", seed=0)
    return root


@pytest.fixture(scope="session")
def tiny_dev_types() -> tuple[str, ...]:
    return TINY_DEV_TYPES


@pytest.fixture(scope="session")
def tiny_novel_types() -> tuple[str, ...]:
    return TINY_NOVEL_TYPES
