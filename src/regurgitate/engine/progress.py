"""How far a long loop (training steps, sentences decoded, rows requested) has got and how long
it has left, for the log lines a user watches in the terminal."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


def duration(seconds: float) -> str:
    """A span of time as a person reads it: 45s, 3m10s, 2h05m, 3d04h."""
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


@dataclass
class Progress:
    """Work done out of `total`, with the time left at the pace of this process so far.

    `done_at_start` is what an earlier attempt already did (a resumed training run): the pace
    counts only the work timed here, so the pause between attempts does not slow it."""

    total: int
    done_at_start: int = 0
    start: float = field(default_factory=time.monotonic)

    def seconds_left(self, done: int, now: float | None = None) -> float | None:
        """None until some work has been timed."""
        timed = done - self.done_at_start
        elapsed = (time.monotonic() if now is None else now) - self.start
        if timed <= 0 or elapsed <= 0:
            return None
        return max(0, self.total - done) * elapsed / timed

    def describe(self, done: int, now: float | None = None) -> str:
        """`done/total (percent), time left`, e.g. `30/600 (5%), 2m10s left`."""
        return f"{fraction(done, self.total)}, {time_left(self.seconds_left(done, now))}"


def fraction(done: int, total: int) -> str:
    """`30/600 (5%)`."""
    return f"{done}/{total} ({done / total if total else 1.0:.0%})"


def time_left(seconds: float | None) -> str:
    return "time left not known yet" if seconds is None else f"{duration(seconds)} left"
