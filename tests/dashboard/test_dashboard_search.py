"""Finding and ordering jobs through the dashboard's API, on both engines: by id prefix, task and text, the
bound of a text search, and the sorts an index keeps (any other refused with a 400 that says what to do)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from taskito import Queue
from taskito.dashboard import create_app
from taskito.storage import Completion, Started
from taskito.storage.base import indexed_orders
from tests.dashboard.conftest import WORKER, DashClient


def listed(client: DashClient, query: str) -> list[str]:
    response = client.get("/api/jobs?" + query)
    assert response.status_code == 200, response.json
    return [job["id"] for job in response.json["jobs"]]


def finish(queue: Queue, job_id: str, queue_name: str, error: str | None = None) -> None:
    """Claim and start the job (the only pending one of its queue), then complete it or let it die."""
    [record] = queue.storage.claim(WORKER, [queue_name], 1, 60)
    assert record.id == job_id
    queue.storage.start([Started(record.id, record.attempt, time.time())])
    if error is None:
        queue.storage.complete([Completion(record.id, record.attempt, b"null")])
    else:
        queue.storage.fail(record.id, record.attempt, error, "Traceback", None)


@pytest.fixture
def jobs(engine_queue: Queue) -> dict[str, Any]:
    """Six jobs: two users' sign-ups (one of them finished), a report that died with an error, and three
    whose arguments hold what LIKE patterns and PostgreSQL's bytea escapes treat specially."""
    made = {
        "ada": engine_queue.enqueue("accounts.signup", args=("ada@example.com",), queue="q-ada"),
        "bob": engine_queue.enqueue("accounts.signup", args=("BOB@example.com",), kwargs={"plan": "pro"},
                                    queue="q-bob"),
        "report": engine_queue.enqueue("reports.build", args=(2024,), queue="q-report"),
        "percent": engine_queue.enqueue("text.echo", args=("100% off_now",)),
        "slash": engine_queue.enqueue("text.echo", args=("C:\\temp",)),
        "accent": engine_queue.enqueue("text.echo", args=("café crème",)),
    }
    finish(engine_queue, made["ada"].id, "q-ada")
    finish(engine_queue, made["report"].id, "q-report", "KeyError: 'quarterly totals' is missing")
    return {name: job.id for name, job in made.items()}


@pytest.fixture
def client(engine_queue: Queue) -> DashClient:
    return DashClient(create_app(engine_queue))


def test_by_id_prefix_task_and_text_on_both_engines(client: DashClient, jobs: dict[str, Any]) -> None:
    ids = jobs
    newest_first = [ids[name] for name in ("accent", "slash", "percent", "report", "bob", "ada")]
    assert listed(client, "") == newest_first
    # The start of an id (any case) finds that job; a shorter one all that start with it, newest first.
    assert listed(client, f"id={ids['bob'][:26].upper()}") == [ids["bob"]]
    assert listed(client, f"id={ids['bob']}") == [ids["bob"]]
    assert listed(client, "id=" + ids["ada"][:4]) == sorted(ids.values(), reverse=True)  # ids start with their time
    assert listed(client, "id=ffff") == []
    assert listed(client, f"id={ids['ada'][:4]}&status=complete") == [ids["ada"]]
    assert listed(client, "task=accounts.signup") == [ids["bob"], ids["ada"]]
    # Text in arguments (keyword arguments too) or in the error, ASCII letters in any case.
    assert listed(client, "text=bob@EXAMPLE") == [ids["bob"]]
    assert listed(client, "text=example.com&task=accounts.signup") == [ids["bob"], ids["ada"]]
    assert listed(client, "text=%22pro%22") == [ids["bob"]]
    assert listed(client, "text=quarterly+TOTALS") == [ids["report"]]
    assert listed(client, "text=2024") == [ids["report"]]
    # LIKE's wildcards and escape character, and non-ASCII text, are looked for as written.
    assert listed(client, "text=100%25") == [ids["percent"]]
    assert listed(client, "text=_now") == [ids["percent"]]
    assert listed(client, "text=o%25f") == []
    assert listed(client, "text=o_f") == []  # as a wildcard, "_" would find "off"
    assert listed(client, "text=C:%5C%5Ctemp") == [ids["slash"]]  # the JSON of the argument: C:\\temp
    assert listed(client, "text=caf%C3%A9+cr%C3%A8me") == [ids["accent"]]
    assert listed(client, "text=cafe") == []
    body = client.get("/api/jobs?text=example").json
    assert body["text_scan"] == 10_000 and body["filters"]["text"] == "example"


def test_text_search_reads_only_the_most_recent_jobs(client: DashClient, engine_queue: Queue,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The bound that keeps a text search cheap at any table size, made small here: older matches are
    not found, and the answer says how many jobs were looked at."""
    import taskito.storage.sqlbase
    import taskito.views.jobs

    monkeypatch.setattr(taskito.storage.sqlbase, "TEXT_SEARCH_ROWS", 4)
    monkeypatch.setattr(taskito.views.jobs, "TEXT_SEARCH_ROWS", 4)
    needles = [engine_queue.enqueue("t.find", args=(f"needle {n}",)).id for n in range(3)]
    hay = [engine_queue.enqueue("t.hay", args=("hay",)).id for _ in range(2)]
    last = engine_queue.enqueue("t.find", args=("needle 3",)).id
    assert listed(client, "text=needle") == [last, needles[2]]  # the 4 newest: last, hay, hay, needles[2]
    assert listed(client, "text=needle&task=t.find") == [last, needles[2], needles[1], needles[0]]
    assert client.get("/api/jobs?text=needle").json["text_scan"] == 4
    assert hay


def test_sorts_an_index_keeps_and_others_while_few_jobs_match(client: DashClient, engine_queue: Queue,
                                                               jobs: dict[str, Any],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    ids = jobs
    by_task = listed(client, "sort=task")
    assert by_task[:2] == [ids["ada"], ids["bob"]] and by_task[-3:] == [ids["percent"], ids["slash"], ids["accent"]]
    assert listed(client, "status=complete&sort=-finished") == [ids["ada"]]
    # Jobs not started (or not finished) yet come last, whichever the direction, on both engines.
    for order in ("started", "-started"):
        assert set(listed(client, f"sort={order}")[:2]) == {ids["ada"], ids["report"]}
    assert listed(client, "sort=-finished")[:2] == [ids["report"], ids["ada"]]
    assert listed(client, "sort=finished")[:2] == [ids["ada"], ids["report"]]
    body = client.get("/api/jobs?sort=-attempts").json
    assert body["sort"] == "-attempts" and set(body["sortable"]) == {
        "created", "task", "queue", "status", "priority", "started", "finished", "attempts"}

    # With more jobs than SORTABLE_ROWS, only what an index keeps (by the filters given) is offered.
    import taskito.views.jobs

    monkeypatch.setattr(taskito.views.jobs, "SORTABLE_ROWS", 2)
    assert client.get("/api/jobs").json["sortable"] == ["created", "queue", "status", "task"]
    assert client.get("/api/jobs?queue=default").json["sortable"] == ["created", "queue"]
    assert client.get("/api/jobs?status=pending").json["sortable"] == ["created", "status"]
    assert indexed_orders(status="dead", queue="q-report") == {"created", "finished"}
    assert client.get("/api/jobs?id=0&sort=-created").json["sortable"] == ["created"]
    refused = client.get("/api/jobs?sort=-attempts")
    assert refused.status_code == 400 and "sort '-attempts' needs narrower filters" in refused.json["error"]
    assert "sort by created, queue, status, task" in refused.json["error"]
    assert client.get("/api/jobs?queue=q-bob&sort=-attempts").status_code == 200  # one job in that queue
    assert client.get("/api/jobs?text=example&sort=-attempts").status_code == 200  # a text search is bounded
    assert client.get("/api/dead-letters?sort=-finished").json["jobs"][0]["id"] == ids["report"]
