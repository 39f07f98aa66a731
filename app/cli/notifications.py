"""`pipeline-ops notifications set|show ORG`."""

from __future__ import annotations

import click

from app.cli.output import echo_json, wants_json
from app.cli.support import EXIT_USAGE, fail, org_and_args
from notify.base import NotificationSettings
from pipeline.bootstrap import cli_services
from pipeline.notifications import NotificationService
from pipeline_ops_core.egress import EgressRefused
from pipeline_ops_core.errors import PipelineOpsError


def _service() -> NotificationService:
    return cli_services().notifications


def _show(settings: NotificationSettings) -> None:
    from app.admin.presenters import masked_url

    events = [
        name
        for name, on in (("failure", settings.on_failure), ("success", settings.on_success))
        if on
    ]
    click.echo(f"org:      {settings.org_slug}")
    click.echo(f"events:   {', '.join(events) or 'none'}")
    click.echo(f"webhook:  {settings.webhook_url or '-'}")
    click.echo(f"slack:    {masked_url(settings.slack_webhook_url) or '-'}")
    click.echo(f"email:    {', '.join(settings.email_to) or '-'}")


@click.group()
def notifications() -> None:
    """Per-org run notifications: webhook (signed), Slack, e-mail."""


@notifications.command("set")
@org_and_args()
@click.option("--webhook", "webhook_url", help="URL that gets a signed JSON POST.")
@click.option("--slack", "slack_webhook_url", help="Slack incoming-webhook URL.")
@click.option("--email", "email_to", multiple=True, help="Recipient; repeat for more.")
@click.option("--on-failure/--no-on-failure", default=True, show_default=True)
@click.option("--on-success/--no-on-success", default=False, show_default=True)
@click.option("--rotate-secret", is_flag=True, help="Make a new webhook signing secret.")
def set_notifications(
    org_slug: str,
    webhook_url: str | None,
    slack_webhook_url: str | None,
    email_to: tuple[str, ...],
    on_failure: bool,
    on_success: bool,
    rotate_secret: bool,
) -> None:
    """Replace ORG's notification settings (channels not given are removed)."""
    wanted = NotificationSettings(
        org_slug=org_slug,
        on_failure=on_failure,
        on_success=on_success,
        webhook_url=webhook_url,
        slack_webhook_url=slack_webhook_url,
        email_to=email_to,
    )
    try:
        saved, fresh = _service().set_settings(wanted, rotate_secret=rotate_secret)
    except EgressRefused as exc:
        fail(str(exc), EXIT_USAGE)
    except PipelineOpsError as exc:
        fail(str(exc))
    _show(saved)
    if fresh:
        click.echo(f"webhook_secret: {fresh}")
        click.echo("Give this secret to the receiver now: it is not shown again.", err=True)


@notifications.command("show")
@org_and_args()
def show_notifications(org_slug: str) -> None:
    """Show ORG's notification settings (secrets are not shown)."""
    try:
        settings = _service().get_settings(org_slug)
    except PipelineOpsError as exc:
        fail(str(exc))
    if wants_json():
        from app.admin.presenters import present_notifications
        from app.admin.schemas import NotificationSettingsSchema

        echo_json(NotificationSettingsSchema().dump(present_notifications(settings)))
        return
    _show(settings)
