"""A table of named things (metrics, frameworks, runners) and who provided each.

Lookups accept the listed name, its lower-case and snake_case spellings and
every alias: ``'Recall'``, ``'recall'``, ``'hit rate'`` and ``'hit_rate'`` are
one key. An unknown name raises an error that lists the closest known names.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from neuronperf_core.errors import RegistrationError, UnknownNameError

T = TypeVar("T")

RUNTIME_PROVIDER = "runtime"  # the provider of what users register from Python


def normalize_name(name: str) -> str:
    """The lookup key of a name: lower case, letters and digits only."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered name. An alias points at the entry it stands for."""

    name: str
    value: T
    description: str
    provider: str
    options: Mapping[str, Any] = field(default_factory=dict)  # keyword arguments for value
    alias_of: str | None = None


class Registry(Generic[T]):
    """Every registered thing of one kind, in registration order."""

    def __init__(
        self,
        kind: str,
        validate: Callable[[str, Any], None] | None = None,
        unknown_hint: str = "",
    ) -> None:
        self.kind = kind
        self._validate = validate
        self._unknown_hint = unknown_hint  # where the user can see what exists
        self._entries: dict[str, Entry[T]] = {}

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(list(self._entries.values()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and normalize_name(name) in self._entries

    def check_available(self, names: list[str], provider: str, replace: bool = False) -> None:
        """Raise RegistrationError if a name is unusable, or taken (naming both providers)
        unless it is to be replaced."""
        for name in names:
            if not isinstance(name, str) or not normalize_name(name):
                raise RegistrationError(
                    f"{self.kind} name {name!r} from {provider} is not usable: "
                    "a name is a string with at least one letter or digit."
                )
            taken = self._entries.get(normalize_name(name))
            if taken is not None and not replace:
                raise RegistrationError(
                    f"{self.kind} name {name!r} from {provider} is already registered as "
                    f"{taken.name!r} by {taken.provider}. Choose another name, or replace "
                    "it on purpose (register_metric(..., replace=True) for metrics)."
                )

    def add(
        self,
        name: str,
        value: T,
        *,
        provider: str,
        description: str = "",
        aliases: tuple[str, ...] = (),
        options: Mapping[str, Any] | None = None,
        replace: bool = False,
    ) -> Entry[T]:
        """Register ``name`` and its aliases; raise RegistrationError if invalid or taken."""
        if self._validate is not None:
            self._validate(name, value)
        if not isinstance(description, str):
            raise RegistrationError(
                f"{self.kind} {name!r}: description must be a string, got {description!r}"
            )
        given: object = aliases  # plugins are untyped: check what they really passed
        if not isinstance(given, tuple) or not all(isinstance(a, str) for a in given):
            raise RegistrationError(
                f"{self.kind} {name!r}: aliases must be a tuple of strings, got {aliases!r}"
            )
        names = [name, *aliases]
        if isinstance(name, str) and len({normalize_name(n) for n in names}) != len(names):
            raise RegistrationError(f"{self.kind} {name!r}: its name and aliases {aliases} repeat")
        self.check_available(names, provider, replace)  # before anything is removed
        for n in names if replace else ():
            self._remove(n)
        entry = Entry(name, value, description, provider, dict(options or {}))
        self._entries[normalize_name(name)] = entry
        for alias in aliases:
            self._entries[normalize_name(alias)] = Entry(
                alias, value, f"Alias for {name}", provider, entry.options, alias_of=name
            )
        return entry

    def _remove(self, name: str) -> None:
        """Drop ``name``; dropping an entry drops its aliases too."""
        entry = self._entries.pop(normalize_name(name), None)
        if entry is not None and entry.alias_of is None:
            for key in [k for k, e in self._entries.items() if e.alias_of == entry.name]:
                del self._entries[key]

    def remove_provider(self, provider: str) -> None:
        """Forget everything ``provider`` registered (a plugin that failed)."""
        for key in [k for k, e in self._entries.items() if e.provider == provider]:
            del self._entries[key]

    def names_by(self, provider: str) -> list[str]:
        """What ``provider`` registered, without aliases."""
        return [
            e.name for e in self._entries.values() if e.provider == provider and e.alias_of is None
        ]

    def get(self, name: str) -> Entry[T]:
        """The entry for ``name`` in any accepted spelling; an alias resolves to its target."""
        if not isinstance(name, str):
            raise TypeError(
                f"a {self.kind} name must be a string, got {type(name).__name__} {name!r}"
            )
        entry = self._entries.get(normalize_name(name))
        if entry is None:
            raise UnknownNameError(self._unknown_message(name))
        if entry.alias_of is not None:
            return self._entries[normalize_name(entry.alias_of)]
        return entry

    def _unknown_message(self, name: str) -> str:
        by_key = {k: e.name for k, e in self._entries.items()}
        close = difflib.get_close_matches(normalize_name(name), list(by_key), n=5, cutoff=0.6)
        hint = (
            f"Closest known names: {', '.join(repr(by_key[k]) for k in close)}. " if close else ""
        )
        known = f"Known: {', '.join(sorted(by_key.values()))}. " if not close and by_key else ""
        return (
            f"Unknown {self.kind} {name!r}. {hint}{known}{self._unknown_hint}"
            f"`neuronperf plugins` shows which plugins provide {self.kind}s and which failed."
        )
