"""The Taskito extension: one queue per Flask app, built from ``app.config`` on first use.

Tasks, periodic schedules and hooks can be declared before ``init_app`` (the factory
pattern): they are recorded and registered on the queue of every app the extension
is initialised with. Tasks run inside the application context of their app.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, cast

from flask import Flask, current_app, has_app_context

from taskito.config import queue_kwargs_from
from taskito.exceptions import ConfigurationError
from taskito.queue import Queue
from taskito.schedule import validate_schedule

if TYPE_CHECKING:
    from flask import Request

    from taskito.result import JobResult
    from taskito.task import Signature, TaskWrapper

logger = logging.getLogger("taskito.flask")

DEFAULT_URL_PREFIX = "/taskito"
_TASK_OPTIONS = inspect.signature(Queue.task)


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

    def __init__(self, extension: Taskito, fn: Callable[..., Any], name: str) -> None:
        self._extension = extension
        self.fn = fn
        self.name = name
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<flask task {self.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    @property
    def wrapper(self) -> TaskWrapper:
        """The core TaskWrapper on the current app's queue."""
        queue = self._extension._bound_queue()
        if queue is None:
            raise _not_initialized(f"enqueueing task {self.name!r}")
        return queue.tasks[self.name]

    def delay(self, *args: Any, **kwargs: Any) -> JobResult:
        return self.wrapper.delay(*args, **kwargs)

    def apply_async(self, *args: Any, **kwargs: Any) -> JobResult:
        return self.wrapper.apply_async(*args, **kwargs)

    def map(self, args_list: Any, **options: Any) -> list[JobResult]:
        return self.wrapper.map(args_list, **options)

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        return self.wrapper.s(*args, **kwargs)

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        return getattr(self.wrapper, attribute)  # options, queue, ...


class _UnboundQueue:
    """``taskito.queue`` before ``init_app``: records declarations, refuses operations."""

    def __init__(self, extension: Taskito) -> None:
        self._extension = extension

    def __repr__(self) -> str:
        return "<taskito queue, not initialised with a Flask app yet>"

    def task(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], FlaskTask]:
        return self._extension.task(*args, **kwargs)

    def periodic(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], FlaskTask]:
        return self._extension.periodic(*args, **kwargs)

    def before_task(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return self._extension.before_task(fn)

    def after_task(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return self._extension.after_task(fn)

    def on_success(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return self._extension.on_success(fn)

    def on_failure(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return self._extension.on_failure(fn)

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        raise _not_initialized(f"taskito.queue.{attribute}")


class _AppQueue:
    """One app's queue, built on first use: creating the app never needs the database.

    A failed build (database down, bad environment value) is not remembered, so the next use
    tries again; that is what lets ``/health`` turn 200 once PostgreSQL is up.
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
        self._declarations: list[Callable[[Queue], None]] = []
        self._apps: weakref.WeakKeyDictionary[Flask, _AppQueue] = weakref.WeakKeyDictionary()
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
            self._apps[app] = state
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
        """The Queue for ``app``, called on its first use; override to customise.

        Keys unset in ``app.config`` (as read by ``init_app``) fall back to env vars, then defaults.
        """
        state = self._apps.get(app)
        return Queue(**(state.queue_kwargs if state is not None else queue_kwargs_from(app.config)))

    def _build(self, state: _AppQueue) -> Queue:
        """The app's queue, built (once, whichever thread asks first) with every declaration on it."""
        queue = state.queue
        if queue is not None:
            return queue
        with state.lock:
            if state.queue is None:
                app = state.app()
                queue = self.create_queue(app)
                queue.task_contexts.append(_AppContextFactory(app))
                with self._lock:  # a declaration made now is either in the list or applied to this queue
                    for declare in self._declarations:
                        declare(queue)
                    state.queue = queue
                logger.debug("built the taskito queue of %r: %r", state.name, queue)
            return state.queue

    def _bound_state(self) -> _AppQueue | None:
        if has_app_context():
            state = self._apps.get(cast(Flask, current_app._get_current_object()))  # type: ignore[attr-defined]
            if state is not None:
                return state
        return self._last_app

    def _bound_queue(self) -> Queue | None:
        state = self._bound_state()
        return None if state is None else self._build(state)

    @property
    def queue(self) -> Queue:
        """The current app's Queue (or the last initialised one outside an app context).

        It is built on first access, which connects to the database: DatabaseUnavailableError if it
        cannot be reached (the next access tries again). Before ``init_app`` it accepts only
        declarations (task, periodic, hooks) and raises NotInitializedError for anything else.
        """
        queue = self._bound_queue()
        return queue if queue is not None else cast(Queue, _UnboundQueue(self))

    def queue_for(self, app: Flask) -> Queue:
        """``app``'s Queue, built now if it was not yet (see ``queue``)."""
        state = self._apps.get(app)
        if state is None:
            raise _not_initialized(f"the queue of the Flask app {app.name!r}")
        return self._build(state)

    # -- declarations (usable before init_app) -----------------------------------------------------
    def _declare(self, declare: Callable[[Queue], None]) -> None:
        with self._lock:
            self._declarations.append(declare)
            for state in list(self._apps.values()):
                if state.queue is not None:
                    declare(state.queue)

    def task(self, name: str | None = None, **options: Any) -> Callable[[Callable[..., Any]], FlaskTask]:
        """Register a task; takes the options of ``Queue.task``. Works before ``init_app``."""
        try:
            _TASK_OPTIONS.bind(None, name, **options)
        except TypeError as exc:
            raise TypeError(f"taskito.task(): {exc}; see Queue.task for the options") from None

        def decorator(fn: Callable[..., Any]) -> FlaskTask:
            if isinstance(fn, FlaskTask):
                raise TypeError(f"{fn.name} is already a task")
            task_name = name or f"{fn.__module__}.{fn.__qualname__}"
            self._declare(lambda queue: queue.task(name=task_name, **options)(fn) and None)
            return FlaskTask(self, fn, task_name)

        return decorator

    def periodic(self, cron: str, name: str | None = None, args: Sequence[Any] = (),
                 kwargs: dict[str, Any] | None = None, queue: str = "default",
                 timezone: str | None = None) -> Callable[[Callable[..., Any]], FlaskTask]:
        """Run a task on a cron schedule (6 fields, seconds first); see ``Queue.periodic``."""
        validate_schedule(cron, timezone)

        def decorator(fn: Callable[..., Any]) -> FlaskTask:
            task = fn if isinstance(fn, FlaskTask) else self.task(name=name, queue=queue)(fn)

            def declare(q: Queue) -> None:
                q.periodic(cron, args=args, kwargs=kwargs, queue=queue, timezone=timezone)(q.tasks[task.name])

            self._declare(declare)
            return task

        return decorator

    def _hook(self, kind: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        self._declare(lambda queue: getattr(queue, kind)(fn) and None)
        return fn

    def before_task(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn(task_name, args, kwargs)`` before every task, inside the app context."""
        return self._hook("before_task", fn)

    def after_task(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn(task_name, args, kwargs, result, error)`` after every attempt."""
        return self._hook("after_task", fn)

    def on_success(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return self._hook("on_success", fn)

    def on_failure(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return self._hook("on_failure", fn)

    # -- the blueprint's authorization ----------------------------------------------------------
    def authorize(self, fn: Callable[[Request], bool]) -> Callable[[Request], bool]:
        """``fn(request) -> bool`` decides who may use the job endpoints (refused until set).

        Only a return of ``True`` itself allows: ``None``, ``""`` or ``"yes"`` refuse (403).
        """
        self._authorize = fn
        return fn
