"""The shipped provider samples (sample_data/genai/) served on loopback, for trying the GenAI
pipelines without a provider account: `pipeline-ops samples serve` and `make demo`.

The server answers the OpenAI and Anthropic Admin API paths under /openai and /anthropic with
the sample pages, in the providers' documented formats and linked by `next_page`; a request
without the provider's auth header gets 401, as the real APIs answer. A credential points a
pipeline at it with its `base_url`, exactly as an operator points one at a proxy.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import click

from app.cli.support import fail
from pipeline.settings import ROOT

SAMPLES = ROOT / "sample_data" / "genai"
DEFAULT_PORT = 8765
# The UTC days the sample pages hold usage for.
SAMPLE_START, SAMPLE_END = "2026-01-01", "2026-01-07"
# Prefix on the sample server -> (sample file, auth header the provider documents).
PROVIDERS = {
    "openai": ("openai_admin_api.json", "Authorization"),
    "anthropic": ("anthropic_admin_api.json", "x-api-key"),
}


class SampleAPIServer:
    """Serves /<provider>/<api path>?page=<token> from the sample pages."""

    def __init__(self, port: int = 0) -> None:
        self.pages = {
            key: json.loads((SAMPLES / name).read_text()) for key, (name, _) in PROVIDERS.items()
        }
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = outer.answer(self.path, self.headers)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                return

        # Loopback only: the samples are for this machine's workers.
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, raw: str, headers: Any) -> tuple[int, Any]:
        parts = urlsplit(raw)
        provider, _, path = parts.path.lstrip("/").partition("/")
        if provider not in PROVIDERS:
            return 404, {"error": {"message": "unknown provider"}}
        if not headers.get(PROVIDERS[provider][1]):
            return 401, {"error": {"message": "missing admin key"}}
        pages = self.pages[provider].get("/" + path)
        if pages is None:
            return 404, {"error": {"message": f"no sample for /{path}"}}
        token = parse_qs(parts.query).get("page", [None])[0]
        if token is None:
            return 200, pages[0]
        follows = [i + 1 for i, page in enumerate(pages[:-1]) if page.get("next_page") == token]
        return (200, pages[follows[0]]) if follows else (400, {"error": {"message": "bad page"}})

    def credential(self, provider: str) -> dict[str, str]:
        """A credential for `provider` that points its pipeline at this server. Any key
        will do here; a real one goes in the same field."""
        return {
            "admin_key": f"sk-sample-{provider}-admin-key",
            "base_url": f"{self.url}/{provider}",
        }

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


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
            f"   echo {secret} | pipeline-ops credentials add --org {org_slug} {provider} "
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
