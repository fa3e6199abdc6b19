"""The kinds of value an option can hold: each parses what a user wrote (YAML or ``key=value``) into one clean value,
or raises a one-line ``ConfigError`` naming the key, what was expected and what was received.

``opt(default, kind, help)`` declares a dataclass field of an options class (``nsl.options``) with its kind and its
one-line help; ``nsl.config`` reads them to resolve, check and document every key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nsl.errors import ConfigError

TRUE_WORDS = ("true", "on", "yes", "1")
FALSE_WORDS = ("false", "off", "no", "0")
NULL_WORDS = ("null", "none", "~", "")


def _fail(key: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"config key '{key}': expected {expected}, got {value!r}")


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in NULL_WORDS)


@dataclass(frozen=True)
class Kind:
    """A value's type and limits; ``nullable`` allows null (written null or none)."""

    nullable: bool = False

    def parse(self, key: str, value: Any) -> Any:
        if self.nullable and _is_null(value):
            return None
        if value is None:
            raise _fail(key, self.expected(), value)
        return self.convert(key, value)

    def convert(self, key: str, value: Any) -> Any:
        return value

    def expected(self) -> str:
        return "a value"

    def label(self) -> str:
        """The type shown in defaults.yaml, e.g. ``int >= 1 | null``."""
        return self.expected() + (" | null" if self.nullable else "")


def _number_range(low, high, low_open: bool, high_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return " and ".join(parts)


def _as_number(key: str, value: Any, expected: str) -> float | int:
    """A finite int or float from a number or its text; booleans are not numbers here."""
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise _fail(key, expected, value) from None
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
        raise _fail(key, expected, value)
    return number


@dataclass(frozen=True)
class Int(Kind):
    low: int | None = None
    high: int | None = None

    def convert(self, key: str, value: Any) -> int:
        number = _as_number(key, value, self.expected())
        if not float(number).is_integer():
            raise _fail(key, self.expected(), value)
        number = int(number)
        if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
            raise _fail(key, self.expected(), value)
        return number

    def expected(self) -> str:
        limits = _number_range(self.low, self.high, False, False)
        return "a whole number" + (f" {limits}" if limits else "")

    def label(self) -> str:
        limits = _number_range(self.low, self.high, False, False)
        return "int" + (f" {limits}" if limits else "") + (" | null" if self.nullable else "")


@dataclass(frozen=True)
class Float(Kind):
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def convert(self, key: str, value: Any) -> float:
        number = float(_as_number(key, value, self.expected()))
        too_low = self.low is not None and (number <= self.low if self.low_open else number < self.low)
        too_high = self.high is not None and (number >= self.high if self.high_open else number > self.high)
        if too_low or too_high:
            raise _fail(key, self.expected(), value)
        return number

    def expected(self) -> str:
        limits = _number_range(self.low, self.high, self.low_open, self.high_open)
        return "a number" + (f" {limits}" if limits else "")

    def label(self) -> str:
        limits = _number_range(self.low, self.high, self.low_open, self.high_open)
        return "float" + (f" {limits}" if limits else "") + (" | null" if self.nullable else "")


@dataclass(frozen=True)
class Bool(Kind):
    def convert(self, key: str, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise _fail(key, self.expected(), value)

    def expected(self) -> str:
        return "true or false (also on/off, yes/no)"

    def label(self) -> str:
        return "bool"


def _word(value: Any, values: tuple[str, ...]) -> str:
    """A choice as written; YAML turns on/off/yes/no into booleans, so map those back to the word a key offers."""
    if isinstance(value, bool):
        for word in (TRUE_WORDS if value else FALSE_WORDS):
            if word in values:
                return word
        return "true" if value else "false"
    return str(value).strip()


@dataclass(frozen=True)
class Choice(Kind):
    values: tuple[str, ...] = ()

    def convert(self, key: str, value: Any) -> str:
        word = _word(value, self.values)
        for choice in self.values:
            if word.lower() == choice.lower():
                return choice
        truth = value if isinstance(value, bool) else {**dict.fromkeys(TRUE_WORDS, True),
                                                        **dict.fromkeys(FALSE_WORDS, False)}.get(word.lower())
        if truth is not None:  # true/false for a key that offers on/off (or the other way round)
            match = next((c for c in self.values if c in (TRUE_WORDS if truth else FALSE_WORDS)), None)
            if match:
                return match
        raise _fail(key, self.expected(), value)

    def expected(self) -> str:
        return "one of " + ", ".join(self.values)

    def label(self) -> str:
        return " | ".join(self.values) + (" | null" if self.nullable else "")


@dataclass(frozen=True)
class ChoiceOrPath(Kind):
    """A keyword, or the path of a file (checked to exist when options are checked for a new run)."""

    values: tuple[str, ...] = ()
    what: str = "file"

    def convert(self, key: str, value: Any) -> str:
        if isinstance(value, (bool, int, float)) or not str(value).strip():
            raise _fail(key, self.expected(), value)
        word = str(value).strip()
        match = next((c for c in self.values if c.lower() == word.lower()), None)
        return match or word

    def is_path(self, value: str | None) -> bool:
        return value is not None and value not in self.values

    def expected(self) -> str:
        return f"{', '.join(self.values)} or the path of a {self.what}"

    def label(self) -> str:
        return " | ".join(self.values) + f" | PATH ({self.what})"


@dataclass(frozen=True)
class Text(Kind):
    def convert(self, key: str, value: Any) -> str:
        if isinstance(value, (dict, list)):
            raise _fail(key, self.expected(), value)
        text = str(value).strip()
        if not text:
            raise _fail(key, self.expected(), value)
        return text

    def expected(self) -> str:
        return "a text value"

    def label(self) -> str:
        return "str" + (" | null" if self.nullable else "")


@dataclass(frozen=True)
class FolderName(Text):
    """A single path component (a run name): no slashes, not '.' or '..'."""

    def convert(self, key: str, value: Any) -> str:
        text = super().convert(key, value)
        if "/" in text or "\\" in text or text in (".", ".."):
            raise _fail(key, "a name without slashes", value)
        return text


@dataclass(frozen=True)
class Fractions(Kind):
    """``count`` fractions >= 0 that sum to 1, the first one > 0 (train/val/test shares)."""

    count: int = 3

    def convert(self, key: str, value: Any) -> tuple[float, ...]:
        try:
            numbers = tuple(float(v) for v in value) if isinstance(value, (list, tuple)) else ()
        except (TypeError, ValueError):
            numbers = ()
        if len(numbers) != self.count or min(numbers) < 0 or numbers[0] <= 0 or abs(sum(numbers) - 1) > 1e-6 \
                or any(isinstance(v, bool) for v in value):
            raise _fail(key, self.expected(), value)
        return numbers

    def expected(self) -> str:
        return f"{self.count} fractions train, val, test that sum to 1 (for example [0.7, 0.15, 0.15])"

    def label(self) -> str:
        return f"list of {self.count} floats summing to 1"


@dataclass(frozen=True)
class Pattern(Text):
    """A regular expression (Python's ``re``)."""

    def convert(self, key: str, value: Any) -> str:
        import re

        text = super().convert(key, value)
        try:
            re.compile(text)
        except re.error as err:
            raise _fail(key, f"a regular expression ({err})", value) from None
        return text

    def label(self) -> str:
        return "regex" + (" | null" if self.nullable else "")


@dataclass(frozen=True)
class ListOf(Kind):
    """A non-empty list whose items are each parsed by ``item`` (a single value is a list of one)."""

    item: Kind = Text()

    def convert(self, key: str, value: Any) -> tuple:
        items = value if isinstance(value, (list, tuple)) else [value]
        if not items:
            raise _fail(key, self.expected(), value)
        return tuple(self.item.parse(f"{key}[{i}]", v) for i, v in enumerate(items))

    def expected(self) -> str:
        return f"a list of {self.item.label()}"

    def label(self) -> str:
        return f"list of {self.item.label()}" + (" | null" if self.nullable else "")


def opt(default: Any, kind: Kind, help: str):
    """A field of an options dataclass: its default, its kind and its one-line help (shown in defaults.yaml)."""
    return field(default=default, metadata={"kind": kind, "help": help})


def group(cls, help: str, prefix: bool = False):
    """A field holding a group of options; ``prefix``: its keys are written ``name.key`` (a nested mapping)."""
    return field(default_factory=cls, metadata={"group": True, "help": help, "prefix": prefix})


def path_exists(key: str, value: str, what: str) -> None:
    if not Path(value).expanduser().exists():
        raise ConfigError(f"config key '{key}': {value}: no such {what}")
