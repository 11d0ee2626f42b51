"""The permissions of the Taskito admin pages. Nothing is stored in your database.

``Taskito`` is an unmanaged model without a table: it exists so that its two permissions exist
(created by ``migrate``) and can be granted on the admin's user and group pages, as for any model:

- ``taskito_django.view_taskito``: see the Taskito pages (overview, jobs, dead letters, dashboard);
- ``taskito_django.change_taskito``: also act (pause and resume queues, cancel jobs, retry and
  delete dead letters, empty a queue). Superusers have both.
"""

from __future__ import annotations

from django.db import models

VIEW_PERMISSION = "taskito_django.view_taskito"
CHANGE_PERMISSION = "taskito_django.change_taskito"


class Taskito(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_taskito", "Can see the Taskito admin pages"),
            ("change_taskito", "Can operate Taskito: pause queues, cancel jobs, retry and delete dead letters"),
        ]
        verbose_name = "Taskito"
        verbose_name_plural = "Taskito"
