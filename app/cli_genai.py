"""`pipeline-ops providers`, `subscriptions add|list|remove` and `samples serve`.

Registered on the main group by `register()` at the end of app/cli.py. Operator-level like
the rest of the CLI: it reads the same environment and talks to the metadata DB directly.
"""

from __future__ import annotations

import json
from typing import Any

import click

from app.cli_support import EXIT_PROBLEMS, fail, parse_day
from app.samples import DEFAULT_PORT, PROVIDERS, SAMPLE_END, SAMPLE_START, SampleAPIServer
from pipeline.bootstrap import cli_services
from pipeline_ops_core.errors import PipelineOpsError


def _service() -> tuple[Any, Any]:
    """The subscription service and the run store, on one migrated metadata DB."""
    svc = cli_services()
    return svc.subscriptions, svc.store


@click.command("providers")
@click.option("--json", "as_json", is_flag=True, help="Print the registry as JSON.")
def providers(as_json: bool) -> None:
    """List the provider registry (configs/system/providers.yml)."""
    from pipeline.definition.providers import read_registry
    from pipeline.settings import Settings

    path = Settings.from_env().configs_dir / "system" / "providers.yml"
    if not path.is_file():
        fail(f"no provider registry at {path}")
    registry, problems = read_registry(path)
    if registry is None or problems:
        fail(f"{path}: " + ("; ".join(problems) or "not a provider registry"))
    if as_json:
        click.echo(json.dumps([p.as_json() for p in registry.values()], indent=2))
        return
    click.echo(f"{'key':<14}{'name':<26}{'domains':<16}{'credential':<22}api base url")
    for p in registry.values():
        click.echo(
            f"{p.key:<14}{p.display_name:<26}{','.join(p.domains):<16}"
            f"{p.credential_type:<22}{p.api_base_url or '-'}"
        )
        if p.credential is not None:
            need = "required" if p.credential_required else "optional"
            click.echo(f"{'':<14}credential ({need}): {p.credential.summary()}")
        if p.default_pipelines:
            click.echo(f"{'':<14}default pipelines: {', '.join(p.default_pipelines)}")


@click.group("subscriptions")
def subscriptions() -> None:
    """Manage an org's SaaS subscriptions (amortized by subscription/costs/subscription_cost)."""


@subscriptions.command("add")
@click.option("--org", "org_slug", required=True, help="Organization slug.")
@click.option("--provider", required=True, help="SaaS vendor key, e.g. openai, cursor, slack.")
@click.option("--plan", required=True, help="Plan name, e.g. 'ChatGPT Team'.")
@click.option("--seats", required=True, type=int, help="Number of seats.")
@click.option("--unit-price", required=True, help="Price per seat per billing cycle.")
@click.option(
    "--cycle",
    "billing_cycle",
    default="monthly",
    show_default=True,
    type=click.Choice(["monthly", "quarterly", "annual"]),
)
@click.option("--start-date", required=True, help="First day covered (YYYY-MM-DD).")
@click.option("--end-date", help="Last day covered, inclusive (YYYY-MM-DD); open if omitted.")
@click.option("--currency", default="USD", show_default=True, help="ISO 4217 code.")
def subscriptions_add(
    org_slug: str,
    provider: str,
    plan: str,
    seats: int,
    unit_price: str,
    billing_cycle: str,
    start_date: str,
    end_date: str | None,
    currency: str,
) -> None:
    """Add a subscription to an org and print its id."""
    service, store = _service()
    if store.get_org(org_slug) is None:
        fail(f"org {org_slug!r} not found")
    start = parse_day(start_date, "--start-date", EXIT_PROBLEMS)
    end = parse_day(end_date, "--end-date", EXIT_PROBLEMS) if end_date is not None else None
    values = {
        "provider": provider,
        "plan": plan,
        "seats": seats,
        "unit_price": unit_price,
        "billing_cycle": billing_cycle,
        "start_date": start,
        "end_date": end,
        "currency": currency,
    }
    try:
        sub = service.add(org_slug, values)
    except PipelineOpsError as exc:
        fail(str(exc))
    click.echo(f"subscription_id: {sub['subscription_id']}")


@subscriptions.command("list")
@click.option("--org", "org_slug", required=True, help="Organization slug.")
def subscriptions_list(org_slug: str) -> None:
    """List an org's subscriptions."""
    service, _ = _service()
    for s in service.list(org_slug):
        click.echo(
            f"{s['subscription_id']}\t{s['provider']}\t{s['plan']}\t{s['seats']} seats\t"
            f"{s['unit_price']} {s['currency']}/{s['billing_cycle']}\t"
            f"{s['start_date']}..{s['end_date'] or ''}"
        )


@subscriptions.command("remove")
@click.option("--org", "org_slug", required=True, help="Organization slug.")
@click.argument("subscription_id")
def subscriptions_remove(org_slug: str, subscription_id: str) -> None:
    """Remove a subscription (its past cost rows stay until the pipeline re-runs those days)."""
    service, _ = _service()
    try:
        service.remove(org_slug, subscription_id)
    except PipelineOpsError as exc:
        fail(str(exc))
    click.echo(f"removed {subscription_id}")


@click.group("samples")
def samples() -> None:
    """The shipped provider samples (sample_data/genai/), for trying the GenAI pipelines."""


@samples.command("serve")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
    help="Loopback port to serve on (0: any free port).",
)  # fmt: skip
@click.option("--org", "org_slug", default="acme", show_default=True, help="Org of the commands.")
def samples_serve(port: int, org_slug: str) -> None:
    """Serve the OpenAI and Anthropic Admin API samples on 127.0.0.1 until Ctrl-C, and print
    the commands that point an org's credentials and runs at them."""
    serve_samples(port, org_slug)


def serve_samples(port: int, org_slug: str) -> None:
    """`samples serve` (and `scripts/demo_genai.py` run on its own)."""
    import shlex
    import threading

    try:
        server = SampleAPIServer(port)
    except OSError as exc:
        fail(f"cannot serve on 127.0.0.1:{port}: {exc.strerror}; pick another --port")
    host = server.url.removeprefix("http://")
    say = click.echo
    say(f"serving the OpenAI and Anthropic Admin API samples (sample_data/genai/) on {server.url}")
    say(f"they hold usage for {SAMPLE_START}..{SAMPLE_END} (UTC); Ctrl-C stops the server")
    say("")
    say("1. let the worker and `credentials add` reach this loopback server (set it for both):")
    say(f"   export PIPELINE_OPS_EGRESS_ALLOW={host}")
    say("2. store one credential per provider (any key works here; a real one goes in the")
    say("   same field, admin_key, and base_url is left out):")
    for provider in PROVIDERS:
        secret = shlex.quote(json.dumps(server.credential(provider)))
        say(
            f"   echo {secret} | pipeline-ops credentials add {org_slug} {provider} "
            f"--name {provider}_samples --id {provider}_sample --file -"
        )
    say("3. run a pipeline over those dates with its credential, e.g. OpenAI's:")
    say(
        f"   pipeline-ops run genai/payg/openai --org {org_slug} --start-date {SAMPLE_START} "
        f"--end-date {SAMPLE_END} --credential openai_sample --wait"
    )
    say('   (or over HTTP: see "Run it for real" in the README)')
    stop = threading.Event()
    try:
        stop.wait()
    except KeyboardInterrupt:
        say("stopped")
    finally:
        server.close()


def register(group: click.Group) -> None:
    group.add_command(providers)
    group.add_command(subscriptions)
    group.add_command(samples)
