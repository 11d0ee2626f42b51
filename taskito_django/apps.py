"""The app config: settings-change handling, system checks, the Django Tasks runner, autodiscovery."""

from __future__ import annotations

import logging

from django.apps import AppConfig
from django.core.signals import setting_changed
from django.utils.module_loading import autodiscover_modules

logger = logging.getLogger("taskito.django")


class TaskitoConfig(AppConfig):
    name = "taskito_django"
    label = "taskito_django"
    verbose_name = "Taskito"
    default = True
    default_auto_field = "django.db.models.AutoField"  # of the permissions' table-less model

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers the checks)
            compat,
        )
        from .project import autodiscover_module, reset_on_setting_change

        setting_changed.connect(reset_on_setting_change, dispatch_uid="taskito_django.reset_queue")
        if compat.AVAILABLE:
            from .backends import register_runner

            register_runner()
        module = autodiscover_module()
        if isinstance(module, str):  # anything else is reported by check taskito.E005
            # Imports <app>.tasks of every installed app; a missing module is skipped, an error
            # inside an existing one is raised (a broken tasks module must not go unnoticed).
            autodiscover_modules(module)
