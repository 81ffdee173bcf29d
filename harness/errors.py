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


def suggest(name: object, choices: object) -> str:
    """``"; did you mean X?"`` for the choice nearest a mistyped name, or nothing."""
    import difflib

    near = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {near[0]}?" if near else ""


class SpecError(InputError):
    """A malformed bench spec or command-line value."""


class InstanceError(InputError):
    """A malformed instance (generated, loaded from a benchmark file, or from Parquet/JSON)."""


def read_text(path: object, error: type[InputError] = InputError) -> str:
    """The text of an input file, or an ``error`` naming the file when it is missing, a
    directory, unreadable or not text (binary data, another encoding than UTF-8)."""
    from pathlib import Path

    p = Path(str(path))
    if p.is_dir():
        raise error(str(p), "(file)", "a text file, not a directory")
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise error(str(p), "(file)", "an existing file") from None
    except OSError as exc:
        raise error(str(p), "(file)", "a readable file", exc.strerror or str(exc)) from None
    if b"\0" in data[:4096]:
        raise error(str(p), "(file)", "a text file", "binary data")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            str(p), "(file)", "UTF-8 text", f"undecodable byte at offset {exc.start}"
        ) from None
