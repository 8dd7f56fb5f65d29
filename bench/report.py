"""The benchmark's table: each figure, the same-run references it is compared with, and SPEC.md's figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Row:
    label: str
    value: float
    unit: str
    references: list[tuple[str, float, float]] = field(default_factory=list)
    """(reference label, reference value, value / reference) measured in the same run."""
    published: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "value": round(self.value, 3),
            "unit": self.unit,
            "references": [
                {"label": label, "value": round(value, 3), "ratio": round(r, 4)}
                for label, value, r in self.references
            ],
            "published": self.published,
        }


def ratio(value: float, reference: float) -> float:
    return value / reference if reference else 0.0


def number(value: float) -> str:
    """Thousands separators for big figures, two decimals for small ones."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


HEADERS = ("figure", "value", "unit", "same-run reference", "ratio", "published (SPEC.md)")


def render(rows: list[Row]) -> str:
    lines: list[tuple[str, ...]] = [HEADERS]
    for row in rows:
        refs = row.references or [("", 0.0, 0.0)]
        for i, (label, value, r) in enumerate(refs):
            first = i == 0
            lines.append(
                (
                    row.label if first else "",
                    number(row.value) if first else "",
                    row.unit if first else "",
                    f"{label}: {number(value)}" if label else "",
                    f"{r:.3f}" if label else "",
                    row.published if first else "",
                )
            )
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADERS))]
    right = {1, 4}
    out = []
    for n, line in enumerate(lines):
        cells = [
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
