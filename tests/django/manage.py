#!/usr/bin/env python
"""manage.py of the test project (worker subprocesses run ``manage.py taskito_worker`` from here)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djtest.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
