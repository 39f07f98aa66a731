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
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
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
