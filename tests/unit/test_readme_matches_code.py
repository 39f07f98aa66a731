"""The README's CLI and Configuration sections against the code.

- CLI: every command and option the CLI section's table names exists in the click tree
  of `pipeline-ops`, and every command of the tree is in the table (with each of its
  options).
- Configuration: every variable of the table is read somewhere (the code's string
  literals, the Procfile), and every variable the code reads is in the table.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from app.cli import main

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
# Read by a library, not by our code: documented because a user sets it.
READ_BY_LIBRARIES = {"GOOGLE_APPLICATION_CREDENTIALS"}
ENV_NAME = re.compile(
    r"""["'](PIPELINE_OPS_[A-Z0-9_]+|DATABASE_URL|REDIS_URL|WAREHOUSE_URL|SUPABASE_[A-Z_]+|CONSOLE_CHROMIUM)["']"""
)
CODE_DIRS = ("app", "tasks", "pipeline", "processors", "warehouse", "quota", "credentials",
             "notify", "pipeline_ops_core", "scripts")  # fmt: skip


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def first_cells(text: str) -> list[str]:
    """The first cell of every table row (header and rule rows left out)."""
    cells = []
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells.append(re.split(r"(?<!\\)\|", line)[1].strip())
    return cells[1:]


# --- CLI ---------------------------------------------------------------------------------


def leaf_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> dict[tuple, click.Command]:
    out: dict[tuple, click.Command] = {}
    for name, command in group.commands.items():
        if getattr(command, "hidden", False):
            continue
        if isinstance(command, click.Group):
            out.update(leaf_commands(command, (*prefix, name)))
        else:
            out[(*prefix, name)] = command
    return out


def option_names(command: click.Command) -> set[str]:
    names: set[str] = set()
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            names.update(n for n in (*param.opts, *param.secondary_opts) if n.startswith("--"))
    return names - {"--help"}


def documented_cli() -> dict[tuple, set[str]]:
    """Command path -> options, from the code spans of the CLI table's first column."""
    found: dict[tuple, set[str]] = {}
    for cell in first_cells(section("CLI")):
        for span in re.findall(r"`([^`]+)`", cell):
            tokens = span.replace("\\|", "|").split()
            if tokens and tokens[0] == "pipeline-ops":
                tokens = tokens[1:]
            paths: list[tuple] = [()]
            node: click.Command = main
            rest = tokens
            while rest and isinstance(node, click.Group):
                names = rest[0].split("|")
                if not all(n in node.commands for n in names):
                    break
                paths = [(*p, n) for p in paths for n in names]
                node = node.commands[names[0]]
                rest = rest[1:]
            options = {
                name
                for token in rest
                for part in re.split(r"[|/]", token.strip("[]"))
                for name in [part.strip("[]").split("=")[0]]
                if name.startswith("--")
            }
            for path in paths:
                if path:
                    found.setdefault(path, set()).update(options)
    return found


def test_every_documented_command_and_option_exists() -> None:
    real = leaf_commands(main)
    documented = documented_cli()
    unknown = sorted(" ".join(p) for p in documented if p not in real)
    assert not unknown, f"documented in README's CLI section, but no such command: {unknown}"
    wrong = {
        " ".join(p): sorted(opts - option_names(real[p]))
        for p, opts in documented.items()
        if opts - option_names(real[p])
    }
    assert not wrong, f"options documented that the commands don't have: {wrong}"


def test_every_command_and_option_is_documented() -> None:
    documented = documented_cli()
    missing = sorted(" ".join(p) for p in leaf_commands(main) if p not in documented)
    assert not missing, f"commands missing from README's CLI section: {missing}"
    undocumented = {
        " ".join(p): sorted(option_names(c) - documented[p])
        for p, c in leaf_commands(main).items()
        if option_names(c) - documented[p]
    }
    assert not undocumented, f"options missing from README's CLI section: {undocumented}"


def test_the_global_options_are_documented() -> None:
    text = section("CLI")
    for name in option_names(main):
        assert f"`{name}" in text or f" {name}" in text, name


# --- Configuration ----------------------------------------------------------------------


def documented_env() -> set[str]:
    names: set[str] = set()
    for cell in first_cells(section("Configuration")):
        spans = re.findall(r"`([^`]+)`", cell)
        if not spans or not re.fullmatch(r"[A-Z][A-Z0-9_]*", spans[0]):
            continue
        first = spans[0]
        for span in spans:
            if span.startswith("…_"):
                tail = span[1:]  # "_MONTHLY_LIMIT"
                keep = first.split("_")[: -tail.count("_")]
                span = "_".join(keep) + tail
            names.add(span)
    return names


def read_env() -> set[str]:
    names: set[str] = set()
    # Settings only the tests read (the browser, the real samples) are documented too.
    files = [ROOT / "celeryconfig.py", ROOT / "tests" / "integration" / "test_console_browser.py"]
    files += (ROOT / "tests" / "support").rglob("*.py")
    for folder in CODE_DIRS:
        files += (ROOT / folder).rglob("*.py")
    for path in files:
        names.update(ENV_NAME.findall(path.read_text()))
    procfile = (ROOT / "Procfile").read_text()
    names.update(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", procfile))
    return names


def test_every_documented_variable_is_read() -> None:
    unread = sorted(documented_env() - read_env() - READ_BY_LIBRARIES)
    assert not unread, f"documented in Configuration but read nowhere: {unread}"


def test_every_variable_read_is_documented() -> None:
    undocumented = sorted(read_env() - documented_env())
    assert not undocumented, f"read by the code but not in README's Configuration: {undocumented}"
