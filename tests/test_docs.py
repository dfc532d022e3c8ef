"""docs/FIDELITY.md is the repository's record of the published facts: every section the code, tests
and docs cite as ``docs/FIDELITY.md#<anchor>`` exists there, and nothing cites notes outside the
repository."""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIDELITY = ROOT / "docs" / "FIDELITY.md"
CITATION = re.compile(r"docs/FIDELITY\.md#([A-Za-z0-9_-]+)")
OLD_FORM = re.compile(r"FIDELITY\.md,\s*\"")  # the quoted-section form this convention replaced
OUTSIDE = "REFERENCE" + ".md"  # the team's notes beside the repository (split so this file passes)
TEXT_SUFFIXES = {".py", ".md", ".txt", ".sh", ".toml", ".cfg", ".ini", ".yaml", ".yml"}
SKIP_DIRS = {"runs", "build", "__pycache__"}  # plus every hidden folder (.git, .venv, caches)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lowercase, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(markdown: str) -> list[str]:
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"#{1,6} (.+)", line)):
            out.append(github_anchor(m.group(1)))
    return out


def repository_files() -> list[Path]:
    files = []
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS and not d.endswith(".egg-info")]
        files += [Path(folder, n) for n in names if Path(n).suffix in TEXT_SUFFIXES]
    return sorted(files)


def test_github_anchor_rule() -> None:
    assert github_anchor("LoRA and Conv-LoRA") == "lora-and-conv-lora"
    assert github_anchor("SAM2LoRA published numbers") == "sam2lora-published-numbers"
    assert github_anchor("GPU autocast") == "gpu-autocast"


def test_fidelity_anchors_are_unique() -> None:
    # A repeated heading gets a "-1" suffix on GitHub, so a citation of it would be ambiguous.
    repeated = [a for a, n in Counter(anchors(FIDELITY.read_text(encoding="utf-8"))).items() if n > 1]
    assert not repeated


def test_every_cited_section_exists() -> None:
    text = FIDELITY.read_text(encoding="utf-8")
    known = set(anchors(text))
    cited: dict[str, set[str]] = {}
    for path in repository_files():
        for anchor in CITATION.findall(path.read_text(encoding="utf-8", errors="replace")):
            cited.setdefault(anchor, set()).add(str(path.relative_to(ROOT)))
    for anchor in re.findall(r"\]\(#([A-Za-z0-9_-]+)\)", text):  # the file's own links
        cited.setdefault(anchor, set()).add("docs/FIDELITY.md")
    citing_packages = {f.split("/")[0] for files in cited.values() for f in files}
    assert {"benchmark", "methods", "metrics", "tests"} <= citing_packages  # the scan found the citations
    missing = {a: sorted(files) for a, files in cited.items() if a not in known}
    assert not missing, f"cited sections absent from docs/FIDELITY.md: {missing}"


def test_one_citation_form_and_nothing_outside_the_repository() -> None:
    offenders = []
    for path in repository_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        if OUTSIDE in text or OLD_FORM.search(text):
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"cite docs/FIDELITY.md#<anchor> instead: {offenders}"
