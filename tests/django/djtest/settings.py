"""Settings of the test project. The test database path comes from the test process (env DJTEST_DATABASE)."""

import json
import os
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "taskito-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]

try:
    import django.tasks  # noqa: F401  (Django 6: built in)

    TASKS_APPS: list[str] = []
except ImportError:
    TASKS_APPS = ["django_tasks"]  # the backport on Django 4.2-5.2

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    *TASKS_APPS,
    "taskito_django",
    "djapp",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "djtest.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
_TEST_DB = os.path.join(tempfile.gettempdir(), f"taskito-djtest-{os.getpid()}.sqlite3")
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # A worker subprocess is pointed at the test process's (file) test database.
        "NAME": os.environ.get("DJTEST_DATABASE", _TEST_DB),
        "TEST": {"NAME": _TEST_DB},
        "OPTIONS": {"timeout": 20},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "/static/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests

TASKITO_WORKERS = 2
TASKITO_ADMIN_PER_PAGE = int(os.environ.get("DJTEST_PER_PAGE", "50"))
TASKS = {
    "default": {
        "BACKEND": "taskito_django.backends.TaskitoBackend",
        "QUEUES": ["default", "emails"],
        "OPTIONS": {"max_retries": 1},
    },
}
LOGGING = {"version": 1, "disable_existing_loggers": False}
TASKS["short"] = {
    "BACKEND": "taskito_django.backends.TaskitoBackend",
    "OPTIONS": {"max_retries": 0, "timeout": 1},
}

# Subprocess tests change settings through the environment: DJTEST_SETTINGS='{"TASKITO_BACKEND": "x"}'.
for _key, _value in json.loads(os.environ.get("DJTEST_SETTINGS", "{}")).items():
    globals()[_key] = _value
