"""Cron schedules for periodic tasks (croniter, 6 fields with seconds first)."""

from __future__ import annotations

import time
from datetime import datetime
from datetime import timezone as dt_timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from .exceptions import InvalidValueError
from .validation import name_problem, shown


def validate_schedule(cron: str, timezone: str | None) -> None:
    """Fail at decoration time, not at 3 a.m. in a worker."""
    if not isinstance(cron, str) or not croniter.is_valid(cron, second_at_beginning=True):
        raise InvalidValueError(
            f"invalid cron expression {shown(cron)}: use 6 fields, seconds first "
            "('sec min hour day month weekday'), e.g. '0 */5 * * * *'"
        )
    if timezone is None:
        return
    if name_problem(timezone) is None:
        try:
            ZoneInfo(timezone)
            return
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a key too long for a file name
            pass
    raise InvalidValueError(f"unknown timezone {shown(timezone)}: use an IANA name such as 'Europe/Paris'")


def next_run(cron: str, timezone: str | None, after: float | None = None) -> float:
    """The first tick strictly after ``after`` (default: now), as a UNIX timestamp.

    When clocks go back, the repeated hour's wall times come twice. As in cron, a schedule at
    fixed hours (say 01:30 daily) fires at the first of the two only; one whose hour field has
    a ``*`` (hourly, every 5 minutes) keeps firing through both.
    """
    zone = ZoneInfo(timezone) if timezone else dt_timezone.utc
    start = datetime.fromtimestamp(time.time() if after is None else after, tz=zone)
    ticks = croniter(cron, start, second_at_beginning=True)
    fixed_hours = _at_fixed_hours(cron)
    while True:
        tick = ticks.get_next(datetime)
        if not (fixed_hours and tick.fold):
            return tick.timestamp()


def _at_fixed_hours(cron: str) -> bool:
    fields = cron.split()
    if len(fields) < 3:  # an alias: @daily, @weekly... fire at midnight; @hourly every hour
        return cron.strip() != "@hourly"
    return "*" not in fields[2]
