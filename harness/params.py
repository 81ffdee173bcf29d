"""The one way to declare a parameter: of an allocator, a problem family, a bench setting, the
``[execution]`` table and a fault profile.

A :class:`Param` names a value, gives its default and meaning, and says what is allowed (its
type comes from the default; choices; bounds; a nested table; or a check of its own). Its
``check`` turns a value from a spec or the command line into the value used, or raises a
``SpecError`` that names the file, the field and what was expected. :func:`resolve` does it for
a whole table, and the command line builds its flags and help from the same declarations
(``harness bench --help``), so a default is written once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.errors import SpecError


@dataclass(frozen=True)
class Param:
    """A declared parameter: name, default, what it means, and what values are allowed.

    - the type is the default's: bool, int, float (an int is accepted and made a float; never
      NaN or infinite) or str; ``None`` or another default accepts any value;
    - ``choices``: the allowed values;
    - ``low`` / ``high``: inclusive bounds, ``above``: an exclusive lower bound (``> 0``);
    - ``table``: the value is a table of these parameters (checked by :func:`resolve`);
      ``each``: a table of these, or a list of such tables (errors name ``field[i]``);
    - ``required``: a table that holds this parameter must give it;
    - ``parse(value, source, where)``: a check of its own, returning the value to use or
      raising ``ValueError`` (then the error says ``expected``) or a ``SpecError`` of its own
      (naming a field inside the value);
    - ``expected``: what an error says is expected, when the generated phrase would not do.
    """

    name: str
    default: Any
    doc: str = ""
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    above: float | None = None
    table: tuple[Param, ...] | None = None
    each: tuple[Param, ...] | None = None
    required: bool = False
    parse: Callable[[Any, str, str], Any] | None = None
    expected: str = ""

    @property
    def kind(self) -> type | None:
        """The value's type (from the default), or None when any value goes."""
        d = self.default
        for typ in (bool, int, float, str):
            if isinstance(d, typ):
                return typ
        return None

    def expectation(self) -> str:
        """What a valid value is, in words: the phrase of error messages and of ``--help``."""
        if self.expected:
            return self.expected
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        words = {
            bool: "true or false",
            int: "an integer",
            float: "a finite number",
            str: "a string",
        }
        text = words.get(self.kind, "a value")  # type: ignore[arg-type]
        if self.above is not None:
            text += f" > {_num(self.above)}"
        if self.low is not None:
            text += f" >= {_num(self.low)}"
        if self.high is not None:
            text += f", at most {_num(self.high)}"
        return text

    def check(self, value: Any, source: str, where: str) -> Any:
        """The value to use for ``value`` given at ``where`` in ``source``; else a SpecError."""
        if self.table is not None:
            return resolve(self.table, value, source, where, f"{self.name} settings")
        if self.each is not None:
            items = value if isinstance(value, list) else [value]
            what = f"{self.name} settings"
            return [
                resolve(self.each, t, source, f"{where}[{i}]", what) for i, t in enumerate(items)
            ]
        if self.parse is not None:
            try:
                return self.parse(value, source, where)
            except ValueError:
                raise SpecError(source, where, self.expectation(), value) from None
        kind = self.kind
        if kind is bool:
            ok = isinstance(value, bool)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if ok:
                value = float(value)
                ok = math.isfinite(value)
        elif kind is str:
            ok = isinstance(value, str)
        else:
            ok = True
        if not ok:
            about = f" ({self.doc})" if self.doc and not self.expected else ""
            raise SpecError(source, where, self.expectation() + about, value)
        bad = (
            (self.choices is not None and value not in self.choices)
            or (self.low is not None and value < self.low)
            or (self.high is not None and value > self.high)
            or (self.above is not None and not value > self.above)
        )
        if bad:
            raise SpecError(source, where, self.expectation(), value)
        return value

    def help(self) -> str:
        """``--help`` text: the meaning, what is allowed (unless a flag or free text), and
        the default."""
        parts = [self.doc] if self.doc else []
        if self.choices is not None or self.kind not in (bool, str):
            parts.append(self.expectation())
        return f"{': '.join(parts)} (default {shown(self.default)})"


def shown(value: Any) -> str:
    """A value as a spec writes it: true/false, ``none`` for empty text."""
    if isinstance(value, bool):
        return str(value).lower()
    return "none" if value == "" else str(value)


def _num(x: float) -> str:
    """A bound as people write it: 1,000,000 and 0.005, not 1e+06 and 5e-03."""
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def resolve(
    decl: Sequence[Param],
    given: Any,
    source: str,
    where: str,
    what: str = "settings",
    fill: bool = True,
) -> dict[str, Any]:
    """Check the table ``given`` at ``where`` against the parameters ``decl``: unknown names
    and bad values are refused with the field named; the defaults of the others are filled in
    (unless not ``fill``). ``what`` names the table's members in errors ("parameters of
    cbba")."""
    if not isinstance(given, dict):
        raise SpecError(source, where, f"a table of {what}", given)
    known = {p.name: p for p in decl}
    for key in given:
        if key not in known:
            raise SpecError(
                source, f"{where}.{key}", f"one of the {what}: {', '.join(known) or 'none'}"
            )
    for p in decl:
        if p.required and p.name not in given:
            raise SpecError(source, f"{where}.{p.name}", f"{p.expectation()} (required)")
    return {
        name: p.check(given[name], source, f"{where}.{name}") if name in given else p.default
        for name, p in known.items()
        if fill or name in given
    }


def defaults(decl: Sequence[Param]) -> dict[str, Any]:
    """Each parameter's default, by name."""
    return {p.name: p.default for p in decl}
