"""The dashboard in a real headless Chromium (Debian's chromium + chromium-driver, driven by
selenium) over a store of real runs: `dummy` and `baseline` on two lite competitions with 3
seeds, and on a technique and an engineering task, all made with `harness.run`.

The standalone app (`harness view`) is served by uvicorn on 127.0.0.1; access control goes
through the real service (Ray Serve) with two users. Screenshots of every page land in
$HARNESS_TEST_ARTIFACTS/ui (default: the test's temp dir); with HARNESS_UPDATE_SCREENSHOTS=1
the README's two screenshots in docs/img/ are rewritten.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import http.client
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import harness
from harness.store import RunStore
from tests.procs import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parent.parent
TEST_AGENTS = REPO / "tests" / "agents"
COMPS = ["breast-cancer-diagnosis", "diabetes-progression"]
IMAGE_COMP = "digit-images"
TOKENS = {"alice-ui-token-01": "alice", "bob-ui-token-0002": "bob"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def _wait(cond: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


# ---------------------------------------------------------------- the store


@pytest.fixture(scope="module")
def ui_store(ray_local: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("ui") / "runs"
    lite = dict(lite=True, store=root, owner="alice")
    runs = {
        "dummy": harness.run(COMPS + [IMAGE_COMP], agent="dummy", seeds=3, **lite).run_id,
        "baseline": harness.run(COMPS[:1], agent="baseline", seeds=3, **lite).run_id,
        "baseline_tasks": harness.run(COMPS[:1], agent="baseline", technique_tasks=["imbalance"],
                                      engineering_tasks=["ml-spec"], **lite).run_id,
        "dummy_tasks": harness.run(COMPS[:1], agent="dummy", technique_tasks=["imbalance"],
                                   engineering_tasks=["ml-spec"], **lite).run_id,
    }
    # what other modules add (a rollout, sub-scores per group) is rendered without knowing its schema
    rs = RunStore(root, runs["baseline"])
    aid = f"{COMPS[0]}__baseline__s0"
    (rs.artifacts_dir(aid) / "logs" / "trajectory.json").write_text(json.dumps({"steps": [
        {"step": 0, "role": "assistant", "content": "read the data", "tool_calls": [{"name": "bash", "arguments": "ls /home/data"}],
         "output": "train.csv test.csv", "input_tokens": 120, "output_tokens": 30},
        {"step": 1, "role": "assistant", "content": "fit a model", "output": "cv 0.98"}]}))
    (rs.dir / "score_details").mkdir()
    pq.write_table(pa.Table.from_pylist([{"run_id": rs.run_id, "attempt_id": aid, "competition_id": COMPS[0], "seed": 0,
                                          "group": g, "score": v} for g, v in (("benign", 0.99), ("malignant", 0.97))]),
                   rs.dir / "score_details" / f"{aid}.parquet")
    # an agent's hostile leftovers in an attempt of the dummy run
    logs = RunStore(root, runs["dummy"]).artifacts_dir(f"{COMPS[0]}__dummy__s1") / "logs"
    (logs / "evil.log").symlink_to("/etc/passwd")
    os.mkfifo(logs / "pipe.log")
    os.link(logs / "agent.log", logs / "hardlink.log")
    return {"root": root, "runs": runs}


class Viewer:
    """`harness view` in its own process (as a user starts it), on a free port of 127.0.0.1."""

    def __init__(self, store: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.log = store.parent / "harness-view.log"
        with open(self.log, "wb") as log:  # a file, not a pipe: a full pipe would block the server
            self.proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "view", "--store", str(store),
                                          "--port", str(self.port)], env=env, stdout=log, stderr=subprocess.STDOUT)
        _wait(lambda: self.proc.poll() is not None or _get_ok(f"{self.url}/ui/"), 60, "harness view to listen")
        assert self.proc.poll() is None, self.log.read_text()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def viewer(ui_store: dict[str, Any]) -> Iterator[Viewer]:
    v = Viewer(ui_store["root"])
    yield v
    v.stop()


def _raw_get(port: int, path: str) -> int:
    """The status of a GET sent with its path exactly as written (no client-side `..` clean-up)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = os.environ.get("HARNESS_TEST_ARTIFACTS")
    d = Path(base) / "ui" if base else tmp_path_factory.mktemp("ui-screenshots")
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail("chromium and chromium-driver are needed (scripts/setup.sh installs them: apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    profile = tmp_path_factory.mktemp("chromium-profile")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", "--window-size=1200,900"):
        opts.add_argument(arg)
    opts.binary_location = CHROMIUM
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _open(browser: Any, url: str, shots: Path | None = None, name: str = "", after_404: str = "") -> None:
    """Load a page and fail on any console error of its server (the log is read, which empties it).

    Chromium may log a page's entries only after the next page began: entries of another server
    (an earlier test's) are not this page's, and `after_404` names the URL whose 404 the page
    before expected."""
    browser.get(url)
    _wait(lambda: _loaded(browser), 30, f"{url} to load")
    origin = "/".join(url.split("/", 3)[:3]) + "/"  # scheme://host:port/
    errors = [e for e in _severe(browser)
              if (e["message"].startswith(origin) or not e["message"].startswith(("http://", "https://")))
              and not (after_404 and e["message"].startswith(f"{after_404} - ") and "status of 404" in e["message"])]
    assert not errors, f"console errors on {url}: {errors}"
    if shots is not None:
        browser.save_screenshot(str(shots / f"{name}.png"))


def _severe(browser: Any) -> list[dict[str, Any]]:
    """The console's error entries logged since the last read (reading the log empties it)."""
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def _css(browser: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(browser.find_elements(By.CSS_SELECTOR, selector))


def _readme_screenshot(browser: Any, name: str) -> None:
    """docs/img/<name>.png from the current page, palette-reduced to stay small."""
    if os.environ.get("HARNESS_UPDATE_SCREENSHOTS") != "1":
        return
    from io import BytesIO

    from PIL import Image

    img = Image.open(BytesIO(browser.get_screenshot_as_png())).convert("RGB")
    out = REPO / "docs" / "img" / f"{name}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    img.quantize(colors=96).save(out, optimize=True)


# ---------------------------------------------------------------- pages


def test_every_page_loads_without_console_errors(ui_store: dict[str, Any], viewer: Viewer, browser: Any, shots: Path) -> None:
    root, runs = ui_store["root"], ui_store["runs"]
    _open(browser, f"{viewer.url}/ui/", shots, "runs")
    listed = {r.get_attribute("data-run") for r in _css(browser, "tr.run-row")}
    assert set(runs.values()) <= listed
    for name, run_id in runs.items():
        _open(browser, f"{viewer.url}/ui/runs/{run_id}", shots, f"run-{name}")
        assert browser.find_element("id", "run-status").text == "completed"
        df = RunStore(root, run_id).attempts()
        assert len(_css(browser, "tr.attempt-row")) == len(df)
        for aid in df["attempt_id"]:
            _open(browser, f"{viewer.url}/ui/runs/{run_id}/attempts/{aid}", shots, f"attempt-{name}-{aid}")
            assert browser.find_element("css selector", "h1.attempt-title").text == aid
    _open(browser, f"{viewer.url}/ui/compare?run={runs['dummy']}&run={runs['baseline']}", shots, "compare")
    _open(browser, f"{viewer.url}/ui/?agent=baseline", shots, "runs-filtered")
    shown = {r.get_attribute("data-run") for r in _css(browser, "tr.run-row")}
    assert shown == {runs["baseline"], runs["baseline_tasks"]}
    _open(browser, f"{viewer.url}/ui/?competition=diabetes-progression")
    assert {r.get_attribute("data-run") for r in _css(browser, "tr.run-row")} == {runs["dummy"]}
    # a run that is not there is a 404 page, not a traceback
    r = httpx.get(f"{viewer.url}/ui/runs/2020-01-01T00-00-00-UTC_dummy_000000")
    assert r.status_code == 404 and "no run" in r.text


def test_run_page_plot_has_one_mark_per_attempt_and_the_thresholds(ui_store: dict[str, Any], viewer: Viewer,
                                                                     browser: Any) -> None:
    for key in ("dummy", "baseline"):
        run_id = ui_store["runs"][key]
        df = RunStore(ui_store["root"], run_id).attempts()
        _open(browser, f"{viewer.url}/ui/runs/{run_id}")
        if key == "baseline":
            _readme_screenshot(browser, "dashboard-run")
        figures = _css(browser, "figure.plot")
        assert sorted(f.get_attribute("data-competition") for f in figures) == sorted(df["competition_id"].unique())
        for fig in figures:
            cid = fig.get_attribute("data-competition")
            rows = df[df["competition_id"] == cid]
            marks = fig.find_elements("css selector", ".attempt-mark")
            assert sorted(m.get_attribute("data-attempt") for m in marks) == sorted(rows["attempt_id"])
            for m in marks:  # each mark sits at its attempt's score
                row = rows[rows["attempt_id"] == m.get_attribute("data-attempt")].iloc[0]
                assert float(m.get_attribute("data-score")) == pytest.approx(float(row["score"]))
            for name in ("gold", "silver", "bronze", "median"):
                line = fig.find_elements("css selector", f"line.threshold-{name}")
                assert len(line) == 1, f"{cid}: no {name} line"
                assert float(line[0].get_attribute("data-score")) == pytest.approx(float(rows[f"{name}_threshold"].iloc[0]))
            assert fig.find_elements("css selector", "rect.lb-bar"), f"{cid}: no leaderboard distribution"
        # the plot downloads as PNG (drawn from the same SVG) and as SVG
        png = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "window.harnessPlotPng(document.querySelector('figure.plot svg')).then(done, e => done('error ' + e));")
        assert png.startswith("data:image/png;base64,") and len(png) > 2000
        cid = figures[0].get_attribute("data-competition")
        svg = httpx.get(f"{viewer.url}/ui/runs/{run_id}/plots/{cid}.svg")
        assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
        assert svg.text.count('class="attempt-mark') == int((df["competition_id"] == cid).sum())
    # medals and rates agree with the store
    base = RunStore(ui_store["root"], ui_store["runs"]["baseline"]).attempts()
    row = _css(browser, f'#medal-table tr[data-competition="{COMPS[0]}"] td')
    assert int(row[2].text) == len(base) and int(row[7].text) == int(base["any_medal"].sum())


def test_attempt_page_shows_log_code_submission_rollout_and_checks(ui_store: dict[str, Any], viewer: Viewer,
                                                                     browser: Any) -> None:
    runs, root = ui_store["runs"], ui_store["root"]
    aid = f"{COMPS[0]}__baseline__s0"
    rs = RunStore(root, runs["baseline"])
    _open(browser, f"{viewer.url}/ui/runs/{runs['baseline']}/attempts/{aid}")
    _readme_screenshot(browser, "dashboard-attempt")
    log = (rs.artifacts_dir(aid) / "logs" / "agent.log").read_text()
    assert log.strip() and browser.find_element("id", "agent-log").text.strip() == log.strip()
    body = browser.find_element("tag name", "main").text
    sub = pd.read_csv(rs.artifacts_dir(aid) / "submission" / "submission.csv")
    assert str(sub.columns[0]) in body and "solve.py" in body
    assert len(_css(browser, "ol.trajectory li.step")) == 2 and "ls /home/data" in browser.find_element("id", "trajectory").text
    assert "malignant" in browser.find_element("id", "score-details").text
    assert "isolation" in browser.find_element("id", "sandbox").text
    # an image competition's submission is shown beside its test images
    _open(browser, f"{viewer.url}/ui/runs/{runs['dummy']}/attempts/{IMAGE_COMP}__dummy__s0")
    imgs = _css(browser, "#input-images img")
    assert len(imgs) == 12
    _wait(lambda: all(browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", i) for i in imgs),
          30, "the input images to load")
    sub = pd.read_csv(RunStore(root, runs["dummy"]).artifacts_dir(f"{IMAGE_COMP}__dummy__s0") / "submission" / "submission.csv")
    captions = [c.text for c in _css(browser, "#input-images figcaption")]
    assert captions[0] == f"{sub.iloc[0, 0]}: {sub.columns[1]}={sub.iloc[0, 1]}"
    # technique and engineering attempts list their checks with the grader's reasons
    tg = RunStore(root, runs["baseline_tasks"]).technique_grades()
    for tid, checks in tg.groupby("attempt_id"):
        _open(browser, f"{viewer.url}/ui/runs/{runs['baseline_tasks']}/attempts/{tid}")
        shown = _css(browser, "#checks tbody tr")
        assert len(shown) == len(checks)
        assert {r.find_elements("tag name", "td")[0].text for r in shown} == set(checks["check"])


def test_files_refuse_what_an_agent_could_abuse(ui_store: dict[str, Any], viewer: Viewer) -> None:
    run_id = ui_store["runs"]["dummy"]
    base = f"{viewer.url}/ui/runs/{run_id}/files/artifacts/{COMPS[0]}__dummy__s1/logs"
    with httpx.Client(timeout=10) as c:
        ok = c.get(f"{base}/agent.log")
        assert ok.status_code == 404  # it has a second (hard) link now: refused as well
        for name in ("evil.log", "pipe.log", "hardlink.log"):
            assert c.get(f"{base}/{name}").status_code == 404, name
        good = c.get(f"{viewer.url}/ui/runs/{run_id}/files/artifacts/{COMPS[0]}__dummy__s0/logs/agent.log")
        assert good.status_code == 200 and "dummy" in good.text and good.headers["content-disposition"].startswith("attachment")
        for raw in ("/ui/runs/%s/files/artifacts/../run.json", "/ui/runs/%s/files/%%2e%%2e/%%2e%%2e/etc/passwd",
                    "/ui/runs/%s/files//etc/passwd", "/ui/runs/..%%2f..%%2fetc/files/passwd"):
            path = raw % run_id if "%s" in raw else raw
            assert _raw_get(viewer.port, path) == 404, path
        page = c.get(f"{viewer.url}/ui/runs/{run_id}/attempts/{COMPS[0]}__dummy__s1")
        assert page.status_code == 200 and "evil.log" not in page.text and "root:x:" not in page.text
        # the standalone view changes nothing
        assert c.post(f"{viewer.url}/ui/runs/{run_id}/cancel", data={"csrf": "x"}).status_code == 403


def test_compare_cli_and_page_show_the_same_deltas(ui_store: dict[str, Any], viewer: Viewer, browser: Any) -> None:
    runs, root = ui_store["runs"], ui_store["root"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "240"}
    cmd = [sys.executable, "-m", "harness.cli", "compare", runs["dummy"], runs["baseline"], "--store", str(root)]
    js = json.loads(subprocess.run(cmd + ["--json"], capture_output=True, text=True, env=env, check=True).stdout)
    text = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    deltas = {d["task"]: d for d in js["pairs"][0]["competitions"]}
    assert set(deltas) == {*COMPS, IMAGE_COMP}
    # the delta is the mean paired difference over the 3 seeds, recomputed here from the Parquet rows
    a, b = (RunStore(root, runs[k]).attempts() for k in ("dummy", "baseline"))
    pa_ = a[a["competition_id"] == COMPS[0]].set_index("seed")["score"]
    pb_ = b[b["competition_id"] == COMPS[0]].set_index("seed")["score"]
    d = deltas[COMPS[0]]
    assert d["seeds"] == [0, 1, 2]
    assert d["delta"] == pytest.approx(float((pb_ - pa_).mean()))
    assert d["ci_low"] <= d["delta"] <= d["ci_high"]
    assert deltas[COMPS[1]]["seeds"] == [] and deltas[COMPS[1]]["verdict"] == "not paired"  # baseline did not run it
    from harness.ui.compare import TaskDelta, fmt_delta

    shown = fmt_delta(TaskDelta(**d))
    line = next(ln for ln in text.splitlines() if COMPS[0] in ln)
    assert shown in line, (shown, line)
    _open(browser, f"{viewer.url}/ui/compare?run={runs['dummy']}&run={runs['baseline']}")
    cell = browser.find_element("css selector", f'tr.delta-row[data-task="{COMPS[0]}"] td.delta')
    assert cell.text == shown
    bad = subprocess.run(cmd[:5] + ["no-such-run", "--store", str(root)], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no-such-run" in bad.stderr


def test_service_login_cookie_csrf_and_other_users_get_404(ui_store: dict[str, Any], browser: Any, shots: Path,
                                                           tmp_path: Path) -> None:
    """Through the real service (Ray Serve): the login form, the HttpOnly cookie, and bob, who
    finds none of alice's pages, fragments or files."""
    from harness.serve.app import start, stop

    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps(TOKENS))
    port = free_port()
    url = start("127.0.0.1", port, store=str(ui_store["root"]), tokens=str(tokens))
    try:
        _wait(lambda: _get_ok(f"{url}/healthz"), 60, "the service")
        run_id = ui_store["runs"]["baseline"]
        aid = f"{COMPS[0]}__baseline__s0"
        pages = [f"/ui/runs/{run_id}", f"/ui/runs/{run_id}/live", f"/ui/runs/{run_id}/attempts/{aid}",
                 f"/ui/runs/{run_id}/attempts/{aid}/live", f"/ui/runs/{run_id}/plots/{COMPS[0]}.svg",
                 f"/ui/runs/{run_id}/files/run.json", f"/ui/runs/{run_id}/files/artifacts/{aid}/logs/agent.log",
                 f"/ui/compare?run={run_id}&run={ui_store['runs']['dummy']}"]
        # the browser: not logged in -> the login form; bob logs in and finds no such run
        browser.delete_all_cookies()
        _open(browser, f"{url}/ui/runs/{run_id}")
        assert "/ui/login" in browser.current_url
        _login(browser, "bob-ui-token-0002")
        assert browser.find_element("id", "error-message").text.startswith("no run")
        assert browser.execute_script("return document.cookie") == ""  # HttpOnly: scripts never see the token
        cookie = browser.get_cookie("harness_ui")
        assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert not _css(browser, "figure.plot") and not _css(browser, "#agent-log")
        _open(browser, f"{url}/ui/", after_404=f"{url}/ui/runs/{run_id}")
        assert not _css(browser, "tr.run-row")  # bob has no runs
        _submit(browser, browser.find_element("css selector", "header form button"), "the log-out")
        _open(browser, f"{url}/ui/runs/{run_id}")
        _login(browser, "wrong-token-000000")
        assert "unknown token" in browser.find_element("id", "login-error").text
        _login(browser, "alice-ui-token-01")
        assert browser.find_element("css selector", "h1.run-title").text == run_id
        assert len(_css(browser, "figure.plot .attempt-mark")) == 3
        browser.save_screenshot(str(shots / "service-run.png"))
        # over HTTP with each user's cookie: every page and fragment of alice's run is 404 for bob
        alice = httpx.Client(base_url=url, cookies={"harness_ui": "alice-ui-token-01"}, timeout=30)
        bob = httpx.Client(base_url=url, cookies={"harness_ui": "bob-ui-token-0002"}, timeout=30)
        anonymous = httpx.Client(base_url=url, timeout=30)
        for path in pages:
            assert alice.get(path).status_code == 200, path
            assert bob.get(path).status_code == 404, path
            assert anonymous.get(path, headers={"x-fragment": "1"}).status_code in (303, 401), path
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', alice.get(f"/ui/runs/{run_id}").text)
        assert csrf
        assert alice.post(f"/ui/runs/{run_id}/resume", data={"csrf": "0" * 64}).status_code == 403
        assert alice.post(f"/ui/runs/{run_id}/resume").status_code == 403
        assert bob.post(f"/ui/runs/{run_id}/resume", data={"csrf": csrf.group(1)}).status_code == 404
        r = alice.post(f"/ui/runs/{run_id}/resume", data={"csrf": csrf.group(1)})
        assert r.status_code == 303 and "completed" in httpx.URL(r.headers["location"]).params["flash"]
        assert json.loads((ui_store["root"] / run_id / "run.json").read_text())["status"] == "completed"
        # an open redirect through the login form is refused
        r = anonymous.post("/ui/login", data={"token": "alice-ui-token-01", "next": "//evil.example/ui/"})
        assert r.status_code == 303 and r.headers["location"] == "/ui/"
        for c in (alice, bob, anonymous):
            c.close()
    finally:
        stop()


def _get_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _submit(browser: Any, button: Any, what: str) -> None:
    """Click a form's button and wait for the page it leads to: the old page gone (its button
    stale; the old page's readyState is "complete" too), then the new one loaded."""
    from selenium.common.exceptions import WebDriverException

    def gone() -> bool:
        try:
            button.is_enabled()
            return False
        except WebDriverException:  # stale, or Chromium's "Node ... does not belong to the document"
            return True

    button.click()
    _wait(gone, 30, f"{what} to leave the page")
    _wait(lambda: _loaded(browser), 30, what)


def _loaded(browser: Any) -> bool:
    """The current document has loaded (not yet, while a new one is being swapped in)."""
    from selenium.common.exceptions import WebDriverException

    try:
        return bool(browser.execute_script("return document.readyState") == "complete")
    except WebDriverException:
        return False


def _login(browser: Any, token: str) -> None:
    _wait(lambda: _css(browser, "#token"), 30, "the login form")
    browser.find_element("id", "token").send_keys(token)
    _submit(browser, browser.find_element("id", "login-button"), "the page after login")
    errors = [e for e in _severe(browser) if "401" not in e["message"] and "404" not in e["message"]]
    assert not errors, errors


def test_page_open_during_a_run_shows_progress_advancing(ui_store: dict[str, Any], viewer: Viewer, browser: Any,
                                                         monkeypatch: pytest.MonkeyPatch, shots: Path) -> None:
    """A run of a slow test agent (2 s per attempt, one at a time): its page, opened while it
    runs, counts up and shows new rows without a reload, then says completed."""
    monkeypatch.setenv("HARNESS_AGENTS_PATH", str(TEST_AGENTS))
    started: dict[str, str] = {}
    box: dict[str, Any] = {}

    def go() -> None:
        try:
            box["result"] = harness.run([COMPS[0]], agent="slow", seeds=4, lite=True, max_concurrency=1,
                                        store=ui_store["root"], owner="alice", on_start=lambda rid: started.update(id=rid))
        except BaseException as e:  # noqa: BLE001  (reported by the assertion below)
            box["error"] = e

    worker = threading.Thread(target=go, daemon=True)
    worker.start()
    run_id = _wait(lambda: started.get("id"), 60, "the run to start")
    _open(browser, f"{viewer.url}/ui/runs/{run_id}")
    loaded_at = browser.execute_script("return window.__harnessLoadedAt")
    first = int(browser.find_element("id", "run-done").text)
    assert first < 4 and browser.find_element("id", "run-status").text == "running"
    seen = {first}

    def text_of(element_id: str) -> str:
        """The element's text now; "" when the page swapped it out between the lookup and the read."""
        try:
            return str(browser.find_element("id", element_id).text)
        except Exception:  # stale: replaced by a live update
            return ""

    def done_now() -> int:
        text = text_of("run-done")
        return int(text) if text.isdigit() else -1

    _wait(lambda: seen.add(done_now()) or max(seen) > first, 60, "the count to advance")
    browser.save_screenshot(str(shots / "run-live.png"))
    _wait(lambda: text_of("run-status") == "completed", 90, "the run to complete on the page")
    worker.join(30)
    assert "error" not in box, box.get("error")
    assert done_now() == 4 and len(_css(browser, "tr.attempt-row")) == 4
    assert len({x for x in seen if x >= 0}) >= 2
    assert browser.execute_script("return window.__harnessLoadedAt") == loaded_at  # no reload happened
    errors = _severe(browser)
    assert not errors, errors


def test_compare_statistics_on_known_differences() -> None:
    """The interval of a constant difference is that difference; a mixed one brackets its mean."""
    from harness.ui.compare import bootstrap_ci, compare_runs

    assert bootstrap_ci([0.5, 0.5, 0.5]) == (0.5, 0.5)
    lo, hi = bootstrap_ci([0.1, 0.2, 0.6])
    assert 0.1 <= lo < 0.3 < hi <= 0.6

    def frame(scores: list[float], lower: bool) -> pd.DataFrame:
        return pd.DataFrame([dict(attempt_id=f"c__a__s{i}", task_kind="competition", competition_id="c", seed=i, score=s,
                                  valid_submission=True, any_medal=s > 1, is_lower_better=lower, technique=None)
                             for i, s in enumerate(scores)])

    cmp = compare_runs([("a", "x", frame([1.0, 1.0, 1.0], True)), ("b", "y", frame([0.5, 0.4, 0.6], True))])
    d = cmp.pairs[0].competitions[0]
    assert d.delta == pytest.approx(-0.5) and d.verdict == "other better"  # lower is better: a drop is a gain
