"""The table in docs/reliability.md is computed from the attack suite: this test counts the cases of every
``test_attack_*.py`` by their ``attack(area, outcome)`` marks and parametrisations and compares."""

from __future__ import annotations

import importlib
import math
import re
from collections import Counter
from pathlib import Path

from attack import AREAS, OUTCOMES

DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"
MODULES = sorted(p.stem for p in Path(__file__).parent.glob("test_attack_*.py") if p.stem != "test_attack_table")
COLUMNS = ("cases tried", "clean errors", "clean stops", "recovered", "tracebacks", "wrong exits", "data lost",
           "code executed")


def count_cases() -> Counter:
    """(area, outcome) -> number of test cases (a parametrised test counts once per parameter set)."""
    counts: Counter = Counter()
    for name in MODULES:
        module = importlib.import_module(name)
        for attr, fn in vars(module).items():
            if not (attr.startswith("test_") and callable(fn)):
                continue
            marks = getattr(fn, "pytestmark", [])
            attack = [m for m in marks if m.name == "attack"]
            assert len(attack) == 1, f"{name}.{attr} needs exactly one attack(area, outcome) mark"
            area, outcome = attack[0].args
            assert area in AREAS and outcome in OUTCOMES, (area, outcome)
            counts[area, outcome] += math.prod(len(m.args[1]) for m in marks if m.name == "parametrize")
    return counts


def expected_rows(counts: Counter) -> dict[str, list[int]]:
    rows = {}
    for area, label in AREAS.items():
        cells = [counts[area, o] for o in OUTCOMES]
        rows[label] = [sum(cells), *cells, 0, 0, 0, 0]
    rows["all"] = [sum(r[i] for r in rows.values()) for i in range(len(COLUMNS))]
    return rows


def table_rows(text: str) -> dict[str, list[int]]:
    """The rows of the markdown table headed by COLUMNS: label -> numbers."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
        if len(cells) == len(COLUMNS) + 1 and all(re.fullmatch(r"\d+", c) for c in cells[1:]):
            rows[cells[0]] = [int(c) for c in cells[1:]]
    return rows


def test_the_reliability_table_matches_the_suite() -> None:
    expected = expected_rows(count_cases())
    text = DOC.read_text(encoding="utf-8")
    header = "| attacked | " + " | ".join(COLUMNS) + " |"
    assert header in text, f"docs/reliability.md lacks the header {header}"
    found = table_rows(text.split(header, 1)[1])
    wanted = "\n".join(f"| {label} | " + " | ".join(map(str, row)) + " |" for label, row in expected.items())
    assert {k: found.get(k) for k in expected} == expected, f"update the table in docs/reliability.md:\n{wanted}"
