"""What this machine's own scheduling does to a round trip, with no taskito and no database in it.

Two Python processes pass a byte back and forth over pipes, each spinning for a fixed amount of CPU
work before it answers, so that one round trip costs about as much CPU as a job's round trip does
(about 1 ms). Its p99 and max are the floor under any round trip's: on the machines of the README's
tables, a virtual machine's CPU ran about 15 times slower for about 0.1 s every 1.5 s, which took this
round trip from 1.5 ms to 15-20 ms while nothing else ran.

The slow windows themselves are counted by a spin loop alone: ``slow_windows`` is how many times a
step of about 0.2 ms took five times its median or more, in runs of steps at most 50 ms apart.
"""

from __future__ import annotations

import itertools
import os
import statistics
import time

WORK_STEPS = 15_000  # additions per side and round trip: about 0.5 ms of CPU each on the README's machines


def _spin(steps: int) -> int:
    total = 0
    for step in range(steps):
        total += step
    return total


def ping_pong_ms(seconds: float) -> list[float]:
    """Round trips (ms) between this process and a forked one for ``seconds``, each side spinning first."""
    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the other side of the pipe
        while os.read(to_child_r, 1) == b"x":
            _spin(WORK_STEPS)
            os.write(to_parent_w, b"x")
        os._exit(0)
    latencies = []
    try:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            _spin(WORK_STEPS)
            os.write(to_child_w, b"x")
            os.read(to_parent_r, 1)
            latencies.append((time.perf_counter() - started) * 1000)
    finally:
        os.write(to_child_w, b"q")
        os.waitpid(child, 0)
        for fd in (to_child_r, to_child_w, to_parent_r, to_parent_w):
            os.close(fd)
    return latencies


def slow_windows(seconds: float) -> tuple[int, float]:
    """How many windows of slowed CPU a spin loop met in ``seconds``, and its worst slowdown (x median)."""
    steps = []
    deadline = time.perf_counter() + seconds
    while (started := time.perf_counter()) < deadline:
        _spin(2000)
        steps.append((started, time.perf_counter() - started))
    median = statistics.median(duration for _, duration in steps)
    slow = [at for at, duration in steps if duration >= 5 * median]
    windows = sum(1 for before, at in itertools.pairwise([float("-inf"), *slow]) if at - before > 0.05)
    return windows, round(max(duration for _, duration in steps) / median, 1)


def measure_machine(seconds: float = 5.0) -> dict[str, object]:
    latencies = ping_pong_ms(seconds)
    cuts = statistics.quantiles(latencies, n=100)
    windows, worst = slow_windows(seconds)
    return {
        "pipe_round_trip_1ms_cpu_ms": {"p50": round(cuts[49], 2), "p99": round(cuts[98], 2),
                                       "max": round(max(latencies), 2), "rounds": len(latencies)},
        "spin_loop": {"seconds": seconds, "slow_windows": windows, "worst_slowdown_x": worst},
    }


if __name__ == "__main__":
    import json

    print(json.dumps(measure_machine()))
