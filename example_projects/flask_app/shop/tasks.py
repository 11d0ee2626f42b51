"""Tasks run by `flask --app shop taskito worker`, each inside the app's application context."""

from __future__ import annotations

import time
from pathlib import Path

from flask import current_app, g

from .extensions import taskito


class OutboxMailer:
    """Stands in for an SMTP connection: appends each message to a file."""

    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "a")  # closed by the teardown in create_app()

    def send(self, sender: str, to: str, subject: str) -> None:
        self._file.write(f"From: {sender} To: {to} Subject: {subject}\n")

    def close(self) -> None:
        self._file.close()


def get_mailer() -> OutboxMailer:
    """One mailer per application context, closed by the teardown in create_app()."""
    if "mailer" not in g:
        g.mailer = OutboxMailer(current_app.config["MAIL_OUTBOX"])
    return g.mailer


@taskito.task(max_retries=5, retry_backoff=2.0)
def send_welcome_email(address: str) -> dict[str, str]:
    sender = current_app.config["MAIL_SENDER"]
    subject = f"Welcome to {current_app.config['SHOP_NAME']}"
    time.sleep(0.2)  # a slow SMTP server: the reason this runs outside the request
    get_mailer().send(sender, address, subject)
    return {"to": address, "from": sender, "subject": subject}
