"""`pipeline-ops providers`: the provider registry (configs/system/providers.yml)."""

from __future__ import annotations

import json

import click

from app.cli.output import wants_json
from app.cli.support import fail
from pipeline.settings import Settings


@click.command("providers")
@click.option("--json", "as_json", is_flag=True, help="Print the registry as JSON.")
def providers(as_json: bool) -> None:
    """List the provider registry (configs/system/providers.yml)."""
    from pipeline.definition.providers import read_registry

    path = Settings.from_env().configs_dir / "system" / "providers.yml"
    if not path.is_file():
        fail(f"no provider registry at {path}")
    registry, problems = read_registry(path)
    if registry is None or problems:
        fail(f"{path}: " + ("; ".join(problems) or "not a provider registry"))
    if wants_json(as_json):
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
