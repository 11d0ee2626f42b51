"""The one JSON view layer: every decision the web adapters share, free of any web framework.

The dashboard's ``/api``, the Flask blueprint, the FastAPI router and the Django admin all answer
from here, so they agree on:

- one pagination shape: ``{"jobs": [...], "limit", "offset", "has_more", "next_offset"}``, read with
  one row more than a page so that nothing counts a table (``next_offset`` is null on the last page);
- one set of filters: ``status`` is one of the six job statuses (or "completed"), anything else is
  a 400 that names it; ``queue`` and ``task`` match exactly; ``id`` is the start of a job id and
  ``text`` is looked for in arguments and errors (among the 10,000 most recent matches of the other
  filters); ``sort`` takes only the orders an index keeps with those filters, unless few jobs match
  (``jobs.listing``);
- one rule for what a user may do to a job (``rules``): a job can be cancelled until it finishes (a
  running one is asked to stop); only dead letters are retried or deleted; finished jobs are replayed;
  the bulk views apply it to each job of a list and say which were refused, and why;
- one error shape: ``{"error": message}`` plus fields (a refused cancel adds ``id``, ``cancelled``
  and the job's ``status``).

A view is a function ``handler(queue, params, **path_params) -> (status, body)``: ``params`` maps
query parameters (and a POST's JSON body keys) to plain values; it reads them with ``params``'
checkers, raises ``ViewError`` for bad input or a refused action, and uses public ``Queue`` methods
only. ``VIEWS`` lists every view with its method and path; each adapter registers that table, so a
new view is one function in the module it belongs to (jobs, dead, queues, cluster) plus one line::

    View("GET", "/jobs/{job_id}/logs", jobs.job_logs, "A job's log lines"),

and the dashboard (under ``/api``), the Flask blueprint and the FastAPI router serve it, behind
their authentication, with POST views refused when read-only or cross-site. ``call(view, queue,
params, **path_params)`` runs one and turns ``ViewError`` into its reply. The open endpoints that
load balancers read (``health``, ``stats``) are not in the table: each adapter mounts them itself.
"""

from __future__ import annotations

from .access import granted, refuse_cross_site
from .errors import Reply, ViewError, error
from .health import health, overview, stats
from .params import fetch_page, json_body
from .params import status as status_filter
from .routes import VIEWS, View, call
from .rules import WAITING, can_cancel, can_replay, can_retry, why_not_cancelled

__all__ = ["VIEWS", "WAITING", "Reply", "View", "ViewError", "call",
           "can_cancel", "can_replay", "can_retry", "error", "fetch_page", "granted", "health", "json_body", "overview",
           "refuse_cross_site", "stats", "status_filter", "why_not_cancelled"]
