"""`make load`: an open-loop ramp of run requests, engine and raw Celery side by side.

Loopback only, bounded: its own redis-server, PostgreSQL (metadata DB), gunicorn as the
Procfile's `web:` line (2 gthread workers x 8 threads) and the Procfile's worker (Celery
prefork, 2 processes), all stopped at the end.

Open loop: request i of a ramp step is due at `step start + i / rate`, whether or not
earlier requests have been answered, and its latency is counted from that due time, so a
slow server shows as latency instead of a slower sender (no coordinated omission). The
ramp (default 10 -> 20 -> 40 -> 80 -> 160 runs/s, 30 s each) goes across 50 orgs:
1. the engine: POST /run of a 3-step no-op pipeline; a run ends when it is `completed`;
2. raw Celery: `chain(noop, noop, noop).apply_async()` of the same no-op task on the
   same worker; a chain ends when its last task's result is stored.

Per step: offered rate, achieved admission rate, 429s, 5xx, POST /run p50/p99/p99.9,
completion rate, end-to-end p99 (due time to completed) and the broker queue depth. A step
is sustainable when completions keep up (>= 90% of admissions in the step) and the queue
at its end holds at most 2 s of arrivals. Quota stays exact: every 5th org has a daily
limit of 30 (reached during the third step), the others limits nothing reaches; never
more runs than the limit, a run for every 202, no 429 while an org has room. The per-org
rate limit (PIPELINE_OPS_ORG_RATE_LIMIT) is set to 100,000/min so it never binds: the
ramp measures capacity, not that limiter.

"lost" counts requests without an answer: timed out (10 s), or never started because every
sender thread was still waiting for answers 10 s after the request was due.

Prints the ramp table and writes the latency plot to var/load/latency.png (LOAD_PLOT).
Environment: LOAD_RATES (e.g. "10,20,40"), LOAD_STEP_S (30). Exit 1 if any 5xx, a lost
request or an inexact admission count.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.common import pct  # noqa: E402 - needs the sys.path entry above

ORGS = 50
RATES = tuple(int(r) for r in os.environ.get("LOAD_RATES", "10,20,40,80,160").split(","))
STEP_S = float(os.environ.get("LOAD_STEP_S", "30"))
LIMITED_DAILY = 30
SENDERS = 96
DRAIN_TIMEOUT_S = 120.0
GIVE_UP_S = 10.0  # a request whose sender could not start it within this is lost
REQUEST_TIMEOUT_S = 10.0
RATE_LIMIT_PER_MIN = 100_000

PIPELINE = """\
pipeline_id: load_noop3
name: Three no-op steps in a chain
provider: load
domain: noop
steps:
  - {step_id: a, ps_type: generic.noop}
  - {step_id: b, ps_type: generic.noop, depends_on: [a]}
  - {step_id: c, ps_type: generic.noop, depends_on: [b]}
"""


def limits_for(i: int) -> dict[str, int]:
    daily = LIMITED_DAILY if i % 5 == 0 else 1_000_000
    return {"daily": daily, "monthly": 1_000_000, "concurrent": 1_000_000}


@dataclass
class Sent:
    """One request of the ramp: when it was due, what came back, and when (wall clock)."""

    step: int
    due_wall: float  # epoch seconds
    latency_s: float = float("nan")  # answer time - due time
    status: int = 0  # HTTP status; 202 for an apply_async that returned; 0 = no answer
    handle: Any = None  # run id (engine) or AsyncResult (raw)
    org: str = ""
    done_wall: float | None = None  # when the run / chain completed


@dataclass
class StepFigures:
    rate: int
    offered: float
    admitted_per_s: float
    refused_429: int
    errors_5xx: int
    lost: int
    p50_ms: float
    p99_ms: float
    p999_ms: float
    completed_per_s: float
    e2e_p99_ms: float
    queue_end: int
    queue_max: int
    sustainable: bool = False


@dataclass
class Ramp:
    name: str
    sent: list[Sent] = field(default_factory=list)
    windows: list[tuple[float, float]] = field(default_factory=list)  # per step, wall
    queue: list[tuple[float, int]] = field(default_factory=list)  # (wall, depth)


def run_ramp(name: str, fire: Callable[[Sent], None], queue_depth: Callable[[], int]) -> Ramp:
    """Send every step's requests on their constant-rate schedule, from a pool big enough
    that a slow answer never delays the next request's start."""
    ramp = Ramp(name)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            ramp.queue.append((time.time(), queue_depth()))
            stop.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with ThreadPoolExecutor(SENDERS) as pool:
        for step, rate in enumerate(RATES):
            count = int(rate * STEP_S)
            start_perf, start_wall = time.perf_counter() + 0.05, time.time() + 0.05
            for i in range(count):
                due = start_perf + i / rate
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                item = Sent(step, start_wall + i / rate)
                ramp.sent.append(item)
                pool.submit(_timed, fire, item, due)
            ramp.windows.append((start_wall, start_wall + STEP_S))
            time.sleep(max(0.0, start_perf + STEP_S - time.perf_counter()))
    stop.set()
    sampler.join()
    return ramp


def _timed(fire: Callable[[Sent], None], item: Sent, due: float) -> None:
    if time.perf_counter() - due > GIVE_UP_S:
        # Every sender was held by slow answers for GIVE_UP_S: the request is not sent and
        # counts as lost, so an overloaded server can't stretch the run without bound.
        item.latency_s = float("nan")
        return
    try:
        fire(item)
    except Exception:  # a refused connection or a timeout: no answer, counted as lost
        item.status = 0
    item.latency_s = time.perf_counter() - due


def figures(ramp: Ramp) -> list[StepFigures]:
    out = []
    done_all = sorted(s.done_wall for s in ramp.sent if s.done_wall is not None)
    for step, rate in enumerate(RATES):
        mine = [s for s in ramp.sent if s.step == step]
        lo, hi = ramp.windows[step]
        answered = [s.latency_s * 1000 for s in mine if s.status]
        admitted = [s for s in mine if s.status == 202]
        e2e = [(s.done_wall - s.due_wall) * 1000 for s in admitted if s.done_wall is not None]
        never = len(admitted) - len(e2e)
        # Admitted runs that never completed count as infinitely late in the e2e tail.
        e2e += [float("inf")] * never
        completed = sum(1 for t in done_all if lo <= t < hi)
        depths = [d for t, d in ramp.queue if lo <= t < hi] or [0]
        out.append(
            StepFigures(
                rate=rate,
                offered=len(mine) / STEP_S,
                admitted_per_s=len(admitted) / STEP_S,
                refused_429=sum(1 for s in mine if s.status == 429),
                errors_5xx=sum(1 for s in mine if s.status >= 500),
                lost=sum(1 for s in mine if s.status == 0),
                p50_ms=pct(answered, 0.50) if answered else float("nan"),
                p99_ms=pct(answered, 0.99) if answered else float("nan"),
                p999_ms=pct(answered, 0.999) if answered else float("nan"),
                completed_per_s=completed / STEP_S,
                e2e_p99_ms=pct(e2e, 0.99) if e2e else float("nan"),
                queue_end=depths[-1],
                queue_max=max(depths),
            )
        )
        f = out[-1]
        f.sustainable = (
            f.errors_5xx == 0
            and f.lost == 0
            and f.completed_per_s >= 0.9 * f.admitted_per_s
            and f.queue_end <= 2 * rate * 3  # 3 tasks a run: 2 s of arrivals
        )
    return out


def max_sustainable(steps: list[StepFigures]) -> int:
    best = 0
    for f in steps:
        if not f.sustainable:
            break
        best = f.rate
    return best


def table(name: str, steps: list[StepFigures]) -> str:
    head = (
        f"{name}\n"
        f"{'offered/s':>9} {'admit/s':>8} {'429':>5} {'5xx':>4} {'lost':>4} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'done/s':>7} {'e2e p99 ms':>11} "
        f"{'queue end/max':>14} sustainable"
    )
    lines = [head]
    for f in steps:
        lines.append(
            f"{f.offered:>9.1f} {f.admitted_per_s:>8.1f} {f.refused_429:>5} {f.errors_5xx:>4}"
            f" {f.lost:>4} {f.p50_ms:>8.1f} {f.p99_ms:>8.1f} {f.p999_ms:>9.1f}"
            f" {f.completed_per_s:>7.1f} {f.e2e_p99_ms:>11.0f} {f.queue_end:>7}/{f.queue_max:<6}"
            f" {'yes' if f.sustainable else 'no'}"
        )
    return "\n".join(lines)


def plot(engine: list[StepFigures], raw: list[StepFigures], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, steps, style in (("engine (POST /run)", engine, "o-"), ("raw Celery", raw, "s--")):
        rates = [f.offered for f in steps]
        left.plot(rates, [f.p50_ms for f in steps], style, label=f"{label} p50")
        left.plot(rates, [f.p99_ms for f in steps], style, alpha=0.6, label=f"{label} p99")
        right.plot(rates, [f.completed_per_s for f in steps], style, label=label)
    ticks = [f.rate for f in engine]
    left.set(xscale="log", yscale="log", xlabel="offered rate (runs/s)", ylabel="send latency ms")
    left.set_title("request latency from the due time")
    right.plot(
        [f.offered for f in engine], [f.offered for f in engine], ":", color="grey", label="offered"
    )
    right.set(xscale="log", xlabel="offered rate (runs/s)", ylabel="completed/s in the step")
    right.set_title("completions")
    for axis in (left, right):
        axis.set_xticks(ticks, labels=[str(t) for t in ticks])
        axis.minorticks_off()
        axis.legend(fontsize=7)
        axis.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def wait_clear_of_midnight(seconds: float) -> None:
    # Daily counters reset at UTC midnight: do not straddle it.
    now = datetime.now(UTC)
    to_midnight = (now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)) - now
    if to_midnight < timedelta(seconds=seconds + 120):
        time.sleep(to_midnight.total_seconds() + 2)


class NoDispatch:
    def check(self) -> None:
        return None

    def enqueue(self, run_id: str, plan: dict[str, Any]) -> None:
        raise AssertionError("runs are started through gunicorn")

    def revoke(self, run_id: str, plan: dict[str, Any]) -> None:
        return None


def main() -> dict[str, Any]:
    import redis as redis_client
    import requests
    from sqlalchemy import select

    from pipeline.bootstrap import build_services
    from pipeline.settings import Settings
    from pipeline.storage.db import upgrade
    from pipeline.storage.tables import pipeline_runs
    from tests.support.servers import (
        app_env,
        create_pg_database,
        start_gunicorn,
        start_postgres,
        start_redis,
        start_worker,
    )

    wait_clear_of_midnight(2 * STEP_S * len(RATES) + 2 * DRAIN_TIMEOUT_S)
    tmp = Path(tempfile.mkdtemp(prefix="po-load-"))
    (tmp / "configs" / "load" / "noop").mkdir(parents=True)
    (tmp / "configs" / "load" / "noop" / "three.yml").write_text(PIPELINE)
    servers = []
    try:
        redis = start_redis()
        servers.append(redis)
        pg = start_postgres()
        servers.append(pg)
        env = app_env(
            tmp,
            create_pg_database(pg, "load"),
            redis.url,
            tmp / "configs",
            f"duckdb:///{tmp / 'wh.duckdb'}",
        )
        env["PIPELINE_OPS_ORG_RATE_LIMIT"] = str(RATE_LIMIT_PER_MIN)
        os.environ.update(env)
        settings = Settings.from_env({**os.environ, **env})
        upgrade(settings.database_url)
        services = build_services(settings, NoDispatch())
        keys: dict[str, str] = {}
        for i in range(ORGS):
            org = f"org_{i:02d}"
            keys[org] = services.orgs.create(org)
            services.gate.set_limits(org, **limits_for(i))
        # The Procfile's worker, with the raw baseline's no-op task loaded too (-I).
        worker = start_worker(
            env,
            concurrency=2,
            name="wload",
            log_dir=tmp,
            extra_args=["-I", "tests.bench.bench_tasks"],
        )
        servers.append(worker)
        web = start_gunicorn(env, workers=2, threads=8, log_dir=tmp)
        servers.append(web)
        broker = redis_client.Redis.from_url(redis.url)

        def queue_depth() -> int:
            return int(broker.llen("celery"))

        local = threading.local()
        counter = [0]
        per_org: dict[str, int] = {org: 0 for org in keys}
        lock = threading.Lock()

        def post_run(item: Sent) -> None:
            with lock:
                org = f"org_{counter[0] % ORGS:02d}"
                counter[0] += 1
                per_org[org] += 1
                day = date(2000, 1, 1) + timedelta(days=per_org[org])  # one run key each
            item.org = org
            session = getattr(local, "session", None)
            if session is None:
                session = local.session = requests.Session()
            reply = session.post(
                f"{web.url}/pipelines/run/{org}/load/noop/three",
                json={"start_date": day.isoformat(), "end_date": day.isoformat()},
                headers={"X-API-Key": keys[org]},
                timeout=REQUEST_TIMEOUT_S,
            )
            item.status = reply.status_code
            if reply.status_code == 202:
                item.handle = reply.json()["run_id"]

        # Warm-up, not counted: every gunicorn thread and worker process imports and
        # connects on its first request, which would otherwise land in the first step.
        warm_key = services.orgs.create("warmup")
        services.gate.set_limits("warmup", concurrent=1_000_000, daily=1_000_000, monthly=10**7)
        warm_runs = []
        with ThreadPoolExecutor(16) as pool:
            replies = pool.map(
                lambda d: requests.post(
                    f"{web.url}/pipelines/run/warmup/load/noop/three",
                    json={"start_date": d.isoformat(), "end_date": d.isoformat()},
                    headers={"X-API-Key": warm_key},
                    timeout=60,
                ),
                [date(2000, 1, 1) + timedelta(days=d) for d in range(48)],
            )
            warm_runs = [r.json()["run_id"] for r in replies if r.status_code == 202]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = [services.store.get_run(r).status for r in warm_runs]
            if all(status == "completed" for status in done):
                break
            time.sleep(0.5)

        print(f"load: open-loop ramp {RATES} runs/s x {STEP_S:.0f}s, {ORGS} orgs")
        engine = run_ramp("engine", post_run, queue_depth)
        admitted = {s.handle: s for s in engine.sent if s.status == 202}
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        ended: dict[str, tuple[str, datetime | None]] = {}
        while time.monotonic() < deadline:
            with services.store.engine.connect() as con:
                rows = con.execute(
                    select(pipeline_runs.c.run_id, pipeline_runs.c.status, pipeline_runs.c.ended_at)
                ).all()
            ended = {r.run_id: (r.status, r.ended_at) for r in rows}
            if time.monotonic() > deadline - DRAIN_TIMEOUT_S + 1 and not admitted:
                break
            if all(ended.get(run, ("", None))[1] is not None for run in admitted):
                break
            time.sleep(1.0)
        for run_id, item in admitted.items():
            status, at = ended.get(run_id, ("", None))
            if status == "completed" and at is not None:
                item.done_wall = at.timestamp()

        from celery import chain

        from tasks.celery_app import app as celery_app
        from tests.bench.bench_tasks import noop

        # Whatever the engine ramp left queued is dropped, so the raw ramp gets the same
        # idle worker (those runs stay unfinished; they are counted above as not completed).
        left = queue_depth()
        celery_app.control.purge()
        time.sleep(3.0)
        print(f"engine ramp over: {left} task(s) still queued were purged")

        def raw_chain(item: Sent) -> None:
            item.handle = chain(noop.si(), noop.si(), noop.si()).apply_async()
            item.status = 202

        with ThreadPoolExecutor(16) as pool:  # warm-up, not counted
            warm = list(
                pool.map(lambda _: chain(noop.si(), noop.si(), noop.si()).apply_async(), range(48))
            )
        for result in warm:
            result.get(timeout=120)

        raw = run_ramp("raw Celery", raw_chain, queue_depth)
        sent = [item for item in raw.sent if item.status == 202]
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline and not all(i.handle.ready() for i in sent):
            time.sleep(1.0)
        for item in sent:
            if not item.handle.successful():
                continue
            done = item.handle.date_done
            if done is not None:
                item.done_wall = (done if done.tzinfo else done.replace(tzinfo=UTC)).timestamp()

        engine_steps, raw_steps = figures(engine), figures(raw)
        ours, theirs = max_sustainable(engine_steps), max_sustainable(raw_steps)
        load = os.getloadavg()
        print(f"machine load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(
            table(
                "engine: POST /run of a 3-step no-op pipeline (latency from due time)", engine_steps
            )
        )
        print(table("raw Celery: chain of 3 no-op tasks, apply_async (same worker)", raw_steps))
        ratio = ours / theirs if theirs else float("nan")
        print(
            f"max sustainable rate: engine {ours} runs/s, raw Celery {theirs} chains/s,"
            f" ratio {ratio:.2f} (target >= 0.7)"
        )

        failures: list[str] = []
        for f in engine_steps:
            if f.errors_5xx:
                failures.append(f"{f.rate}/s: {f.errors_5xx} 5xx")
        with services.store.engine.connect() as con:
            runs_per_org: dict[str, int] = {}
            org_rows = select(pipeline_runs.c.org_slug).where(pipeline_runs.c.org_slug != "warmup")
            for row in con.execute(org_rows).all():
                runs_per_org[row.org_slug] = runs_per_org.get(row.org_slug, 0) + 1
        inexact, unanswered = [], 0
        for i, org in enumerate(keys):
            # The runs in the metadata DB are what was admitted: a request whose answer
            # timed out may still have been admitted (and counts against the limit), or may
            # never have reached the app. So exact means: never more runs than the limit, a
            # run for every 202, no 429 while the org had room, and a limit reached by
            # answered requests is filled to the last slot.
            limit = limits_for(i)["daily"]
            runs = runs_per_org.get(org, 0)
            mine = [s for s in engine.sent if s.org == org]
            got_202 = sum(1 for s in mine if s.status == 202)
            got_429 = sum(1 for s in mine if s.status == 429)
            unanswered += runs - got_202
            if runs > limit or got_202 > runs or (got_429 and runs < limit):
                inexact.append(
                    f"{org}: {runs} runs, {got_202} x 202, {got_429} x 429, limit {limit}"
                )
            elif got_202 + got_429 >= limit and runs != limit:
                inexact.append(
                    f"{org}: {runs} runs after {got_202 + got_429} answers, limit {limit}"
                )
        expected = sum(min(per_org[o], limits_for(i)["daily"]) for i, o in enumerate(keys))
        refused = sum(1 for s in engine.sent if s.status == 429)
        verdict = "exact" if not inexact else "NOT exact"
        print(
            f"quota: {sum(runs_per_org.values())} runs admitted ({unanswered} of them without"
            f" an answer in time), {refused} refused with 429, at most {expected} by the"
            f" limits: {verdict}"
        )
        failures += inexact[:20]
        plot_path = Path(os.environ.get("LOAD_PLOT", str(ROOT / "var" / "load" / "latency.png")))
        plot(engine_steps, raw_steps, plot_path)
        print(f"plot: {plot_path}")
        if failures:
            print("FAILED:\n  " + "\n  ".join(failures))
            raise SystemExit(1)
        return {
            "engine": engine_steps,
            "raw": raw_steps,
            "engine_max_rate": ours,
            "raw_max_rate": theirs,
        }
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
