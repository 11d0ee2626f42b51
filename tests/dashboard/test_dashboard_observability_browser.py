"""The observability parts of the page in headless Chromium: tasks, queue wait, running jobs, logs, search."""
# ruff: noqa: F811 - the browser's fixtures are imported from the page's main tests and named as arguments

from __future__ import annotations

import threading
import time
from pathlib import Path

from taskito import Queue, current_job
from taskito.storage import Started
from tests.dashboard.test_dashboard_browser import (  # noqa: F401 - browser and page: the same fixtures
    all_css,
    browser,
    click,
    console_errors,
    css,
    page,
    show,
    wait,
)


def test_tasks_table_ranks_failing_and_slow_tasks_and_switches_range(page, queue: Queue, tmp_path: Path) -> None:
    @queue.task(name="fine")
    def fine() -> None: ...

    @queue.task(name="slow")
    def slow() -> None:
        time.sleep(0.3)

    @queue.task(name="broken", max_retries=0)
    def broken() -> None:
        raise ValueError("nope")

    @queue.periodic(cron="0 0 * * * *", name="hourly-report")
    def report() -> None: ...

    for task in (fine, fine, slow, broken):
        task.delay()
    queue.run_worker(burst=True, concurrency=2)
    driver = page()
    show(driver, "/tasks")
    wait(driver, lambda d: [r.get_attribute("data-key") for r in all_css(d, "#tasks-body tr")] ==
         ["broken", "slow", "fine"], "failing, then slow, then fine")
    broken_row = css(driver, '#tasks-body tr[data-key="broken"]').text
    assert "100.0%" in broken_row
    assert len(all_css(driver, '#tasks-body tr[data-key="fine"] svg.spark path')) == 2
    click(driver, '#page-tasks .range-btn[data-range="7d"]')
    wait(driver, lambda d: d.execute_script("return document.body.dataset.shown") == "/tasks?range=7d",
         "the 7 d range in the address")
    assert css(driver, '#page-tasks .range-btn[data-range="7d"]').get_attribute("aria-pressed") == "true"
    assert [r.get_attribute("data-key") for r in all_css(driver, "#tasks-body tr")] == ["broken", "slow", "fine"]
    click(driver, '#tasks-table th[data-sort="attempts"] button')  # most attempts first: fine ran twice
    wait(driver, lambda d: [r.get_attribute("data-key") for r in all_css(d, "#tasks-body tr")][0] == "fine",
         "the tasks sorted by attempts")
    assert css(driver, '#tasks-table th[data-sort="attempts"]').get_attribute("aria-sort") == "descending"
    shot = tmp_path / "tasks.png"
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    show(driver, "/schedules")
    assert "hourly-report" in css(driver, '#schedules-body tr[data-key="hourly-report"]').text
    assert console_errors(driver) == []


def test_queue_wait_and_what_each_worker_runs_now(page, queue: Queue) -> None:
    queue.enqueue("waiting.task", queue="backlog")
    queue.storage.register_worker("w-1", {"hostname": "box", "pid": 42, "queues": ["default"], "concurrency": 1})
    job = queue.enqueue("long.task")
    [record] = queue.storage.claim("w-1", ["default"], 1, 60)
    queue.storage.start([Started(record.id, record.attempt, time.time())])
    driver = page()
    show(driver, "/queues")
    backlog = css(driver, '#queues-body tr[data-key="backlog"]').text
    assert " ms" in backlog or " s" in backlog  # the oldest job's wait is shown
    show(driver, "/workers")
    wait(driver, lambda d: "long.task" in css(d, '#workers-body tr[data-key="w-1"]').text, "the running job")
    wait(driver, lambda d: "for " in css(d, '#workers-body tr[data-key="w-1"] .running-for').text, "how long it runs")
    link = css(driver, '#workers-body tr[data-key="w-1"] .running-now a')
    assert link.get_attribute("title") == job.id
    link.click()
    wait(driver, lambda d: css(d, "#detail-id").text == job.id, "the running job's detail")
    assert console_errors(driver) == []


def test_job_detail_shows_log_lines_live_and_search_finds_a_job(page, queue: Queue) -> None:
    release = threading.Event()

    @queue.task(name="stepper", timeout=60)
    def stepper() -> None:
        current_job.log("step one", count=1)
        release.wait(20)
        current_job.log("step two", level="error")

    job = stepper.delay()
    worker = threading.Thread(target=queue.run_worker, kwargs={"burst": True, "concurrency": 1}, daemon=True)
    worker.start()
    try:
        driver = page()
        css(driver, "#search-id").send_keys(job.id + "\n")
        wait(driver, lambda d: css(d, "#detail-id").text == job.id, "search to open the job")
        wait(driver, lambda d: [r.text for r in all_css(d, "#detail-logs tr")] and
             "step one" in all_css(d, "#detail-logs tr")[0].text, "the first line while the job runs")
        assert '{"count":1}' in all_css(driver, "#detail-logs tr")[0].text
        assert css(driver, "#detail-logs-live").is_displayed()
        release.set()
        wait(driver, lambda d: len(all_css(d, "#detail-logs tr")) == 2, "the second line, without a reload", 15)
        second = all_css(driver, "#detail-logs tr")[1]
        assert "step two" in second.text and "error" in second.text
        css(driver, "#search-id").clear()
        css(driver, "#search-id").send_keys("no-such-job\n")  # not an id: searched as text
        wait(driver, lambda d: d.execute_script("return document.body.dataset.shown") == "/jobs?text=no-such-job",
             "the jobs page searching the text")
        assert css(driver, "#jobs-empty").is_displayed() and css(driver, "#filter-text").get_attribute("value") == \
            "no-such-job"
        assert console_errors(driver) == []
    finally:
        release.set()
        worker.join(30)


def test_a_job_found_from_the_keyboard_on_a_phone(page, queue: Queue, tmp_path: Path) -> None:
    from selenium.webdriver.common.keys import Keys

    @queue.task(name="phone.task")
    def phone_task() -> None:
        current_job.log("hello from a phone")

    job = phone_task.delay()
    queue.run_worker(burst=True, concurrency=1)
    driver = page()
    try:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
        show(driver, "/tasks")
        wait(driver, lambda d: all_css(d, '#tasks-body tr[data-key="phone.task"]'), "the task row")
        assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        # Keyboard only: focus the search box, type the id, Enter opens the job with its log.
        driver.execute_script("document.getElementById('search-id').focus()")
        driver.switch_to.active_element.send_keys(job.id, Keys.ENTER)
        wait(driver, lambda d: "hello from a phone" in css(d, "#detail-logs").text, "the job's log via the keyboard")
        shot = tmp_path / "phone.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 5_000
        assert console_errors(driver) == []
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
