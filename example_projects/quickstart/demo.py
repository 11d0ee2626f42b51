"""`make demo`: a real worker process, a mix of jobs, their outcomes, a clean SIGINT stop."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TASKITO = str(Path(sys.executable).with_name("taskito"))


def main() -> int:
    shutil.rmtree(HERE / ".taskito", ignore_errors=True)  # start from an empty database
    from tasks import add, charge_card, flaky_fetch, queue, send_reminder, total

    from taskito import MaxRetriesExceededError, chord, group

    print(f"database: {Path(queue.db_path).resolve()}")
    print("starting: taskito worker --app tasks:queue")
    worker = subprocess.Popen([TASKITO, "worker", "--app", "tasks:queue", "--loglevel", "WARNING"], cwd=HERE)
    try:
        jobs = {
            "add(2, 3)": add.delay(2, 3),
            "flaky_fetch(...)": flaky_fetch.delay("https://example.com"),
            "charge_card(...)": charge_card.delay("4242"),
            "send_reminder(...) in 2s": send_reminder.apply_async(args=("ada",), delay=2),
            # A workflow: three adds in parallel, then their total, advanced by the worker in the database.
            "chord(add x3, total)": chord(group(add.s(1, 2), add.s(3, 4), add.s(5, 6)), total.s()).delay(),
        }
        for label, job in jobs.items():
            try:
                print(f"  {label:<26} -> {job.result(timeout=30)!r}")
            except MaxRetriesExceededError as exc:
                print(f"  {label:<26} -> dead letter after {len(job.errors)} attempts: {exc.error}")
        deadline = time.monotonic() + 10
        while not queue.list_jobs(status="complete", task_name="tasks.heartbeat", limit=1):
            if time.monotonic() > deadline:
                print(f"  {'periodic heartbeat':<26} -> did not run within 10s")
                return 1
            time.sleep(0.1)
        print(f"  {'periodic heartbeat':<26} -> ran on its cron tick")
        print(f"dead letters: {[job.task_name for job in queue.dead_letters()]}")
        print(f"stats: {queue.stats()}")
    finally:
        print("stopping the worker with SIGINT")
        worker.send_signal(signal.SIGINT)
        code = worker.wait(timeout=60)
    print(f"worker exited with status {code} ({'clean' if code == 0 else 'NOT clean'})")
    return code


if __name__ == "__main__":
    sys.exit(main())
