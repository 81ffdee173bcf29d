"""The report page in a real headless browser: Debian's Chromium (``.ci/run`` installs it),
driven by Playwright. The page must open from a file with nothing to fetch, log no error, and
draw every plot; a click on a legend entry hides its series. A screenshot goes into the
test's temporary folder.

Without Chromium (or Playwright) the test is skipped, except where ``HARNESS_REQUIRE_BROWSER``
is set, as CI sets it: there a missing browser fails the run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness.bench import bench
from harness.spec import spec_from_dict
from reports.report import write_report

#: as the machine's notes say Chromium runs here: no sandbox (root), no GPU, and none of the
#: background traffic a closed network refuses
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    path = os.environ.get("HARNESS_CHROMIUM") or shutil.which("chromium") or ""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = ""
    if not path:
        if os.environ.get("HARNESS_REQUIRE_BROWSER"):
            pytest.fail("HARNESS_REQUIRE_BROWSER is set but Chromium or Playwright is missing")
        pytest.skip("no Chromium (apt-get install chromium) or no Playwright (pip install .[dev])")
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("res")
    spec = spec_from_dict(
        {
            "bench": {"seeds": 3, "out": str(out), "runtime": "local", "workers": 2},
            "allocators": [{"name": a} for a in ("cbba", "sga", "greedy_nn", "hungarian")],
            "families": [
                {"name": "tdr", "sizes": ["6x2", "8x3"]},
                {"name": "assignment", "sizes": ["5x5", "7x7"]},
            ],
        },
        "browser test",
    )
    bench(spec, run_id="b1")
    return out


@pytest.fixture(scope="module")
def report(store, tmp_path_factory) -> Path:
    return write_report([store], tmp_path_factory.mktemp("rep"))


@pytest.mark.slow
def test_the_page_draws_every_plot_in_chromium(report, tmp_path):
    from playwright.sync_api import sync_playwright

    chromium = _chromium()
    problems: list[str] = []
    fetched: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: m.type in ("error", "warning") and problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("request", lambda r: not r.url.startswith("file:") and fetched.append(r.url))
            page.goto(report.as_uri())
            # every plot says whether it drew (reports/report.py DRAW_JS); wait for all to say
            page.wait_for_function(
                "document.querySelectorAll('div.iplot:not([data-drawn])').length === 0",
                timeout=120_000,
            )
            plots = page.evaluate(
                """Array.from(document.querySelectorAll('div.iplot')).map(d => [
                    d.id, d.dataset.drawn,
                    d.querySelectorAll('.main-svg').length,
                    Array.from(d.querySelectorAll('.point, path.js-line, path.box'))
                        .filter(e => { const b = e.getBBox(); return b.width + b.height > 0; })
                        .length])"""
            )
            assert len(plots) >= 10
            for div, drawn, svgs, marks in plots:  # marks: points, bars, lines, boxes drawn
                assert drawn == "yes", div
                assert svgs > 0 and marks > 0, div
            # the legend hides a series on a click, which the static SVG cannot
            target = "plot-tdr_objective_svg"
            page.locator(f"#{target} g.legend rect.legendtoggle").first.click()
            # plotly waits out its double-click delay before it acts on a click: wait for it
            page.wait_for_function(
                f"document.getElementById('{target}').data[0].visible === 'legendonly'",
                timeout=10_000,
            )
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert fetched == []  # the page opens offline: plotly.js is inlined
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_static_page_has_the_svg_plots_and_no_script(store, report, tmp_path):
    page = write_report([store], tmp_path / "rep", interactive=False)
    text = page.read_text()
    assert "<script" not in text
    assert text.count("<svg") == (report.read_text().count("<noscript><svg"))
