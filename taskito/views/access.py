"""Who may call the protected views: decisions the Flask and FastAPI adapters share."""

from __future__ import annotations

from typing import Any

from .errors import Reply, error


def granted(decision: Any) -> bool:
    """Whether an authorization callback's answer lets the caller in: only ``True`` itself does.

    A callback that forgets to return (None), returns "" or a truthy "yes"/1 is a bug, and a bug
    must refuse, never open the job endpoints.
    """
    return decision is True


def refuse_cross_site(sec_fetch_site: str | None) -> Reply | None:
    """Refuse state-changing requests that a browser says come from another site.

    Browsers send ``Sec-Fetch-Site``; API clients do not. This keeps a cookie-based
    authorization callback from being used by another site's form (CSRF).
    """
    if sec_fetch_site == "cross-site":
        return error(403, "cross-site requests cannot change taskito jobs")
    return None
