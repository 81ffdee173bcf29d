"""Every command the README, docs/*.md and the paper specs' comments show still exists: its
subcommand and flags parse, the spec files and modules it names are there, a spec it runs
loads and expands (without running its trials: some take 40 minutes), and a make target it
names is in the Makefile. A doc that points at something gone fails here."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from harness.cli import build_parser
from harness.spec import load_spec
from harness.trials import expand

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SPECS = sorted((ROOT / "docs" / "specs").glob("*.toml"))
#: placeholders of a usage synopsis: such a line shows a form, not a command
PLACEHOLDER = re.compile(
    r"\b(SPEC|FILE|DIR|SQL|RUN|RUN_ID|NAME|TABLE|METRIC|STATUSES)\b|\.\.\.|\[--|\[[A-Z]|<[^>]*>"
)
STARTS = ("harness ", ".venv/bin/harness ", "python -m ", "make ")


def _commands() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for doc in DOCS:
        text = doc.read_text()
        for block in re.findall(r"```(?:sh|bash|shell)?\n(.*?)```", text, flags=re.S):
            lines = block.replace("\\\n", " ").splitlines()
            k = 0
            while k < len(lines):
                line = lines[k].split("  #")[0].strip()
                while line.count('"') % 2 and k + 1 < len(lines):  # a quoted SQL over lines
                    k += 1
                    line += " " + lines[k].strip()
                k += 1
                for part in re.split(r"\s*(?:&&|;)\s*", line):
                    if part.startswith(STARTS):
                        out.append((doc.name, part))
        for inline in re.findall(r"`((?:harness|python -m|make) [^`]+)`", " ".join(text.split())):
            for part in re.split(r"\s*(?:&&|;)\s*", inline):
                out.append((doc.name, part))
    for spec in SPECS:
        comments = " ".join(
            ln.lstrip("# ") for ln in spec.read_text().splitlines() if ln.startswith("#")
        )
        for inline in re.findall(r"`((?:harness|python -m|make) [^`]+)`", comments):
            out.append((spec.name, inline))
        for line in spec.read_text().splitlines():
            m = re.match(r"#\s+(.*)", line)
            if m:
                for part in re.split(r"\s*(?:&&|;|,? or )\s*", m.group(1)):
                    part = part.strip("`. ")
                    if part.startswith(STARTS):
                        out.append((spec.name, part))
    seen, unique = set(), []
    for doc, cmd in out:
        if PLACEHOLDER.search(cmd) or re.search(r"\|\w", cmd.split('"')[0]):
            continue  # a synopsis
        if (doc, cmd) not in seen:
            seen.add((doc, cmd))
            unique.append((doc, cmd))
    return unique


COMMANDS = _commands()


def test_the_docs_show_commands():
    assert len(COMMANDS) >= 25
    assert any(c.startswith("harness bench") for _d, c in COMMANDS)


def _check_paths(args: list[str]) -> None:
    for a in args:
        if re.fullmatch(r"(docs|datasets)/[\w./-]+\.(toml|parquet|csv)", a):
            assert (ROOT / a).exists(), f"{a} does not exist"


@pytest.mark.parametrize(("doc", "command"), COMMANDS, ids=[f"{d}: {c[:60]}" for d, c in COMMANDS])
def test_a_documented_command_still_exists(doc, command, tmp_path):
    argv = shlex.split(command)
    if argv[0] == "make":
        targets = re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), flags=re.M)
        assert argv[1] in targets, f"make {argv[1]}: no such target"
        return
    if argv[:2] == ["python", "-m"]:
        assert importlib.util.find_spec(argv[2]) is not None, f"no module {argv[2]}"
        _check_paths(argv[3:])
        return
    argv = argv[1:]  # harness or .venv/bin/harness
    if argv == ["--version"]:
        return
    parser = build_parser()
    names = next(a for a in parser._actions if a.dest == "command").choices
    assert argv[0] in names, f"{doc}: `{command}`: harness has no command {argv[0]!r}"
    if len(argv) == 1 or (argv[1] in ("update", "freeze", "verify", "list") and len(argv) == 2):
        return  # a command named in prose, without its arguments
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{doc}: `{command}` does not parse (exit {exc.code})")
    _check_paths(argv)
    if args.command == "bench" and getattr(args, "spec", None):
        from harness.resources import PAPER_PREFIX, resolve_spec

        path = args.spec if args.spec.startswith(PAPER_PREFIX) else ROOT / args.spec
        spec = load_spec(resolve_spec(str(path)))
        trials, _instances, _notes = expand(spec)
        assert trials, f"{args.spec} expands to no trial"


def test_every_command_has_its_function():
    from harness.cli import COMMANDS

    parser = build_parser()
    names = next(a for a in parser._actions if a.dest == "command").choices
    assert set(names) == set(COMMANDS)


def test_every_command_prints_its_help():
    """`--help` of every command and subcommand formats (a % in a help text once broke
    `harness bench --help`), and bench's help gives the defaults a bare bench runs with."""
    import contextlib
    import io

    parser = build_parser()
    names = next(a for a in parser._actions if a.dest == "command").choices
    for name, sub in names.items():
        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exc:
            parser.parse_args([name, "--help"])
        assert exc.value.code == 0 and out.getvalue(), name
        for action in sub._actions:
            if getattr(action, "choices", None) and isinstance(action.choices, dict):
                for child in action.choices:
                    with contextlib.redirect_stdout(io.StringIO()), pytest.raises(SystemExit):
                        parser.parse_args([name, child, "--help"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        parser.parse_args(["bench", "--help"])
    assert "the default suite: 5" in " ".join(out.getvalue().split())
