"""taskito for Django: ``INSTALLED_APPS += ["taskito_django"]``.

``from taskito_django import queue`` is the project's one queue, built lazily from the
``TASKITO_*`` settings and shared by your code, the admin pages and the management commands.
"""

from __future__ import annotations

from typing import Any

from .project import queue

__all__ = ["queue", "register_taskito_admin"]


def __getattr__(name: str) -> Any:
    if name == "register_taskito_admin":  # imported lazily: the admin needs the app registry
        from .admin import register_taskito_admin

        return register_taskito_admin
    raise AttributeError(f"module 'taskito_django' has no attribute {name!r}")
