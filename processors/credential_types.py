"""Credential kinds: which fields a stored credential may hold, which are secrets, which are URLs.

Declared once, in `configs/system/providers.yml` under `credential_types`, and read here
as typed data. Three places use the declaration:

- `credentials add` and the admin API check a secret against its provider's kind before
  storing it (`CredentialType.problems`), so a typo fails at onboarding, not in a worker;
- the redactor masks only the fields declared `secret` (`CredentialType.secret_values`):
  a region or a bucket name is not a secret, and masking it would rewrite other text;
- the egress policy checks the fields declared `url` (`CredentialType.url_values`).

Messages name fields, never values: the values are secrets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}\Z")
FIELD_FLAGS = ("required", "secret", "url", "hosts", "nested", "doc")
TYPE_KEYS = ("plain_field", "fields", "any_of")
NONE = "none"


@dataclass(frozen=True)
class CredentialField:
    name: str
    required: bool = False
    secret: bool = False
    url: bool = False
    # A URL field's well-known provider hosts (`*.suffix` patterns); any other host needs
    # the operator's allow-list (pipeline_ops_core/egress.py).
    hosts: tuple[str, ...] = ()
    nested: str | None = None  # the kind of credential this field holds
    doc: str = ""


@dataclass(frozen=True)
class CredentialType:
    key: str
    fields: Mapping[str, CredentialField]
    any_of: tuple[tuple[str, ...], ...] = ()
    plain_field: str | None = None
    # Kinds named by `nested` fields, resolved when the registry is parsed.
    kinds: Mapping[str, CredentialType] = field(default_factory=dict, repr=False, compare=False)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(name for name, f in self.fields.items() if f.required)

    def summary(self) -> str:
        """One line for people: `name*` is required, flags in brackets, alternatives last."""
        parts = []
        for f in self.fields.values():
            flags = [flag for flag, on in (("secret", f.secret), ("url", f.url)) if on]
            if f.nested:
                flags.append(f.nested)
            parts.append(
                f"{f.name}{'*' if f.required else ''}" + (f" [{','.join(flags)}]" if flags else "")
            )
        text = ", ".join(parts)
        if self.any_of:
            text += "; needs " + " or ".join("+".join(g) for g in self.any_of)
        return text

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.key,
            "plain_field": self.plain_field,
            "fields": {
                f.name: {"required": f.required, "secret": f.secret, "url": f.url,
                         "hosts": list(f.hosts), "nested": f.nested, "doc": f.doc}
                for f in self.fields.values()
            },
            "any_of": [list(g) for g in self.any_of],
        }  # fmt: skip

    def problems(self, secret: Mapping[str, Any], where: str = "") -> list[str]:
        """What is wrong with `secret` for this kind: missing, unknown or mistyped fields."""
        found: list[str] = []
        unknown = sorted(name for name in secret if name not in self.fields)
        if unknown:
            found.append(
                f"unknown field(s) {', '.join(where + n for n in unknown)} "
                f"(known fields of {self.key}: {', '.join(self.fields)})"
            )
        present = {name for name, value in secret.items() if _present(value)}
        missing = [name for name in self.required if name not in present]
        if missing:
            found.append(f"missing field(s) {', '.join(where + n for n in missing)}")
        if self.any_of and not any(set(group) <= present for group in self.any_of):
            choices = " or ".join("+".join(where + n for n in group) for group in self.any_of)
            found.append(f"{self.key} needs {choices}")
        for name, value in secret.items():
            spec = self.fields.get(name)
            if spec is None or value is None:
                continue
            if spec.nested is not None:
                inner, problem = _nested_mapping(value)
                if problem:
                    found.append(f"field {where}{name} {problem}")
                elif inner is not None:
                    found += self.kinds[spec.nested].problems(inner, where=f"{where}{name}.")
            elif not isinstance(value, str):
                found.append(f"field {where}{name} must be text")
        return found

    def secret_values(self, secret: Mapping[str, Any]) -> list[str]:
        """The values of the declared secret fields, nested kinds included."""
        return [value for spec, value in self._walk(secret) if spec.secret]

    def url_values(self, secret: Mapping[str, Any]) -> dict[str, str]:
        """Declared URL field (dotted name for nested ones) -> its value, where set."""
        return {name: value for name, value in self._named_urls(secret, "")}

    def url_hosts(self, dotted: str) -> tuple[str, ...]:
        """The well-known hosts of a URL field, by the dotted name `url_values` gives."""
        head, _, rest = dotted.partition(".")
        spec = self.fields.get(head)
        if spec is None:
            return ()
        if rest and spec.nested is not None:
            return self.kinds[spec.nested].url_hosts(rest)
        return spec.hosts

    def _walk(self, secret: Mapping[str, Any]) -> Iterator[tuple[CredentialField, str]]:
        for name, value in secret.items():
            spec = self.fields.get(name)
            if spec is None:
                continue
            if spec.nested is not None:
                inner, _ = _nested_mapping(value)
                if inner is not None:
                    yield from self.kinds[spec.nested]._walk(inner)
            elif isinstance(value, str) and value:
                yield spec, value

    def _named_urls(self, secret: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, str]]:
        for name, value in secret.items():
            spec = self.fields.get(name)
            if spec is None:
                continue
            if spec.nested is not None:
                inner, _ = _nested_mapping(value)
                if inner is not None:
                    yield from self.kinds[spec.nested]._named_urls(inner, f"{prefix}{name}.")
            elif spec.url and isinstance(value, str) and value.strip():
                yield f"{prefix}{name}", value.strip()


def _present(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    return value is not None


def _nested_mapping(value: Any) -> tuple[Mapping[str, Any] | None, str | None]:
    """(the mapping, None) or (None, what is wrong); JSON text is accepted as an object."""
    if isinstance(value, str):
        if not value.strip():
            return None, None
        try:
            value = json.loads(value)
        except ValueError:
            return None, "is not JSON"
    if not isinstance(value, Mapping):
        return None, "must be a JSON object"
    return value, None


def parse_credential_types(raw: Any) -> tuple[dict[str, CredentialType], list[str]]:
    """(kinds by key, problems) from the registry's `credential_types` mapping."""
    if raw is None:
        return {}, []
    if not isinstance(raw, Mapping):
        return {}, ["credential_types must be a mapping of kind -> declaration"]
    kinds: dict[str, CredentialType] = {}
    problems: list[str] = []
    for key, entry in raw.items():
        where = f"credential_types.{key}"
        bad = _type_problems(key, entry)
        problems += [f"{where}: {p}" for p in bad]
        if bad:
            continue
        fields = {
            name: CredentialField(
                name=name,
                required=bool(flags.get("required", False)),
                secret=bool(flags.get("secret", False)),
                url=bool(flags.get("url", False)),
                hosts=tuple(flags.get("hosts") or ()),
                nested=flags.get("nested"),
                doc=str(flags.get("doc", "")),
            )
            for name, flags in (entry.get("fields") or {}).items()
        }
        kinds[key] = CredentialType(
            key=key,
            fields=fields,
            any_of=tuple(tuple(group) for group in entry.get("any_of") or ()),
            plain_field=entry.get("plain_field"),
            kinds=kinds,  # shared: nested kinds resolve against the whole registry
        )
    for kind in kinds.values():
        for spec in kind.fields.values():
            if spec.nested is not None and spec.nested not in kinds:
                problems.append(
                    f"credential_types.{kind.key}.{spec.name}: nested kind "
                    f"{spec.nested!r} is not declared"
                )
    return kinds, problems


def _type_problems(key: Any, entry: Any) -> list[str]:
    if not isinstance(key, str) or not _NAME.match(key) or key == NONE:
        return [f"kind must match ^[a-z][a-z0-9_]*$ and not be {NONE!r}"]
    if not isinstance(entry, Mapping):
        return ["must be a mapping"]
    problems = [f"unknown key {name!r}" for name in entry if name not in TYPE_KEYS]
    fields = entry.get("fields")
    if not isinstance(fields, Mapping) or not fields:
        return [*problems, "fields must be a non-empty mapping"]
    for name, flags in fields.items():
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append(f"field name {name!r} must match ^[a-z][a-z0-9_]*$")
            continue
        if not isinstance(flags, Mapping):
            problems.append(f"fields.{name} must be a mapping of flags")
            continue
        problems += [f"fields.{name}: unknown flag {f!r}" for f in flags if f not in FIELD_FLAGS]
        problems += [
            f"fields.{name}.{f} must be true or false"
            for f in ("required", "secret", "url")
            if f in flags and not isinstance(flags[f], bool)
        ]
        hosts = flags.get("hosts")
        if hosts is not None and not (
            flags.get("url")
            and isinstance(hosts, list)
            and all(isinstance(h, str) and h for h in hosts)
        ):
            problems.append(f"fields.{name}.hosts must be a list of host names on a url field")
        if flags.get("secret") and flags.get("url"):
            problems.append(f"fields.{name}: a URL is not a secret; declare one or the other")
    groups = entry.get("any_of") or []
    if not isinstance(groups, list) or not all(
        isinstance(g, list) and g and all(n in fields for n in g) for g in groups
    ):
        problems.append("any_of must be a list of non-empty lists of declared fields")
    plain = entry.get("plain_field")
    declared = fields.get(plain) if isinstance(plain, str) else None
    if plain is not None and not (isinstance(declared, Mapping) and declared.get("secret")):
        problems.append("plain_field must name a declared secret field")
    return problems
