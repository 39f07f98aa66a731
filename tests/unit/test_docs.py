"""The docs can't rot silently after a move: every relative link of README.md,
docs/architecture.md and CONTRIBUTING.md reaches a file of the repository (and a heading,
when it names one), and every file path docs/architecture.md and CONTRIBUTING.md mention
exists, with the function or class named after it (`path.py:name`) defined there.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINKED = ("README.md", "docs/architecture.md", "CONTRIBUTING.md")
PATHS_CHECKED = ("docs/architecture.md", "CONTRIBUTING.md")

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# A path with at least one folder and a file extension; placeholders (`<name>.py`) and
# globs can't match, since `<`, `>` and `*` are not part of a segment.
FILE_PATH = re.compile(
    r"(?<![\w/<>*.-])((?:[\w.-]+/)+[\w.-]+\.(?:py|lua|yml|yaml|toml|sql|md|sh|ini))"
    r"(?::(\w+))?(?![\w/])"
)
# A folder in backticks: `warehouse/bigquery/`.
FOLDER = re.compile(r"`((?:[\w.-]+/)+)`")


def _text(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def _prose(name: str) -> str:
    """The text without link targets (relative to the file, checked as links)."""
    return re.sub(r"\]\([^)]*\)", "]", _text(name))


def _without_code_spans(markdown: str) -> str:
    """Markdown with fenced blocks removed: links are not links inside them."""
    return re.sub(r"```.*?```", "", markdown, flags=re.S)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    found: set[str] = set()
    counts: dict[str, int] = {}
    for line in _without_code_spans(markdown).splitlines():
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading is None:
            continue
        base = slug(heading.group(1))
        n = counts.get(base, 0)
        counts[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def relative_links(name: str) -> list[str]:
    links = LINK.findall(_without_code_spans(_text(name)))
    return [t for t in links if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


def test_slug_is_githubs() -> None:
    assert slug("One run's path through the packages") == "one-runs-path-through-the-packages"
    assert slug("The egress policy (`pipeline_ops_core/egress.py`)") == (
        "the-egress-policy-pipeline_ops_coreegresspy"
    )
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}


@pytest.mark.parametrize("name", LINKED)
def test_every_relative_link_resolves(name: str) -> None:
    links = relative_links(name)
    assert links, f"{name} links nowhere: the pattern is broken"
    broken = []
    for link in links:
        target, _, fragment = link.partition("#")
        path = (ROOT / name).parent / target if target else ROOT / name
        if not path.exists() or ROOT not in path.resolve().parents:
            broken.append(f"{link}: no such file")
            continue
        if fragment and path.suffix == ".md" and fragment not in anchors(path.read_text()):
            broken.append(f"{link}: no heading #{fragment} in {target or name}")
    assert not broken, f"{name}: " + "; ".join(broken)


def test_the_readme_links_to_the_contributor_docs() -> None:
    links = relative_links("README.md")
    assert any(link.startswith("docs/architecture.md") for link in links)
    assert any(link.startswith("CONTRIBUTING.md") for link in links)


@pytest.mark.parametrize("name", PATHS_CHECKED)
def test_every_path_mentioned_exists(name: str) -> None:
    text = _prose(name)
    mentions = FILE_PATH.findall(text)
    assert len(mentions) > 10, f"{name}: the path pattern finds almost nothing"
    missing = sorted({path for path, _ in mentions if not (ROOT / path).is_file()})
    missing += sorted({f for f in FOLDER.findall(text) if not (ROOT / f).is_dir()})
    assert not missing, f"{name} mentions paths that don't exist: {missing}"


@pytest.mark.parametrize("name", PATHS_CHECKED)
def test_every_named_definition_exists(name: str) -> None:
    named = {(path, what) for path, what in FILE_PATH.findall(_prose(name)) if what}
    assert named, f"{name}: no `path.py:name` mentions found"
    missing = []
    for path, what in sorted(named):
        source = (ROOT / path).read_text(encoding="utf-8")
        defined = re.search(
            rf"^\s*(?:async\s+def|def|class)\s+{what}\b|^{what}\s*(?::[^=\n]*)?=",
            source,
            re.M,
        )
        if defined is None:
            missing.append(f"{path}:{what}")
    assert not missing, f"{name} names definitions that don't exist: {missing}"


def test_a_moved_file_would_be_caught(tmp_path: Path) -> None:
    """The checks see what they are meant to: a path, a definition and a link that are gone."""
    text = (
        "`pipeline/runs/fence.py` `pipeline/runs/no_such_module.py` "
        "`pipeline/runs/fence.py:NoSuchFence` [x](docs/no_such.md)"
    )
    paths = FILE_PATH.findall(text)
    assert ("pipeline/runs/no_such_module.py", "") in paths
    assert ("pipeline/runs/fence.py", "NoSuchFence") in paths
    assert not (ROOT / "pipeline/runs/no_such_module.py").exists()
    assert LINK.findall(text) == ["docs/no_such.md"]
