"""One-line summaries of search trials: the recipe skeleton with only the parameters the trial
searched, e.g. ``pooled_stats(pooling=mean_std) → knn(k=3, metric=cosine) · domain_zscore``.

Pure: no Ray, no Optuna, no torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from automl_asd.search.space import SearchSpace

__all__ = ["point_summary", "trial_summary"]


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _args(items: list[tuple[str, Any]]) -> str:
    return "(" + ", ".join(f"{k}={_value(v)}" for k, v in items) + ")" if items else ""


def point_summary(space: SearchSpace, point: Mapping[str, Any]) -> str:
    """The recipe of ``point`` (``{dimension name: value}``, active dimensions only) as one
    line: ``features(...) · detector(...) → backend(...) · normalisation · other sections``,
    listing only the parameters that are dimensions of ``space`` active in ``point``.

    Raises ``SpaceError``/``KeyError`` when ``point`` lacks an active dimension.
    """
    recipe = space.to_recipe_dict(point)
    detector = recipe["detector"]
    det = str(detector["name"])
    backend = detector.get("params", {}).get("backend")
    searched: dict[str, list[tuple[str, Any]]] = {}
    for name, value in point.items():
        parts = name.split(".")
        if name.endswith(".name") and parts[0] == "detector":
            continue  # component choices are the skeleton itself
        if parts[0] == "detector":
            if len(parts) >= 4 and parts[2] == "backend":
                searched.setdefault("backend", []).append((parts[-1], value))
            else:
                searched.setdefault("detector", []).append((parts[-1], value))
        elif parts[0] == "normalization" and parts[-1] == "method":
            continue  # always shown
        else:
            searched.setdefault(parts[0], []).append((".".join(parts[1:]) or parts[0], value))
    out: list[str] = []
    if searched.get("features"):
        out.append("features" + _args(searched["features"]))
    body = det + _args(searched.get("detector", []))
    if isinstance(backend, Mapping):
        body += f" → {backend['name']}" + _args(searched.get("backend", []))
    out.append(body)
    method = recipe.get("normalization", {}).get("method", "none")
    if method != "none" or any(n == "normalization.method" for n in point):
        out.append("no normalisation" if method == "none" else str(method))
    for section in ("threshold", "supplemental", "ensemble", "seed"):
        items = searched.get(section, [])
        if section == "seed" and items:
            out.append(f"seed={_value(items[0][1])}")
        elif items:
            out.append(section + _args(items))
    return " · ".join(out)


def trial_summary(space: SearchSpace, config: Mapping[str, Any]) -> str:
    """:func:`point_summary` of a trial's configuration; ``""`` when the configuration does not
    replay in ``space`` (e.g. a trial that never started)."""
    if not config:
        return ""
    try:
        return point_summary(space, config)
    except (ValueError, KeyError, TypeError):
        return ""
