"""Side-by-side results: each repetition measures the baseline and guardrail back to back; the
ratio is taken within a repetition (the machine is shared and absolute figures swing)."""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass
class Comparison:
    what: str
    baseline: str
    unit: str
    goal: str = ""  # e.g. "≤ 1.5"
    pairs: list[tuple[float, float]] = field(default_factory=list)  # (baseline, guardrail) per repetition

    def ratios(self) -> list[float]:
        return [ours / base for base, ours in self.pairs if base > 0]

    def row(self) -> str:
        ratios = self.ratios()
        base = [b for b, _ in self.pairs]
        ours = [o for _, o in self.pairs]
        ratio = f"{statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]" if ratios else "-"
        return (
            f"| {self.what} | {self.baseline}: {_span(base)} {self.unit} | {_span(ours)} {self.unit} | "
            f"{ratio} | {self.goal} |"
        )


def _span(values: list[float]) -> str:
    if not values:
        return "-"
    fmt = "{:.0f}" if max(values) >= 100 else "{:.1f}" if max(values) >= 1 else "{:.3f}"
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}-{fmt.format(max(values))}]"


def machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    model = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        "unknown CPU",
    )
    return f"{os.cpu_count()} cores ({model}), load average {load}"


def markdown(
    comparisons: list[Comparison],
    *,
    repetitions: int,
    command: str,
    notes: list[str],
    load_before: str,
    load_after: str,
) -> str:
    lines = [
        f"# Benchmark results — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"`{command}`, {repetitions} repetitions, baseline and guardrail interleaved within each.",
        f"Machine: {load_before} at the start; {load_after.split('load average ')[-1]} at the end.",
        "Figures are median [min-max] over the repetitions; the ratio is guardrail ÷ baseline within "
        "one repetition (lower is better; rates are shown as time per unit of work).",
        "",
        "| measure | baseline | guardrail | ratio median [min-max] | goal |",
        "|---|---|---|---|---|",
    ]
    lines += [c.row() for c in comparisons]
    lines += ["", *notes]
    return "\n".join(lines) + "\n"
