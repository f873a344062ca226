"""A name -> class registry, the one shape behind the detector and backend registries.

Families register themselves with a class decorator (``@register``) under their ``name``
class attribute; recipes refer to them by that stable snake_case name only. An unknown name
raises ``KeyError`` listing the valid ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Generic, Protocol, TypeVar

from automl_asd.errors import AutomlAsdError

__all__ = ["Registry", "Named", "UnknownNameError"]


class UnknownNameError(AutomlAsdError, KeyError):
    """A name no class is registered under; its message lists the valid names (a plain
    ``KeyError`` prints its message quoted)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Named(Protocol):
    """What a registered class provides: its registry name."""

    name: ClassVar[str]


_B = TypeVar("_B", bound=Named)


class Registry(Generic[_B]):
    """Registered classes of one ``kind`` (e.g. ``"detector"``) by their ``name`` attribute.

    Behaves as a read-only mapping ``{name: class}`` (``in``, ``[]``, iteration, ``len``,
    ``items``); :meth:`register` adds one, :meth:`get` looks one up with a helpful error.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, type[_B]] = {}

    def register(self, cls: type[_B]) -> type[_B]:
        """Class decorator adding ``cls`` under ``cls.name``; a second class under the same
        name raises ``ValueError``."""
        name = str(cls.name)
        if name in self._classes and self._classes[name] is not cls:
            raise ValueError(f"{self.kind} name {name!r} registered twice")
        self._classes[name] = cls
        return cls

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests that register a toy family clean up with this)."""
        self._classes.pop(name, None)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._classes)

    def unknown_message(self, name: str) -> str:
        """``"unknown <kind> 'x'; valid <kind>s: a, b"``: the one wording for a bad name."""
        return f"unknown {self.kind} {name!r}; valid {self.kind}s: {', '.join(self.names())}"

    def get(self, name: str) -> type[_B]:
        """The class registered as ``name``; ``KeyError`` listing the valid names if none."""
        try:
            return self._classes[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    # read-only mapping face
    def __getitem__(self, name: str) -> type[_B]:
        # found 2026-12-07: REGISTRY["bogus"] was a bare KeyError('bogus')
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)

    def items(self) -> list[tuple[str, type[_B]]]:
        return list(self._classes.items())

    def values(self) -> list[type[_B]]:
        return list(self._classes.values())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
