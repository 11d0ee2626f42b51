"""The Flask example project's routes and task, in eager mode (`make demo-flask` runs it with a real worker)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "example_projects" / "flask_app"


def test_example_signup_enqueues_and_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    for name in [m for m in sys.modules if m == "shop" or m.startswith("shop.")]:
        monkeypatch.delitem(sys.modules, name)
    from shop import create_app
    from shop.extensions import taskito

    app = create_app({"TASKITO_DB_PATH": str(tmp_path / "t.db"), "TASKITO_EAGER": True,
                      "MAIL_OUTBOX": str(tmp_path / "outbox.txt"), "TASKITO_API_TOKEN": "t0ken"})
    client = app.test_client()
    assert client.post("/signup", json={}).status_code == 400
    response = client.post("/signup", json={"email": "ada@example.com"})
    assert response.status_code == 202
    assert "To: ada@example.com" in (tmp_path / "outbox.txt").read_text()
    assert client.get("/taskito/jobs").status_code == 403
    assert client.get("/taskito/jobs", headers={"Authorization": "Bearer t0ken"}).status_code == 200
    taskito.queue_for(app).close()
