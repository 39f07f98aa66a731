"""The provider registry, configs/system/providers.yml, as typed data.

Processors read it at run time for API base URLs; `pipeline/definition/providers.py` checks it and
the pipelines against it; `pipeline-ops providers` lists it. It lives here, not in
pipeline/, because processors may not import pipeline/.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from pipeline_ops_core.egress import EgressClient, EgressRefused
from pipeline_ops_core.egress import policy as egress_policy
from pipeline_ops_core.errors import TerminalError
from pipeline_ops_core.identifiers import IDENT_RE, PIPELINE_PATH_RE
from pipeline_ops_core.paths import shipped
from processors.credential_types import NONE, CredentialType, parse_credential_types

REGISTRY_PATH = shipped("configs", "system", "providers.yml")
FIELDS = (
    "key",
    "display_name",
    "domains",
    "credential_type",
    "credential_required",
    "api_base_url",
    "default_pipelines",
)
TOP_LEVEL = ("providers", "credential_types")


@dataclass(frozen=True)
class ProviderInfo:
    key: str
    display_name: str
    domains: tuple[str, ...]
    credential_type: str
    api_base_url: str | None
    default_pipelines: tuple[str, ...]
    # Whether a run of this provider's pipelines needs a stored credential.
    credential_required: bool = False
    # The declared kind (None for `credential_type: none`).
    credential: CredentialType | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "display_name": self.display_name,
            "domains": list(self.domains),
            "credential_type": self.credential_type,
            "credential_required": self.credential_required,
            "credential": self.credential.as_json() if self.credential else None,
            "api_base_url": self.api_base_url,
            "default_pipelines": list(self.default_pipelines),
        }


def is_http_url(value: object) -> bool:
    return isinstance(value, str) and re.match(r"^https?://[^\s/]+", value) is not None


def parse_registry(raw: Any) -> tuple[dict[str, ProviderInfo], list[str]]:
    """(providers by key, problems). Bad entries are reported and left out."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("providers"), list):
        return {}, ["top level must be a mapping with a `providers` list"]
    found: dict[str, ProviderInfo] = {}
    problems = [f"unknown top-level key {name!r}" for name in raw if name not in TOP_LEVEL]
    kinds, kind_problems = parse_credential_types(raw.get("credential_types"))
    problems += kind_problems
    for index, entry in enumerate(raw["providers"]):
        where = f"providers[{index}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: must be a mapping")
            continue
        where = f"providers[{index}] ({entry.get('key', '?')})"
        bad = _entry_problems(entry)
        kind_name = entry.get("credential_type")
        if isinstance(kind_name, str) and kind_name != NONE and kind_name not in kinds:
            bad.append(f"credential_type {kind_name!r} is not declared under credential_types")
        required = entry.get("credential_required", kind_name != NONE)
        if not isinstance(required, bool):
            bad.append("credential_required must be true or false")
        elif required and kind_name == NONE:
            bad.append("credential_required is true but credential_type is none")
        problems.extend(f"{where}: {p}" for p in bad)
        if bad:
            continue
        if entry["key"] in found:
            problems.append(f"{where}: duplicate key {entry['key']!r}")
            continue
        found[entry["key"]] = ProviderInfo(
            key=entry["key"],
            display_name=entry["display_name"],
            domains=tuple(entry["domains"]),
            credential_type=entry["credential_type"],
            api_base_url=entry.get("api_base_url"),
            default_pipelines=tuple(entry.get("default_pipelines") or ()),
            credential_required=required,
            credential=kinds.get(kind_name),
        )
    return found, problems


def _entry_problems(entry: Mapping[str, Any]) -> list[str]:
    problems = [f"unknown field {name!r}" for name in entry if name not in FIELDS]
    if not isinstance(entry.get("key"), str) or not IDENT_RE.match(entry["key"]):
        problems.append("key must match ^[a-z0-9_]+$")
    for name in ("display_name", "credential_type"):
        if not isinstance(entry.get(name), str) or not entry[name].strip():
            problems.append(f"{name} must be a non-empty string")
    domains = entry.get("domains")
    if not isinstance(domains, list) or not domains:
        problems.append("domains must be a non-empty list")
    elif not all(isinstance(d, str) and IDENT_RE.match(d) for d in domains):
        problems.append("each domain must match ^[a-z0-9_]+$")
    url = entry.get("api_base_url")
    if url is not None and not is_http_url(url):
        problems.append("api_base_url must be an http(s) URL or null")
    pipelines = entry.get("default_pipelines") or []
    if not isinstance(pipelines, list) or not all(
        isinstance(p, str) and PIPELINE_PATH_RE.match(p) for p in pipelines
    ):
        problems.append("default_pipelines must be a list of provider/domain/pipeline paths")
    return problems


def load_registry(path: Path = REGISTRY_PATH) -> dict[str, ProviderInfo]:
    """The registry at `path`; a file with problems is a TerminalError naming them."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TerminalError(f"cannot read provider registry {path}: {exc}") from None
    providers, problems = parse_registry(raw)
    if problems:
        raise TerminalError(f"provider registry {path}: " + "; ".join(problems))
    return providers


def provider_info(key: str, path: Path = REGISTRY_PATH) -> ProviderInfo:
    providers = load_registry(path)
    if key not in providers:
        raise TerminalError(
            f"provider {key!r} is not in {path.name} (known: {', '.join(providers)})"
        )
    return providers[key]


def credential_kind(key: str, path: Path = REGISTRY_PATH) -> CredentialType | None:
    """The declared credential kind of provider `key` (None when it takes no secret)."""
    return provider_info(key, path).credential


def endpoint_hosts(key: str, field: str) -> tuple[str, ...]:
    """The well-known hosts of a provider's URL field (a dotted name for nested ones)."""
    kind = credential_kind(key)
    return kind.url_hosts(field) if kind else ()


@dataclass(frozen=True)
class ApiEndpoint:
    """A provider API root and the client to reach it through the egress policy."""

    url: str
    overridden: bool
    client: EgressClient


def api_endpoint(key: str, credential: Mapping[str, Any], log: Any, timeout: float) -> ApiEndpoint:
    """The provider's API root: the credential's own `base_url` if it has one, else the
    registry's, with an egress client for it.

    An override must pass the egress policy (https on the provider's own host, or a host the
    operator allow-listed) and is written to the run log, so a run that talked to a proxy
    or a test server says so. What an overridden endpoint answers is never quoted back.
    """
    info = provider_info(key)
    hosts = info.credential.url_hosts("base_url") if info.credential else ()
    override = credential.get("base_url")
    if override is not None:
        where = "credential base_url"
        if not isinstance(override, str):
            raise TerminalError(f"{where} for {key} must be an http(s) URL")
        host = egress_policy().check_url(override, where, hosts)
        log.info(f"{key}: API base URL overridden by the credential's base_url (host {host})")
        client = EgressClient(where, hosts, timeout=timeout, echo=False)
        return ApiEndpoint(override.strip().rstrip("/"), True, client)
    url = info.api_base_url
    if not url:
        raise TerminalError(f"provider {key!r} has no api_base_url in the registry")
    registry_host = urlsplit(url).hostname or ""
    client = EgressClient(f"the {info.display_name} API", (registry_host,), timeout=timeout)
    return ApiEndpoint(url.rstrip("/"), False, client)


def credential_url_problems(key: str, secret: Mapping[str, Any]) -> list[str]:
    """What the egress policy says about the URLs in a credential about to be stored.

    Checked without resolving names (DNS answers change; the worker checks again at connect
    time): scheme, host spelling, internal names and addresses, and whether the host is one
    of the field's well-known provider hosts or is allow-listed. Messages name the field.
    """
    providers = load_registry()
    kind = providers[key].credential if key in providers else None
    if kind is None:
        return []
    policy = egress_policy()
    problems = []
    urls = dict(kind.url_values(secret))
    blob = "account_url"
    if isinstance(secret.get("connection_string"), str) and blob in kind.fields:
        # A connection string names its endpoint inside; it is held to account_url's hosts.
        from processors.cloud.azure.manifest import connection_string_endpoint

        endpoint = connection_string_endpoint(secret["connection_string"])
        if endpoint is not None:
            urls["connection_string"] = endpoint
    for name, url in urls.items():
        hosts = kind.url_hosts(blob if name == "connection_string" else name) or None
        try:
            policy.check_url(url, f"field {name}", hosts)
        except EgressRefused as exc:
            problems.append(str(exc))
    return problems
