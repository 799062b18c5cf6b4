"""Wall-clock time in epoch milliseconds; Lua scripts never read the clock, callers pass this."""

from __future__ import annotations

import time


def now_ms() -> int:
    return time.time_ns() // 1_000_000


DAY_MS = 86_400_000  # one UTC day (epoch ms count no leap seconds)
