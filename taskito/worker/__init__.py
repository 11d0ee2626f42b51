"""The worker: claim loop, thread (or prefork) pool, event loop for async tasks, heartbeats and reaper,
periodic scheduler."""

from .runner import Worker

__all__ = ["Worker"]
