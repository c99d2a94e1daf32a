"""The last 15 minutes of each consumer group's lag and throughput, sampled in memory."""

import time
from collections import deque
from dataclasses import dataclass, field

#: How much history the charts show.
WINDOW_SECONDS = 15 * 60


@dataclass
class _Series:
    points: deque = field(default_factory=deque)  # (epoch seconds, lag, records/s)
    consumed: int | None = None  # sum of positions at the previous sample
    sampled_at: float = 0.0


class GroupHistory:
    """Per-group samples; records/s is the change of the positions between samples."""

    def __init__(self, window_seconds: float = WINDOW_SECONDS):
        self.window = window_seconds
        self._series: dict[str, _Series] = {}

    def add(self, group: str, *, lag: int, consumed: int, now: float | None = None) -> float:
        """Record one sample of ``group``; returns its records per second since the last."""
        now = time.time() if now is None else now
        series = self._series.setdefault(group, _Series())
        rate = 0.0
        if series.consumed is not None and now > series.sampled_at:
            moved = consumed - series.consumed
            # Positions go back only when a group replays from the start: no throughput.
            rate = max(0, moved) / (now - series.sampled_at)
        series.consumed, series.sampled_at = consumed, now
        series.points.append((now, lag, rate))
        while series.points and series.points[0][0] < now - self.window:
            series.points.popleft()
        return rate

    def chart(self, group: str) -> dict:
        """``{"t": [...], "lag": [...], "rate": [...]}`` over the window, oldest first."""
        points = self._series.get(group, _Series()).points
        return {
            "t": [round(t, 1) for t, _, _ in points],
            "lag": [lag for _, lag, _ in points],
            "rate": [round(rate, 1) for _, _, rate in points],
        }

    def forget_except(self, groups: set[str]) -> None:
        """Drop the groups that no longer exist."""
        for name in set(self._series) - groups:
            del self._series[name]
