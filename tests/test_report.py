"""``harness report``: the HTML page and its Markdown twin (reports/report.py)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.bench import bench
from harness.spec import spec_from_dict
from reports import report as report_mod
from reports.report import markdown_to_html, mean_ci, write_report

ALLOCATORS = ("cbba", "greedy_nn", "sga")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("res")
    spec = spec_from_dict(
        {
            "bench": {
                "seeds": 3,
                "out": str(out),
                "runtime": "local",
                "workers": 2,
                "trace_rounds": True,
            },
            "allocators": [{"name": a} for a in ALLOCATORS],
            "families": [
                {"name": "tdr", "sizes": ["6x2", "10x3", "60x8"]},
                {"name": "assignment", "sizes": ["5x5"]},
            ],
        },
        "report test",
    )
    bench(spec, run_id="r1")
    return out


class Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.refs += [v for k, v in attrs if k in ("src", "href") and v and not v.startswith("#")]

    def handle_data(self, data):
        self.text.append(data)


def test_report_renders_every_allocator_offline(store, tmp_path):
    page = write_report([store], tmp_path / "rep")
    text = page.read_text()
    p = Collect()
    p.feed(text)
    assert p.refs == []  # nothing to fetch: styles, plots and plotly.js are inline
    # tdr: 7 metrics against scale, 2 convergence, the distribution and gap-vs-messages plots;
    # assignment (one size): the last two and convergence; then the ranking across families
    n_plots = 7 + 2 + 2 + (2 + 2) + 1
    assert text.count('<div class="iplot"') == n_plots
    assert p.tags.count("svg") == n_plots  # each figure's SVG stays, in a noscript
    assert "Plotly.newPlot" in text and "plotly.js v" in text
    words = " ".join(p.text)
    for alg in ALLOCATORS:
        assert alg in words
    for family in ("tdr", "assignment"):
        assert f"Family {family}" in words
    md = (tmp_path / "rep" / "report.md").read_text()
    for name in re.findall(r"\]\(plots/([^)]+)\)", md):
        assert (tmp_path / "rep" / "plots" / name).exists()
    rows = [line for line in md.splitlines() if line.startswith("| cbba | local | 60x8 |")]
    assert len(rows) == 1 and "±" in rows[0]
    assert "convergence over rounds (60x8)" in md


def test_an_allocator_keeps_its_style_in_every_plot(store, tmp_path):
    write_report([store], tmp_path / "rep")
    styles: dict[str, set[str]] = {}
    for svg in (tmp_path / "rep" / "plots").glob("tdr_*.svg"):
        text = svg.read_text()
        # legend: a line in the series' colour, then its marker, then its label
        for colour, label in re.findall(
            r'<line [^>]*stroke="(#[0-9A-Fa-f]{6})"[^>]*/>\n<[^>]+/>\n<text [^>]*>([^<]+)</text>',
            text,
        ):
            styles.setdefault(label.split(" (= ")[0], set()).add(colour)
    page = report_mod.build([store])
    for name, fig in page.figures.items():  # the same colours on the interactive page
        for trace in fig["data"]:
            label = trace.get("legendgroup") or trace.get("name")
            colour = (trace.get("line") or trace.get("marker") or {}).get("color")
            if name.startswith("tdr_") and label in styles and isinstance(colour, str):
                styles[label].add(colour)
    assert set(styles) == set(ALLOCATORS)
    assert all(len(c) == 1 for c in styles.values())
    assert len({next(iter(c)) for c in styles.values()}) == len(ALLOCATORS)


def test_interval_is_students_t():
    s = mean_ci([1.0, 2.0, 3.0, 4.0])
    assert s.n == 4 and s.mean == 2.5
    assert s.half == pytest.approx(3.182446 * 1.2909944 / 2, rel=1e-5)
    assert mean_ci([None, float("nan")]) is None


def test_sections_plug_in(store, tmp_path, monkeypatch):
    from reports import routing
    from reports.svg import Styles

    seen = []

    def fake(results, out, styles):
        seen.append(styles)
        (out / "fake.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"></svg>')
        return "## Table 1: a paper's table\n\n| a | b |\n|---|---|\n| 1 | **2** |\n"

    monkeypatch.setattr(report_mod, "SECTIONS", (("A paper", fake), ("Routing", routing.section)))
    write_report([store], tmp_path / "rep")
    html = (tmp_path / "rep" / "report.html").read_text()
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "<h2" in html and "A paper" in html and "<strong>2</strong></td>" in html
    assert "### Table 1: a paper's table" in md and "plots/fake.svg" in md
    assert "Routing" not in md  # no executed trials: the section is left out
    assert len(seen) == 1 and isinstance(seen[0], Styles)  # the report's styles, passed in


def test_section_markdown_to_html():
    out = markdown_to_html(
        "# T\n\ntext `code` **b** <script>x</script>\n\n- one\n- two\n\n| x | y |\n"
        "|---|---|\n| 1 | a |\n\n![p](plots/p.svg) ![q](plots/q.svg)\n",
        {"p.svg": "<svg id='p'></svg>"},
    )
    assert "<h2>T</h2>" in out and "<code>code</code>" in out and "<strong>b</strong>" in out
    assert "&lt;script&gt;" in out and "<script>" not in out  # raw HTML is text
    assert "<li>one</li>" in out and "<li>two</li>" in out
    assert "<th>x</th>" in out and "<td>1</td>" in out and '<td class="text">a</td>' in out
    assert "<span class=\"plot\"><svg id='p'></svg></span>" in out  # a known plot: its SVG
    assert '<img src="plots/q.svg" alt="q"' in out  # an unknown one stays an image


def test_cli_report_names_bad_input(tmp_path, capsys):
    from harness.cli import main

    assert main(["report", "--results", str(tmp_path / "none")]) == 2
    assert "none" in capsys.readouterr().err
    assert main(["report", "--results", str(tmp_path)]) == 2


DOCS = Path(__file__).resolve().parents[1] / "docs" / "results.md"


def test_the_ten_documented_queries_run(store):
    from reports.views import connect

    text = DOCS.read_text()
    block = text.split("## Ten queries")[1].split("```sql")[1].split("```")[0]
    queries = [q.strip() for q in block.split(";") if q.strip()]
    assert len(queries) == 10
    con = connect([store])
    results = [con.execute(q).fetchall() for q in queries]
    assert results[0] and results[1] and results[7]  # best per size, gap/messages, rounds


def test_every_stored_column_is_documented(store):
    from reports.views import connect

    text = DOCS.read_text()
    documented = set(re.findall(r"`([a-z_0-9]+)`", text))
    cols = [r[0] for r in connect([store]).execute("DESCRIBE trials").fetchall()]
    prefixes = ("alg_p_", "m_violations_", "m_msgs_")
    missing = [c for c in cols if c not in documented and not c.startswith(prefixes)]
    assert missing == []


def test_the_store_reads_with_duckdb_alone(store):
    import subprocess
    import sys

    code = (
        "import sys, duckdb\n"
        f"t = duckdb.read_parquet('{store}/*/trials/*.parquet', union_by_name=True)\n"
        "n = duckdb.sql('SELECT count(*) FROM t').fetchall()[0][0]\n"
        f"r = duckdb.read_json('{store}/*/manifest.json', union_by_name=True, maximum_depth=2)\n"
        "runs = duckdb.sql('SELECT count(*) FROM r').fetchall()[0][0]\n"
        "assert not any(m.split('.')[0] in ('harness', 'reports') for m in sys.modules)\n"
        "print(n, runs)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["36", "1"]  # 3 allocators x (3 tdr sizes + 1) x 3 seeds


def test_runs_are_pooled_once_or_compared(store, tmp_path):
    import json
    import shutil

    root = tmp_path / "two"
    shutil.copytree(store / "r1", root / "r1")
    shutil.copytree(store / "r1", root / "r2")  # the same trials stored by a second run
    manifest = json.loads((root / "r2" / "manifest.json").read_text())
    (root / "r2" / "manifest.json").write_text(json.dumps({**manifest, "run_id": "r2"}))
    import pyarrow as pa
    import pyarrow.parquet as pq

    for f in (root / "r2" / "trials").glob("*.parquet"):
        t = pq.read_table(f)
        i = t.schema.get_field_index("trial_run_id")
        pq.write_table(t.set_column(i, "trial_run_id", pa.array(["r2"] * t.num_rows)), f)
    write_report([root], tmp_path / "pooled")
    pooled = (tmp_path / "pooled" / "report.md").read_text()
    assert "| cbba | local | 60x8 | 3/3 |" in pooled  # a trial stored twice counts once
    write_report([root], tmp_path / "by", by="run")
    by_run = (tmp_path / "by" / "report.md").read_text()
    assert (
        "| cbba @r1 | local | 60x8 | 3/3 |" in by_run
        and "| cbba @r2 | local | 60x8 | 3/3 |" in by_run
    )


def test_a_one_row_file_wins_over_the_compacted_row_until_compaction(store, tmp_path):
    import shutil

    from harness.store import COMPACTED, RunStore
    from reports.views import connect

    shutil.copytree(store / "r1", tmp_path / "r1")
    run = RunStore(tmp_path, "r1")
    assert run.single_files() == [] and (run.trials_dir / COMPACTED).exists()
    row = run.rows()[0]
    run.write_row({**row, "trial_status": "error", "trial_message": "rerun"})  # a resume
    for rows in (run.rows(), connect([tmp_path]).execute("SELECT * FROM trials").fetchall()):
        assert len(rows) == 36
    got = connect([tmp_path]).execute(
        "SELECT trial_status FROM trials WHERE trial_key = ?", [row["trial_key"]]
    )
    assert got.fetchall() == [("error",)]
    assert run.compact() == 36 and run.single_files() == []
    assert {r["trial_key"]: r["trial_status"] for r in run.rows()}[row["trial_key"]] == "error"


def test_trials_of_other_runtimes_never_share_a_mean(store, tmp_path):
    """A ray run and a local run of the same trials: one row each, the runtime in the table
    (pooled, 9,243 ms on ray and 5 ms locally once showed as 4,624 ± 9,609 ms)."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path / "two"
    shutil.copytree(store / "r1", root / "r1")
    shutil.copytree(store / "r1", root / "r2")
    for f in (root / "r2" / "trials").glob("*.parquet"):
        t = pq.read_table(f)
        for col, values in (
            ("trial_runtime", ["ray"] * t.num_rows),
            ("trial_key", [k + "-ray" for k in t.column("trial_key").to_pylist()]),
            ("trial_run_id", ["r2"] * t.num_rows),
        ):
            t = t.set_column(t.schema.get_field_index(col), col, pa.array(values))
        pq.write_table(t, f)
    write_report([root], tmp_path / "rep")
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| cbba on local | local | 60x8 | 3/3 |" in md
    assert "| cbba on ray | ray | 60x8 | 3/3 |" in md


def test_intervals_stay_inside_the_metric_range():
    from reports.report import _fmt
    from reports.stats import mean_ci

    s = mean_ci([5.0, 9243.0, 4.0], 0.0, None)  # a t interval would reach below 0 ms
    assert s.clipped and s.lo == 0.0 and s.hi == s.mean + s.half
    assert _fmt(s, ".3g").endswith("]†") and "[0, " in _fmt(s, ".3g")
    c = mean_ci([1.0, 1.0, 0.5], 0.0, 1.0)
    assert c.clipped and c.hi == 1.0 and _fmt(c, "%").startswith("83.3% [")
    free = mean_ci([10.0, 11.0, 12.0], 0.0, None)
    assert not free.clipped and "±" in _fmt(free, ".3g")
