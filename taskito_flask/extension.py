"""The Taskito extension: one queue per Flask app, built from ``app.config`` on first use.

Tasks, periodic schedules, hooks, middleware and event handlers are declared on the extension's registry, also
before ``init_app`` (the factory pattern); the queue of every app the extension is initialised with
takes that registry in. Tasks run inside the application context of their app.
"""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, cast

from flask import Flask, current_app, has_app_context

from taskito.config import queue_kwargs_from
from taskito.exceptions import ConfigurationError
from taskito.queue import Queue
from taskito.registry import Registry, TaskSpec

if TYPE_CHECKING:
    from flask import Request

    from taskito.result import JobHandle
    from taskito.task import Signature, TaskWrapper

logger = logging.getLogger("taskito.flask")

DEFAULT_URL_PREFIX = "/taskito"
_STATE = "taskito.queue"  # the key of an app's _AppQueue in app.extensions (the extension itself is "taskito")


class NotInitializedError(ConfigurationError, RuntimeError):
    """The extension was used for something that needs a database before ``init_app``."""


def _not_initialized(what: str) -> NotInitializedError:
    return NotInitializedError(
        f"{what} needs the app's queue, but this Taskito extension is not initialised with a Flask app yet: call "
        "taskito.init_app(app) (or Taskito(app)) first. Before that only task(), periodic() and the "
        "hook decorators work."
    )


class _AppContextFactory:
    """Enters a fresh application context around each task; holds the app weakly."""

    def __init__(self, app: Flask) -> None:
        self._app = weakref.ref(app)
        self._name = app.name

    def __call__(self) -> AbstractContextManager[Any]:
        app = self._app()
        if app is None:
            raise RuntimeError(f"the Flask app {self._name!r} this queue belonged to no longer exists")
        return app.app_context()


class FlaskTask:
    """What ``@taskito.task()`` returns. Calling it runs the function; ``delay`` and friends
    enqueue on the queue of the current app (or of the app initialised last)."""

    def __init__(self, extension: Taskito, spec: TaskSpec) -> None:
        self._extension = extension
        self.spec = spec
        self.fn = spec.fn
        self.name = spec.name
        functools.update_wrapper(self, spec.fn)

    def __repr__(self) -> str:
        return f"<flask task {self.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    @property
    def wrapper(self) -> TaskWrapper:
        """The task as the current app's queue runs it."""
        queue = self._extension._bound_queue()
        if queue is None:
            raise _not_initialized(f"enqueueing task {self.name!r}")
        return queue.tasks[self.name]

    def delay(self, *args: Any, **kwargs: Any) -> JobHandle:
        return self.wrapper.delay(*args, **kwargs)

    def apply_async(self, *args: Any, **kwargs: Any) -> JobHandle:
        return self.wrapper.apply_async(*args, **kwargs)

    def map(self, args_list: Any, **options: Any) -> list[JobHandle]:
        return self.wrapper.map(args_list, **options)

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        return self.wrapper.s(*args, **kwargs)

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        return getattr(self.wrapper, attribute)  # options, queue, ...


class _Declarations(Registry):
    """The extension's registry, which the queue of every app it is initialised with takes in.

    Its decorators return FlaskTasks. Before ``init_app`` it is what ``taskito.queue`` gives: declaring
    works, anything else raises NotInitializedError.
    """

    def __init__(self, extension: Taskito) -> None:
        super().__init__()
        self._extension = extension

    def task(self, name: str | None = None,  # type: ignore[override]  # a FlaskTask stands for its TaskSpec
             **options: Any) -> Callable[[Callable[..., Any]], FlaskTask]:
        declare = super().task(name, **options)
        return lambda fn: FlaskTask(self._extension, declare(fn))

    def periodic(self, cron: str, name: str | None = None,  # type: ignore[override]  # a FlaskTask, as task()
                 args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None, queue: str = "default",
                 timezone: str | None = None,
                 check: Callable[[str, Sequence[Any], Mapping[str, Any] | None], Any] | None = None,
                 ) -> Callable[[Any], FlaskTask]:
        declare = super().periodic(cron, name, args, kwargs, queue, timezone, check)

        def decorator(fn: Any) -> FlaskTask:
            spec = declare(fn)
            return fn if isinstance(fn, FlaskTask) else FlaskTask(self._extension, spec)

        return decorator

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        raise _not_initialized(f"taskito.queue.{attribute}")


class _AppQueue:
    """One app's queue, built on first use: creating the app never needs the database.

    A failed build (a bad environment value) is not remembered, nor is a failed connection (the
    queue opens its database on first use), so the next use tries again; that is what lets
    ``/health`` turn 200 once PostgreSQL is up.
    """

    def __init__(self, app: Flask, queue_kwargs: dict[str, Any]) -> None:
        self._app = weakref.ref(app)
        self.name = app.name
        self.queue_kwargs = queue_kwargs
        self.queue: Queue | None = None
        self.lock = threading.Lock()

    def app(self) -> Flask:
        app = self._app()
        if app is None:
            raise RuntimeError(f"the Flask app {self.name!r} whose taskito queue was asked for no longer exists")
        return app


class Taskito:
    """The Flask extension. ``cli_group`` names the ``flask`` command group (None: no commands);
    ``url_prefix`` overrides ``TASKITO_URL_PREFIX`` (``False``: no blueprint)."""

    def __init__(self, app: Flask | None = None, cli_group: str | None = "taskito",
                 url_prefix: str | bool | None = None) -> None:
        self.cli_group = cli_group
        self.url_prefix = url_prefix
        self.registry: Registry = _Declarations(self)
        self._last_app: _AppQueue | None = None
        self._authorize: Callable[[Request], bool] | None = None
        self._lock = threading.Lock()
        if app is not None:
            self.init_app(app)

    # -- binding ----------------------------------------------------------------------------
    def init_app(self, app: Flask) -> None:
        """Register the blueprint and commands; the queue is built on first use (no database needed here).

        ``TASKITO_*`` values in ``app.config`` are read and checked now, so a bad one fails app creation.
        """
        if "taskito" in app.extensions:
            raise ConfigurationError(f"taskito is already initialised on the Flask app {app.name!r}; "
                                     "call init_app once per app")
        state = _AppQueue(app, queue_kwargs_from(app.config))
        prefix = self.url_prefix if self.url_prefix is not None else app.config.get(
            "TASKITO_URL_PREFIX", DEFAULT_URL_PREFIX)
        if prefix is not False and prefix is not None and not isinstance(prefix, str):
            raise ConfigurationError(f"TASKITO_URL_PREFIX must be a path such as '/taskito' or False, "
                                     f"got {prefix!r}")
        with self._lock:
            app.extensions[_STATE] = state
            self._last_app = state
        app.extensions["taskito"] = self

        if isinstance(prefix, str):
            from .blueprint import make_blueprint

            app.register_blueprint(make_blueprint(self), url_prefix=prefix.rstrip("/") or None)
        if self.cli_group:
            from .commands import make_cli

            app.cli.add_command(make_cli(self, self.cli_group))
        logger.debug("taskito initialised on %r; its queue is built on first use", app.name)

    def create_queue(self, app: Flask) -> Queue:
        """The Queue for ``app``, called on its first use; override to customise (keep ``registry=self.registry``:
        the tasks, schedules and hooks declared on this extension are there).

        Keys unset in ``app.config`` (as read by ``init_app``) fall back to env vars, then defaults.
        """
        state = self._state_of(app)
        kwargs = state.queue_kwargs if state is not None else queue_kwargs_from(app.config)
        return Queue(registry=self.registry, **kwargs)

    def _build(self, state: _AppQueue) -> Queue:
        """The app's queue, built once (whichever thread asks first); building does not connect."""
        queue = state.queue
        if queue is not None:
            return queue
        with state.lock:
            if state.queue is None:
                app = state.app()
                queue = self.create_queue(app)
                if queue.registry is not self.registry:
                    raise ConfigurationError(f"{type(self).__name__}.create_queue() returned a queue without the "
                                             "extension's tasks: build it with Queue(registry=self.registry, ...)")
                queue.task_contexts.append(_AppContextFactory(app))
                state.queue = queue
                logger.debug("built the taskito queue of %r: %r", state.name, queue)
            return state.queue

    def _state_of(self, app: Flask) -> _AppQueue | None:
        """The queue state this extension keeps in ``app.extensions`` (``app`` may be ``current_app``)."""
        return app.extensions.get(_STATE) if app.extensions.get("taskito") is self else None

    def _bound_state(self) -> _AppQueue | None:
        if has_app_context():
            state = self._state_of(current_app)
            if state is not None:
                return state
        return self._last_app

    def _bound_queue(self) -> Queue | None:
        state = self._bound_state()
        return None if state is None else self._build(state)

    @property
    def queue(self) -> Queue:
        """The current app's Queue (or the last initialised one outside an app context).

        Its database opens on first use: DatabaseUnavailableError if it cannot be reached (the next use
        tries again). Before ``init_app`` it is the extension's registry: declarations (task, periodic,
        hooks) work and anything else raises NotInitializedError.
        """
        queue = self._bound_queue()
        return queue if queue is not None else cast(Queue, self.registry)

    def queue_for(self, app: Flask) -> Queue:
        """``app``'s Queue, its database opened now (see ``queue``)."""
        state = self._state_of(app)
        if state is None:
            raise _not_initialized(f"the queue of the Flask app {app.name!r}")
        return self._build(state).connect()

    # -- declarations (usable before init_app): kept in the extension's registry ------------------
    def task(self, name: str | None = None, **options: Any) -> Callable[[Callable[..., Any]], FlaskTask]:
        """Register a task; takes the options of ``Queue.task``. Works before ``init_app``."""
        return cast(_Declarations, self.registry).task(name, **options)

    def periodic(self, cron: str, name: str | None = None, args: Sequence[Any] = (),
                 kwargs: dict[str, Any] | None = None, queue: str = "default",
                 timezone: str | None = None) -> Callable[[Callable[..., Any]], FlaskTask]:
        """Run a task on a cron schedule (6 fields, seconds first); see ``Queue.periodic``."""
        return cast(_Declarations, self.registry).periodic(cron, name, args, kwargs, queue, timezone)

    def before_task(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn(task_name, args, kwargs)`` before every task, inside the app context."""
        return self.registry.before_task(fn)

    def after_task(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn(task_name, args, kwargs, result, error)`` after every attempt."""
        return self.registry.after_task(fn)

    def on_success(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return self.registry.on_success(fn)

    def on_failure(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return self.registry.on_failure(fn)

    def add_middleware(self, obj: Any) -> Any:
        """Middleware for every app's queue (see ``Queue.add_middleware``); works before ``init_app``."""
        return self.registry.add_middleware(obj)

    def on_event(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """``fn(event)`` on every event ``name`` (see ``Queue.on_event``); works before ``init_app``."""
        return self.registry.on_event(name)

    # -- the blueprint's authorization ----------------------------------------------------------
    def authorize(self, fn: Callable[[Request], bool]) -> Callable[[Request], bool]:
        """``fn(request) -> bool`` decides who may use the job endpoints (refused until set).

        Only a return of ``True`` itself allows: ``None``, ``""`` or ``"yes"`` refuse (403).
        """
        self._authorize = fn
        return fn
