"""The admin pages in headless Chromium (Debian chromium + chromium-driver) against pytest-django's live server.

Fails (never skips) when Chromium is missing, so a CI without a browser cannot pass silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from taskito_django import queue
from tests.django.conftest import finish_all
from tests.support import headless_chromium
from tests.support import wait_in_browser as wait


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    driver = headless_chromium(tmp_path_factory.mktemp("chromium-profile"), 'the admin browser test')
    yield driver
    driver.quit()




def test_staff_logs_in_opens_the_overview_and_retries_a_dead_letter(
        browser: Any, live_server: Any, django_user_model: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    django_user_model.objects.create_user("ops", password="s3cret-pw", is_staff=True)
    queue.enqueue("djapp.tasks.explode", args=("card declined",), queue="payments")
    [dead_id] = finish_all(error="ValueError: card declined", queues=["payments"])
    queue.enqueue("djapp.tasks.add", args=(1, 2))

    browser.delete_all_cookies()
    browser.get(f"{live_server.url}/admin/login/?next=/admin/")
    browser.find_element(By.NAME, "username").send_keys("ops")
    browser.find_element(By.NAME, "password").send_keys("s3cret-pw")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".app-taskito"), "the Taskito section on the index")

    browser.find_element(By.CSS_SELECTOR, ".app-taskito a[href='/admin/taskito/']").click()
    wait(browser, lambda d: d.find_elements(By.ID, "taskito-queues"), "the overview")
    payments = browser.find_element(By.CSS_SELECTOR, "tr[data-queue='payments']")
    assert [cell.text for cell in payments.find_elements(By.CSS_SELECTOR, "td.num")] == ["0", "0", "0", "0", "1", "0"]
    browser.save_screenshot(str(tmp_path / "overview.png"))

    browser.find_element(By.PARTIAL_LINK_TEXT, "Dead letters").click()
    row = wait(browser, lambda d: d.find_element(By.XPATH, f"//tr[.//a[text()='{dead_id}']]"), "the dead letter row")
    assert "ValueError: card declined" in row.text
    row.find_element(By.XPATH, ".//button[text()='Retry']").click()

    wait(browser, lambda d: "/admin/taskito/jobs/" in d.current_url and dead_id not in d.current_url,
         "the new job's page")
    new_id = browser.current_url.rstrip("/").rsplit("/", 1)[-1]
    assert f"replayed as the new job {new_id}" in browser.find_element(By.CSS_SELECTOR, "ul.messagelist").text
    assert browser.find_element(By.CSS_SELECTOR, ".taskito-status").text == "pending"
    assert queue.get_job(new_id).to_dict()["args"] == ["card declined"]
    browser.save_screenshot(str(tmp_path / "new-job.png"))

    browser.get(f"{live_server.url}/admin/taskito/")
    payments = browser.find_element(By.CSS_SELECTOR, "tr[data-queue='payments']")
    assert [cell.text for cell in payments.find_elements(By.CSS_SELECTOR, "td.num")] == ["1", "0", "0", "0", "0", "0"]
