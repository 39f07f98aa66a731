"""The webhook channel: a signed JSON POST, and the Slack incoming-webhook variant.

Signature: `X-Signature: sha256=<hex>` where hex is HMAC-SHA256, keyed with the org's
webhook secret, over `<X-Timestamp> + "." + <raw body>`. The timestamp (Unix seconds)
is signed too, so a receiver can refuse replays older than a few minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable

from notify.base import SLACK, WEBHOOK, Message
from notify.http import post
from pipeline_ops_core.errors import TerminalError

SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Timestamp"
EVENT_HEADER = "X-Pipeline-Ops-Event"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


class WebhookNotifier:
    channel = WEBHOOK

    def __init__(self, url: str, secret: str, clock: Callable[[], float] = time.time) -> None:
        if not secret:
            raise TerminalError("the webhook has no signing secret; set the notifications again")
        self.url, self.secret, self.clock = url, secret, clock

    def send(self, message: Message) -> None:
        body = json.dumps(message.as_dict(), separators=(",", ":"), sort_keys=True).encode()
        timestamp = str(int(self.clock()))
        headers = {
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.secret, timestamp, body),
            EVENT_HEADER: message.event,
        }
        post(self.url, body, headers, "webhook")


class SlackNotifier:
    """A Slack incoming webhook: the URL is the secret, the body is `{"text": ...}`."""

    channel = SLACK

    def __init__(self, url: str) -> None:
        self.url = url

    def send(self, message: Message) -> None:
        icon = ":red_circle:" if message.status == "failed" else ":white_check_mark:"
        body = json.dumps({"text": f"{icon} {message.text()}"}).encode()
        post(self.url, body, {}, "slack")
