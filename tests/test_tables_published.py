"""The published tables (docs/results/*/results.md) are what today's code renders from the published
results.json: the same numbers in every table, whatever the labels (legacy Outlier Exposure records included)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from isomax import tables
from isomax.records import read_records

DOCS = Path(__file__).resolve().parents[1] / "docs" / "results"
PUBLISHED = sorted(p.parent for p in DOCS.glob("*/results.json") if (p.parent / "results.md").exists())
NUMBER = re.compile(r"\d+\.\d±\d+\.\d")
LAYOUTS = ("Test accuracy", "Seamless", "preprocessing", "Outlier Exposure")


def _sections(text: str) -> dict[str, list[list[str]]]:
    """Section title -> table rows (cells) of a Markdown document."""
    out, current = {}, None
    for line in text.splitlines():
        if line.startswith("## "):
            current = out.setdefault(line[3:].strip(), [])
        elif current is not None and line.startswith("| ") and not line.startswith("|---"):
            current.append([c.strip().strip("*") for c in line.strip("|").split("|")])
    return out


def _pick(sections: dict, keyword: str):
    return next((rows for title, rows in sections.items() if keyword in title), None)


def _every_score_rows(rows: list[list[str]]) -> dict[tuple, list[str]]:
    """(data, ood, loss, training, score) -> the five metrics TNR, AUROC, DTACC, AUIN, AUOUT."""
    head, out = rows[0], {}
    for c in rows[1:]:
        if "Training" in head:  # today's layout
            out[tuple(c[:5])] = c[5:10]
        else:  # before the training method: Outlier Exposure was the score "ES+OE"
            method, score = ("Outlier Exposure", "ES") if c[3] == "ES+OE" else ("standard", c[3])
            out[tuple(c[:3]) + (method, score)] = c[4:9]
    return out


@pytest.mark.parametrize("folder", PUBLISHED, ids=[p.name for p in PUBLISHED])
def test_published_tables_render_the_same_numbers(folder, tmp_path):
    from isomax.bench import write_markdown

    write_markdown(read_records(folder / "results.json"), tmp_path / "results.md", "again")
    old, new = _sections((folder / "results.md").read_text()), _sections((tmp_path / "results.md").read_text())
    compared = 0
    for keyword in LAYOUTS:
        if _pick(old, keyword) is None:
            continue
        old_numbers = [NUMBER.findall(" ".join(r)) for r in _pick(old, keyword)[1:]]
        new_numbers = [NUMBER.findall(" ".join(r)) for r in _pick(new, keyword)[1:]]
        assert old_numbers == new_numbers, keyword
        compared += sum(map(len, old_numbers))
    old_rows, new_rows = _every_score_rows(_pick(old, "Every")), _every_score_rows(_pick(new, "Every"))
    assert old_rows == new_rows
    assert compared > 0 and old_rows
    if folder.name in ("fashion-mnist", "cifar10-cpu"):  # the three-loss benchmarks: every layout is there
        assert compared >= 27 and len(old_rows) >= 56


def test_published_report_tables_match_results_json():
    """docs/results/*/report/tables/*.md hold the numbers that standard_tables computes today."""
    checked = 0
    for folder in PUBLISHED:
        specs = {
            s.name: s for s in tables.standard_tables(read_records(folder / "results.json")) if s.table is not None
        }
        for md in sorted((folder / "report" / "tables").glob("table[2-6]_*.md")):
            old = [NUMBER.findall(line) for line in md.read_text().splitlines()[2:]]
            new = [NUMBER.findall(line) for line in tables.to_markdown(specs[md.stem].table).splitlines()[2:]]
            assert old == new, md
            checked += 1
    assert checked >= 4


COMPARISONS = sorted(DOCS.glob("*/comparison.md")) + sorted(DOCS.glob("*/near-far.md"))


@pytest.mark.parametrize("path", COMPARISONS, ids=[f"{p.parent.name}/{p.name}" for p in COMPARISONS])
def test_published_comparison_is_what_the_script_prints_today(path):
    """comparison.md starts with the command that made it; running it again prints the same table."""
    first, *rest = path.read_text().splitlines()
    command = re.fullmatch(r"<!-- python (scripts/compare_methods\.py .+) -->", first)
    assert command, f"{path}: no command line"
    root = DOCS.parents[1]
    out = subprocess.run(
        [sys.executable, *command.group(1).split()], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.splitlines() == [first, *rest]
    assert len(rest) >= 10  # the header, the separator and the method rows


def test_published_schedule_study_is_what_summarize_writes_today(tmp_path):
    """docs/results/schedule-study/study.md is what `schedule_study.py summarize` writes from the committed points."""
    study = DOCS / "schedule-study"
    (tmp_path / "points").mkdir()
    for p in (study / "points").glob("*.json"):
        (tmp_path / "points" / p.name).write_bytes(p.read_bytes())
    subprocess.run(
        [sys.executable, "scripts/schedule_study.py", "summarize", "--out", str(tmp_path)],
        cwd=DOCS.parents[1],
        capture_output=True,
        text=True,
        check=True,
    )
    written = (tmp_path / "study.md").read_text()
    assert written == (study / "study.md").read_text()
    assert "| IsoMax+ MDS |" in written and "| 48 ep |" in written  # not an empty summary


READMES = sorted({p.parent for p in COMPARISONS})


@pytest.mark.parametrize("folder", READMES, ids=[p.name for p in READMES])
def test_results_readme_tables_are_quoted_from_comparison(folder):
    """Every table line of the folder's README is a line of its comparison.md or near-far.md: no hand-made numbers."""
    quoted = [line for line in (folder / "README.md").read_text().splitlines() if line.startswith("|")]
    published = {line for p in COMPARISONS if p.parent == folder for line in p.read_text().splitlines()}
    assert [line for line in quoted if line not in published] == []
    assert len(quoted) >= 20  # both tables: methods, and methods per out-distribution


@pytest.mark.parametrize("folder", READMES, ids=[p.name for p in READMES])
def test_near_far_tables_are_published_for_each_comparison(folder):
    """Each comparison has its near/far version, with the three groups and the std convention stated."""
    text = (folder / "near-far.md").read_text()
    assert [line.split(":")[0] for line in text.splitlines() if line.startswith("### ")] == [
        "### near-OOD",
        "### far-OOD",
        "### noise-OOD",
    ]
    assert "ddof=1" in text and "| FPR@95TPR (%) | AUROC (%) | AUPR-in (%) | AUPR-out (%) |" in text
    assert "ddof=1" in (folder / "comparison.md").read_text()


def test_schedule_study_readme_quotes_study_md():
    """The Findings table of the schedule study's README holds study.md's numbers (AUROC / TNR@TPR95 and paired
    differences), not hand-made ones."""
    study = DOCS / "schedule-study"
    sections = {}
    for title, rows in _sections((study / "study.md").read_text()).items():
        sections[title] = {r[0]: r[1:] for r in rows[1:]}
    part = (
        (study / "study.md")
        .read_text()
        .split("## Paired per-seed differences")[1]
        .split("### AUROC")[1]
        .split("###")[0]
    )
    paired = {
        c[0]: c[1:]
        for c in (
            [x.strip() for x in line.strip("|").split("|")]
            for line in part.splitlines()
            if line.startswith("| ") and " - " in line
        )
    }
    readme = [
        [c.strip() for c in line.strip("|").split("|")]
        for line in (study / "README.md").read_text().split("## Findings")[1].splitlines()
        if line.startswith("| ")
    ]
    checked = 0
    for row in readme[1:]:
        label, cells = row[0], row[1:]
        if label.startswith("paired AUROC, "):
            a, b = label[len("paired AUROC, ") :].split(" − ")
            want = [c.split(" ")[0] for c in paired[f"{a} - {b}"]]
            assert [c.split(" ")[0].replace("−", "-") for c in cells] == want, label
        else:
            auroc, tnr = sections["AUROC"][label], sections["TNR at TPR 95%"][label]
            assert cells == [f"{a} / {t}" if a else "" for a, t in zip(auroc, tnr)], label
        checked += 1
    assert checked == 6


def test_published_sweep_md_is_what_the_sweep_writes_today(tmp_path):
    """docs/results/fashion-mnist-sweep/sweep.md is what `scripts/sweep_markdown.py` writes from sweep.json
    (one seed: no ±)."""
    folder = DOCS / "fashion-mnist-sweep"
    for name in ("sweep.json", "sweep.md"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    subprocess.run([sys.executable, "scripts/sweep_markdown.py", str(tmp_path)], cwd=DOCS.parents[1], check=True)
    written = (tmp_path / "sweep.md").read_text()
    assert written == (folder / "sweep.md").read_text()
    assert "| IsoMax | ES | 30 |" in written and "±" not in written
