"""The page at ``/`` and the offline API docs, driven in Debian's Chromium by Playwright.

A real server on 127.0.0.1 (``svc_live``), a real browser; every request the browser makes to
another host is refused and recorded, and the tests assert there was none. Numbers on the page
are compared with the library (``sigscore.resistance_index``) and the downloaded CSV with the
CLI's (``sigscore index``) on the same file. Accessibility: axe-core from npm
(``tests/service/axe``, installed by ``scripts/setup.sh``), no serious or critical violation.

Screenshots go to ``$SIGSCORE_SCREENSHOTS`` when set (``docs/screenshots`` holds the committed
ones), else to a pytest temporary folder.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from svc_live import Server

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright not installed (pip install -e '.[test]')"
)

expect = sync_api.expect
CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]  # fmt: skip
# generous: the first score in a fresh worker pays for imports on a busy 2-core machine
TIMEOUT_MS = 180_000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (scripts/setup.sh)"
)


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("SIGSCORE_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def example() -> Path:
    from sigscore.example import example_path

    return Path(example_path())


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, example: Path) -> Path:
    """A reference cohort (the example itself), built by the CLI."""
    from typer.testing import CliRunner

    from sigscore.cli import app

    out = tmp_path_factory.mktemp("ref") / "example_reference.json"
    res = CliRunner().invoke(app, ["reference", "build", str(example), "-o", str(out)])
    assert res.exit_code == 0, res.output
    return out


class Guard:
    """A page whose requests may go to 127.0.0.1 only; others are aborted and recorded."""

    def __init__(self, browser: Any, **context: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1100, "height": 900}, **context)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.outside: list[str] = []
        self.console: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))

    def _route(self, route: Any) -> None:
        url = route.request.url
        host = re.match(r"^[a-z]+://([^/:]+)", url)
        if url.startswith(("blob:", "data:")) or (
            host is not None and host.group(1) == "127.0.0.1"
        ):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def check_clean(self) -> None:
        """No request left this machine; no CSP violation or script error on the page."""
        assert self.outside == [], f"requests to other hosts: {self.outside}"
        bad = [c for c in self.console
               if "Content Security Policy" in c or c.startswith("pageerror")]  # fmt: skip
        assert bad == [], bad


@pytest.fixture
def guard(browser: Any) -> Iterator[Guard]:
    g = Guard(browser)
    try:
        yield g
    finally:
        g.context.close()


def axe_check(page: Any, where: str) -> None:
    """axe-core on the page as it is now: no serious or critical violation."""
    # served as a same-origin script (intercepted, never reaching the server), so the page's
    # Content-Security-Policy stays in force: an inline copy (add_script_tag(path=...)) is
    # refused by script-src 'self', as it should be
    origin = re.match(r"^https?://[^/]+", page.url).group(0)  # type: ignore[union-attr]
    page.route(origin + "/__axe.min.js", lambda route: route.fulfill(
        path=str(AXE), headers={"Content-Type": "text/javascript"}))  # fmt: skip
    page.add_script_tag(url=origin + "/__axe.min.js")
    res = page.evaluate(
        "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})); }"
    )
    bad = [v for v in res if v["impact"] in ("serious", "critical")]
    assert bad == [], f"{where}: {json.dumps(bad, indent=1)}"


def open_page(g: Guard, url: str) -> Any:
    page = g.page
    page.goto(url + "/")
    # the methods come from GET /v1/methods: the page is ready when they are listed
    page.locator("#method option").nth(1).wait_for(state="attached")
    return page


def sentence(detail: str) -> str:
    """The page's rendering of a problem's detail: a capital for a plain first word (not a
    file name), and a full stop."""
    s = detail.strip()
    if re.match(r"[a-z]+(\s|$)", s):
        s = s[0].upper() + s[1:]
    return s if s[-1] in ".!?" else s + "."


def progress_line(info: dict[str, Any]) -> str:
    """How the page logs a job state (JobInfo of ``GET /v1/jobs/{id}``)."""
    if info["state"] != "running":
        return str(info["state"])
    pct = math.floor(info["progress"] * 100 + 0.5)  # JavaScript's Math.round
    return f"running – {info['stage'] or 'working'} {pct}%"


def table(page: Any) -> pd.DataFrame:
    """The results table as shown: text and the exact value behind each number."""
    rows = page.evaluate(
        """() => [...document.querySelectorAll('#scores tbody tr')].map(tr =>
            Object.fromEntries([...tr.children].map(c =>
                [c.dataset.key, {text: c.textContent, value: c.dataset.value ?? null}])))"""
    )
    return pd.DataFrame(rows).set_index(pd.Index([r["sample"]["text"] for r in rows]))


def check_index_table(page: Any, lib: pd.DataFrame) -> None:
    shown = table(page)
    assert list(shown.index) == [str(s) for s in lib.index]
    for sample, row in shown.iterrows():
        want = float(lib.loc[sample, "index"])
        # to the displayed precision (4 decimals), and the exact value behind it
        assert abs(float(row["index"]["text"]) - want) <= 0.5e-4 + 1e-12, (sample, row["index"])
        assert float(row["index"]["value"]) == want
        assert row["flags"]["text"] == str(lib.loc[sample, "flags"] or "")
        if "pct_index" in lib.columns:
            pct = float(lib.loc[sample, "pct_index"])
            assert abs(float(row["pct_index"]["text"]) - pct) <= 0.05 + 1e-9, (sample, pct)


def check_contributions(page: Any, lib: pd.DataFrame) -> None:
    """Each bar's segments are the library's contributions, add up to the index, and are
    drawn so: the index mark sits where the positive minus the negative lengths end."""
    bars = page.evaluate(
        """() => {
          const zero = document.querySelector('#contrib svg line');
          const x0 = Number(zero.getAttribute('x1'));
          return [...document.querySelectorAll('#contrib g.bar')].map(g => {
            const segs = [...g.querySelectorAll('rect[data-module]')].map(r => ({
              module: r.dataset.module, value: Number(r.dataset.value),
              width: Number(r.getAttribute('width'))}));
            const m = g.querySelector('.index-mark');
            return {sample: g.dataset.sample, segs, index: Number(m.dataset.index),
                    mark: Number(m.getAttribute('x')) + Number(m.getAttribute('width')) / 2 - x0};
          });
        }"""
    )
    assert [b["sample"] for b in bars] == [str(s) for s in lib.index]
    for b in bars:
        lib_row = lib.loc[b["sample"]]
        assert b["index"] == float(lib_row["index"])
        total = 0.0
        for s in b["segs"]:
            assert s["value"] == float(lib_row["contrib_" + s["module"]])
            total += s["value"]
        assert abs(total - b["index"]) <= 1e-9, b
        px = sum(s["width"] if s["value"] > 0 else -s["width"] for s in b["segs"])
        assert abs(px - b["mark"]) <= 0.5 * len(b["segs"]) + 1e-6, b  # min width 0.5 px


def wait_results(page: Any) -> None:
    page.wait_for_selector("#results", state="visible")
    page.wait_for_selector("#scores tbody tr")


# --------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def web(server: Server) -> Server:
    """The default live server of tests/service/conftest.py, named for this module's tests."""
    return server


def test_example_upload_matches_library_and_cli(
    guard: Guard, web: Server, example: Path, reference: Path, shots: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    import sigscore
    from sigscore.cli import app

    lib = sigscore.resistance_index(str(example), reference=str(reference))
    cli_csv = tmp_path / "cli.csv"
    res = CliRunner().invoke(
        app, ["index", str(example), "--reference", str(reference), "-o", str(cli_csv)]
    )
    assert res.exit_code == 0, res.output

    page = open_page(guard, web.url)
    assert page.get_by_text("Research use only; not a diagnostic.").first.is_visible()
    page.screenshot(path=str(shots / "web-upload.png"))

    page.set_input_files("#file", str(example))
    page.set_input_files("#reference", str(reference))
    page.click("#submit")
    wait_results(page)
    assert page.locator("#job").is_hidden()  # small: answered at once, not a job

    check_index_table(page, lib)
    check_contributions(page, lib)
    modules = [c[len("score_") :] for c in lib.columns if c.startswith("score_")]
    cells = page.locator("#heatmap rect[data-module]")
    assert cells.count() == len(modules) * len(lib)
    # research-use statement beside the numbers
    assert page.locator("#results .ruo").is_visible()
    # coverage: one row per module, found counts as the library's
    cov = lib.attrs["sigscore"]["coverage"]
    rows = page.locator("#coverage tbody tr")
    assert rows.count() == len(cov)
    for i, c in enumerate(cov):
        assert rows.nth(i).locator("th").inner_text() == c["module"]
        assert (
            rows.nth(i)
            .locator("td")
            .first.inner_text()
            .startswith(f"{c['n_found']} of {c['n_genes']}")
        )
    manifest = page.locator("#manifest").inner_text()
    lib_manifest = lib.attrs["sigscore"]["manifest"]
    assert lib_manifest["signatures"]["hash"] in manifest
    assert lib_manifest["index_definition"]["hash"] in manifest
    assert f"sigscore version\n{sigscore.__version__}" in manifest
    assert "singscore" in manifest

    # sorting by index (descending first), then filtering
    page.click("#scores th[data-key=index] button")
    order = [r for r in table(page).index]
    assert order == [str(s) for s in lib["index"].sort_values(ascending=False).index]
    assert page.locator("#scores th[data-key=index]").get_attribute("aria-sort") == "descending"
    page.fill("#filter", "S00")
    n_match = sum("S00" in str(s) for s in lib.index)
    expect(page.locator("#scores tbody tr")).to_have_count(n_match)
    page.fill("#filter", "")
    expect(page.locator("#scores tbody tr")).to_have_count(len(lib))

    page.locator("#filter").blur()
    page.locator("#results").screenshot(path=str(shots / "web-results.png"))

    # CSV download (stored through a job) = the CLI's CSV on the same file
    with page.expect_download() as dl:
        page.click(".downloads button[data-format=csv]")
    got = Path(dl.value.path()).read_bytes()
    assert got == cli_csv.read_bytes()
    pd.testing.assert_frame_equal(
        pd.read_csv(Path(dl.value.path()), index_col=0), pd.read_csv(cli_csv, index_col=0)
    )
    assert re.search(r"[?&]job=[A-Za-z0-9]{32}", page.url)  # the stored result is addressable
    # the other formats come from the same stored result
    for fmt, magic in (("parquet", b"PAR1"), ("html", b"<"), ("json", b"{")):
        with page.expect_download() as dl:
            page.click(f".downloads button[data-format={fmt}]")
        data = Path(dl.value.path()).read_bytes()
        assert data.lstrip()[: len(magic)] == magic, fmt
    guard.check_clean()


def test_malformed_file_shows_the_problem_sentence(
    guard: Guard, web: Server, shots: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "broken.csv"
    bad.write_text("gene,S1,S2\nTP53,1.5,2.5\nMYC,2.0,3.1,4.2,5.3\nEGFR,0.1,0.2\n")
    # the API's own words for this file
    r = httpx.post(
        web.url + "/v1/score",
        files={"file": ("broken.csv", bad.read_bytes())},
        timeout=120,
    )
    assert r.status_code in (400, 415, 422), r.text
    detail = r.json()["detail"]

    page = open_page(guard, web.url)
    page.set_input_files("#file", str(bad))
    page.click("#submit")
    msg = page.locator("#message")
    msg.wait_for(state="visible")
    text = msg.inner_text()
    assert text == sentence(detail)
    assert "{" not in text and '"detail"' not in text  # a sentence, not JSON
    assert page.locator("#results").is_hidden()
    page.screenshot(path=str(shots / "web-error.png"))
    guard.check_clean()


def test_no_serious_accessibility_violations(
    guard: Guard, web: Server, example: Path, tmp_path: Path
) -> None:
    """axe-core on the upload view (options open too), an error and the results (the job
    view is checked in the job test)."""
    if not AXE.exists():
        pytest.skip(f"axe-core not installed at {AXE} (scripts/setup.sh runs npm ci there)")
    page = open_page(guard, web.url)
    axe_check(page, "upload view")
    page.click("#key-box summary")
    page.click("details.more summary")  # the other options open too
    axe_check(page, "upload view, options open")
    bad = tmp_path / "broken.csv"
    bad.write_text("gene,S1,S2\nTP53,1.5,2.5\nMYC,2.0,3.1,4.2,5.3\n")
    page.set_input_files("#file", str(bad))
    page.click("#submit")
    page.locator("#message").wait_for(state="visible")
    axe_check(page, "error view")
    page.set_input_files("#file", str(example))
    page.click("#submit")
    wait_results(page)
    axe_check(page, "results view")
    page.click("#scores th[data-key=index] button")  # sorted: aria-sort set
    axe_check(page, "results view, sorted")
    guard.check_clean()


def test_large_input_becomes_a_job_with_progress_that_survives_reload(
    guard: Guard, make_server: Any, example: Path, tmp_path: Path
) -> None:
    import sigscore

    srv = make_server({"SIGSCORE_SYNC_MAX_BYTES": "1000"}).start()
    lib = sigscore.resistance_index(str(example))
    page = open_page(guard, srv.url)
    page.set_input_files("#file", str(example))
    page.click("#submit")
    page.wait_for_url(re.compile(r"[?&]job=[A-Za-z0-9]{32}"))
    job_id = re.search(r"job=([A-Za-z0-9]{32})", page.url).group(1)  # type: ignore[union-attr]
    assert page.locator("#job").is_visible()
    assert page.locator("#job-id").inner_text() == job_id
    # the 202 answer itself is shown: the job was queued
    assert page.locator("#job-log li").first.get_attribute("data-state") == "queued"
    if AXE.exists():
        axe_check(page, "job view")

    # after the reload the page finds the job from its address; every state the API
    # reported (queued, running with stage and progress, done) is shown, in order
    polls: list[Any] = []
    page.on("response", lambda r: polls.append(r) if r.url.endswith(f"/v1/jobs/{job_id}") else None)
    page.reload()
    page.wait_for_selector("#job", state="visible")
    assert page.locator("#job-id").inner_text() == job_id
    wait_results(page)
    assert page.locator("#job-state").get_attribute("data-state") == "done"
    assert page.locator("#job-progress").evaluate("p => p.value") == 1
    reported = []
    for r in polls:
        try:
            reported.append(progress_line(r.json()))
        except sync_api.Error as exc:  # a poll of the page before the reload
            assert "navigated away" in str(exc), exc
    expected = [x for i, x in enumerate(reported) if i == 0 or x != reported[i - 1]]
    assert page.locator("#job-log li").evaluate_all("ls => ls.map(l => l.dataset.line)") == expected
    assert expected[-1] == "done"
    check_index_table(page, lib)
    check_contributions(page, lib)

    # a file over the threshold whose genes are unknown fails as a job: its reason is shown as a sentence
    bad = tmp_path / "unknown_genes.csv"
    bad.write_text("gene,S1,S2\n" + "".join(f"G{i},1.5,2.5,3.5\n" for i in range(200)))
    assert bad.stat().st_size > 1000
    page.click("#again")
    page.set_input_files("#file", str(bad))
    page.click("#submit")
    msg = page.locator("#message")
    msg.wait_for(state="visible")
    failed_id = re.search(r"job=([A-Za-z0-9]{32})", page.url).group(1)  # type: ignore[union-attr]
    info = httpx.get(f"{srv.url}/v1/jobs/{failed_id}", timeout=30).json()
    assert info["state"] == "failed"
    assert msg.inner_text() == sentence(info["error"]["detail"])
    assert page.locator("#job-state").get_attribute("data-state") == "failed"
    guard.check_clean()


def test_dropped_file_scores_module_scores_only(guard: Guard, web: Server, example: Path) -> None:
    """A file dropped on the box (a DataTransfer, as a drag from the desktop gives), module
    scores only: the table shows the library's ``score()`` per module."""
    import gzip

    import sigscore

    lib = sigscore.score(str(example), progress=False)
    page = open_page(guard, web.url)
    text = gzip.decompress(example.read_bytes()).decode()
    dt = page.evaluate_handle(
        "text => { const dt = new DataTransfer();"
        " dt.items.add(new File([text], 'dropped.tsv', {type: 'text/tab-separated-values'}));"
        " return dt; }",
        text,
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": dt})
    assert page.locator("#file-chosen").inner_text().startswith("Chosen: dropped.tsv")
    page.uncheck("#index")
    page.click("#submit")
    wait_results(page)
    shown = table(page)
    assert list(shown.index) == [str(s) for s in lib.index]
    for module in lib.columns:
        for sample, cell in shown[module].items():
            want = float(lib.loc[sample, module])
            assert abs(float(cell["text"]) - want) <= 0.5e-4 + 1e-12, (sample, module)
            assert float(cell["value"]) == want
    assert page.locator("#contrib").inner_text() == "Contributions exist for the index only."
    cells = page.locator("#heatmap rect[data-module]")
    assert cells.count() == lib.shape[0] * lib.shape[1]
    guard.check_clean()


def test_own_signature_file_and_method(
    guard: Guard, web: Server, example: Path, tmp_path: Path
) -> None:
    """A GMT of two modules and another method: the table holds the library's scores."""
    import sigscore
    from sigscore.signatures import load_signatures

    gmt = tmp_path / "two_modules.gmt"
    gmt.write_text(load_signatures("core").subset(["emt", "proliferation"]).to_gmt())
    lib = sigscore.score(str(example), str(gmt), "zscore", progress=False)
    page = open_page(guard, web.url)
    page.set_input_files("#file", str(example))
    page.check("#sig-file")
    assert page.locator("#tier").is_disabled()
    page.set_input_files("#signatures", str(gmt))
    page.select_option("#method", "zscore")
    page.uncheck("#index")
    page.click("#submit")
    wait_results(page)
    shown = table(page)
    assert [c for c in shown.columns if c != "sample"] == list(lib.columns)
    for module in lib.columns:
        for sample, cell in shown[module].items():
            assert float(cell["value"]) == float(lib.loc[sample, module]), (sample, module)
    assert "zscore" in page.locator("#manifest").inner_text()
    guard.check_clean()


def test_own_index_definition(guard: Guard, web: Server, example: Path, tmp_path: Path) -> None:
    """An uploaded index definition (three modules, one negative, unequal weights): the
    index and the contributions are the library's for that definition."""
    import sigscore

    definition = tmp_path / "three_modules.yaml"
    definition.write_text(
        "schema: sigscore.index/1\nname: lab_three\nversion: 0.1.0\nmethod: singscore\n"
        "tier: extended\nmodules:\n"
        "  - {module: il6_jak_stat3, sign: 1, weight: 2.0}\n"
        "  - {module: emt, sign: -1, weight: 1.0}\n"
        "  - {module: immune_evasion, sign: 1, weight: 0.5}\n"
    )
    lib = sigscore.resistance_index(str(example), definition=str(definition))
    assert [c for c in lib.columns if c.startswith("contrib_")] == [
        "contrib_il6_jak_stat3", "contrib_emt", "contrib_immune_evasion"]  # fmt: skip
    page = open_page(guard, web.url)
    page.set_input_files("#file", str(example))
    page.set_input_files("#definition", str(definition))
    page.click("#submit")
    wait_results(page)
    check_index_table(page, lib)
    check_contributions(page, lib)
    assert "lab_three 0.1.0" in page.locator("#manifest").inner_text()
    guard.check_clean()


def test_phone_width_needs_no_sideways_scrolling(
    browser: Any, web: Server, example: Path, shots: Path
) -> None:
    g = Guard(browser)
    try:
        g.page.set_viewport_size({"width": 375, "height": 740})
        page = open_page(g, web.url)

        def overflow() -> int:
            return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))

        assert overflow() <= 0
        page.set_input_files("#file", str(example))
        page.click("#submit")
        wait_results(page)
        assert overflow() <= 0  # wide tables and charts scroll inside their own boxes
        page.locator("#h-results").evaluate("h => h.scrollIntoView({block: 'start'})")
        page.screenshot(path=str(shots / "web-phone-results.png"))
        g.check_clean()
    finally:
        g.context.close()


def test_keyboard_only_submission(guard: Guard, web: Server, example: Path) -> None:
    page = open_page(guard, web.url)
    # choosing the file is the operating system's dialog; everything after is the keyboard
    page.set_input_files("#file", str(example))
    page.evaluate("document.activeElement && document.activeElement.blur()")
    seen = []
    for _ in range(60):
        page.keyboard.press("Tab")
        focus = page.evaluate(
            """() => { const e = document.activeElement;
                 const s = getComputedStyle(e);
                 return {id: e.id, tag: e.tagName, outline: s.outlineStyle,
                         width: parseFloat(s.outlineWidth)}; }"""
        )
        seen.append(focus)
        if focus["id"] == "submit":
            break
    assert seen[-1]["id"] == "submit", f"Score button not reachable by Tab: {seen}"
    # the focus is visible on every control the Tab key reached
    hidden = [f for f in seen if f["outline"] == "none" or f["width"] < 2]
    assert hidden == [], hidden
    assert {"file", "method", "tier", "reference"} <= {f["id"] for f in seen}
    page.keyboard.press("Enter")
    wait_results(page)
    # the focus moves to the results, so a screen reader announces them
    assert page.evaluate("document.activeElement.id") == "h-results"
    guard.check_clean()


def test_api_key_is_asked_for_and_kept_for_the_session_only(
    guard: Guard, make_server: Any, example: Path
) -> None:
    srv = make_server({"SIGSCORE_API_KEYS": "k-browser-1"}).start()
    page = guard.page
    page.goto(srv.url + "/")
    msg = page.locator("#message")
    msg.wait_for(state="visible")
    assert msg.inner_text().startswith("An API key is required")
    assert page.locator("#key-box").evaluate("d => d.open")
    page.fill("#apikey", "k-browser-1")
    page.click("#key-save")
    page.locator("#method option").nth(1).wait_for(state="attached")
    stored = page.evaluate(
        "() => ({session: sessionStorage.getItem('sigscore.apiKey'),"
        " local: Object.keys(localStorage).length, cookie: document.cookie})"
    )
    assert stored == {"session": "k-browser-1", "local": 0, "cookie": ""}
    page.set_input_files("#file", str(example))
    page.click("#submit")
    wait_results(page)
    guard.check_clean()


def test_busy_server_says_when_to_retry(guard: Guard, web: Server, example: Path) -> None:
    """A 429 problem (as the service sends when its queue is full) becomes a sentence with the
    Retry-After time; the answer is substituted in the browser to make the queue full."""
    detail = "the server is busy (3 jobs and synchronous requests queued or running; the limit is 3); retry later"  # fmt: skip
    page = open_page(guard, web.url)
    page.route(
        "**/v1/score*",
        lambda route: route.fulfill(
            status=429,
            headers={"Content-Type": "application/problem+json", "Retry-After": "30"},
            body=json.dumps(
                {
                    "type": "about:blank",
                    "title": "Too Many Requests",
                    "status": 429,
                    "detail": detail,
                }
            ),
        ),
    )
    page.set_input_files("#file", str(example))
    page.click("#submit")
    msg = page.locator("#message")
    msg.wait_for(state="visible")
    text = msg.inner_text()
    assert text.startswith(sentence(detail) + " Try again in 30 seconds (after ")
    guard.check_clean()


def test_docs_render_offline_and_are_named_in_metrics(guard: Guard, web: Server) -> None:
    page = guard.page
    ops = httpx.get(web.url + "/openapi.json", timeout=30).json()["paths"]
    n_ops = sum(len(v) for v in ops.values())
    page.goto(web.url + "/docs")
    expect(page.locator(".opblock")).to_have_count(n_ops, timeout=TIMEOUT_MS)
    paths = set(page.locator(".opblock-summary-path").all_inner_texts())
    assert {p.replace("\u200b", "") for p in paths} >= {"/v1/score", "/v1/jobs/{job_id}"}

    page.goto(web.url + "/redoc")
    page.wait_for_selector("[data-section-id^='tag/']", timeout=TIMEOUT_MS)
    page.get_by_text("Score one matrix").first.wait_for(state="attached")
    guard.check_clean()

    open_page(guard, web.url)
    text = httpx.get(web.url + "/metrics", timeout=30).text
    for route in ("/docs", "/redoc", "/docs/assets/{name}", "/openapi.json", "/"):
        assert f'route="{route}",status="200"' in text, route
    assert 'route="unmatched",status="200"' not in text


def test_page_headers_forbid_inline_script(web: Server) -> None:
    r = httpx.get(web.url + "/", timeout=30)
    csp = r.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert "unsafe" not in csp
    assert "<script>" not in r.text  # scripts are files
    # no reference to any other host in the page or its assets
    for name in ("index.html", "app.js", "charts.js", "style.css"):
        body = httpx.get(web.url + ("/" if name == "index.html" else f"/ui/{name}"), timeout=30)
        assert body.status_code == 200
        assert not re.search(
            r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}",
            body.text.replace("http://www.w3.org/2000/svg", ""),
        ), name
    assert httpx.get(web.url + "/ui/..%2Fapp.py", timeout=30).status_code == 404
