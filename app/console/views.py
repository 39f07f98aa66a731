"""The console's pages. Each view parses, calls a pipeline/ service or query, and renders.

Every page under /ui/<org>/ is behind `_signed_in`: the session's org (or the admin) must
match the path's org, or the answer is the same 404 page an unknown org gets.
"""

from __future__ import annotations

import hmac
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from app.api.presenters import ndjson_records, run_outcome, step_summary
from app.api.schemas import Cursor, encode_cursor
from app.console import charts, csrf
from app.web import rate_limit
from app.web.ext import services
from app.web.problems import ApiProblem, clean
from pipeline.backfill import Backfill, date_range
from pipeline.runs.service import RunRequest
from pipeline.spend import DIMENSIONS, Window, read_spend
from pipeline.storage import console_queries as queries
from pipeline.storage import state
from pipeline.storage.records import RunRecord
from pipeline_ops_core.errors import NotFoundError, PipelineOpsError, QuotaExceededError
from pipeline_ops_core.identifiers import IDENT, RUN_ID

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/ui",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

PAGE_SIZE = 50
COVERAGE_SPANS = (30, 90, 365)
SPEND_SPANS = (30, 90, 365)
GRID_DAYS = 14
_IDENT = re.compile(IDENT)
_RUN_ID = re.compile(RUN_ID)
_KEY_PREFIX = re.compile(r"^po_([a-z0-9]{12})_")

F = TypeVar("F", bound=Callable[..., Any])


# -- session ---------------------------------------------------------------------------------


@bp.before_request
def _check_csrf() -> None:
    """Every POST of the console carries the form's CSRF token (CSRFError -> 400 page)."""
    if request.method == "POST":
        csrf.protect()


def _session_org_ok(org_slug: str) -> bool:
    """The org session's key is still the org's key (not rotated out, not revoked)."""
    org = services().store.get_org(org_slug)
    if org is None:
        return False
    prefix = session.get("kp")
    signed_at = datetime.fromtimestamp(float(session.get("at", 0)), UTC)
    revoked = org.get("key_revoked_at")
    if revoked is not None and _utc(revoked) >= signed_at:
        return False
    if prefix == org["api_key_prefix"]:
        return True
    expires = org.get("previous_key_expires_at")
    return bool(
        prefix == org.get("previous_key_prefix")
        and expires is not None
        and _utc(expires) > datetime.now(UTC)
    )


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _current() -> dict[str, Any] | None:
    """{'org': slug, 'admin': bool} of a live session, or None."""
    if "org" not in session and not session.get("admin"):
        return None
    if float(session.get("exp", 0)) < time.time():
        session.clear()
        return None
    if session.get("admin"):
        return {"org": session.get("org"), "admin": True}
    if not _session_org_ok(str(session["org"])):
        session.clear()
        return None
    return {"org": session["org"], "admin": False}


def _signed_in(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        who = _current()
        if who is None:
            return redirect(url_for("console.signin", next=request.path))
        org = kwargs.get("org")
        if org is not None:
            if not isinstance(org, str) or _IDENT.fullmatch(org) is None:
                abort(404)
            if who["admin"]:
                if services().store.get_org(org) is None:
                    abort(404)
            elif org != who["org"]:
                abort(404)  # another org's page looks exactly like a missing one
        run_id = kwargs.get("run_id")
        if run_id is not None and _RUN_ID.fullmatch(run_id) is None:
            abort(404)
        g.console_user = who
        return view(*args, **kwargs)

    return cast(F, wrapper)


def _client() -> str:
    return request.remote_addr or "unknown"


@bp.get("/")
def home() -> ResponseReturnValue:
    who = _current()
    if who is None:
        return redirect(url_for("console.signin"))
    if who["org"] is None:
        return redirect(url_for("console.orgs"))
    return redirect(url_for("console.runs", org=who["org"]))


@bp.route("/signin", methods=["GET", "POST"])
def signin() -> Any:
    if request.method == "GET":
        return render_template("signin.html", next=request.args.get("next", ""))
    settings = services().settings
    name = f"signin-{_client()}"
    blocked = rate_limit.exceeded(name, settings.signin_rate_limit, settings.redis_url)
    if blocked:
        return render_template(
            "signin.html",
            error=f"Too many failed sign-ins from this address; try again in {blocked} s.",
            next="",
        ), 429
    key = (request.form.get("key") or "").strip()
    admin_key = settings.admin_key
    is_admin = bool(admin_key) and hmac.compare_digest(key.encode(), str(admin_key).encode())
    org = None if is_admin else services().orgs.authenticate(key)
    if not is_admin and org is None:
        rate_limit.count(name, settings.redis_url)
        return render_template(
            "signin.html",
            error="That key is not valid. Use your organization's API key.",
            next="",
        ), 401
    session.clear()  # a fresh session (and CSRF token) for whoever signed in
    if is_admin:
        session.update(admin=True, org=None)
    else:
        # The key's public prefix: the session ends when the key is rotated out or revoked.
        match = _KEY_PREFIX.match(key)
        session.update(org=org, kp=match.group(1) if match else "", admin=False)
    session["at"] = time.time()
    session["exp"] = time.time() + settings.session_seconds
    session.permanent = True
    target = request.form.get("next") or ""
    # Only a path of this console: never an open redirect to another site.
    if not re.fullmatch(r"/ui/[a-z0-9_/\-]*", target):
        target = url_for("console.home")
    return redirect(target)


@bp.post("/signout")
def signout() -> ResponseReturnValue:
    session.clear()
    flash("Signed out.")
    return redirect(url_for("console.signin"))


@bp.route("/orgs", methods=["GET", "POST"])
@_signed_in
def orgs() -> Any:
    if not g.console_user["admin"]:
        abort(404)
    if request.method == "POST":
        org = request.form.get("org", "")
        if services().store.get_org(org) is None:
            abort(404)
        session["org"] = org
        return redirect(url_for("console.runs", org=org))
    return render_template("orgs.html", orgs=services().store.list_orgs())


# -- runs ------------------------------------------------------------------------------------


def _day_arg(name: str) -> date | None:
    raw = request.args.get(name) or ""
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        flash(f"{name} must be a date (YYYY-MM-DD); ignored.")
        return None


@bp.get("/<org>/runs")
@_signed_in
def runs(org: str) -> str:
    store = services().store
    args = request.args
    status = args.get("status") or None
    trigger = args.get("trigger") or None
    filters = queries.RunFilter(
        pipeline_path=args.get("pipeline") or None,
        status=status if status in state.ALL else None,
        trigger=trigger if trigger and _IDENT.fullmatch(trigger) else None,
        created_from=_day_arg("from"),
        created_to=_day_arg("to"),
    )
    cursor: tuple[datetime, str] | None = None
    if args.get("cursor"):
        try:
            cursor = cast(tuple[datetime, str], Cursor().deserialize(args["cursor"]))
        except ValidationError:
            flash("That page link is no longer valid; showing the newest runs.")
    rows = queries.list_runs(store.engine, org, filters, PAGE_SIZE + 1, cursor)
    page = rows[:PAGE_SIZE]
    next_cursor = encode_cursor(page[-1]) if len(rows) > PAGE_SIZE else None
    next_args = {k: v for k, v in args.items() if k != "cursor" and v}
    return render_template(
        "runs.html",
        org=org,
        runs=page,
        filters=filters,
        statuses=state.ALL,
        triggers=("api", "cli", "schedule", "backfill", "rerun"),
        pipelines=_pipeline_paths(),
        next_url=url_for("console.runs", org=org)
        + "?"
        + urlencode({**next_args, "cursor": next_cursor})
        if next_cursor
        else None,
    )


@bp.get("/<org>/grid")
@_signed_in
def grid(org: str) -> str:
    store = services().store
    days = _span(GRID_DAYS, (7, 14, 30))
    last = datetime.now(UTC).date()
    first = last - timedelta(days=days - 1)
    cells = queries.coverage(store.engine, org, _pipeline_paths(), first, last)
    return render_template(
        "grid.html",
        org=org,
        days=days,
        spans=(7, 14, 30),
        grid=cells,
        first=first,
        last=last,
        any_run=any(c.run_id for row in cells.values() for c in row),
    )


def _pipeline_paths() -> list[str]:
    """Every pipeline of the catalog, as provider/domain/pipeline (a run of a pipeline whose
    file is gone still shows in the grids: coverage() adds its row)."""
    pipeline_keys = services().catalog.keys()
    return sorted("/".join(key) for key in pipeline_keys)


def _span(default: int, allowed: tuple[int, ...]) -> int:
    try:
        value = int(request.args.get("days", default))
    except ValueError:
        value = default
    return value if value in allowed else default


@bp.get("/<org>/runs/<run_id>")
@_signed_in
def run_detail(org: str, run_id: str) -> str:
    store = services().store
    run = _find_run(org, run_id)
    attempts = store.step_attempts(run.run_id)
    lines = store.lines(run.run_id)
    level = request.args.get("level") or ""
    text = (request.args.get("q") or "")[:200]
    shown = [
        line
        for line in lines
        if (not level or line.level == level) and (not text or text.lower() in line.message.lower())
    ]
    plan = run.plan
    return render_template(
        "run.html",
        org=org,
        run=run,
        active=run.status in state.ACTIVE,
        steps=step_summary(run, attempts),
        outcome=run_outcome(run, attempts),
        timeline=charts.timeline(run, attempts),
        transitions=store.transitions(run.run_id),
        lines=shown,
        total_lines=len(lines),
        level=level,
        q=text,
        reused=dict(plan.reused) if plan is not None else {},
        rerun_of=plan.rerun_of if plan is not None else None,
        duration=_duration(run),
    )


def _find_run(org: str, run_id: str) -> RunRecord:
    store = services().store
    try:
        run = store.get_run(store.resolve_run_id(run_id, org), org_slug=org)
    except PipelineOpsError:
        run = None
    if run is None:
        abort(404)
    return run


def _duration(run: RunRecord) -> str:
    start, end = run.started_at, run.ended_at
    if not start:
        return "not started"
    seconds = ((_utc(end) if end else datetime.now(UTC)) - _utc(start)).total_seconds()
    return charts.human_seconds(seconds) + ("" if end else " so far")


@bp.get("/<org>/runs/<run_id>/download")
@_signed_in
def run_download(org: str, run_id: str) -> Response:
    store = services().store
    run = _find_run(org, run_id)
    rid = run.run_id
    body = ndjson_records(run, store.step_attempts(rid), store.transitions(rid), store.lines(rid))
    return Response(
        stream_with_context(body),
        mimetype="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="run-{rid}.ndjson"'},
    )


@bp.post("/<org>/runs/<run_id>/cancel")
@_signed_in
def run_cancel(org: str, run_id: str) -> ResponseReturnValue:
    run = _find_run(org, run_id)
    try:
        services().runs.cancel(org, run.run_id)
        flash("Cancel requested: the run stops at its current step.")
    except PipelineOpsError as exc:
        flash(f"Could not cancel: {clean(str(exc))}")
    return redirect(url_for("console.run_detail", org=org, run_id=run.run_id))


@bp.post("/<org>/runs/<run_id>/rerun")
@_signed_in
def run_rerun(org: str, run_id: str) -> ResponseReturnValue:
    run = _find_run(org, run_id)
    from_failed = request.form.get("from_failed") == "1"
    try:
        new = services().runs.rerun(org, run.run_id, from_failed=from_failed)
    except PipelineOpsError as exc:
        flash(f"Could not re-run: {clean(str(exc))}")
        return redirect(url_for("console.run_detail", org=org, run_id=run.run_id))
    flash("Re-run started" + (" from the failed step." if from_failed else "."))
    return redirect(url_for("console.run_detail", org=org, run_id=new.run_id))


# -- pipelines -------------------------------------------------------------------------------


@bp.get("/<org>/pipelines")
@_signed_in
def pipelines(org: str) -> str:
    svc = services()
    schedules = {s["pipeline_path"]: s for s in svc.schedules.list(org)}
    last = {
        r.pipeline_path: r
        for r in reversed(queries.list_runs(svc.store.engine, org, queries.RunFilter(), 500, None))
    }
    rows = []
    for provider, domain, name in sorted(svc.catalog.keys()):
        path = f"{provider}/{domain}/{name}"
        problem = None
        try:
            spec = svc.catalog.load(provider, domain, name)
            yaml_schedule = spec.schedule
            pipeline_id = spec.pipeline_id
        except PipelineOpsError as exc:
            problem, yaml_schedule, pipeline_id = clean(str(exc)), None, name
        rows.append(
            {
                "path": path,
                "pipeline_id": pipeline_id,
                "yaml_schedule": yaml_schedule,
                "schedule": schedules.get(path),
                "last": last.get(path),
                "problem": problem,
            }
        )
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    return render_template("pipelines.html", org=org, pipelines=rows, yesterday=yesterday)


def _path_arg(value: str) -> tuple[str, str, str]:
    parts = value.split("/")
    if len(parts) != 3 or not all(_IDENT.fullmatch(p) for p in parts):
        abort(404)
    return parts[0], parts[1], parts[2]


@bp.post("/<org>/pipelines/run")
@_signed_in
def pipeline_run(org: str) -> ResponseReturnValue:
    provider, domain, name = _path_arg(request.form.get("pipeline", ""))
    try:
        start = date.fromisoformat(request.form.get("start_date") or "")
        end = (
            date.fromisoformat(request.form.get("end_date") or "")
            if request.form.get("end_date")
            else start
        )
    except ValueError:
        flash("Give the dates as YYYY-MM-DD.")
        return redirect(url_for("console.pipelines", org=org))
    try:
        run = services().runs.start(
            RunRequest(org, provider, domain, name, start, end, trigger="console")
        )
    except PipelineOpsError as exc:
        if isinstance(exc, QuotaExceededError):
            rate_limit.record_event(f"quota-{org}", services().settings.redis_url)
        flash(f"Could not start {provider}/{domain}/{name}: {clean(str(exc))}")
        return redirect(url_for("console.pipelines", org=org))
    flash("Run started.")
    return redirect(url_for("console.run_detail", org=org, run_id=run.run_id))


@bp.post("/<org>/pipelines/schedule")
@_signed_in
def pipeline_schedule(org: str) -> ResponseReturnValue:
    path = "/".join(_path_arg(request.form.get("pipeline", "")))
    try:
        if request.form.get("enabled") == "1":
            services().schedules.enable(org, path)
            flash(f"Schedule of {path} is on.")
        else:
            services().schedules.disable(org, path)
            flash(f"Schedule of {path} is off.")
    except PipelineOpsError as exc:
        flash(f"Could not change the schedule of {path}: {clean(str(exc))}")
    return redirect(url_for("console.pipelines", org=org))


# -- coverage --------------------------------------------------------------------------------


@bp.get("/<org>/coverage")
@_signed_in
def coverage(org: str) -> str:
    svc = services()
    days = _span(30, COVERAGE_SPANS)
    last = datetime.now(UTC).date() - timedelta(days=1)
    first = last - timedelta(days=days - 1)
    grid_cells = queries.coverage(svc.store.engine, org, _pipeline_paths(), first, last)
    gaps = {path: queries.missing_ranges(cells) for path, cells in grid_cells.items()}
    return render_template(
        "coverage.html",
        org=org,
        days=days,
        spans=COVERAGE_SPANS,
        grid=grid_cells,
        gaps=gaps,
        first=first,
        last=last,
    )


# One backfill thread per org and pipeline at a time in this process.
_backfills: dict[tuple[str, str], threading.Thread] = {}
_backfills_lock = threading.Lock()


@bp.post("/<org>/coverage/backfill")
@_signed_in
def coverage_backfill(org: str) -> ResponseReturnValue:
    provider, domain, name = _path_arg(request.form.get("pipeline", ""))
    try:
        first = date.fromisoformat(request.form.get("from") or "")
        last = date.fromisoformat(request.form.get("to") or "")
        days = date_range(first, last)
    except (ValueError, PipelineOpsError) as exc:
        flash(f"Could not backfill: {clean(str(exc))}")
        return redirect(url_for("console.coverage", org=org))
    svc = services()
    template = RunRequest(org, provider, domain, name, trigger="backfill")
    job = Backfill(svc.runs, template, days, concurrency=2)
    key = (org, f"{provider}/{domain}/{name}")
    with _backfills_lock:
        running = _backfills.get(key)
        if running is not None and running.is_alive():
            flash(f"A backfill of {key[1]} is already running.")
            return redirect(url_for("console.coverage", org=org))
        # The backfill service waits on each run (and on the quota's Retry-After): that is
        # a background job of this process, not something a request can wait for.
        thread = threading.Thread(
            target=_run_backfill, args=(job,), name=f"backfill-{org}", daemon=True
        )
        _backfills[key] = thread
        thread.start()
    flash(f"Backfill of {key[1]} started for {first} to {last} ({len(days)} days), under quota.")
    return redirect(url_for("console.coverage", org=org, days=request.form.get("days", 30)))


def _run_backfill(job: Backfill) -> None:
    try:
        job.execute(lambda progress: None)
    except Exception:  # the runs record what happened; the thread must not die loudly
        import logging

        logging.getLogger("pipeline_ops.console").exception("backfill ended early")


# -- spend and quota -------------------------------------------------------------------------


@bp.get("/<org>/spend")
@_signed_in
def spend(org: str) -> str:
    svc = services()
    days = _span(30, SPEND_SPANS)
    dimension = request.args.get("by") or "provider"
    if dimension not in DIMENSIONS:
        dimension = "provider"
    today = datetime.now(UTC).date()
    window = Window(today - timedelta(days=days - 1), today)
    figures = read_spend(svc.warehouse(), svc.settings.org_dataset(org), window, dimension, today)
    return render_template(
        "spend.html",
        org=org,
        days=days,
        spans=SPEND_SPANS,
        dimensions=list(DIMENSIONS),
        spend=figures,
        chart=charts.stacked_bars(figures.daily, window.first, window.last),
    )


@bp.get("/<org>/quota")
@_signed_in
def quota(org: str) -> str:
    report = services().plans.usage(org)
    return render_template(
        "quota.html",
        org=org,
        report=report,
        rejections=rate_limit.recent(f"quota-{org}", services().settings.redis_url),
    )


# -- errors ----------------------------------------------------------------------------------


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[str, int]:
    status = exc.code or 500
    return render_template("error.html", status=status, message=_message(status)), status


@bp.errorhandler(CSRFError)
def _csrf_error(exc: CSRFError) -> tuple[str, int]:
    message = "The form expired or did not come from this console; reload the page and retry."
    return render_template("error.html", status=400, message=message), 400


@bp.errorhandler(NotFoundError)
def _not_found(exc: NotFoundError) -> tuple[str, int]:
    return render_template("error.html", status=404, message=_message(404)), 404


@bp.errorhandler(ApiProblem)
def _problem(exc: ApiProblem) -> tuple[str, int]:
    return render_template("error.html", status=exc.status, message=exc.detail), exc.status


def _message(status: int) -> str:
    if status == 404:
        return "Not found: there is no such page in your organization."
    return "Something went wrong." if status >= 500 else "That request could not be served."


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"matrix_cells": charts.matrix_cells}


@bp.app_template_filter("utc")
def _utc_filter(value: Any) -> str:
    if not value:
        return ""
    if isinstance(value, datetime):
        return _utc(value).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


@bp.app_template_filter("iso")
def _iso_filter(value: Any) -> str:
    if isinstance(value, datetime):
        return _utc(value).isoformat()
    return str(value or "")


@bp.app_template_filter("money")
def _money(value: Any) -> str:
    return f"{value:,.2f}" if value is not None else "0.00"
