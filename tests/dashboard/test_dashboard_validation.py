"""The dashboard refuses what the queue refuses, as a 400 naming the value (never a 500)."""

from __future__ import annotations

import pytest

from taskito import Queue
from tests.dashboard.conftest import DashClient, Populated


@pytest.mark.parametrize("older_than", [1e12, 2**70, "NaN", "Infinity", "1e999"])
def test_purging_dead_letters_older_than_a_bad_number_is_a_400(client: DashClient, queue: Queue,
                                                              populated: Populated, older_than: object) -> None:
    response = client.post("/api/dead-letters/purge", json={"older_than": older_than})
    assert response.status_code == 400 and "older_than must be" in response.json["error"]
    assert queue.stats()["dead"] == 2


def test_a_queue_name_longer_than_any_queue_s_is_a_400(client: DashClient, queue: Queue) -> None:
    response = client.post(f"/api/queues/{'x' * 256}/pause")
    assert response.status_code == 400 and "queue name must be at most 255 characters" in response.json["error"]
    assert queue.paused_queues() == []
