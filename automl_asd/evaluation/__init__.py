"""Evaluation: official metrics (:mod:`.metrics`, arrays in, numbers out), the one scoring loop
over ``(machine type, section)`` (:mod:`.evaluate`) and the search objective (:mod:`.objective`).

Submodules are imported explicitly (``from automl_asd.evaluation.metrics import ...``), so
importing the package stays light.
"""
