"""Every error taskito raises on purpose is a TaskitoError, so callers can catch one type."""

from __future__ import annotations


class TaskitoError(Exception):
    """Base class of taskito's own errors."""


class ConfigurationError(TaskitoError):
    """A setting is missing or invalid (bad path, unknown backend, missing URL...)."""


class InvalidValueError(TaskitoError, ValueError):
    """A value passed in code (an option, a name, a setting, a number of seconds) is out of range.

    Raised before anything is written. A ValueError too, so code that caught ValueError still does.
    """


class DatabaseUnavailableError(ConfigurationError):
    """The database server cannot be reached right now (down, starting, wrong host or port).

    A ConfigurationError, so one ``except`` covers every start-up problem; retrying may help
    (``taskito worker --wait-for-db`` does).
    """


class SerializationError(TaskitoError):
    """Arguments or a result cannot be encoded (or decoded) by the queue's serializer."""


class JobNotFoundError(TaskitoError):
    """No job has the given id."""


class TaskFailedError(TaskitoError):
    """The job ended without a result; ``error`` holds the last error text."""

    def __init__(self, message: str, error: str | None = None, job_id: str | None = None):
        super().__init__(message)
        self.error = error
        self.job_id = job_id


class MaxRetriesExceededError(TaskFailedError):
    """The job failed on every attempt it was allowed and is now a dead letter."""


class TaskCancelledError(TaskitoError):
    """The job was cancelled (by hand, by expiry or because a dependency failed)."""


class WorkerLostError(TaskitoError):
    """The process running an attempt died (killed, crashed, or stopped heart-beating)."""


class SoftTimeLimitExceeded(TaskitoError):
    """Raised by ``current_job.check_timeout()`` once the task's ``soft_timeout`` has passed."""
