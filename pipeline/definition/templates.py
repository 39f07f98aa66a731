"""Template variables in step configs: `{org_slug}` and `${name}`.

Substitution is one compiled regex and plain string replacement. There is no
eval, no Jinja and no str.format(): a value is inserted as text and never
interpreted, and the replaced text is not scanned again, so a value holding
`${run_id}` or `'; DROP TABLE x; --` stays exactly that.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pipeline_ops_core.errors import TemplateError

VARIABLES: tuple[str, ...] = (
    "org_slug",
    "project_id",
    "org_dataset",
    "start_date",
    "end_date",
    "credential_id",
    "pipeline_id",
    "run_id",
)
_KNOWN = frozenset(VARIABLES)

# Alternatives, tried left to right at each position:
#   ${name}      a reference (any text up to the first '}' is the name, so typos are caught)
#   ${...        an unclosed reference: always an error, never passed through as text
#   {name}       bare braces: only {org_slug} is a variable. A bare {start_date} is
#                almost surely a missing '$', so it is reported; other {words} are text.
_REF = re.compile(
    r"\$\{(?P<name>[^}]*)\}"
    r"|\$\{(?P<unclosed>[^}]*)"
    r"|\{(?P<bare>[a-z_]+)\}"
)

_UNCLOSED_SHOWN = 40


def _classify(match: re.Match[str]) -> tuple[str | None, str | None]:
    """Return (variable name, None) for a reference or (None, bad reference as written).

    (None, None) means the match is ordinary text, e.g. `{foo}`.
    """
    name, unclosed, bare = match.group("name", "unclosed", "bare")
    if name is not None:
        return (name, None) if name in _KNOWN else (None, match.group(0))
    if unclosed is not None:
        return None, "${" + unclosed[:_UNCLOSED_SHOWN]
    if bare == "org_slug":
        return bare, None
    if bare in _KNOWN:
        return None, match.group(0)
    return None, None


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Yield (path, string) for every string value in a nested dict/list structure."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def find_unknown_at(value: Any, path: str = "") -> list[tuple[str, str]]:
    """(path, reference as written) for each bad template reference, in document order."""
    found: list[tuple[str, str]] = []
    for where, text in _strings(value, path):
        for match in _REF.finditer(text):
            _, bad = _classify(match)
            if bad is not None:
                found.append((where, bad))
    return found


def has_reference(value: Any) -> bool:
    """Whether any string in `value` holds a template reference (known or not)."""
    for _, text in _strings(value, ""):
        for match in _REF.finditer(text):
            if _classify(match) != (None, None):
                return True
    return False


def resolve(value: Any, variables: Mapping[str, str]) -> Any:
    """Return a copy of `value` with every template reference replaced.

    Strict: an unknown reference, or a known variable absent from `variables`
    (or None there), raises TemplateError listing every such problem. Non-string
    scalars pass through unchanged; dict keys are left as they are.
    """
    problems: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        name, bad = _classify(match)
        if bad is not None:
            problems.append(f"unknown template variable '{bad}'")
            return match.group(0)
        if name is None:
            return match.group(0)
        replacement = variables.get(name)
        if replacement is None:
            problems.append(f"template variable '{name}' has no value")
            return match.group(0)
        return str(replacement)

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return _REF.sub(substitute, item)
        if isinstance(item, Mapping):
            return {key: walk(sub) for key, sub in item.items()}
        if isinstance(item, list):
            return [walk(sub) for sub in item]
        if isinstance(item, tuple):
            return tuple(walk(sub) for sub in item)
        return item

    resolved = walk(value)
    if problems:
        unique = list(dict.fromkeys(problems))
        raise TemplateError("; ".join(unique), [("-", p) for p in unique])
    return resolved
