"""Pipeline YAML: safe parsing, schema validation and cross-step checks.

Every problem in a file is collected and raised together as one ConfigError whose
`problems` are (step_id or "-", message) pairs, so `pipeline-ops validate` can show
them all at once instead of one per CI run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml
from croniter import croniter
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from pipeline.definition.dag import find_cycle, format_cycle
from pipeline.definition.templates import find_unknown_at, has_reference
from pipeline_ops_core.errors import ConfigError, NotFoundError
from pipeline_ops_core.identifiers import IDENT_RE
from processors.config_schema import Flag, Number, Whole, config_problems
from processors.registry import is_known, known_types

MAX_FILE_BYTES = 256 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    backoff_seconds: float = 30.0


@dataclass(frozen=True)
class StepSpec:
    step_id: str
    ps_type: str
    config: dict[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    timeout_seconds: int = 600
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    description: str = ""


@dataclass(frozen=True)
class PipelineSpec:
    pipeline_id: str
    name: str
    description: str
    provider: str
    domain: str
    version: str | None
    schedule: str | None
    steps: tuple[StepSpec, ...]
    source: str
    # Runs may cover tomorrow (forecasts, amortized commitments); otherwise dates after
    # today are refused at admission, since no source has cost data for them yet.
    accepts_future_dates: bool = False

    def step(self, step_id: str) -> StepSpec:
        for spec in self.steps:
            if spec.step_id == step_id:
                return spec
        raise NotFoundError(f"step '{step_id}' not in pipeline {self.pipeline_id}")


# --- YAML -----------------------------------------------------------------------------

_TAG_PREFIX = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {None, "!"} | {
    _TAG_PREFIX + name for name in ("str", "int", "float", "bool", "null", "seq", "map")
}
_TIMESTAMP = _TAG_PREFIX + "timestamp"


class _Rejected(Exception):
    def __init__(self, message: str, mark: yaml.Mark | None) -> None:
        line = f" at line {mark.line + 1}" if mark is not None else ""
        super().__init__(message + line)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without anchors, aliases, exotic tags, duplicate keys or timestamps.

    Aliases are how billion-laughs bombs expand, and a pipeline file has no need
    for them. Dates stay strings so a config is plain JSON-safe data.
    """

    yaml_implicit_resolvers: ClassVar[dict[str, list[tuple[str, re.Pattern[str]]]]] = {
        first: [(tag, rx) for tag, rx in resolvers if tag != _TIMESTAMP]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _Rejected(
                f"YAML aliases are not allowed (alias *{event.anchor})", event.start_mark
            )
        if event.anchor is not None:
            raise _Rejected(
                f"YAML aliases are not allowed (anchor &{event.anchor})", event.start_mark
            )
        tag = getattr(event, "tag", None)
        if tag not in _ALLOWED_TAGS:
            shown = "!!" + tag[len(_TAG_PREFIX) :] if tag.startswith(_TAG_PREFIX) else tag
            raise _Rejected(f"unsupported YAML tag '{shown}'", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise _Rejected(f"duplicate key '{key_node.value}'", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _load_yaml(text: str) -> Any:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise ConfigError(f"file is larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except _Rejected as exc:
        raise ConfigError(str(exc)) from None
    except yaml.MarkedYAMLError as exc:
        where = f" at line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
        detail = exc.problem or exc.context or "parse error"
        if exc.context and detail.startswith("but "):  # "expected X" + "but found Y"
            detail = f"{exc.context} {detail}"
        raise ConfigError(f"malformed YAML{where}: {detail}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"malformed YAML: {exc}") from None
    except RecursionError:
        raise ConfigError("malformed YAML: nesting is too deep") from None


# --- schema ---------------------------------------------------------------------------


def _ident(**kwargs: Any) -> fields.String:
    return fields.String(
        validate=validate.Regexp(IDENT_RE, error="must match ^[a-z0-9_]+$"), **kwargs
    )


def _check_ps_type(value: str) -> None:
    if not is_known(value):
        raise ValidationError(f"unknown ps_type '{value}' (known: {', '.join(known_types())})")


def _check_cron(value: str) -> None:
    # croniter also takes 6- and 7-field forms (seconds, years); beat schedules are 5.
    if len(value.split()) != 5:
        raise ValidationError(f"bad cron '{value}': expected 5 fields (min hour day month dow)")
    if not croniter.is_valid(value):
        raise ValidationError(f"bad cron '{value}'")


class RetrySchema(Schema):
    class Meta:
        unknown = RAISE

    max_attempts = Whole(validate=validate.Range(min=1, max=10))
    backoff_seconds = Number(validate=validate.Range(min=0, max=3600))


class StepSchema(Schema):
    class Meta:
        unknown = RAISE

    step_id = _ident(required=True)
    ps_type = fields.String(required=True, validate=_check_ps_type)
    config = fields.Dict(keys=fields.String(), load_default=dict)
    depends_on = fields.List(fields.String(), load_default=list)
    timeout_seconds = Whole(load_default=600, validate=validate.Range(min=1, max=86400))
    retry = fields.Nested(RetrySchema, load_default=dict)
    description = fields.String(load_default="", allow_none=True)


class PipelineSchema(Schema):
    class Meta:
        unknown = RAISE

    pipeline_id = _ident(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1))
    description = fields.String(load_default="", allow_none=True)
    provider = _ident(required=True)
    domain = _ident(required=True)
    version = fields.String(load_default=None, allow_none=True)
    schedule = fields.String(load_default=None, allow_none=True, validate=_check_cron)
    accepts_future_dates = Flag(load_default=False)
    steps = fields.List(
        fields.Nested(StepSchema),
        required=True,
        validate=validate.Length(min=1, error="must list at least one step"),
    )


# --- problems -------------------------------------------------------------------------

# (sort index, step, message): index -1 is the pipeline itself, otherwise the step's position.
_Found = tuple[int, str, str]


def _flatten(messages: Any, path: str = "") -> list[tuple[str, str]]:
    """marshmallow's nested error dict -> (path such as `steps[0].retry.x`, message)."""
    if isinstance(messages, dict):
        out: list[tuple[str, str]] = []
        for key, sub in messages.items():
            if key == "_schema":
                child = path
            elif isinstance(key, int):
                child = f"{path}[{key}]"
            else:
                child = f"{path}.{key}" if path else str(key)
            out.extend(_flatten(sub, child))
        return out
    if isinstance(messages, list):
        return [pair for item in messages for pair in _flatten(item, path)]
    return [(path, str(messages))]


_STEP_PATH = re.compile(r"^steps\[(\d+)\]\.?(.*)$")


def _step_label(raw_steps: list[Any], index: int) -> str | None:
    step = raw_steps[index] if index < len(raw_steps) else None
    if isinstance(step, dict) and isinstance(step.get("step_id"), str) and step["step_id"]:
        return step["step_id"]
    return None


def _schema_problems(messages: Any, raw_steps: list[Any]) -> list[_Found]:
    found: list[_Found] = []
    for path, message in _flatten(messages):
        match = _STEP_PATH.match(path)
        if match is None:
            found.append((-1, "-", f"{path}: {message}" if path else message))
            continue
        index, rest = int(match.group(1)), match.group(2)
        label = _step_label(raw_steps, index)
        if label is None:  # no usable id: say where the step is instead
            label, rest = "-", f"steps[{index}]" + (f".{rest}" if rest else "")
        found.append((index, label, f"{rest}: {message}" if rest else message))
    return found


def _cross_step_problems(raw_steps: list[Any]) -> list[_Found]:
    """Checks that need all steps at once; run on the raw data so they still report
    when some unrelated field failed the schema."""
    found: list[_Found] = []
    edges: dict[str, list[str]] = {}
    position: dict[str, int] = {}
    for index, step in enumerate(raw_steps):
        if not isinstance(step, dict):
            continue
        step_id = _step_label(raw_steps, index)
        deps = step.get("depends_on")
        deps = [d for d in deps if isinstance(d, str)] if isinstance(deps, list) else []
        config = step.get("config")
        if isinstance(config, dict):
            for where, ref in find_unknown_at(config, "config"):
                found.append((index, step_id or "-", f"{where}: unknown template variable '{ref}'"))
            ps_type = step.get("ps_type")
            if isinstance(ps_type, str):
                # The processor's declared config schema (processors/config_schema.py).
                for where, message in config_problems(ps_type, config, has_reference):
                    found.append((index, step_id or "-", f"{where}: {message}"))
        if step_id is None:
            continue
        if step_id in edges:
            found.append((index, step_id, f"duplicate step_id '{step_id}'"))
            continue
        edges[step_id] = deps
        position[step_id] = index

    ids = set(edges)
    for step_id, deps in edges.items():
        for dep in deps:
            if dep not in ids:
                found.append((position[step_id], step_id, f"depends on missing step '{dep}'"))

    # Report every disjoint cycle: drop the nodes of each one found and look again.
    graph = dict(edges)
    while (cycle := find_cycle(graph)) is not None:
        found.append((position[cycle[0]], cycle[0], format_cycle(cycle)))
        for node in cycle:
            graph.pop(node, None)
    return found


# --- entry points ---------------------------------------------------------------------


def _raise(source: str, found: list[_Found]) -> None:
    found.sort(key=lambda item: item[0])  # stable: schema order within a step is kept
    problems = [(step, message) for _, step, message in found]
    shown = "; ".join(f"{step}: {message}" for step, message in problems)
    noun = "problem" if len(problems) == 1 else "problems"
    raise ConfigError(f"{source}: {len(problems)} {noun}: {shown}", problems)


def _to_spec(data: dict[str, Any], source: str) -> PipelineSpec:
    steps = tuple(
        StepSpec(
            step_id=s["step_id"],
            ps_type=s["ps_type"],
            config=s["config"],
            depends_on=tuple(s["depends_on"]),
            timeout_seconds=s["timeout_seconds"],
            retry=RetryPolicy(**s["retry"]),
            description=s["description"] or "",
        )
        for s in data["steps"]
    )
    return PipelineSpec(
        pipeline_id=data["pipeline_id"],
        name=data["name"],
        description=data["description"] or "",
        provider=data["provider"],
        domain=data["domain"],
        version=data["version"],
        schedule=data["schedule"],
        steps=steps,
        source=source,
        accepts_future_dates=data["accepts_future_dates"],
    )


def parse_pipeline(text: str, source: str) -> PipelineSpec:
    """Parse and fully validate one pipeline file's text. Raises ConfigError."""
    try:
        raw = _load_yaml(text)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}", exc.problems) from None
    if not isinstance(raw, dict):
        kind = "an empty document" if raw is None else type(raw).__name__
        message = f"top level must be a mapping, got {kind}"
        raise ConfigError(f"{source}: {message}", [("-", message)])

    raw_steps = raw.get("steps") if isinstance(raw.get("steps"), list) else []
    found: list[_Found] = []
    data: dict[str, Any] | None = None
    try:
        data = PipelineSchema().load(raw)
    except ValidationError as exc:
        found.extend(_schema_problems(exc.messages, raw_steps))
    try:
        found.extend(_cross_step_problems(raw_steps))
    except RecursionError:  # a config nested thousands deep
        found.append((-1, "-", "config is nested too deeply"))
    if found or data is None:
        _raise(source, found or [(-1, "-", "invalid pipeline")])
    assert data is not None
    return _to_spec(data, source)


def load_pipeline(path: Path | str) -> PipelineSpec:
    """Read and parse a pipeline file; the size limit is checked before reading it all."""
    path = Path(path)
    source = str(path)
    try:
        with path.open("rb") as handle:
            blob = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        message = f"cannot read file: {exc.strerror or exc}"
        raise ConfigError(f"{source}: {message}", [("-", message)]) from None
    if len(blob) > MAX_FILE_BYTES:
        message = f"file is larger than {MAX_FILE_BYTES // 1024} KiB"
        raise ConfigError(f"{source}: {message}", [("-", message)])
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"file is not UTF-8 (byte {exc.start})"
        raise ConfigError(f"{source}: {message}", [("-", message)]) from None
    return parse_pipeline(text, source)
