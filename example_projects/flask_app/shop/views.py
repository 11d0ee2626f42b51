"""A route that enqueues a job and one that reports on it."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request, url_for

from .extensions import taskito
from .tasks import send_welcome_email

bp = Blueprint("shop", __name__)


@bp.post("/signup")
def signup() -> Any:
    address = (request.get_json(silent=True) or {}).get("email")
    if not address or "@" not in address:
        return jsonify(error="send JSON like {\"email\": \"ada@example.com\"}"), 400
    job = send_welcome_email.delay(address)
    return jsonify(job_id=job.id, status_url=url_for("shop.job_status", job_id=job.id)), 202


@bp.get("/jobs/<job_id>")
def job_status(job_id: str) -> Any:
    job = taskito.queue.get_job(job_id)
    if job is None:
        return jsonify(error=f"no job {job_id}"), 404
    data = job.to_dict()
    return jsonify(id=job.id, status=data["status"], result=data["result"], error=data["error"])
