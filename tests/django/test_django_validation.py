"""The management commands refuse bad numbers as the ``taskito`` CLI does: a usage error naming the flag."""

from __future__ import annotations

import pytest

from tests.django.conftest import manage


@pytest.mark.parametrize(("args", "message"), [
    (["taskito_purge", "--dead-older-than", "nan"], "dead_older_than must be a finite number of seconds, got nan"),
    (["taskito_worker", "--drain-timeout", "inf"], "drain_timeout must be a finite number of seconds, got inf"),
    (["taskito_worker", "--concurrency", str(2**70)], "concurrency must be at most 10000"),
])
def test_bad_numeric_flags_are_usage_errors(args: list[str], message: str) -> None:
    result = manage(*args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
