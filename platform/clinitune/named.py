"""Tables of classes by name, so a YAML config can list components by name (curation steps, task builders)."""

from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T", bound=type)


def registrar(table: dict[str, type], kind: str) -> Callable[[str], Callable[[T], T]]:
    """A ``@register(name)`` decorator that files a class in ``table`` and sets its ``name``.

    Registering a second class under a taken name is a programming error (``ValueError``); the
    same class again (a module imported twice) is allowed.
    """

    def register(name: str) -> Callable[[T], T]:
        def deco(cls: T) -> T:
            if name in table and table[name] is not cls:
                raise ValueError(f"{kind} name '{name}' is registered twice")
            cls.name = name
            table[name] = cls
            return cls

        return deco

    return register
