"""The web console in a real browser: Debian's Chromium driven by Playwright, against
gunicorn + a Celery worker + redis-server (the production code; the worker also knows the
test processors of tests/support/engine_processors.py).

One browser for the module, a new context per test. Every page visited is screenshotted
under a temp dir (printed at the start) and checked for browser console errors.
`playwright install` is never run: PIPELINE_OPS_CHROMIUM (default /usr/bin/chromium) is the
browser, launched with --no-sandbox because CI runs as root.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from pipeline.bootstrap import Services
from pipeline.runs.service import RunRequest
from tests.integration.conftest import Stack, make_stack, wait_for_attempt, write_pipeline
from tests.support.engine_processors import register
from tests.support.genai import fill_focus
from tests.support.servers import Server, start_gunicorn

CHROMIUM = os.environ.get("PIPELINE_OPS_CHROMIUM", "/usr/bin/chromium")
SESSION_KEY = "console-test-session-key-0123456789abcdef"
ADMIN_KEY = "console-test-admin-key-0123456789"

RETRY = """
pipeline_id: console_retry
name: Two parallel steps, one retried, then a fan-in
provider: console
domain: steps
steps:
  - step_id: steady
    ps_type: generic.noop
    config: {sleep_seconds: 1}
    timeout_seconds: 30
  - step_id: flaky
    ps_type: test.flaky
    config: {succeed_on: 2}
    timeout_seconds: 30
    retry: {max_attempts: 3, backoff_seconds: 1}
  - step_id: join
    ps_type: generic.noop
    depends_on: [steady, flaky]
    timeout_seconds: 30
"""

RERUN = """
pipeline_id: console_rerun
name: A step that fails until its file exists, between two others
provider: console
domain: steps
steps:
  - step_id: first
    ps_type: generic.noop
    timeout_seconds: 30
  - step_id: second
    ps_type: test.needs_file
    depends_on: [first]
    config: {path: "{path}"}
    timeout_seconds: 30
  - step_id: third
    ps_type: generic.noop
    depends_on: [second]
    timeout_seconds: 30
"""

SLOW = """
pipeline_id: console_slow
name: One long step, to cancel
provider: console
domain: steps
steps:
  - step_id: wait
    ps_type: generic.noop
    config: {sleep_seconds: 120}
    timeout_seconds: 300
"""

DAILY = """
pipeline_id: console_daily
name: A quick daily load
provider: console
domain: steps
steps:
  - step_id: load
    ps_type: generic.noop
    timeout_seconds: 30
"""


@dataclass
class Console:
    stack: Stack
    web: Server
    keys: dict[str, str]
    shots: Path
    marker: Path
    visited: list[str] = field(default_factory=list)

    @property
    def services(self) -> Services:
        return self.stack.services

    @property
    def url(self) -> str:
        return self.web.url

    @property
    def worker(self) -> Server:
        return self.stack.worker

    def start(self, org: str, path: str, day: date) -> str:
        provider, domain, name = path.split("/")
        run = self.services.runs.start(RunRequest(org, provider, domain, name, day, day))
        return run.run_id


@pytest.fixture(scope="module")
def console(
    tmp_path_factory: pytest.TempPathFactory, redis_server: Server, test_configs_dir: Path
) -> Iterator[Console]:
    register()  # the test processors, here as in the worker (tests.support.engine_app)
    tmp = tmp_path_factory.mktemp("console")
    shots = Path(tempfile.mkdtemp(prefix="console-screenshots-"))
    print(f"\nconsole screenshots: {shots}")
    marker = tmp / "second-step-source.csv"
    env = {
        "PIPELINE_OPS_SESSION_KEY": SESSION_KEY,
        "PIPELINE_OPS_ADMIN_KEY": ADMIN_KEY,
        "PIPELINE_OPS_HEARTBEAT_INTERVAL": "1",
    }
    stack, stop = make_stack(
        "sqlite",
        tmp,
        redis_server,
        None,
        test_configs_dir,
        worker_app="tests.support.engine_app",
        extra_env=env,
    )
    for key, text in (
        ("console/steps/retry", RETRY),
        ("console/steps/rerun", RERUN.replace("{path}", str(marker))),
        ("console/steps/slow", SLOW),
        ("console/steps/daily", DAILY),
    ):
        write_pipeline(stack, key, text)
    keys = {org: stack.services.orgs.create(org) for org in ("acme", "globex")}
    web = start_gunicorn(
        stack.env, workers=2, log_dir=tmp, app="tests.support.engine_app:create_app()"
    )
    yield Console(stack, web, keys, shots, marker)
    web.stop()
    stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@dataclass
class Tab:
    """A page of a fresh browser context that records console errors as it goes."""

    page: Page
    console: Console
    errors: list[str] = field(default_factory=list)
    # Statuses the test asks for (a refused sign-in, another org's page): Chromium logs
    # "Failed to load resource" for the document, which is then no error of the page.
    expected: set[int] = field(default_factory=set)

    def expect(self, *statuses: int) -> None:
        self.expected.update(statuses)

    def record(self, text: str) -> None:
        failed = re.match(r"Failed to load resource: the server responded with a status of (\d+)",
                          text)  # fmt: skip
        if failed is None or int(failed.group(1)) not in self.expected:
            self.errors.append(f"{self.page.url}: {text}")

    def goto(self, path: str) -> None:
        response = self.page.goto(self.console.url + path)
        assert response is not None

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.console.shots / f"{name}.png"), full_page=True)

    def sign_in(self, key: str) -> None:
        self.goto("/ui/signin")
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_load_state()


@pytest.fixture
def tab(browser: Browser, console: Console) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    opened = Tab(page, console)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            opened.record(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: opened.errors.append(f"{page.url}: {exc}"))
    yield opened
    context.close()
    # Every page a test visited, with no CSP violation, missing file or script error.
    assert opened.errors == []


def wait_status(console: Console, run_id: str, wanted: set[str], timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = console.services.store.get_run(run_id)
        if run and run.status in wanted:
            return run.status
        time.sleep(0.2)
    raise AssertionError(
        f"run {run_id} never reached {wanted}: {console.services.store.get_run(run_id)}"
        f"\n{console.worker.log()[-4000:]}"
    )


def yesterday() -> date:
    return datetime.now(UTC).date() - timedelta(days=1)


# -- sign-in ---------------------------------------------------------------------------------


def test_sign_in_and_out_and_a_wrong_key_is_refused(tab: Tab, console: Console) -> None:
    tab.goto("/ui/acme/runs")
    assert tab.page.url.startswith(console.url + "/ui/signin")  # not signed in yet
    tab.shot("signin")
    tab.expect(401)
    tab.page.get_by_label("API key").fill("po_aaaaaaaaaaaa_notthekeyatallnotthekey")
    tab.page.get_by_role("button", name="Sign in").click()
    assert tab.page.get_by_role("alert").inner_text().startswith("That key is not valid")
    assert not [c for c in tab.page.context.cookies() if c["name"] == "pipeline_ops_session"
                and "org" in c["value"]]  # fmt: skip
    tab.shot("signin-refused")
    tab.page.get_by_label("API key").fill(console.keys["acme"])
    tab.page.get_by_role("button", name="Sign in").click()
    assert tab.page.url == console.url + "/ui/acme/runs"
    cookie = next(c for c in tab.page.context.cookies() if c["name"] == "pipeline_ops_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/ui"
    assert cookie["expires"] > time.time() + 3600  # an expiry, not a browser-session cookie
    assert "No runs yet" in tab.page.content() or tab.page.locator("table.runs").count() == 1
    tab.shot("runs")
    tab.page.get_by_role("button", name="Sign out").click()
    assert tab.page.url.startswith(console.url + "/ui/signin")
    tab.goto("/ui/acme/runs")
    assert tab.page.url.startswith(console.url + "/ui/signin")


def test_another_orgs_run_is_a_404_page(tab: Tab, console: Console) -> None:
    theirs = console.start("globex", "console/steps/daily", yesterday() - timedelta(days=20))
    tab.sign_in(console.keys["acme"])
    tab.expect(404)
    response = tab.page.goto(f"{console.url}/ui/globex/runs/{theirs}")
    assert response is not None and response.status == 404
    assert "Not found" in tab.page.content()
    missing = tab.page.goto(f"{console.url}/ui/acme/runs/{theirs}")
    assert missing is not None and missing.status == 404  # their run under my org: the same
    unknown = tab.page.goto(f"{console.url}/ui/nosuchorg/runs")
    assert unknown is not None and unknown.status == 404
    assert tab.page.content().count("Not found") == 1
    tab.shot("not-found")
    # The admin may look at any org, and sees the run.
    tab.sign_in(ADMIN_KEY)
    seen = tab.page.goto(f"{console.url}/ui/globex/runs/{theirs}")
    assert seen is not None and seen.status == 200
    assert theirs in tab.page.content()


# -- runs ------------------------------------------------------------------------------------


def test_completed_run_shows_every_step_and_the_retry(tab: Tab, console: Console) -> None:
    run_id = console.start("acme", "console/steps/retry", yesterday())
    assert wait_status(console, run_id, {"completed", "failed"}) == "completed"
    tab.sign_in(console.keys["acme"])
    tab.goto(f"/ui/acme/runs/{run_id}")
    bars = tab.page.locator(".timeline rect.bar")
    seen = sorted(
        (bars.nth(i).get_attribute("data-step"), bars.nth(i).get_attribute("data-attempt"))
        for i in range(bars.count())
    )
    assert seen == [("flaky", "1"), ("flaky", "2"), ("join", "1"), ("steady", "1")]
    first_try = tab.page.locator(".timeline rect[data-step=flaky][data-attempt='1']")
    assert first_try.get_attribute("class") == "bar bar-retrying"  # the failed try, retried
    assert tab.page.locator(".timeline line.wait").count() == 1  # the wait before the retry
    assert tab.page.locator("tr.step").count() == 3
    assert "completed" in tab.page.locator("dl.header").inner_text()
    tab.shot("run-completed")
    # The log filter: only the warning of the failed attempt is left.
    tab.page.get_by_label("Level").select_option("WARNING")  # submits itself (console.js)
    tab.page.wait_for_url(re.compile(r".*level=WARNING.*"))
    levels = tab.page.locator("table.logs tbody td:nth-child(2)").all_inner_texts()
    assert levels and set(levels) == {"WARNING"}
    # The list and the grid show it too.
    tab.goto("/ui/acme/runs?pipeline=console/steps/retry")
    assert tab.page.locator("table.runs tbody tr").count() == 1
    tab.goto("/ui/acme/grid")
    assert tab.page.locator(f"a[href$='{run_id}']").count() == 1
    tab.shot("grid")
    # At phone width the run page still reads (no horizontal overflow of the page itself).
    tab.page.set_viewport_size({"width": 390, "height": 844})
    tab.goto(f"/ui/acme/runs/{run_id}")
    width = tab.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1
    tab.shot("run-phone")


def test_cancel_a_running_run(tab: Tab, console: Console) -> None:
    run_id = console.start("acme", "console/steps/slow", yesterday() - timedelta(days=1))
    wait_for_attempt(console.stack, run_id, "wait")
    tab.sign_in(console.keys["acme"])
    tab.goto(f"/ui/acme/runs/{run_id}")
    tab.shot("run-active")
    tab.page.get_by_role("button", name="Cancel run").click()
    tab.page.wait_for_load_state()
    assert wait_status(console, run_id, {"cancelled", "completed", "failed"}) == "cancelled"
    tab.goto(f"/ui/acme/runs/{run_id}")
    assert "cancelled" in tab.page.locator("dl.header").inner_text()
    assert tab.page.get_by_role("button", name="Cancel run").count() == 0
    tab.shot("run-cancelled")


def test_rerun_from_the_failed_step_runs_only_it_and_later(tab: Tab, console: Console) -> None:
    store = console.services.store
    failed = console.start("acme", "console/steps/rerun", yesterday() - timedelta(days=2))
    assert wait_status(console, failed, {"completed", "failed"}) == "failed"
    tab.sign_in(console.keys["acme"])
    tab.goto(f"/ui/acme/runs/{failed}")
    assert "the source file is not there yet" in tab.page.locator(".run-error").inner_text()
    tab.shot("run-failed")
    console.marker.write_text("day,n\n")  # the cause is fixed
    tab.page.get_by_role("button", name="Re-run from the failed step").click()
    tab.page.wait_for_url(re.compile(r".*/ui/acme/runs/(?!" + failed + ").*"))
    new = tab.page.url.rsplit("/", 1)[1]
    assert new != failed
    assert wait_status(console, new, {"completed", "failed"}) == "completed"
    ran = sorted((a.step_id, a.status) for a in store.step_attempts(new))
    assert ran == [("second", "completed"), ("third", "completed")]  # `first` was not run
    run = store.get_run(new)
    assert run is not None and run.plan is not None and run.plan.reused == {"first": failed}
    source = store.get_run(failed)
    assert source is not None and run.idempotency_key == source.idempotency_key
    tab.goto(f"/ui/acme/runs/{new}")
    assert "reused" in tab.page.locator("tr.step[data-step=first]").inner_text()
    tab.shot("run-rerun-from-failed")


# -- coverage, spend, pipelines, quota ---------------------------------------------------------


def test_coverage_shows_a_missing_day_and_backfill_loads_it(tab: Tab, console: Console) -> None:
    day = yesterday()
    gap = day - timedelta(days=1)
    for d in (day - timedelta(days=2), day):
        assert wait_status(console, console.start("acme", "console/steps/daily", d),
                           {"completed", "failed"}) == "completed"  # fmt: skip
    tab.sign_in(console.keys["acme"])
    tab.goto("/ui/acme/coverage")
    row = tab.page.locator("tr[data-pipeline='console/steps/daily']")
    assert row.locator(f"td[data-day='{gap}']").get_attribute("data-status") == "missing"
    assert row.locator(f"td[data-day='{day}']").get_attribute("data-status") == "loaded"
    tab.shot("coverage")
    row.locator(f"button[data-from='{gap}'][data-to='{gap}']").click()
    tab.page.wait_for_load_state()
    assert "Backfill of console/steps/daily started" in tab.page.content()
    deadline = time.monotonic() + 60
    status = None
    while time.monotonic() < deadline:
        tab.goto("/ui/acme/coverage")
        cell = tab.page.locator(f"tr[data-pipeline='console/steps/daily'] td[data-day='{gap}']")
        status = cell.get_attribute("data-status")
        if status == "loaded":
            break
        time.sleep(1)
    assert status == "loaded"
    backfilled = [
        r for r in console.services.store.list_runs("acme", limit=200)
        if r.trigger == "backfill"
    ]  # fmt: skip
    assert [(r.pipeline_path, r.start_date) for r in backfilled] == [("console/steps/daily", gap)]
    tab.shot("coverage-backfilled")


SQL_TOTALS = """
SELECT BillingCurrency AS currency, SUM(BilledCost) AS billed, SUM(EffectiveCost) AS effective,
       SUM(ListCost) AS list
FROM `acme_dev.cost_data_standard_1_3`
WHERE ChargePeriodStart >= @start AND ChargePeriodStart < @end
GROUP BY currency
"""


def test_spend_totals_equal_the_sql(tab: Tab, console: Console) -> None:
    tab.sign_in(console.keys["acme"])
    tab.goto("/ui/acme/spend")
    assert "No cost data yet" in tab.page.content()  # the empty state, before any load
    today = datetime.now(UTC).date()
    fill_focus(console.services.warehouse(), today - timedelta(days=3), today - timedelta(days=2))
    tab.goto("/ui/acme/spend?days=30")
    first = today - timedelta(days=29)
    expected = (
        console.services.warehouse()
        .query(
            SQL_TOTALS,
            {
                "start": datetime.combine(first, datetime.min.time(), UTC),
                "end": datetime.combine(today + timedelta(days=1), datetime.min.time(), UTC),
            },
        )
        .to_pylist()
    )
    assert expected, "the fixture wrote no FOCUS rows in the window"
    for row in expected:
        shown = tab.page.locator(f"#totals tr[data-currency='{row['currency']}']")
        for figure in ("billed", "effective", "list"):
            text = shown.locator(f"td[data-figure={figure}]").inner_text().replace(",", "")
            assert Decimal(text) == Decimal(str(row[figure])).quantize(Decimal("0.01"))
    assert tab.page.locator("svg.bars rect.seg").count() > 0
    assert tab.page.locator("#top tbody tr").count() >= 1
    tab.shot("spend")
    tab.page.get_by_label("Stack by").select_option("model")
    tab.page.wait_for_url(re.compile(r".*by=model.*"))
    assert "by model" in tab.page.locator("#daily-h").inner_text()
    tab.shot("spend-by-model")


def test_pipelines_and_quota_pages(tab: Tab, console: Console) -> None:
    tab.sign_in(console.keys["acme"])
    tab.goto("/ui/acme/pipelines")
    row = tab.page.locator("tr", has_text="console/steps/daily")
    assert row.count() == 1
    tab.shot("pipelines")
    before = len(console.services.store.list_runs("acme", limit=500))
    day = yesterday() - timedelta(days=5)
    row.get_by_label("Date for console/steps/daily").fill(day.isoformat())
    row.get_by_role("button", name="Run").click()
    tab.page.wait_for_url(re.compile(r".*/ui/acme/runs/.+"))
    runs = console.services.store.list_runs("acme", limit=500)
    assert len(runs) == before + 1 and runs[0].start_date == day
    assert runs[0].trigger == "console"
    tab.goto("/ui/acme/quota")
    assert tab.page.locator("table.quota tbody tr").count() == 3
    tab.shot("quota")


def test_a_form_without_its_csrf_token_changes_nothing(tab: Tab, console: Console) -> None:
    run_id = console.start("acme", "console/steps/slow", yesterday() - timedelta(days=7))
    tab.sign_in(console.keys["acme"])
    # The session cookie is sent (same origin), the token is not: refused, nothing changed.
    response = tab.page.request.post(f"{console.url}/ui/acme/runs/{run_id}/cancel")
    assert response.status == 400
    assert console.services.store.get_run(run_id).status != "cancelled"  # type: ignore[union-attr]
    console.services.runs.cancel("acme", run_id)
