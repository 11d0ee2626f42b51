"""``delay_on_commit`` / ``apply_async_on_commit``: a job exists only once its transaction commits."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from taskito.exceptions import SerializationError
from taskito_django import queue

pytestmark = pytest.mark.django_db(transaction=True)  # real commits and rollbacks


def pending() -> list[dict[str, Any]]:
    return [job.to_dict() for job in queue.list_jobs(status="pending")]


def test_enqueued_when_the_transaction_commits() -> None:
    from djapp.tasks import add

    with transaction.atomic():
        assert add.delay_on_commit(2, 3) is None
        assert pending() == []  # not yet: a worker could run it before the data it needs is committed
    [job] = pending()
    assert (job["task_name"], job["args"]) == ("djapp.tasks.add", [2, 3])


def test_never_enqueued_when_the_transaction_rolls_back() -> None:
    from djapp.models import Order
    from djapp.tasks import mark_paid

    with pytest.raises(RuntimeError), transaction.atomic():
        order = Order.objects.create(item="chair")
        mark_paid.delay_on_commit(order.pk)
        raise RuntimeError("payment form invalid")
    assert pending() == [] and Order.objects.count() == 0


def test_a_rolled_back_savepoint_drops_only_its_own_jobs() -> None:
    from djapp.tasks import add

    with transaction.atomic():
        add.delay_on_commit(1, 1)
        try:
            with transaction.atomic():
                add.delay_on_commit(2, 2)
                raise ValueError("inner failure")
        except ValueError:
            pass
    assert [job["args"] for job in pending()] == [[1, 1]]


def test_outside_a_transaction_it_enqueues_at_once() -> None:
    from djapp.tasks import add

    add.delay_on_commit(4, 5)
    assert [job["args"] for job in pending()] == [[4, 5]]


def test_apply_async_on_commit_keeps_the_options() -> None:
    from djapp.tasks import add

    with transaction.atomic():
        add.apply_async_on_commit(args=(1,), kwargs={"b": 2}, priority=9, queue="urgent", delay=60,
                                  unique_key="once")
    [job] = [job.to_dict() for job in queue.list_jobs()]
    assert (job["priority"], job["queue"], job["kwargs"], job["unique_key"]) == (9, "urgent", {"b": 2}, "once")
    assert job["scheduled_at"] > job["created_at"] + 50


def test_bad_arguments_fail_at_the_call_not_at_commit_time() -> None:
    from djapp.tasks import add

    with transaction.atomic():
        with pytest.raises(SerializationError, match="djapp.tasks.add"):
            add.delay_on_commit(object(), 1)
        with pytest.raises(ValueError, match="delay must be a finite number of seconds, zero or more, got -1"):
            add.apply_async_on_commit(args=(1, 2), delay=-1)
    assert pending() == []


def test_the_view_enqueues_on_commit_and_nothing_on_rollback(client: Any) -> None:
    client.post("/order/", {"item": "lamp"})
    assert [job["task_name"] for job in pending()] == ["djapp.tasks.mark_paid"]
    client.post("/order/", {"item": "lamp", "fail": "1"})
    assert len(pending()) == 1
