"""Typed, validated settings: what a model file's hyperparameters, a training configuration file
and the command line may hold, checked in one place.

A settings class is a dataclass; ``check_settings(cls, values, where)`` checks a mapping of its
settings against the field's type (from the annotations: ``bool`` only takes True or False,
``int`` a whole number that is not a bool, ``float`` a finite number, ``str`` a string,
``X | None`` also None, ``list[float]`` a list of finite numbers, ``dict`` a table) and against
the class's ``RULES`` ({name: Rule}: a range or a set of choices), and names every unknown key.
A problem raises ``SettingsError`` (a ValueError) with one line naming where the settings came
from, the setting, what it must be and what it was. Nested tables are bounded in depth
(``MAX_DEPTH``), so a hostile file cannot exhaust the interpreter's stack.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass, fields
from functools import lru_cache

from gmtnet.errors import GmtnetError

#: Deepest nesting of lists and tables a settings value may hold.
MAX_DEPTH = 8


class SettingsError(GmtnetError, ValueError):
    """A setting has the wrong type or value, or is unknown; the message names it."""


@dataclass(frozen=True)
class Rule:
    """What a setting's value may be beyond its type: ``low <= value <= high`` (``low_open``:
    ``low < value``), or one of ``choices``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple | None = None
    why: str = ""

    def check(self, value) -> str | None:
        """None when ``value`` obeys the rule, else what it must be."""
        why = f" ({self.why})" if self.why else ""
        if self.choices is not None:
            return None if value in self.choices else f"one of {', '.join(map(str, self.choices))}{why}"
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and value > self.high
        if too_low or too_high:
            return _range_text(self) + why
        return None


def _number(x: float) -> str:
    """A bound as a user reads it: whole numbers in full (1,000,000), others as %g."""
    return f"{int(x):,}" if float(x).is_integer() and abs(x) < 1e12 else f"{x:g}"


def _range_text(rule: Rule) -> str:
    low, high = (None if rule.low is None else _number(rule.low)), (None if rule.high is None else _number(rule.high))
    if low is not None and high is not None:
        return f"> {low} and <= {high}" if rule.low_open else f"within {low} to {high}"
    if low is not None:
        return f"{'>' if rule.low_open else '>='} {low}"
    return f"<= {high}"


def positive(high: float | None = None, why: str = "") -> Rule:
    """A number above 0 (and at most ``high``)."""
    return Rule(low=0.0, high=high, low_open=True, why=why)


def at_least(low: float, high: float | None = None, why: str = "") -> Rule:
    """A number at least ``low`` (and at most ``high``)."""
    return Rule(low=low, high=high, why=why)


def one_of(*choices) -> Rule:
    return Rule(choices=tuple(choices))


def depth(value, limit: int = MAX_DEPTH) -> int:
    """Nesting depth of lists and tables in ``value`` (a scalar is 0), counted without recursion
    and no further than ``limit + 1``."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (list, tuple, dict)):
            level += 1
            deepest = max(deepest, level)
            if level > limit:
                return level
            stack.extend((v, level) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def _type_name(hint) -> str:
    names = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string", dict: "a table",
             type(None): "none"}
    if _is_union(hint):
        return " or ".join(_type_name(h) for h in typing.get_args(hint))
    if typing.get_origin(hint) is list:
        return "a list of finite numbers"
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _is_union(hint) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _fits(value, hint) -> bool:
    """Whether ``value`` has the type ``hint`` (see module)."""
    if _is_union(hint):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if hint is dict or typing.get_origin(hint) is dict:
        return isinstance(value, dict)
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint) or (object,)
        return isinstance(value, (list, tuple)) and all(_fits(v, item) for v in value)
    return isinstance(value, hint) if isinstance(hint, type) else True


@lru_cache(maxsize=None)
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def field_names(cls) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def check_settings(cls, values, where: str = "", rules: dict[str, Rule] | None = None) -> dict:
    """``values`` (a mapping of ``cls``'s settings, any subset) after checking each against its
    type and rule (``rules``: {name: Rule}); SettingsError naming ``where``, the setting and the
    problem for a value that breaks them, an unknown setting or a mapping nested deeper than
    ``MAX_DEPTH``. Returns a plain dict of the same values."""
    prefix = f"{where}: " if where else ""
    if not isinstance(values, dict):
        raise SettingsError(f"{prefix}expected a table of settings, got {type(values).__name__}")
    if depth(values) > MAX_DEPTH:
        raise SettingsError(f"{prefix}settings nested deeper than {MAX_DEPTH} levels")
    known = field_names(cls)
    unknown = sorted(str(k) for k in values if k not in known)
    if unknown:
        raise SettingsError(f"{prefix}unknown setting(s) {', '.join(unknown)} (known: {', '.join(known)})")
    rules = rules or {}
    hints = _hints(cls)
    for name, value in values.items():
        hint = hints[name]
        if not _fits(value, hint):
            raise SettingsError(f"{prefix}{name} must be {_type_name(hint)}, got {_shown(value)}")
        rule = rules.get(name)
        if rule is None or value is None:
            continue
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            wanted = rule.check(item)
            if wanted is not None:
                kind = "" if rule.choices is not None else _type_name(hint).split(" or ")[0] + " "
                raise SettingsError(f"{prefix}{name} must be {kind}{wanted}, got {_shown(value)}")
    return dict(values)


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


__all__ = ["MAX_DEPTH", "Rule", "SettingsError", "at_least", "check_settings", "depth", "field_names", "one_of",
           "positive"]
