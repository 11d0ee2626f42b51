import os

from django.apps import AppConfig


def record(line: str) -> None:
    """Side effects of worker subprocesses, read back by the tests (EFFECTS_FILE)."""
    target = os.environ.get("EFFECTS_FILE")
    if target:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)


class DjappConfig(AppConfig):
    name = "djapp"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from taskito_django import compat

        if compat.AVAILABLE:
            def started(sender, task_result, **kwargs):
                record(f"started {task_result.id} {task_result.status} {sender.__name__}")

            def finished(sender, task_result, **kwargs):
                record(f"finished {task_result.id} {task_result.status}")

            compat.task_started.connect(started, weak=False)
            compat.task_finished.connect(finished, weak=False)
