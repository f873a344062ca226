"""The model bundle: one machine type's fitted ensemble saved by ``apply`` and loaded by
``automl-asd score`` / :func:`load_bundle`, without pickle.

Modules: :mod:`.format` (constants, manifest check, ``.npy``/JSON codecs), :mod:`.files`
(read/write a folder or ``.tar``, :func:`save_bundle`), :mod:`.state` (fitted machine <->
files through the components' own ``get_state``), :mod:`.shared` (the shared stage's saved
states) and :mod:`.model` (:class:`Bundle`, :func:`load_bundle`).
"""

from __future__ import annotations

from automl_asd.bundle.files import read_bundle_files, save_bundle
from automl_asd.bundle.format import BundleError
from automl_asd.bundle.model import Bundle, BundleScores, NonFiniteScoreError, load_bundle

__all__ = ["Bundle", "BundleScores", "BundleError", "NonFiniteScoreError", "load_bundle",
           "read_bundle_files", "save_bundle"]
