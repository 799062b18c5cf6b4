"""A small Prometheus text-format registry: counters and latency histograms per process."""

from __future__ import annotations

import bisect
from collections import defaultdict

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
LabelKey = tuple[tuple[str, str], ...]


def _labels(key: LabelKey, extra: str = "") -> str:
    parts = [f'{name}="{value}"' for name, value in key]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class Metrics:
    def __init__(self) -> None:
        self.counters: dict[str, dict[LabelKey, int]] = defaultdict(lambda: defaultdict(int))
        self.histograms: dict[str, dict[LabelKey, list[float]]] = defaultdict(dict)
        self.help: dict[str, str] = {}

    def inc(self, name: str, help_text: str, amount: int = 1, **labels: str) -> None:
        self.help.setdefault(name, help_text)
        self.counters[name][tuple(sorted(labels.items()))] += amount

    def observe(self, name: str, help_text: str, seconds: float, **labels: str) -> None:
        self.help.setdefault(name, help_text)
        key = tuple(sorted(labels.items()))
        # per label set: one slot per bucket, then +Inf, sum
        slots = self.histograms[name].setdefault(key, [0.0] * (len(LATENCY_BUCKETS) + 2))
        slots[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        slots[-1] += seconds

    def render(self) -> str:
        lines: list[str] = []
        for name, counts in sorted(self.counters.items()):
            lines += [f"# HELP {name} {self.help[name]}", f"# TYPE {name} counter"]
            lines += [f"{name}{_labels(key)} {value}" for key, value in sorted(counts.items())]
        for name, series in sorted(self.histograms.items()):
            lines += [f"# HELP {name} {self.help[name]}", f"# TYPE {name} histogram"]
            bounds = [str(bound) for bound in LATENCY_BUCKETS] + ["+Inf"]
            for key, slots in sorted(series.items()):
                cumulative = 0.0
                for bound, count in zip(bounds, slots, strict=False):
                    cumulative += count
                    le = 'le="' + bound + '"'
                    lines.append(f"{name}_bucket{_labels(key, le)} {int(cumulative)}")
                lines.append(f"{name}_sum{_labels(key)} {slots[-1]:.6f}")
                lines.append(f"{name}_count{_labels(key)} {int(cumulative)}")
        return "\n".join(lines) + "\n"
