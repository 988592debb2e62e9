"""Every relative link and image in README.md, docs/*.md and experiments/**/README.md resolves: the
target exists relative to the file, and a `#anchor` into a markdown file names one of its headings
(GitHub's slugs). Also the README's shape: at most 250 lines, opening with the two setup commands."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[1]
README_MAX_LINES = 250
# the two commands the README opens with (CI runs the second)
README_COMMANDS = (
    "bash scripts/setup.sh && .venv/bin/python -m jepa_ac.plan",
    "bash scripts/setup.sh && .venv/bin/python -m pytest -q",
)

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target) and ![alt](target), target optionally <...> and followed by a "title"
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SKIP_SCHEMES = ("http://", "https://", "mailto:")


def doc_files() -> list[Path]:
    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")),
             *sorted((REPO / "experiments").glob("**/README.md"))]
    return [f for f in files if f.is_file()]


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, with inline code spans blanked."""
    out, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)[0] * len(match.group(1))
            continue
        if fence is not None:
            if line.strip().startswith(fence) and set(line.strip()) <= set(fence[0]):
                fence = None
            continue
        out.append((number, INLINE_CODE.sub(lambda m: " " * len(m.group(0)), line)))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: links reduced to their text, lowercase, punctuation dropped
    (word characters, spaces and hyphens stay), spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = unicodedata.normalize("NFC", text).lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in a markdown file, duplicates numbered as GitHub does (-1, -2, ...)."""
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose_lines_raw(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def prose_lines_raw(text: str) -> list[tuple[int, str]]:
    """Lines outside fenced code blocks, unchanged (headings keep their inline code text)."""
    raw = text.splitlines()
    return [(n, raw[n - 1]) for n, _ in prose_lines(text)]


def links(path: Path) -> list[tuple[int, str]]:
    return [(number, match.group(1).strip("<>"))
            for number, line in prose_lines(path.read_text(encoding="utf-8"))
            for match in LINK.finditer(line)]


def broken_links(path: Path, root: Path = REPO) -> list[str]:
    """One line per link whose file does not exist or whose anchor names no heading."""
    problems = []
    for number, target in links(path):
        if target.lower().startswith(SKIP_SCHEMES):
            continue
        where = f"{path.relative_to(root)}:{number}: ({target})"
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not resolved.exists():
            problems.append(f"{where} -> {resolved} does not exist")
            continue
        if anchor and resolved.is_file() and resolved.suffix == ".md" and unquote(anchor) not in anchors(resolved):
            problems.append(f"{where} -> no heading '#{anchor}' in {resolved.relative_to(root)}")
    return problems


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(path: Path) -> None:
    problems = broken_links(path)
    assert not problems, "\n".join(problems)


def test_the_pages_are_found_and_linked() -> None:
    names = {str(p.relative_to(REPO)) for p in doc_files()}
    assert {"README.md", "docs/planning.md", "experiments/README.md"} <= names, sorted(names)
    assert sum(len(links(p)) for p in doc_files()) > 50


def test_slugs_follow_github() -> None:
    assert slug("Planning quality: warm start, iCEM, adaptive samples, surprise gate, hold") == \
        "planning-quality-warm-start-icem-adaptive-samples-surprise-gate-hold"
    assert slug("Closed-loop planning in simulation: `python -m jepa_ac.plan`") == \
        "closed-loop-planning-in-simulation-python--m-jepa_acplan"
    assert slug("5. The control contract and planning defaults") == "5-the-control-contract-and-planning-defaults"
    assert slug("V-JEPA 2.1 encoders") == "v-jepa-21-encoders"


def test_a_missing_target_and_anchor_are_reported(tmp_path) -> None:
    (tmp_path / "a.md").write_text("# Title\n\n## Some section\n\n```\n# not a heading\n[x](nowhere.md)\n```\n")
    page = tmp_path / "b.md"
    page.write_text("[ok](a.md#some-section) [bad](missing.md) [bad anchor](a.md#not-a-heading) `[code](x.md)`\n"
                    "[web](https://example.com/x) ![img](a.md) [self](#b-title)\n\n# B title\n")
    problems = broken_links(page, root=tmp_path)
    assert len(problems) == 2, problems
    assert "missing.md" in problems[0] and "#not-a-heading" in problems[1]


def test_readme_is_short_and_opens_with_the_two_commands() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"
    first_block = text.split("```", 2)[1]
    for command in README_COMMANDS:
        assert command in first_block, f"the README's first code block lacks {command!r}"
    assert "## " not in text.split("```", 1)[0], "the two commands come before any section"
