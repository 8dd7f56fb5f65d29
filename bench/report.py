"""The benchmark's table: each figure, the same-run references it is compared with, and SPEC.md's figures."""

from __future__ import annotations

import statistics
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
    spread: tuple[float, float] | None = None
    """With several rounds: the lowest and highest value (`value` is their median)."""
    ratio_spreads: list[tuple[float, float]] = field(default_factory=list)
    """With several rounds: each reference's lowest and highest same-run ratio."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": self.label,
            "value": round(self.value, 3),
            "unit": self.unit,
            "references": [
                {"label": label, "value": round(value, 3), "ratio": round(r, 4)}
                for label, value, r in self.references
            ],
            "published": self.published,
        }
        if self.spread is not None:
            out["range"] = [round(self.spread[0], 3), round(self.spread[1], 3)]
            for reference, (low, high) in zip(out["references"], self.ratio_spreads, strict=True):
                reference["ratio_range"] = [round(low, 4), round(high, 4)]
        return out


def medians(rounds: list[list[Row]]) -> list[Row]:
    """One row per figure of several rounds of the same rows: the median value with its range,
    each reference's median value and the median of its same-run ratios (not the ratio of
    two medians: each ratio compares figures measured side by side). A row missing from a
    round (its part failed there) takes the rounds that have it."""
    labels: dict[tuple[str, str], list[Row]] = {}
    for rows in rounds:
        heading = ""
        for row in rows:
            if not row.label.startswith(" "):
                heading = row.label
            # An indented row ("  latency p50") belongs to the figure above it.
            labels.setdefault((heading, row.label), []).append(row)
    out = []
    for (_, label), found in labels.items():
        values = [row.value for row in found]
        first = found[0]
        references = []
        spreads = []
        for i, (reference_label, _, _) in enumerate(first.references):
            pairs = [row.references[i] for row in found if len(row.references) > i]
            ratios = [r for _, _, r in pairs]
            references.append(
                (reference_label, statistics.median(v for _, v, _ in pairs), statistics.median(ratios))
            )
            spreads.append((min(ratios), max(ratios)))
        out.append(
            Row(
                label,
                statistics.median(values),
                first.unit,
                references,
                first.published,
                spread=(min(values), max(values)),
                ratio_spreads=spreads,
            )
        )
    return out


def ratio(value: float, reference: float) -> float:
    return value / reference if reference else 0.0


def number(value: float) -> str:
    """Thousands separators for big figures, two decimals for small ones."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


HEADERS = ("figure", "value", "unit", "same-run reference", "ratio", "published (SPEC.md)")
ROUNDS_HEADERS = (
    "figure",
    "median",
    "range",
    "unit",
    "same-run reference (median)",
    "ratio (median)",
    "ratio range",
    "published (SPEC.md)",
)


def render(rows: list[Row]) -> str:
    """The table; with the range columns when the rows are medians of several rounds."""
    rounds = any(row.spread is not None for row in rows)
    headers = ROUNDS_HEADERS if rounds else HEADERS
    lines: list[tuple[str, ...]] = [headers]
    for row in rows:
        refs = row.references or [("", 0.0, 0.0)]
        for i, (label, value, r) in enumerate(refs):
            first = i == 0
            cells = [
                row.label if first else "",
                number(row.value) if first else "",
                row.unit if first else "",
                f"{label}: {number(value)}" if label else "",
                f"{r:.3f}" if label else "",
                row.published if first else "",
            ]
            if rounds:
                low, high = row.spread or (row.value, row.value)
                cells.insert(2, f"{number(low)}-{number(high)}" if first else "")
                low_r, high_r = row.ratio_spreads[i] if label and i < len(row.ratio_spreads) else (r, r)
                cells.insert(6, f"{low_r:.3f}-{high_r:.3f}" if label else "")
            lines.append(tuple(cells))
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    right = {1, 2, 5, 6} if rounds else {1, 4}
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
