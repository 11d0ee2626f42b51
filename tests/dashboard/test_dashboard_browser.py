"""The page in a real browser: headless Chromium (Debian chromium + chromium-driver) driven by selenium.

The page runs against a live queue served by a real server thread. These tests fail (never skip) when
Chromium is missing, so a CI without a browser cannot pass silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from taskito import Queue
from taskito.dashboard import create_app
from tests.dashboard.conftest import SCRIPT_ARG, Populated
from tests.support import headless_chromium

STAT_KEYS = ("pending", "running", "completed", "failed", "dead", "cancelled")
TOKEN = "browser-token-7f3a9c"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    driver = headless_chromium(tmp_path_factory.mktemp("chromium-profile"), "the dashboard's browser tests")
    yield driver
    driver.quit()


@pytest.fixture
def page(browser: Any, queue: Queue, dashboard_server: Callable[..., Any]) -> Callable[..., Any]:
    """Open the dashboard of ``queue`` (created with the given options) and wait for its first refresh."""

    def open_page(**options: Any) -> Any:
        browser.delete_all_cookies()
        server = dashboard_server(create_app(queue, **options))
        browser.get(server.url + "/")
        browser.get_log("browser")  # start each page with an empty console
        if not options.get("token"):
            wait(browser, lambda d: d.execute_script("return document.body.dataset.loaded === '1'"), "first refresh")
        browser.dashboard_url = server.url
        return browser

    return open_page


def wait(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = 10) -> Any:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    # rows come and go while the page refreshes: a vanished element just means "look again"
    waiter = WebDriverWait(driver, timeout, poll_frequency=0.05,
                           ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))
    try:
        return waiter.until(condition, f"timed out waiting for {what}")
    except TimeoutException as exc:  # say what the page showed instead
        shown = driver.execute_script("return document.querySelector('main')?.innerText ?? ''")[:2000]
        raise AssertionError(f"timed out waiting for {what}; the page showed:\n{shown}") from exc


def css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def all_css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def click(driver: Any, selector: str) -> None:
    element = css(driver, selector)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def show(driver: Any, address: str) -> Any:
    """Go to a page of the dashboard (``"/jobs?status=dead"``) as a link would, and wait until it shows it."""
    driver.execute_script("window.location.hash = arguments[0]", "#" + address)
    return wait(driver, lambda d: d.execute_script("return document.body.dataset.shown") == address,
                f"the page {address}")


def shown_counts(driver: Any) -> dict[str, int]:
    return {key: int(css(driver, f"#count-{key}").text) for key in STAT_KEYS}


def console_errors(driver: Any) -> list[str]:
    """JavaScript errors and Content-Security-Policy violations end up here."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_overview_counts_match_stats_and_each_page_lists_its_part(page, queue: Queue, populated: Populated,
                                                                    tmp_path: Path) -> None:
    driver = page()
    assert driver.current_url.endswith("/#/overview")  # the root address shows the overview
    assert shown_counts(driver) == queue.stats()
    assert len(all_css(driver, "#throughput-chart .bars g")) == 60
    assert "2 completed" in css(driver, "#throughput-summary").text
    assert css(driver, "#conn").text.startswith("updated")
    assert css(driver, "#nav-dead").text == "2"
    assert not css(driver, "#mode-readonly").is_displayed() and not css(driver, "#logout").is_displayed()
    assert not css(driver, "#page-jobs").is_displayed()
    shot = tmp_path / "overview.png"
    assert driver.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000

    show(driver, "/queues")
    assert [row.get_attribute("data-key") for row in all_css(driver, "#queues-body tr")] == ["default", "mail"]
    mail = css(driver, '#queues-body tr[data-key="mail"]').text
    assert "active" in mail and "Pause" in mail
    show(driver, "/workers")
    assert css(driver, "#workers-empty").is_displayed()
    show(driver, "/dead")
    assert {row.get_attribute("data-key") for row in all_css(driver, "#dead-body tr")} == set(populated["dead"])
    show(driver, "/jobs")
    assert len(all_css(driver, "#jobs-body tr")) == 10
    assert css(driver, '.nav a[aria-current="page"]').text == "Jobs"
    assert console_errors(driver) == []


def test_the_page_refreshes_itself_in_place(page, queue: Queue, populated: Populated) -> None:
    driver = page()
    driver.execute_script("window.__card = document.getElementById('count-pending');")
    new = [queue.enqueue("tasks.add", args=(n, n)) for n in range(4)]
    expected = queue.stats()
    wait(driver, lambda d: shown_counts(d) == expected, "the new counts to appear without a reload")
    assert driver.execute_script("return document.getElementById('count-pending') === window.__card")
    show(driver, "/jobs")
    driver.execute_script("window.__job = document.querySelector('#jobs-body tr');")
    newer = queue.enqueue("tasks.add", args=(9, 9))
    wait(driver, lambda d: css(d, "#jobs-body tr").get_attribute("data-key") == newer.id, "the newest job row")
    assert driver.execute_script("return document.body.contains(window.__job)")  # old rows kept, not rebuilt
    assert {row.get_attribute("data-key") for row in all_css(driver, "#jobs-body tr")} >= {job.id for job in new}
    assert console_errors(driver) == []


def test_retry_a_dead_letter_from_the_page(page, queue: Queue, populated: Populated) -> None:
    driver = page()
    show(driver, "/dead")
    dead_id = populated["dead"][0]
    click(driver, f'#dead-body tr[data-key="{dead_id}"] .act-retry')
    wait(driver, lambda d: queue.get_job(dead_id) is None, "the dead letter to be replayed")
    assert queue.stats()["dead"] == 1
    replayed = queue.list_jobs(status="pending", task_name="tasks.explode")
    assert len(replayed) == 1 and replayed[0].to_dict()["args"] == [0]
    wait(driver, lambda d: not all_css(d, f'#dead-body tr[data-key="{dead_id}"]'), "the row to leave the table")
    assert "Retried" in css(driver, "#flash").text
    wait(driver, lambda d: css(d, "#nav-dead").text == "1", "the count of dead letters to follow")


def test_pause_and_resume_a_queue_from_the_page(page, queue: Queue, populated: Populated) -> None:
    driver = page()
    show(driver, "/queues")
    click(driver, '#queues-body tr[data-key="mail"] .act-toggle')
    wait(driver, lambda d: queue.paused_queues() == ["mail"], "the queue to be paused")
    wait(driver, lambda d: "paused" in css(d, '#queues-body tr[data-key="mail"]').text, "the paused badge")
    assert css(driver, '#queues-body tr[data-key="mail"] .act-toggle').text == "Resume"
    click(driver, '#queues-body tr[data-key="mail"] .act-toggle')
    wait(driver, lambda d: queue.paused_queues() == [], "the queue to be resumed")
    assert console_errors(driver) == []


def test_a_script_argument_shows_as_text_and_never_runs(page, queue: Queue, populated: Populated) -> None:
    driver = page()
    show(driver, "/jobs")
    echo_id = populated["pending"][1]
    row = css(driver, f'#jobs-body tr[data-key="{echo_id}"]')
    assert SCRIPT_ARG in row.text
    click(driver, f'#jobs-body tr[data-key="{echo_id}"] a.job-link')
    wait(driver, lambda d: SCRIPT_ARG in css(d, "#detail-args").text, "the job detail")
    assert SCRIPT_ARG in css(driver, "#detail-kwargs").text
    show(driver, "/dead")
    dead_row = css(driver, f'#dead-body tr[data-key="{populated["dead"][0]}"]').text
    assert "<b>boom 0</b>" in dead_row  # HTML in an error message is shown, not rendered
    assert driver.execute_script("return typeof window.__pwned") == "undefined"
    assert driver.execute_script("return document.querySelectorAll('#jobs-body script, #page-job script, "
                                 "#dead-body b').length") == 0
    assert console_errors(driver) == []


def test_job_filters_and_detail_with_error_history(page, queue: Queue, populated: Populated) -> None:
    from selenium.webdriver.support.ui import Select

    driver = page()
    show(driver, "/jobs")
    Select(css(driver, "#filter-status")).select_by_value("dead")
    wait(driver, lambda d: {r.get_attribute("data-key") for r in all_css(d, "#jobs-body tr")} == set(populated["dead"]),
         "only dead jobs")
    Select(css(driver, "#filter-queue")).select_by_value("mail")
    wait(driver, lambda d: [r.get_attribute("data-key") for r in all_css(d, "#jobs-body tr")] == [populated["dead"][1]],
         "dead jobs of the mail queue")
    assert driver.current_url.endswith("#/jobs?status=dead&queue=mail")  # the filters are in the address
    click(driver, "#job-filters button[type=reset]")
    wait(driver, lambda d: len(all_css(d, "#jobs-body tr")) == 10, "every job again")

    dead_id = populated["dead"][1]
    driver.get(f"{driver.dashboard_url}/#job/{dead_id}")  # the first edition's links still lead to the job
    wait(driver, lambda d: len(all_css(d, "#detail-errors tr")) == 1, "the error history")
    assert driver.current_url.endswith(f"#/jobs/{dead_id}")
    assert css(driver, "#detail-errors tr").text.startswith("1")
    assert "ValueError: <b>boom 1</b>" in css(driver, "#detail-error").text
    assert css(driver, "#detail-retry").is_displayed() and not css(driver, "#detail-cancel").is_displayed()
    click(driver, "#detail-back")
    wait(driver, lambda d: d.execute_script("return document.body.dataset.shown") == "/jobs", "the list again")


def test_lists_show_the_random_part_of_job_ids_and_the_title_no_path(page, queue: Queue,
                                                                     populated: Populated) -> None:
    """Ids start with their enqueue time: ten jobs enqueued at once must still read differently."""
    together = [job.id for job in queue.enqueue_many("tasks.add", [(n, n) for n in range(10)])]
    assert len({job_id[:10] for job_id in together}) < 10  # what the page used to show: repeats
    driver = page()
    show(driver, "/jobs")
    wait(driver, lambda d: {r.get_attribute("data-key") for r in all_css(d, "#jobs-body tr")} >= set(together),
         "the ten new jobs")
    links = all_css(driver, "#jobs-body a.job-link")
    shown = {link.get_attribute("title"): link.text for link in links}
    assert set(together) | set(populated["dead"]) <= set(shown)
    for job_id, text in shown.items():
        assert text == f"{job_id[:6]}…{job_id[-6:]}", (job_id, text)  # both ends, the full id as the title
    assert len({shown[job_id] for job_id in together}) == 10

    click(driver, f'#jobs-body tr[data-key="{together[3]}"] a.job-link')
    wait(driver, lambda d: css(d, "#detail-id").text == together[3], "the full id in the detail")

    folder = str(Path(queue.db_path).parent)
    assert driver.title == f"Job {together[3][:6]}…{together[3][-6:]} · taskito.db · taskito dashboard"
    assert css(driver, "#queue-name").get_attribute("textContent") == "taskito.db"
    assert folder not in driver.page_source and folder not in driver.title
    assert console_errors(driver) == []


def test_sign_in_with_the_token(page, queue: Queue, populated: Populated) -> None:
    from selenium.webdriver.common.keys import Keys

    driver = page(token=TOKEN)
    wait(driver, lambda d: d.current_url.endswith("/login"), "the login form")
    css(driver, "#token").send_keys("wrong" + Keys.ENTER)
    wait(driver, lambda d: "not right" in css(d, ".login-error").text, "the refusal")
    css(driver, "#token").send_keys(TOKEN + Keys.ENTER)
    wait(driver, lambda d: d.execute_script("return document.body.dataset.loaded === '1'"), "the dashboard")
    assert shown_counts(driver) == queue.stats()
    assert css(driver, "#logout").is_displayed()
    show(driver, "/queues")
    click(driver, '#queues-body tr[data-key="mail"] .act-toggle')  # CSRF token and cookie work under a token
    wait(driver, lambda d: queue.paused_queues() == ["mail"], "the queue to be paused")
    click(driver, "#logout")
    wait(driver, lambda d: d.current_url.endswith("/login"), "the login form after signing out")
    # the refused sign-in answered 401 on purpose; nothing else may have gone wrong
    assert [e for e in console_errors(driver) if "/login - Failed to load resource" not in e] == []


def test_read_only_page_offers_no_actions(page, queue: Queue, populated: Populated) -> None:
    driver = page(read_only=True)
    assert css(driver, "#mode-readonly").is_displayed()
    assert shown_counts(driver) == queue.stats()
    for address in ("/queues", "/dead", "/jobs", f"/jobs/{populated['dead'][0]}"):
        show(driver, address)
        actions = all_css(driver, ".act-toggle, .act-retry, .act-delete, .act-purge, .act-run, #dead-purge, "
                                  "#dead-retry-all, #jobs-revoke, .bulk button, .detail-actions button")
        assert [button.text for button in actions if button.is_displayed()] == [], address
        assert not any(box.is_displayed() for box in all_css(driver, "main input[type=checkbox]")), address
    assert console_errors(driver) == []


def test_a_job_of_a_workflow_shows_the_workflow_and_links_to_its_other_jobs(page, queue: Queue) -> None:
    from taskito import chain, group

    @queue.task(name="tasks.add")
    def add(a: int, b: int) -> int:
        return a + b

    workflow = chain(add.s(1, 1), group(add.s(1), add.s(2)), add.s(10)).delay()
    first, left, right, last = workflow.jobs
    driver = page()
    driver.get(f"{driver.dashboard_url}/#job/{left.id}")
    wait(driver, lambda d: css(d, "#detail-workflow").is_displayed(), "the workflow panel")
    stages = all_css(driver, "#detail-workflow-stages > li")
    assert [stage.get_attribute("data-key") for stage in stages] == ["stage-0", "stage-1", "stage-2"]
    assert "group of 2" in stages[1].text and css(driver, "#detail-workflow-status").text == "pending"
    links = [link.get_attribute("title") for link in all_css(driver, "#detail-workflow-stages a.job-link")]
    assert links == [first.id, left.id, right.id, last.id]
    assert css(driver, "#detail-workflow-stages a.current").get_attribute("title") == left.id
    click(driver, f"#detail-workflow-stages a[title='{last.id}']")
    wait(driver, lambda d: css(d, "#detail-id").text == last.id, "the last step's detail")
    wait(driver, lambda d: css(d, "#detail-workflow-stages a.current").get_attribute("title") == last.id,
         "the panel to mark the last step")
    plain = queue.enqueue("tasks.add", args=(1, 2))
    driver.get(f"{driver.dashboard_url}/#job/{plain.id}")
    wait(driver, lambda d: css(d, "#detail-id").text == plain.id and not css(d, "#detail-workflow").is_displayed(),
         "a plain job, without a workflow panel")
    assert console_errors(driver) == []
