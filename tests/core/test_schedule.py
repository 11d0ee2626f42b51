"""Cron schedules across daylight-saving changes: a fixed-time job fires once a day, every day."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from taskito.schedule import next_run

NEW_YORK = "America/New_York"  # clocks went back at 02:00 on 2026-11-01, forward at 02:00 on 2026-03-08


def ticks(cron: str, start: datetime, count: int) -> list[datetime]:
    found, after = [], start.timestamp()
    for _ in range(count):
        after = next_run(cron, NEW_YORK, after)
        found.append(datetime.fromtimestamp(after, timezone.utc))
    return found


def test_a_daily_job_in_the_repeated_hour_fires_once_when_clocks_go_back() -> None:
    fired = ticks("0 30 1 * * *", datetime(2026, 10, 31, 12, tzinfo=timezone.utc), 3)
    assert [tick.date().isoformat() for tick in fired] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert fired[0].hour == 5 and fired[1].hour == 6  # 01:30 EDT, then 01:30 EST


def test_aliases_are_daily_too() -> None:
    fired = ticks("@daily", datetime(2026, 10, 31, 12, tzinfo=timezone.utc), 3)
    assert fired[1] - fired[0] == timedelta(hours=25)  # the long day, once


def test_an_hourly_job_fires_every_real_hour_through_the_repeated_hour() -> None:
    fired = ticks("0 30 * * * *", datetime(2026, 11, 1, 4, tzinfo=timezone.utc), 4)
    assert [tick - fired[0] for tick in fired] == [timedelta(hours=h) for h in range(4)]


def test_a_daily_job_in_the_skipped_hour_still_fires_when_clocks_go_forward() -> None:
    fired = ticks("0 30 2 * * *", datetime(2026, 3, 7, 12, tzinfo=timezone.utc), 3)
    assert [tick.date().isoformat() for tick in fired] == ["2026-03-08", "2026-03-09", "2026-03-10"]
