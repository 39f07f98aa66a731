"""The README's table of credential requirements says what providers.yml declares."""

from __future__ import annotations

from processors.credential_types import CredentialType
from processors.providers import load_registry
from tests.support.genai import ROOT


def required_fields(kind: CredentialType | None) -> str:
    if kind is None:
        return "none"
    required = ", ".join(f"`{n}`" for n, f in kind.fields.items() if f.required)
    groups = " or ".join(" + ".join(f"`{n}`" for n in group) for group in kind.any_of)
    return "; one of ".join(part for part in (required, groups) if part)


def test_every_provider_has_a_row_with_its_declared_requirement() -> None:
    readme = (ROOT / "README.md").read_text()
    for key, provider in load_registry().items():
        kind = provider.credential.key if provider.credential else "none"
        needed = "yes" if provider.credential_required else "no"
        row = f"| `{key}` | {needed} | `{kind}` | {required_fields(provider.credential)} |"
        assert row in readme, row
