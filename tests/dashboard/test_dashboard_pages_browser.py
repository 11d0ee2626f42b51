"""Every page of the dashboard in headless Chromium, at desktop and phone widths; links that land on a page
with its filters, back and forward; the keyboard alone; search; bulk actions on real failing work."""
# ruff: noqa: F811 - the browser's fixtures are imported from the page's main tests and named as arguments

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from taskito import Queue, chain
from taskito.storage import Status
from tests.dashboard.conftest import WORKER, Populated
from tests.dashboard.test_dashboard_browser import (  # noqa: F401 - browser and page: the same fixtures
    all_css,
    browser,
    click,
    console_errors,
    css,
    page,
    show,
    shown_counts,
    wait,
)
from tests.support import start_worker, wait_until

APPS = Path(__file__).resolve().parents[1] / "apps"
WIDTHS = {"desktop": (1280, 800), "phone": (390, 844)}


def keys(driver: Any, selector: str) -> list[str]:
    return [row.get_attribute("data-key") for row in all_css(driver, selector)]


def at_width(driver: Any, width: int, height: int) -> None:
    """The viewport of a desktop window or of a phone (touch, device width), as a user's browser has it."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})


@pytest.fixture
def full(queue: Queue, populated: Populated) -> dict[str, Any]:
    """What every page has something to show about: jobs in all states (populated), a workflow of two steps,
    a schedule, and a live worker running the running job."""

    @queue.task(name="tasks.add")
    def add(a: int, b: int) -> int:
        return a + b

    @queue.periodic(cron="0 0 3 * * *", name="nightly-cleanup")
    def cleanup() -> None: ...

    workflow = chain(add.s(1, 1), add.s(10)).delay()
    queue.storage.register_worker(WORKER, {"hostname": "box-1", "pid": 4242, "queues": ["default", "mail"],
                                           "concurrency": 2})
    return {"workflow": workflow.id, "dead": populated["dead"], "running": populated["running"][0]}


def test_every_page_at_desktop_and_phone_widths(page, queue: Queue, full: dict[str, Any], tmp_path: Path) -> None:
    dead = full["dead"][0]
    pages: dict[str, tuple[str, Callable[[Any], Any]]] = {
        "overview": ("/overview", lambda d: shown_counts(d) == queue.stats()
                     and len(all_css(d, "#throughput-chart .bars g")) == 60),
        "jobs": ("/jobs", lambda d: keys(d, "#jobs-body tr") == [job.id for job in queue.list_jobs(limit=25)]),
        "job": (f"/jobs/{dead}", lambda d: css(d, "#detail-id").text == dead
                and len(all_css(d, "#detail-errors tr")) == 1 and "boom 0" in css(d, "#detail-error").text),
        "dead": ("/dead", lambda d: set(keys(d, "#dead-body tr")) == set(full["dead"])),
        "queues": ("/queues", lambda d: keys(d, "#queues-body tr") == ["default", "mail"]),
        "workers": ("/workers", lambda d: keys(d, "#workers-body tr") == [WORKER]
                    and "tasks.send_mail" in css(d, "#workers-body .running-now").text),
        "schedules": ("/schedules", lambda d: keys(d, "#schedules-body tr") == ["nightly-cleanup"]),
        "tasks": ("/tasks", lambda d: {"tasks.add", "tasks.explode", "tasks.flaky"} <= set(keys(d, "#tasks-body tr"))),
        # newest first by id; the populated queue's empty workflow may share the chain's millisecond
        "workflows": ("/workflows", lambda d: "0 of 2" in css(d, f"#workflows-body tr[data-key='{full['workflow']}']")
                      .text),
        "workflow": (f"/workflows/{full['workflow']}", lambda d: keys(d, "#workflow-stages > li") == [
            "stage-0", "stage-1"] and "chain" in css(d, "#workflow-fields").text),
        "missing": ("/no-such-page", lambda d: css(d, "#h-missing").is_displayed()),
    }
    driver = page()
    shots = tmp_path / "screenshots"
    try:
        for label, (width, height) in WIDTHS.items():
            at_width(driver, width, height)
            folder = shots / f"{label}-{width}x{height}"
            folder.mkdir(parents=True)
            for name, (address, shows) in pages.items():
                show(driver, address)
                wait(driver, shows, f"the {name} page's content at {label} width")
                assert css(driver, f"#page-{name}").is_displayed() and css(driver, f"#h-{name}").is_displayed()
                assert [p.get_attribute("id") for p in all_css(driver, "main > section.page") if p.is_displayed()] \
                    == [f"page-{name}"]
                # Wide tables scroll inside their frame; the page itself never scrolls sideways.
                assert driver.execute_script(
                    "return document.documentElement.scrollWidth <= window.innerWidth + 1"), (name, label)
                assert driver.execute_script("return window.innerWidth") == width
                shot = folder / f"{name}.png"
                assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 5_000, shot
            assert console_errors(driver) == [], label
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert sorted(path.name for path in shots.iterdir()) == ["desktop-1280x800", "phone-390x844"]
    assert len(list(shots.glob("*/*.png"))) == 2 * len(pages)


def test_links_land_on_the_page_with_its_filters_and_back_and_forward_work(page, queue: Queue,
                                                                           full: dict[str, Any]) -> None:
    from selenium.webdriver.support.ui import Select

    driver = page()
    url = driver.dashboard_url
    driver.get(f"{url}/#/jobs?status=dead&queue=mail&sort=-attempts")
    wait(driver, lambda d: keys(d, "#jobs-body tr") == [full["dead"][1]], "the dead job of the mail queue")
    assert Select(css(driver, "#filter-status")).first_selected_option.get_attribute("value") == "dead"
    assert Select(css(driver, "#filter-queue")).first_selected_option.get_attribute("value") == "mail"
    assert css(driver, '#jobs-table th[data-sort="attempts"]').get_attribute("aria-sort") == "descending"
    driver.refresh()
    wait(driver, lambda d: d.execute_script("return document.body.dataset.shown")
         == "/jobs?status=dead&queue=mail&sort=-attempts", "the same list after a reload")
    assert keys(driver, "#jobs-body tr") == [full["dead"][1]]

    click(driver, '.nav a[data-page="queues"]')
    wait(driver, lambda d: d.execute_script("return document.body.dataset.shown") == "/queues", "the queues")
    driver.back()
    wait(driver, lambda d: d.execute_script("return document.body.dataset.shown")
         == "/jobs?status=dead&queue=mail&sort=-attempts", "back to the filtered jobs")
    assert keys(driver, "#jobs-body tr") == [full["dead"][1]]
    assert Select(css(driver, "#filter-queue")).first_selected_option.get_attribute("value") == "mail"
    driver.forward()
    wait(driver, lambda d: d.execute_script("return document.body.dataset.shown") == "/queues", "forward again")

    for address, shows in [
        (f"/jobs/{full['running']}", lambda d: css(d, "#detail-id").text == full["running"]
         and css(d, "#detail-cancel").text == "Cancel running job"),
        (f"/workflows/{full['workflow']}", lambda d: len(all_css(d, "#workflow-stages a.job-link")) == 2),
        ("/tasks?range=24h", lambda d: css(d, '#page-tasks .range-btn[data-range="24h"]')
         .get_attribute("aria-pressed") == "true"),
        ("/overview?range=7d", lambda d: "last 7 days" in css(d, "#throughput-title").text
         and len(all_css(d, "#throughput-chart .bars g")) == 56),
        ("/dead?text=boom+1", lambda d: keys(d, "#dead-body tr") == [full["dead"][1]]),
    ]:
        driver.get(f"{url}/#{address}")
        wait(driver, lambda d, address=address: d.execute_script("return document.body.dataset.shown") == address,
             address)
        wait(driver, shows, f"the content of {address}")
    assert console_errors(driver) == []


def focus_by_tab(driver: Any, selector: str, presses: int = 150) -> Any:
    """Press Tab (only) until the focused element matches ``selector``; it must be reachable so."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    for _ in range(presses):
        if driver.execute_script("return document.activeElement.matches(arguments[0])", selector):
            return driver.switch_to.active_element
        ActionChains(driver).send_keys(Keys.TAB).perform()
    raise AssertionError(f"{selector} cannot be reached with Tab")


def press(driver: Any, key: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(key).perform()


def focused(driver: Any) -> str:
    return driver.execute_script("return document.activeElement.id")


def focus_ring(driver: Any) -> str:
    return driver.execute_script("const s = getComputedStyle(document.activeElement); "
                                 "return s.outlineStyle === 'none' ? '' : s.outlineWidth")


def test_the_keyboard_alone_navigates_sorts_opens_and_confirms(page, queue: Queue, full: dict[str, Any]) -> None:
    from selenium.webdriver.common.keys import Keys

    driver = page()
    skip = focus_by_tab(driver, "#skip-link")  # the first stop of the page
    assert skip.is_displayed() and skip.rect["y"] >= 0 and focus_ring(driver)
    press(driver, Keys.ENTER)
    wait(driver, lambda d: focused(d) == "h-overview", "the skip link to move the focus to the page")

    focus_by_tab(driver, '.nav a[data-page="jobs"]')
    assert focus_ring(driver)
    press(driver, Keys.ENTER)
    wait(driver, lambda d: d.execute_script("return document.body.dataset.shown") == "/jobs", "the jobs page")
    assert focused(driver) == "h-jobs"  # the focus lands on the new page, not left in the navigation

    oldest = queue.list_jobs(order_by="created", limit=1)[0].id
    focus_by_tab(driver, '#jobs-table th[data-sort="created"] button')
    assert focus_ring(driver)
    press(driver, Keys.ENTER)  # newest first was the order: Enter makes it oldest first
    wait(driver, lambda d: d.execute_script("return document.body.dataset.shown") == "/jobs?sort=created",
         "oldest first")
    wait(driver, lambda d: keys(d, "#jobs-body tr")[0] == oldest, "the oldest job on top")
    assert css(driver, '#jobs-table th[data-sort="created"]').get_attribute("aria-sort") == "ascending"
    press(driver, Keys.SPACE)  # the button kept the focus; Space sorts too
    wait(driver, lambda d: css(d, '#jobs-table th[data-sort="created"]').get_attribute("aria-sort") == "descending",
         "newest first again")

    focus_by_tab(driver, f'#jobs-body tr[data-key="{full["dead"][0]}"] a.job-link')
    press(driver, Keys.ENTER)
    wait(driver, lambda d: css(d, "#detail-id").text == full["dead"][0], "the job's page")
    assert focused(driver) == "h-job"

    # A confirmation takes the focus; Escape cancels, and Tab then Enter on its button confirms.
    focus_by_tab(driver, "#detail-delete")
    press(driver, Keys.ENTER)
    wait(driver, lambda d: css(d, "#confirm").is_displayed(), "the confirmation")
    assert focused(driver) == "confirm-no"
    press(driver, Keys.ESCAPE)
    wait(driver, lambda d: not css(d, "#confirm").is_displayed(), "the confirmation to close")
    assert queue.get_job(full["dead"][0]) is not None
    assert focused(driver) == "detail-delete"
    press(driver, Keys.ENTER)
    wait(driver, lambda d: css(d, "#confirm").is_displayed(), "the confirmation again")
    focus_by_tab(driver, "#confirm-yes", presses=3)  # the dialog holds the focus: its other button is next
    press(driver, Keys.ENTER)
    wait(driver, lambda d: queue.get_job(full["dead"][0]) is None, "the dead letter to be deleted")
    wait(driver, lambda d: d.execute_script("return document.body.dataset.shown") == "/jobs?sort=-created",
         "the list the job was opened from")
    assert full["dead"][0] not in keys(driver, "#jobs-body tr") and focused(driver) == "h-jobs"
    assert console_errors(driver) == []


def test_search_from_the_page_by_id_prefix_text_and_task(page, queue: Queue, full: dict[str, Any]) -> None:
    from selenium.webdriver.common.keys import Keys

    dead = full["dead"]
    driver = page()
    css(driver, "#search-id").send_keys(dead[1][:20], Keys.ENTER)  # the start of an id
    wait(driver, lambda d: keys(d, "#jobs-body tr") == [dead[1]], "the job whose id starts so")
    assert css(driver, "#filter-id").get_attribute("value") == dead[1][:20]
    css(driver, "#search-id").clear()
    css(driver, "#search-id").send_keys(f"{dead[0][:6]}…{dead[0][-6:]}", Keys.ENTER)  # as lists show ids
    wait(driver, lambda d: dead[0] in keys(d, "#jobs-body tr"), "the job of a shortened id")
    css(driver, "#search-id").clear()
    css(driver, "#search-id").send_keys("BOOM 1", Keys.ENTER)  # text in errors, any case
    wait(driver, lambda d: keys(d, "#jobs-body tr") == [dead[1]], "the job whose error says it")
    assert "10,000 most recent jobs" in css(driver, "#jobs-text-note").text

    click(driver, "#job-filters button[type=reset]")
    wait(driver, lambda d: d.execute_script("return document.body.dataset.shown") == "/jobs", "every job")
    css(driver, "#filter-task").send_keys("tasks.explode")  # applied after a pause in typing
    wait(driver, lambda d: set(keys(d, "#jobs-body tr")) == set(dead), "the jobs of that task")
    assert driver.current_url.endswith("#/jobs?task=tasks.explode")
    assert console_errors(driver) == []


def test_bulk_retry_and_cancel_of_real_failing_work(page, queue: Queue, tmp_path: Path) -> None:
    """A worker process (the CLI) runs a task that always fails until three jobs are dead letters; from the
    page they are selected, retried as new jobs in one go, and those cancelled in one go."""
    tags = ["alpha", "beta", "gamma"]
    failing = [queue.enqueue("observe_app.always_fails", args=(tag,)).id for tag in tags]
    fine = queue.enqueue("observe_app.add", args=(1, 2)).id
    env = {"TASKITO_DB_PATH": queue.db_path, "EFFECTS_DIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(APPS), os.environ.get("PYTHONPATH")]))}
    worker = start_worker("observe_app:queue", APPS, env=env)
    try:
        wait_until(lambda: queue.stats()["dead"] == 3 and queue.stats()["completed"] == 1, 30,
                   message="three dead letters and one completed job")
    finally:
        worker.stop()
    assert worker.proc.returncode == 0

    driver = page()
    show(driver, "/dead")
    assert set(keys(driver, "#dead-body tr")) == set(failing)
    assert "ValueError: bad alpha" in css(driver, f'#dead-body tr[data-key="{failing[0]}"]').text
    click(driver, "#dead-all")
    assert css(driver, "#dead-selected").text == "3 selected"
    click(driver, "#dead-bulk-retry")
    wait(driver, lambda d: css(d, "#confirm").is_displayed(), "the confirmation")
    assert "3 selected dead letters" in css(driver, "#confirm-text").text
    click(driver, "#confirm-yes")
    wait(driver, lambda d: css(d, "#dead-bulk-result").text == "Retried 3 of 3 selected", "the count retried")
    assert queue.stats()["dead"] == 0
    retried = queue.list_jobs(status=Status.PENDING, task_name="observe_app.always_fails")
    assert sorted(job.to_dict()["args"][0] for job in retried) == tags
    wait(driver, lambda d: css(d, "#dead-empty").is_displayed(), "no dead letters left")

    show(driver, "/jobs")
    for job in retried:
        click(driver, f'#jobs-body tr[data-key="{job.id}"] .pick-row')
    click(driver, f'#jobs-body tr[data-key="{fine}"] .pick-row')  # complete: the rule refuses it
    assert css(driver, "#jobs-selected").text == "4 selected"
    click(driver, "#jobs-bulk-cancel")
    wait(driver, lambda d: css(d, "#confirm").is_displayed(), "the confirmation")
    click(driver, "#confirm-yes")
    wait(driver, lambda d: css(d, "#jobs-bulk-result").text.startswith("Cancelled 3 of 4 selected; 1 refused"),
         "the count cancelled and the refusal")
    assert "is complete already" in css(driver, "#jobs-bulk-result").text
    assert queue.stats()["cancelled"] == 3 and queue.get_job(fine).status == "complete"
    assert css(driver, "#jobs-selected").text == "0 selected"
    assert console_errors(driver) == []
