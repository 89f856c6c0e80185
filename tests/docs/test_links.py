"""The README is a short front door and every page it leads to is reachable: each relative link in
README.md and docs/*.md names a file that exists and, after `#`, a heading of that file (GitHub's slugs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
README_MAX_LINES = 300

LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code spans, where links and headings count."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            lines.append("")
            continue
        lines.append("" if fenced else re.sub(r"`[^`]*`", "``", line))
    return "\n".join(lines)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation but `-` and `_` dropped, spaces to `-`."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor GitHub makes for the file's headings (a repeated heading gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    found = set()
    fenced = False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or heading is None:
            continue
        base = slug(heading.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links_in(text: str) -> list[str]:
    """Link targets that are not URLs (`https:`, `mailto:` ...), in order."""
    targets = [match["target"] for match in LINK.finditer(prose(text))]
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t, flags=re.IGNORECASE)]


def relative_links(path: Path) -> list[str]:
    return relative_links_in(path.read_text())


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def broken_links(path: Path) -> list[str]:
    """The relative links of one page that lead nowhere, each with why."""
    broken = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        if not destination.exists():
            broken.append(f"{target}: no file {shown(destination)}")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target}: no heading with anchor #{anchor} in {shown(destination)}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_a_broken_link_or_anchor_is_caught(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## Per-row answers: `POST /predict?errors=per_row`\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[fine](other.md#per-row-answers-post-predicterrorsper_row) [self](#page)\n"
        "[gone](missing.md) [no anchor](other.md#nowhere) [web](https://example.com/x.md)\n"
        "```bash\n# not a heading [inside code](missing-too.md)\n```\n"
    )
    tmp = tmp_path.resolve()
    assert broken_links(page) == [
        f"missing.md: no file {tmp / 'missing.md'}",
        f"other.md#nowhere: no heading with anchor #nowhere in {tmp / 'other.md'}",
    ]


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Delivery (CI/CD)", "delivery-cicd"),
        ("Why this answer: `POST /predict?explain=true`", "why-this-answer-post-predictexplaintrue"),
        (
            "At scale: Step Functions Distributed Map (`batch_enabled = true`)",
            "at-scale-step-functions-distributed-map-batch_enabled--true",
        ),
        ('Open Inference Protocol (REST, "V2")', "open-inference-protocol-rest-v2"),
        ("The Open Inference Protocol's cost", "the-open-inference-protocols-cost"),
    ],
)
def test_anchors_follow_githubs_slugs(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_the_readme_is_short() -> None:
    assert len(README.read_text().splitlines()) < README_MAX_LINES


def test_the_readme_table_of_contents_links_every_docs_page() -> None:
    text = README.read_text()
    contents = text.split("\n## Documentation\n", 1)[1].split("\n## ", 1)[0]
    listed = {t.partition("#")[0] for t in relative_links_in(contents)}
    assert listed == {f"docs/{p.name}" for p in DOCS.glob("*.md")}


@pytest.mark.parametrize("page", PAGES[1:], ids=[p.name for p in PAGES[1:]])
def test_every_docs_page_has_a_title_a_summary_and_a_way_back(page: Path) -> None:
    lines = page.read_text().splitlines()
    assert lines[0].startswith("# ")
    assert lines[1] == ""
    assert lines[2].strip(), "one sentence on what the page covers follows the title"
    assert "../README.md" in relative_links(page)
