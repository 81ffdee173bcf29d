"""Errors for bad input. Every message names the source, the field and what was expected."""

from __future__ import annotations


class HarnessError(Exception):
    """Base class for errors the CLI reports without a traceback."""


class InputError(HarnessError):
    """Bad input: a spec, instance file, parameter or size.

    ``source`` is the file (or "command line", "generator ..."), ``field`` the dotted path of the
    offending value, ``expected`` a plain description of the accepted form.
    """

    def __init__(self, source: str, field: str, expected: str, got: object = None) -> None:
        self.source = source
        self.field = field
        self.expected = expected
        self.got = got
        text = f"{source}: {field}: expected {expected}"
        if got is not None:
            shown = repr(got)
            if len(shown) > 80:
                shown = shown[:77] + "..."
            text += f", got {shown}"
        super().__init__(text)


class SpecError(InputError):
    """A malformed bench spec or command-line value."""


class InstanceError(InputError):
    """A malformed instance (generated, loaded from a benchmark file, or from Parquet/JSON)."""
