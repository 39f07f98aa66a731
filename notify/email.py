"""The e-mail channel: plain-text mail over SMTP (smtplib).

The relay is one URL for the deployment: `smtp://[user:password@]host[:port]?from=ADDR`
(add `&starttls=1` to upgrade the connection) or `smtps://...` for implicit TLS.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from notify.base import EMAIL, Message
from pipeline_ops_core.errors import TerminalError, TransientError

TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class SmtpRelay:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    implicit_tls: bool = False
    starttls: bool = False

    @classmethod
    def from_url(cls, url: str) -> SmtpRelay:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise TerminalError("the SMTP URL must look like smtp://host:port?from=ADDR")
        query = parse_qs(parts.query)
        sender = (query.get("from") or [f"pipeline-ops@{parts.hostname}"])[0]
        implicit = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if implicit else 25),
            sender=sender,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=implicit,
            starttls=(query.get("starttls") or ["0"])[0].lower() in ("1", "true", "yes"),
        )


def _classify(exc: Exception) -> Exception:
    """4xx SMTP replies and lost connections may pass; 5xx replies will not."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        if codes and all(400 <= code < 500 for code in codes):
            return TransientError(f"email: recipients deferred ({codes})")
        return TerminalError(f"email: recipients refused ({codes})")
    if isinstance(exc, smtplib.SMTPResponseException):
        kind = TransientError if 400 <= exc.smtp_code < 500 else TerminalError
        return kind(f"email: SMTP {exc.smtp_code}")
    return TransientError(f"email: {type(exc).__name__}")


class EmailNotifier:
    channel = EMAIL

    def __init__(self, relay: SmtpRelay, recipients: tuple[str, ...]) -> None:
        self.relay, self.recipients = relay, recipients

    def _message(self, message: Message) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = message.subject
        mail["From"] = self.relay.sender
        mail["To"] = ", ".join(self.recipients)
        mail["X-Pipeline-Ops-Run-Id"] = message.run_id
        mail.set_content(message.text())
        return mail

    def send(self, message: Message) -> None:
        relay = self.relay
        try:
            if relay.implicit_tls:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    relay.host, relay.port, timeout=TIMEOUT_SECONDS
                )
            else:
                smtp = smtplib.SMTP(relay.host, relay.port, timeout=TIMEOUT_SECONDS)
            with smtp:
                if relay.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if relay.username:
                    smtp.login(relay.username, relay.password or "")
                smtp.send_message(self._message(message))
        except (smtplib.SMTPException, OSError) as exc:
            raise _classify(exc) from exc
