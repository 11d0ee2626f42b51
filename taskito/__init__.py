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
from .middleware import JobInfo, Middleware
from .options import JobOptions
from .queue import Queue
from .registry import Registry
from .result import JobHandle, JobResult
from .task import Signature, TaskWrapper
from .workflow import WorkflowHandle, WorkflowResult, chain, chord, chunks, group, starmap

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "DatabaseUnavailableError",
    "InvalidValueError",
    "JobHandle",
    "JobInfo",
    "JobNotFoundError",
    "JobOptions",
    "JobResult",
    "MaxRetriesExceededError",
    "Middleware",
    "Queue",
    "Registry",
    "SerializationError",
    "Signature",
    "SoftTimeLimitExceeded",
    "TaskCancelledError",
    "TaskFailedError",
    "TaskWrapper",
    "TaskitoError",
    "WorkerLostError",
    "WorkflowHandle",
    "WorkflowResult",
    "chain",
    "chord",
    "chunks",
    "current_job",
    "group",
    "starmap",
]
