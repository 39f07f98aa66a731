"""`pipeline-ops credentials …`: the vault (the org API keys are `pipeline-ops orgs …`).

Secrets and keys are read from a file or stdin, never from argv: argv shows up in
`ps`, shell history and audit logs. Output is metadata only.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from app.cli.output import echo_json, wants_json
from app.cli.support import EXIT_PROBLEMS, EXIT_USAGE, fail, org_and_args, org_services
from pipeline.bootstrap import cli_services
from pipeline.definition.providers import check_credential_urls
from pipeline_ops_core.errors import PipelineOpsError

PROGRESS_EVERY = 100


def _read_input(path: str | None, what: str) -> str:
    """The contents of `path`, or of stdin for None or `-` (a hidden prompt on a terminal)."""
    if path and path != "-":
        try:
            return Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            fail(f"cannot read {what} from {path}: {exc.strerror}")
    if sys.stdin.isatty():
        return str(click.prompt(what, hide_input=True, err=True))
    return sys.stdin.read()


def _show(meta: dict[str, Any]) -> str:
    state = "enabled" if meta["enabled"] else "disabled"
    return "\t".join(
        [
            meta["org_slug"],
            meta["credential_id"],
            meta["provider"],
            meta["name"],
            meta["key_id"],
            state,
            meta["created_at"].isoformat(),
        ]
    )


@click.group()
def credentials() -> None:
    """Encrypted provider credentials (the vault)."""


@credentials.command("add")
@org_and_args("provider")
@click.option("--name", required=True, help="Display name, e.g. 'Production admin key'.")
@click.option("--id", "credential_id", help="Credential id (default: derived from --name).")
@click.option(
    "--file",
    "path",
    help="Read the secret from this file ('-' or absent: stdin). JSON object or raw string.",
)
def add(org_slug: str, provider: str, name: str, credential_id: str | None, path: str) -> None:
    """Store a credential. The secret comes from stdin or --file, never the command line.

    A JSON object is checked against the provider's declared fields (`pipeline-ops
    providers`); plain text is stored in the field the provider declares for it (OpenAI,
    Anthropic: admin_key). Missing or unknown fields are refused (exit 2), nothing stored.
    """
    from pipeline.definition.credential_check import checked_secret

    vault = org_services(org_slug).credentials
    raw = _read_input(path, "secret")
    try:
        secret = checked_secret(provider, raw)
        check_credential_urls(provider, secret)
    except PipelineOpsError as exc:
        fail(str(exc), EXIT_USAGE)
    try:
        meta = vault.add(org_slug, provider, name, secret, credential_id)
    except PipelineOpsError as exc:
        fail(str(exc))
    click.echo(f"stored credential {meta['credential_id']!r} for {org_slug} ({provider})")
    click.echo(_show(meta))


@credentials.command("list")
@org_and_args(org_required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (metadata only).")
def list_(org_slug: str | None, as_json: bool) -> None:
    """List credentials (metadata only: never a secret)."""
    vault = cli_services().credentials
    rows = vault.list(org_slug)
    if wants_json(as_json):
        echo_json(rows)
        return
    click.echo("org\tid\tprovider\tname\tkey_id\tstate\tcreated_at")
    for meta in rows:
        click.echo(_show(meta))


def _set_enabled(org_slug: str, credential_id: str, enabled: bool) -> None:
    vault = cli_services().credentials
    try:
        meta = vault.set_enabled(org_slug, credential_id, enabled)
    except PipelineOpsError as exc:
        fail(str(exc))
    click.echo(_show(meta))


@credentials.command("disable")
@org_and_args("credential_id")
def disable(org_slug: str, credential_id: str) -> None:
    """Disable a credential: runs asking for it are refused (422) until it is enabled."""
    _set_enabled(org_slug, credential_id, False)


@credentials.command("enable")
@org_and_args("credential_id")
def enable(org_slug: str, credential_id: str) -> None:
    """Enable a disabled credential."""
    _set_enabled(org_slug, credential_id, True)


@credentials.command("delete")
@org_and_args("credential_id")
def delete(org_slug: str, credential_id: str) -> None:
    """Delete a credential and its ciphertext."""
    vault = cli_services().credentials
    try:
        vault.delete(org_slug, credential_id)
    except PipelineOpsError as exc:
        fail(str(exc))
    click.echo(f"deleted credential {credential_id!r} of {org_slug}")


@credentials.command("generate-key")
@click.option("--out", "out", type=click.Path(path_type=Path), help="Write to a new 0600 file.")
def generate_key(out: Path | None) -> None:
    """Print (or write) a new master key: base64 of 32 random bytes."""
    from credentials.keys import generate_key as new_key
    from credentials.keys import write_secret_file

    key = new_key()
    if out is None:
        click.echo(key)
    elif not write_secret_file(out, key + "\n", replace=False):
        fail(f"{out} already exists")
    else:
        click.echo(f"wrote a new master key to {out} (mode 0600)")


@credentials.command("rotate-master")
@click.option("--new-key", "new_key", help="The new key: '-' reads it from stdin.")
@click.option("--new-key-file", type=click.Path(path_type=Path), help="Read the new key here.")
def rotate_master(new_key: str | None, new_key_file: Path | None) -> None:
    """Re-wrap every data key under a new master key (ciphertexts are untouched).

    Safe to interrupt and run again: rows already on the new key id are skipped,
    and rows not yet re-wrapped keep decrypting under their old key id.
    """
    from credentials.keys import key_id_of, parse_key
    from credentials.rotation import key_file_of, key_id_counts, rewrap_all, rotating_keys

    if (new_key is None) == (new_key_file is None):
        fail("give exactly one of --new-key-file PATH or --new-key - (stdin)", EXIT_USAGE)
    if new_key not in (None, "-"):
        click.echo(
            "warning: a key on the command line is visible in ps and shell history; "
            "prefer --new-key-file PATH or --new-key - (stdin)",
            err=True,
        )
        text = new_key or ""
    else:
        text = _read_input(str(new_key_file) if new_key_file else "-", "new master key")
    svc = cli_services()
    try:
        key = parse_key(text, "the new master key")
        key_file = key_file_of(svc.keys)
        keys, new_id = rotating_keys(svc.keys, key)
    except PipelineOpsError as exc:
        fail(str(exc))
    click.echo(f"re-wrapping data keys under master key id {new_id}")

    def progress(done: int) -> None:
        if done % PROGRESS_EVERY == 0:
            click.echo(f"  re-wrapped {done}")

    report = rewrap_all(svc.store.engine, keys, new_id, progress=progress)
    click.echo(
        f"re-wrapped {report.rewrapped}, already on {new_id}: {report.already_current}, "
        f"failed: {len(report.failed)}"
    )
    for org, cred, why in report.failed:
        click.echo(f"  failed {org}/{cred}: {why}", err=True)
    counts = key_id_counts(svc.store.engine)
    left = {kid: n for kid, n in counts.items() if kid != new_id}
    if key_file is not None:
        dropped = key_file.prune(left) if report.done else []
        if dropped:
            click.echo(f"dropped old key id(s) {', '.join(dropped)} from {key_file.keyring_path}")
        click.echo(f"the key file {key_file.key_path} now holds key id {key_id_of(key)}")
    else:
        click.echo(
            "now set PIPELINE_OPS_MASTER_KEY to the new key on every process; while any "
            "process may still hold the old key, set it as '<new>,<old>' and restart, "
            "then drop the old key."
        )
    if left:
        listed = ", ".join(f"{kid}: {n}" for kid, n in sorted(left.items()))
        click.echo(f"rows still on other key ids ({listed}): run rotate-master again", err=True)
    if not report.done:
        sys.exit(EXIT_PROBLEMS)
