"""`make demo-django`: migrate, a real `manage.py taskito_worker`, an order placed through the view, its job done."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANAGE = [sys.executable, str(HERE / "manage.py")]


def main() -> int:
    shutil.rmtree(HERE / ".taskito", ignore_errors=True)  # start from empty databases
    (HERE / "db.sqlite3").unlink(missing_ok=True)
    print("python manage.py migrate")
    subprocess.run([*MANAGE, "migrate", "--verbosity", "0"], cwd=HERE, check=True)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopsite.settings")
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.test import Client
    from shop.models import Order

    from taskito_django import queue

    User.objects.create_superuser("admin", "admin@example.com", "admin")  # demo credentials only
    print(f"queue database: {queue.db_path}")
    print("starting: python manage.py taskito_worker")
    worker = subprocess.Popen([*MANAGE, "taskito_worker", "--concurrency", "2"], cwd=HERE)
    status = "new"
    try:
        deadline = time.monotonic() + 30
        while not queue.workers():
            if worker.poll() is not None or time.monotonic() > deadline:
                print("the worker did not start")
                return 1
            time.sleep(0.1)
        response = Client().post("/", {"item": "teapot", "quantity": 2, "email": "ada@example.com"})
        order = Order.objects.latest("pk")
        print(f"POST / (place an order) -> {response.status_code}; order #{order.pk} saved, "
              "confirm_order enqueued when its transaction committed")
        while (status := Order.objects.get(pk=order.pk).status) != "confirmed":
            if time.monotonic() > deadline:
                print(f"order #{order.pk} still {status!r} after 30s")
                return 1
            time.sleep(0.1)
        [job] = queue.list_jobs(task_name="shop.tasks.confirm_order")
        job.result(timeout=10)
        print(f"job {job.id} {job.task_name}: {job.status} -> {job.result()!r}")
        print(f"order #{order.pk} is now {status!r}")
        print(f"queue stats: {queue.stats()}")
        print("\nsee it in the admin: python manage.py runserver (in example_projects/django_site), then open")
        print("  http://127.0.0.1:8000/admin/taskito/  (user admin, password admin)")
    finally:
        print("\nstopping the worker with SIGINT")
        worker.send_signal(signal.SIGINT)
        code = worker.wait(timeout=60)
    print(f"worker exited with status {code} ({'clean' if code == 0 else 'NOT clean'})")
    return code if status == "confirmed" else 1


if __name__ == "__main__":
    sys.exit(main())
