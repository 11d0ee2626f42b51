"""Workflow figures, printed as one JSON line (``make bench`` includes them through throughput.py).

    python benchmarks/workflows.py [--backend sqlite|postgres] [--chain-steps 1000] [--chord-members 10000]

A chain of N steps drained by one worker process (steps per second: each step is released by the
completion of the one before it, in its transaction), and a chord of M no-op members (written in one
transaction; members per second from sending to the last member's completion; seconds from the last
member's completion to the start of the callback, which its completion released).
"""

from __future__ import annotations

import argparse
import json
import os
import time

from throughput import DEFAULT_PG_URL, database, load_queue, start_workers, stop_workers


def measure_workflows(backend: str, chain_steps: int, chord_members: int, pg_url: str) -> dict[str, float]:
    from taskito import chain, chord, group

    with database(backend, pg_url) as env:
        queue, noop = load_queue(env)
        step, count = queue.tasks["bench_app.step"], queue.tasks["bench_app.count"]
        [worker] = start_workers(1, env, env["LOG_DIR"])
        try:
            started = time.perf_counter()
            assert chain(step.s(0), *[step.s() for _ in range(chain_steps - 1)]).delay().result(timeout=600) \
                == chain_steps
            chain_seconds = time.perf_counter() - started

            started_wall = time.time()
            started = time.perf_counter()
            workflow = chord(group(noop.s() for _ in range(chord_members)), count.s()).delay()
            enqueue_seconds = time.perf_counter() - started
            assert workflow.result(timeout=600) == chord_members
        finally:
            stop_workers([worker])
        record = workflow.record  # read by result(): every job's start and finish
        last_member = max(job[6] for job in record.jobs if job[3] == 0)
        callback_start = next(job[5] for job in record.jobs if job[3] == 1)
        queue.close()
    return {
        "chain_steps": chain_steps,
        "chain_steps_per_s": round(chain_steps / chain_seconds),
        "chord_members": chord_members,
        "chord_enqueue_members_per_s": round(chord_members / enqueue_seconds),
        "chord_members_per_s": round(chord_members / (last_member - started_wall)),
        "chord_last_member_to_callback_s": round(callback_start - last_member, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--db-url", default=DEFAULT_PG_URL, help="PostgreSQL URL for --backend postgres")
    parser.add_argument("--chain-steps", type=int, default=1000)
    parser.add_argument("--chord-members", type=int, default=10_000)
    args = parser.parse_args()
    print(json.dumps({"backend": args.backend, "cpus": os.cpu_count(),
                      **measure_workflows(args.backend, args.chain_steps, args.chord_members, args.db_url)}))


if __name__ == "__main__":
    main()
