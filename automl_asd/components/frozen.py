"""Read-only JSON-like containers for the values a frozen recipe holds.

A frozen dataclass stops ``recipe.seed = 1`` but not ``recipe.detector.params["k"] = 9``:
found 2026-12-07, such an edit changed the recipe's content hash silently (a recipe kept in a
set or as a dict key was lost, and a bundle's recipe no longer matched its own hash).
:func:`deep_freeze` turns nested dicts and lists into :class:`FrozenDict` / :class:`FrozenList`:
subclasses of ``dict`` and ``list`` (so ``isinstance``, equality with plain values, ``json``
and every read work as before) whose mutating methods raise ``TypeError``. They pickle
(Ray sends recipes to its workers) and deep-copy as frozen copies; ``dict(x)`` / ``list(x)``
give a plain, mutable (shallow) copy, :func:`thaw` a deep one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

__all__ = ["FrozenDict", "FrozenList", "deep_freeze", "thaw"]


def _read_only(self: object, *args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError(f"{type(self).__name__} is read-only: a frozen recipe's values cannot be "
                    "changed in place; build a new recipe (Recipe.replace, or from_dict of an "
                    "edited to_dict())")


class FrozenDict(dict[str, Any]):
    """A ``dict`` that cannot be changed after it is made (see the module docstring)."""

    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted((k, _hashable(v)) for k, v in self.items())))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDict:
        return self  # nothing in it can change: the same object serves

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"


class FrozenList(list[Any]):
    """A ``list`` that cannot be changed after it is made (see the module docstring)."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _read_only
    append = extend = insert = pop = remove = clear = sort = reverse = _read_only

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(_hashable(v) for v in self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenList, (list(self),))

    def __copy__(self) -> FrozenList:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenList:
        return self

    def __repr__(self) -> str:
        return f"FrozenList({list.__repr__(self)})"


def _hashable(value: Any) -> Any:
    if isinstance(value, FrozenDict | FrozenList):
        return hash(value)
    if isinstance(value, Mapping | list):
        return hash(deep_freeze(value))
    if isinstance(value, tuple):
        return tuple(_hashable(v) for v in value)
    return value


def deep_freeze(value: Any) -> Any:
    """``value`` with every mapping a :class:`FrozenDict` and every list a :class:`FrozenList`,
    recursively (inside tuples too, which stay tuples); other values as they are. Already
    frozen values are returned as they are."""
    if isinstance(value, FrozenDict | FrozenList):
        return value
    if isinstance(value, Mapping):
        return FrozenDict({k: deep_freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return FrozenList(deep_freeze(v) for v in value)
    if isinstance(value, tuple):
        return tuple(deep_freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """A plain, mutable deep copy of ``value`` (dicts and lists), e.g. to edit params and build
    a new recipe from them."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    return value
