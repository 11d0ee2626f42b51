"""taskito: a task queue for Python web apps that needs no broker."""

from .context import current_job
from .exceptions import (
    ConfigurationError,
    DatabaseUnavailableError,
    InvalidValueError,
    JobNotFoundError,
    MaxRetriesExceededError,
    SerializationError,
    SoftTimeLimitExceeded,
    TaskCancelledError,
    TaskFailedError,
    TaskitoError,
    WorkerLostError,
)
from .queue import Queue
from .result import JobResult
from .task import Signature, TaskWrapper

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "DatabaseUnavailableError",
    "InvalidValueError",
    "JobNotFoundError",
    "JobResult",
    "MaxRetriesExceededError",
    "Queue",
    "SerializationError",
    "Signature",
    "SoftTimeLimitExceeded",
    "TaskCancelledError",
    "TaskFailedError",
    "TaskWrapper",
    "TaskitoError",
    "WorkerLostError",
    "current_job",
]
