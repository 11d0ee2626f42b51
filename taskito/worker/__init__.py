"""The worker: claim loop, thread pool, heartbeats and reaper, periodic scheduler."""

from .runner import Worker

__all__ = ["Worker"]
