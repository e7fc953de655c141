"""A table of named things (metrics, backends, runners) and who provided each.

Lookups accept the listed name, its lower-case and snake_case spellings and
every alias: ``'Recall'``, ``'recall'``, ``'hit rate'`` and ``'hit_rate'`` are
one key. An unknown name raises an error that lists the closest known names.

A registry made with ``lazy=True`` also takes, instead of the object, its import
path ``"package.module:Name"``: listing needs only the name and description given
at registration, and the object is imported and checked on first use of
``Entry.value``, so that listing what exists imports none of it.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from neuronperf_core.errors import PluginError, RegistrationError, UnknownNameError

T = TypeVar("T")

RUNTIME_PROVIDER = "runtime"  # the provider of what users register from Python


def normalize_name(name: str) -> str:
    """The lookup key of a name: lower case, letters and digits only."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


_IMPORT_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def is_import_path(value: object) -> bool:
    """Whether ``value`` reads as ``"package.module:Name"``."""
    return isinstance(value, str) and _IMPORT_PATH.fullmatch(value) is not None


_UNSET: Any = object()  # a LazyValue not imported yet
_FIX_HINT = (
    "Nothing else is affected. Fix or update what registered it; `neuronperf plugins` lists "
    "each plugin's distribution and version."
)


class LazyValue:
    """An object registered by import path, imported and checked on first ``resolve()``.

    Resolving again after a success returns the same object; after a failure it tries
    again (and fails again with the same message), so one broken path never affects
    other entries.
    """

    __slots__ = ("_check", "_describe", "_value", "path")

    def __init__(self, path: str, check: Callable[[Any], None], describe: str) -> None:
        self.path = path
        self._check = check
        self._describe = describe  # "metric 'TopK', registered by plugin 'torch' (...),"
        self._value: Any = _UNSET

    @property
    def loaded(self) -> bool:
        return self._value is not _UNSET

    def resolve(self) -> Any:
        if self._value is not _UNSET:
            return self._value
        module_name, _, attribute = self.path.partition(":")
        try:
            value: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                value = getattr(value, part)
        except (Exception, SystemExit) as exc:  # a plugin's module must not end the host
            raise PluginError(
                f"{self._describe} cannot be used: importing {self.path!r} failed with "
                f"{type(exc).__name__}: {exc}. {_FIX_HINT}"
            ) from exc
        try:
            self._check(value)
        except Exception as exc:
            raise PluginError(
                f"{self._describe} cannot be used: {self.path!r} is not valid ({exc}). {_FIX_HINT}"
            ) from exc
        self._value = value
        return value

    def __repr__(self) -> str:
        return f"<lazy {self.path}{'' if self.loaded else ' (not imported)'}>"


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered name. An alias points at the entry it stands for."""

    name: str
    stored: T | LazyValue  # the object, or its import path until first use
    description: str
    provider: str
    options: Mapping[str, Any] = field(default_factory=dict)  # keyword arguments for value
    alias_of: str | None = None

    @property
    def value(self) -> T:
        """The registered object; one registered by import path is imported (and checked)
        now, raising PluginError naming its plugin if that fails."""
        if isinstance(self.stored, LazyValue):
            return cast(T, self.stored.resolve())
        return self.stored

    @property
    def import_path(self) -> str | None:
        """The import path it was registered by, or None if registered as an object."""
        return self.stored.path if isinstance(self.stored, LazyValue) else None


class Registry(Generic[T]):
    """Every registered thing of one kind, in registration order."""

    def __init__(
        self,
        kind: str,
        validate: Callable[[str, Any], None] | None = None,
        unknown_hint: str = "",
        *,
        lazy: bool = False,
    ) -> None:
        self.kind = kind
        self._validate = validate
        self._lazy = lazy  # values may be import paths, imported on first use
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
        value: T | str,
        *,
        provider: str,
        description: str = "",
        aliases: tuple[str, ...] = (),
        options: Mapping[str, Any] | None = None,
        replace: bool = False,
        origin: str | None = None,
    ) -> Entry[T]:
        """Register ``name`` and its aliases; raise RegistrationError if invalid or taken.

        In a lazy registry a string ``value`` is an import path, checked on first use;
        ``origin`` says who registered it, for that error (default: ``provider``).
        """
        stored: T | LazyValue
        if self._lazy and isinstance(value, str):
            if not is_import_path(value):
                raise RegistrationError(
                    f"{self.kind} {name!r} from {provider}: {value!r} is not an import path; "
                    f"register the {self.kind} itself or its path as 'package.module:Name'."
                )
            check = self._validate
            stored = LazyValue(
                value,
                (lambda obj: check(name, obj)) if check is not None else (lambda obj: None),
                f"{self.kind} {name!r}, registered by {origin or provider},",
            )
        else:
            if self._validate is not None:
                self._validate(name, value)
            stored = cast(T, value)
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
        entry = Entry(name, stored, description, provider, dict(options or {}))
        self._entries[normalize_name(name)] = entry
        for alias in aliases:
            self._entries[normalize_name(alias)] = Entry(
                alias, stored, f"Alias for {name}", provider, entry.options, alias_of=name
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
