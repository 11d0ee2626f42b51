"""`make demo-flask`: a real `flask taskito worker` process, a signup that enqueues, the job completing."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FLASK = str(Path(sys.executable).with_name("flask"))


def main() -> int:
    shutil.rmtree(HERE / ".taskito", ignore_errors=True)  # start from an empty database
    from shop import create_app

    app = create_app()
    client = app.test_client()
    token = {"Authorization": f"Bearer {app.config['TASKITO_API_TOKEN']}"}
    print(f"database: {app.config['TASKITO_DB_PATH']}")
    print("starting: flask --app shop taskito worker")
    worker = subprocess.Popen([FLASK, "--app", "shop", "taskito", "worker", "--loglevel", "WARNING"], cwd=HERE)
    try:
        response = client.post("/signup", json={"email": "ada@example.com"})
        print(f"POST /signup -> {response.status_code} {response.json}")
        status_url = response.json["status_url"]
        deadline = time.monotonic() + 30
        while (report := client.get(status_url).json)["status"] not in ("complete", "dead", "cancelled"):
            if time.monotonic() > deadline:
                print(f"GET {status_url} -> still {report['status']} after 30s")
                return 1
            time.sleep(0.1)
        print(f"GET {status_url} -> {report}")
        print(f"outbox: {(HERE / '.taskito' / 'outbox.txt').read_text().strip()}")
        print(f"GET /taskito/health -> {client.get('/taskito/health').json}")
        print(f"GET /taskito/stats -> {client.get('/taskito/stats').json}")
        refused = client.get("/taskito/jobs")
        print(f"GET /taskito/jobs without the token -> {refused.status_code}")
        jobs = client.get("/taskito/jobs", headers=token).json["jobs"]
        print(f"GET /taskito/jobs with the token -> {[(job['task_name'], job['status']) for job in jobs]}")
    finally:
        print("stopping the worker with SIGINT")
        worker.send_signal(signal.SIGINT)
        code = worker.wait(timeout=60)
    print(f"worker exited with status {code} ({'clean' if code == 0 else 'NOT clean'})")
    return code if report["status"] == "complete" else 1


if __name__ == "__main__":
    sys.exit(main())
