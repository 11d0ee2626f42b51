"""The admin pages in headless Chromium (Debian chromium + chromium-driver) against pytest-django's live server.

Fails (never skips) when Chromium is missing, so a CI without a browser cannot pass silently.
"""

from __future__ import annotations

import os
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


def operator(django_user_model: Any, username: str, password: str) -> Any:
    """A staff member granted both Taskito permissions."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user(username, password=password, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="taskito_django"))
    return user


def log_in(browser: Any, live_server: Any, username: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    browser.get(f"{live_server.url}/admin/login/?next=/admin/")
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".app-taskito"), "the Taskito section on the index")


def test_staff_logs_in_opens_the_overview_and_retries_a_dead_letter(
        browser: Any, live_server: Any, django_user_model: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    operator(django_user_model, "ops", "s3cret-pw")
    queue.enqueue("djapp.tasks.explode", args=("card declined",), queue="payments")
    [dead_id] = finish_all(error="ValueError: card declined", queues=["payments"])
    queue.enqueue("djapp.tasks.add", args=(1, 2))

    log_in(browser, live_server, "ops", "s3cret-pw")

    browser.find_element(By.CSS_SELECTOR, ".app-taskito a[href='/admin/taskito/']").click()
    wait(browser, lambda d: d.find_elements(By.ID, "taskito-queues"), "the overview")
    payments = browser.find_element(By.CSS_SELECTOR, "tr[data-queue='payments']")
    assert [cell.text for cell in payments.find_elements(By.CSS_SELECTOR, "td.num")] == ["0", "0", "0", "0", "1", "0"]
    browser.save_screenshot(str(tmp_path / "overview.png"))

    browser.find_element(By.PARTIAL_LINK_TEXT, "Dead letters").click()
    row = wait(browser, lambda d: d.find_element(By.XPATH, f"//tr[.//a[@title='{dead_id}']]"), "the dead letter row")
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


def screenshot_dir(tmp_path: Path) -> Path:
    """TASKITO_SCREENSHOTS=DIR keeps the screenshots for a person to look at; else the test's tmp dir."""
    target = Path(os.environ.get("TASKITO_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


def box(element: Any) -> dict[str, float]:
    rect = element.rect
    return {"left": rect["x"], "right": rect["x"] + rect["width"], "top": rect["y"], "height": rect["height"]}


@pytest.mark.parametrize("width", [1400, 1920])
def test_job_list_and_dead_letters_read_well(browser: Any, live_server: Any, django_user_model: Any,
                                             tmp_path: Path, width: int) -> None:
    """The job table stays inside its column beside the open filter panel, "Last error" shows,
    ids and dates stay on one line, headers sort, and the page does not scroll sideways."""
    from selenium.webdriver.common.by import By

    operator(django_user_model, "ops", "s3cret-pw")
    for n in range(3):
        queue.enqueue("djapp.tasks.explode", args=(f"card {n} declined",), queue="payments")
    finish_all(error="ValueError: " + "the card issuer refused the payment for a reason it did not give " * 3,
               queues=["payments"])
    for n in range(3):
        queue.enqueue("djapp.tasks.report", args=(f"quarter {n}",))
    browser.set_window_size(width, 1000)
    log_in(browser, live_server, "ops", "s3cret-pw")
    shots = screenshot_dir(tmp_path)

    for url, name in (("/admin/taskito/jobs/", "jobs"), ("/admin/taskito/dead/", "dead")):
        browser.get(live_server.url + url)
        table = wait(browser, lambda d: d.find_element(By.ID, "result_list"), f"the {name} table")
        browser.save_screenshot(str(shots / f"admin-{name}-{width}.png"))
        assert browser.execute_script("return document.documentElement.scrollWidth") <= width, name
        assert browser.execute_script("var r = document.querySelector('#changelist .results');"
                                      "return r.scrollWidth <= r.clientWidth"), name  # nothing hidden sideways
        error = table.find_element(By.CSS_SELECTOR, "thead th[data-column='error']")
        assert error.is_displayed() and box(error)["right"] <= box(table)["right"] + 1
        assert box(error)["right"] <= width
        filters = browser.find_elements(By.ID, "changelist-filter")
        if filters:  # the table ends before the filter panel starts: nothing runs under it
            assert box(table)["right"] <= box(filters[0])["left"], (box(table), box(filters[0]))
        line = browser.execute_script(
            "return parseFloat(getComputedStyle(document.querySelector('#result_list td.field-queue')).lineHeight)")
        for selector in ("th.field-id a", "td.field-created time", "td.field-finished time"):
            for cell in table.find_elements(By.CSS_SELECTOR, f"tbody tr {selector}"):
                assert box(cell)["height"] < 2.5 * line, (name, selector, box(cell), line)  # two lines at most

    browser.get(live_server.url + "/admin/taskito/jobs/")
    sortable = browser.find_elements(By.CSS_SELECTOR, "#result_list thead th.sortable")
    assert [th.get_attribute("data-column") for th in sortable] == ["task", "queue", "status", "created"]
    browser.find_element(By.CSS_SELECTOR, "th[data-column='task'] a").click()
    wait(browser, lambda d: "o=task" in d.current_url, "sorting by task")
    tasks = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#result_list td.field-task")]
    assert tasks == sorted(tasks) and len(tasks) == 6
    assert browser.execute_script("var r = document.querySelector('#changelist .results');"
                                  "return r.scrollWidth <= r.clientWidth")  # nothing hidden sideways
    browser.save_screenshot(str(shots / f"admin-jobs-sorted-{width}.png"))

    for url, name in (("/admin/taskito/", "overview"),
                      (f"/admin/taskito/jobs/{queue.dead_letters(limit=1)[0].id}/", "detail")):
        browser.get(live_server.url + url)
        crumbs = browser.find_element(By.CSS_SELECTOR, ".breadcrumbs")  # styled by this Django's admin CSS
        assert crumbs.value_of_css_property("background-color") not in ("rgba(0, 0, 0, 0)", "transparent"), name
        assert browser.execute_script("return document.documentElement.scrollWidth") <= width, name
        browser.save_screenshot(str(shots / f"admin-{name}-{width}.png"))

    browser.get(live_server.url + "/admin/taskito/dead/")
    browser.find_element(By.ID, "taskito-delete-all").click()
    wait(browser, lambda d: d.find_elements(By.ID, "taskito-confirm"), "the confirmation page")
    browser.save_screenshot(str(shots / f"admin-confirm-{width}.png"))
    assert queue.stats()["dead"] == 3
    browser.find_element(By.ID, "taskito-confirm").click()
    wait(browser, lambda d: "Deleted 3 dead letter(s)" in d.find_element(By.CSS_SELECTOR, "ul.messagelist").text,
         "the message")
    assert queue.stats()["dead"] == 0
