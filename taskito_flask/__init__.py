"""taskito for Flask: ``Taskito(app)`` or ``Taskito()`` + ``init_app(app)`` in a factory."""

from .extension import FlaskTask, NotInitializedError, Taskito

__all__ = ["FlaskTask", "NotInitializedError", "Taskito"]
