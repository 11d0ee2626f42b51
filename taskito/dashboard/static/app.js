// taskito dashboard: one page over the JSON API under ./api.
// Rules kept throughout: every value that comes from a job (arguments, results, errors, names) reaches the
// page through textContent or an attribute, never parsed as HTML; the page is updated in place (rows
// are keyed and reused) so the periodic refresh never flashes.
"use strict";

(function () {
  const REFRESH_MS = 3000;
  const STAT_KEYS = ["pending", "running", "completed", "failed", "dead", "cancelled"];
  const DETAIL_FIELDS = [
    ["id", "ID"], ["task_name", "Task"], ["queue", "Queue"], ["status", "Status"], ["priority", "Priority"],
    ["retries", "Retries"], ["timeout", "Timeout (s)"], ["progress", "Progress"], ["unique_key", "Unique key"],
    ["created_at", "Created"], ["scheduled_at", "Scheduled for"], ["started_at", "Started"],
    ["finished_at", "Finished"], ["expires_at", "Expires"], ["worker_id", "Worker"], ["depends_on", "Depends on"],
  ];
  const SVG = "http://www.w3.org/2000/svg";

  const state = {
    csrf: "",
    readOnly: false,
    auth: false,
    jobs: { status: "", queue: "", task: "", offset: 0, limit: 25, hasMore: false },
    dead: { offset: 0, limit: 25, hasMore: false },
    detailId: null,
    detailLogs: { id: null, after: 0, lines: [] },
    tasksRange: 3600,
    serverNow: Date.now() / 1000,  // the server's clock, from the last refresh (ages are judged by it)
    queueNames: "",
    taskNames: "",
  };

  const $ = (id) => document.getElementById(id);

  // -- small DOM helpers ---------------------------------------------------------------------
  function h(tag, props, children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (key === "text") node.textContent = value;
        else if (key === "class") node.className = value;
        else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
        else node.setAttribute(key, value);
      }
    }
    for (const child of children || []) node.append(child);
    return node;
  }

  function setText(node, value) {
    const text = value === null || value === undefined ? "" : String(value);
    if (node.textContent !== text) node.textContent = text;
  }

  function setAttr(node, name, value) {
    const text = String(value);
    if (node.getAttribute(name) !== text) node.setAttribute(name, text);
  }

  function setClass(node, className) {
    if (node.className !== className) node.className = className;
  }

  // Make tbody hold one row per item, in order, reusing rows by key: no rebuild, no flash.
  function syncRows(tbody, items, keyOf, create, update) {
    const existing = new Map();
    for (const row of Array.from(tbody.children)) existing.set(row.dataset.key, row);
    let previous = null;
    for (const item of items) {
      const key = String(keyOf(item));
      let row = existing.get(key);
      if (row) existing.delete(key);
      else {
        row = create(item);
        row.dataset.key = key;
      }
      update(row, item);
      const expected = previous ? previous.nextSibling : tbody.firstChild;
      if (row !== expected) tbody.insertBefore(row, expected);
      previous = row;
    }
    for (const row of existing.values()) row.remove();
  }

  function cells(row) {
    return row.children;
  }

  // -- formatting ------------------------------------------------------------------------------
  function shortId(id) {
    // Ids are 12 hex digits of milliseconds, then 20 random ones: jobs enqueued together share their
    // start, so lists show both ends ("01a22b…9f3c1d"); the full id is in the title and the detail.
    const text = String(id);
    return text.length > 14 ? text.slice(0, 6) + "…" + text.slice(-6) : text;
  }

  function timeOf(ts) {
    if (ts === null || ts === undefined) return "";
    const date = new Date(ts * 1000);
    const today = new Date();
    return date.toDateString() === today.toDateString() ? date.toLocaleTimeString() : date.toLocaleString();
  }

  function ago(ts, now) {
    if (ts === null || ts === undefined) return "";
    const seconds = Math.max(0, Math.round((now || Date.now() / 1000) - ts));
    if (seconds < 60) return seconds + "s ago";
    if (seconds < 3600) return Math.floor(seconds / 60) + "m ago";
    if (seconds < 86400) return Math.floor(seconds / 3600) + "h ago";
    return Math.floor(seconds / 86400) + "d ago";
  }

  function duration(start, end) {
    if (start === null || start === undefined || end === null || end === undefined) return "";
    const seconds = Math.max(0, end - start);
    if (seconds < 1) return Math.round(seconds * 1000) + " ms";
    if (seconds < 120) return seconds.toFixed(1) + " s";
    return Math.round(seconds / 60) + " min";
  }

  function json(value) {
    if (value === undefined) return "";
    try {
      return JSON.stringify(value, null, 2);
    } catch (err) {
      return String(value);
    }
  }

  function preview(job) {
    // Lists carry a short preview of the arguments (the server cuts it); the job's page has them all.
    const text = String(job.preview || "");
    return text.length > 80 ? text.slice(0, 79) + "…" : text;
  }

  function firstLine(text, max) {
    const line = String(text || "").split("\n")[0];
    return line.length > max ? line.slice(0, max - 1) + "…" : line;
  }

  function statusBadge(node, status) {
    setText(node, status);
    setClass(node, "badge st-" + status);
  }

  // -- talking to the API ---------------------------------------------------------------------------
  async function request(method, path, body, retried) {
    const headers = { Accept: "application/json" };
    const init = { method: method, headers: headers, credentials: "same-origin", cache: "no-store" };
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      headers["X-CSRF-Token"] = state.csrf;
      init.body = JSON.stringify(body || {});
    }
    const response = await fetch(path, init);
    if (response.status === 401) {
      window.location.assign("login");
      throw new Error("signed out");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!response.ok) {
      const message = (data && data.error) || response.status + " " + response.statusText;
      if (response.status === 403 && !retried && message.indexOf("CSRF") !== -1) {
        await loadSession();  // the CSRF cookie expired or was cleared: fetch a fresh one, try once more
        return request(method, path, body, true);
      }
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  const get = (path) => request("GET", path);
  const post = (path, body) => request("POST", path, body);

  let flashTimer = null;
  function flash(message, isError) {
    const node = $("flash");
    setText(node, message);
    setClass(node, isError ? "flash flash-error" : "flash");
    node.hidden = false;
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => { node.hidden = true; }, isError ? 8000 : 4000);
  }

  async function act(button, path, body, describe) {
    button.disabled = true;
    try {
      const data = await post(path, body);
      flash(describe(data));
      await refresh();
      return data;
    } catch (err) {
      flash(err.message, true);
      return null;
    } finally {
      button.disabled = false;
    }
  }

  // -- overview ---------------------------------------------------------------------------------------
  function renderStats(data) {
    for (const key of STAT_KEYS) setText($("count-" + key), data.stats[key]);
  }

  const chart = { bars: [], labels: {}, count: 0 };
  const PLOT = { left: 44, right: 792, top: 10, bottom: 166 };

  function niceMax(value) {
    if (value <= 4) return 4;
    const magnitude = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 2.5, 5, 10]) {
      if (step * magnitude >= value) return step * magnitude;
    }
    return 10 * magnitude;
  }

  function svg(tag, attrs, parent) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    if (parent) parent.appendChild(node);
    return node;
  }

  function buildChart(root, count) {
    while (root.firstChild) root.removeChild(root.firstChild);
    chart.bars = [];
    chart.count = count;
    const grid = svg("g", { class: "grid" }, root);
    chart.labels = {};
    for (const [name, fraction] of [["top", 0], ["mid", 0.5], ["zero", 1]]) {
      const y = PLOT.top + fraction * (PLOT.bottom - PLOT.top);
      svg("line", { x1: PLOT.left, x2: PLOT.right, y1: y, y2: y }, grid);
      chart.labels[name] = svg("text", { x: PLOT.left - 6, y: y + 4, "text-anchor": "end", class: "axis" }, grid);
    }
    const width = (PLOT.right - PLOT.left) / count;
    const bars = svg("g", { class: "bars" }, root);
    for (let i = 0; i < count; i++) {
      const group = svg("g", {}, bars);
      const x = PLOT.left + i * width + 1;
      const w = Math.max(1, width - 2);
      const tip = svg("title", {}, group);
      const done = svg("rect", { x: x, width: w, y: PLOT.bottom, height: 0, class: "bar-completed" }, group);
      const failed = svg("rect", { x: x, width: w, y: PLOT.bottom, height: 0, class: "bar-failed" }, group);
      chart.bars.push({ tip: tip, done: done, failed: failed });
    }
    chart.labels.start = svg("text", { x: PLOT.left, y: 184, class: "axis" }, root);
    chart.labels.middle = svg("text", { x: (PLOT.left + PLOT.right) / 2, y: 184, "text-anchor": "middle", class: "axis" }, root);
    chart.labels.end = svg("text", { x: PLOT.right, y: 184, "text-anchor": "end", class: "axis" }, root);
  }

  function renderThroughput(data) {
    const root = $("throughput-chart");
    const points = data.points;
    if (chart.count !== points.length) buildChart(root, points.length);
    let peak = 0;
    let lastMinuteDone = 0;
    let lastMinuteFailed = 0;
    const minuteAgo = data.now - 60;
    for (const point of points) {
      peak = Math.max(peak, point.completed + point.failed);
      if (point.t + data.step > minuteAgo) {
        lastMinuteDone += point.completed;
        lastMinuteFailed += point.failed;
      }
    }
    const top = niceMax(peak);
    const scale = (PLOT.bottom - PLOT.top) / top;
    points.forEach((point, i) => {
      const bar = chart.bars[i];
      const doneHeight = point.completed * scale;
      const failedHeight = point.failed * scale;
      setAttr(bar.done, "y", (PLOT.bottom - doneHeight).toFixed(1));
      setAttr(bar.done, "height", doneHeight.toFixed(1));
      setAttr(bar.failed, "y", (PLOT.bottom - doneHeight - failedHeight).toFixed(1));
      setAttr(bar.failed, "height", failedHeight.toFixed(1));
      setText(bar.tip, new Date(point.t * 1000).toLocaleTimeString() + ": " + point.completed + " completed, " +
        point.failed + " failed attempts, " + point.dead + " died");
    });
    setText(chart.labels.top, top);
    setText(chart.labels.mid, top / 2);
    setText(chart.labels.zero, 0);
    const minutes = Math.round(data.window / 60);
    setText(chart.labels.start, "-" + minutes + " min");
    setText(chart.labels.middle, "-" + Math.round(minutes / 2) + " min");
    setText(chart.labels.end, "now");
    setText($("throughput-summary"), "last minute: " + lastMinuteDone + " completed, " + lastMinuteFailed +
      " failed (" + (lastMinuteDone / 60).toFixed(2) + " jobs/s)");
  }

  // -- queues -------------------------------------------------------------------------------------------
  function renderQueues(data) {
    const body = $("queues-body");
    syncRows(body, data.queues, (q) => q.name, () => {
      const row = h("tr");
      row.append(h("td", { class: "mono" }));
      for (let i = 0; i < STAT_KEYS.length + 2; i++) row.append(h("td", { class: "num" }));
      row.append(h("td", {}, [h("span")]));
      const button = h("button", { type: "button", class: "act-toggle" });
      button.addEventListener("click", () => toggleQueue(row, button));
      const purge = h("button", { type: "button", class: "act-purge danger", text: "Purge" });
      purge.addEventListener("click", () => {
        const name = row.dataset.name;
        if (window.confirm("Cancel every waiting job of queue " + name + "? Running jobs go on.")) {
          act(purge, "api/queues/" + encodeURIComponent(name) + "/purge", {},
            (data) => "Cancelled " + data.cancelled + " waiting job(s) of " + name);
        }
      });
      row.append(h("td", { class: "actions" }, state.readOnly ? [] : [button, purge]));
      return row;
    }, (row, q) => {
      const cols = cells(row);
      setText(cols[0], q.name);
      STAT_KEYS.forEach((key, i) => setText(cols[i + 1], q.stats[key]));
      setText(cols[7], q.oldest_due_at === null || q.oldest_due_at === undefined ? "–" :
        seconds(Math.max(0, state.serverNow - q.oldest_due_at)));
      setText(cols[8], q.wait && q.wait.count ? seconds(q.wait.p50) + " / " + seconds(q.wait.p95) : "–");
      const badge = cols[9].firstChild;
      setText(badge, q.paused ? "paused" : "active");
      setClass(badge, q.paused ? "badge st-paused" : "badge st-active");
      row.dataset.paused = q.paused ? "1" : "";
      row.dataset.name = q.name;
      const button = cols[10].firstChild;
      if (button) {
        setText(button, q.paused ? "Resume" : "Pause");
        setClass(button, q.paused ? "act-toggle act-resume primary" : "act-toggle act-pause");
      }
    });
    $("queues-empty").hidden = data.queues.length > 0;
    const names = data.queues.map((q) => q.name);
    if (names.join("\n") !== state.queueNames) {
      state.queueNames = names.join("\n");
      const select = $("filter-queue");
      const chosen = select.value;
      while (select.options.length > 1) select.remove(1);
      for (const name of names) select.append(h("option", { value: name, text: name }));
      select.value = names.indexOf(chosen) !== -1 ? chosen : "";
    }
  }

  function toggleQueue(row, button) {
    const name = row.dataset.name;
    const action = row.dataset.paused ? "resume" : "pause";
    act(button, "api/queues/" + encodeURIComponent(name) + "/" + action, {},
      () => (action === "pause" ? "Paused " : "Resumed ") + name);
  }

  // -- workers -------------------------------------------------------------------------------------------
  function renderWorkers(data) {
    syncRows($("workers-body"), data.workers, (w) => w.id, () => {
      const row = h("tr");
      const classes = ["mono", "", "num", "", "num", "num", "running-now", "", ""];
      for (const className of classes) row.append(h("td", { class: className }));
      return row;
    }, (row, w) => {
      const cols = cells(row);
      setText(cols[0], w.id);
      setText(cols[1], w.hostname);
      setText(cols[2], w.pid);
      setText(cols[3], (w.queues || []).join(", "));
      setText(cols[4], w.concurrency);
      setText(cols[5], w.running);
      const jobs = w.jobs || [];
      const shown = jobs.map((j) => j.id + " " + j.task_name).join("\n");
      if (cols[6].dataset.shown !== shown) {
        cols[6].dataset.shown = shown;
        while (cols[6].firstChild) cols[6].removeChild(cols[6].firstChild);
        for (const j of jobs) {
          cols[6].append(h("div", {}, [jobLink(j.id), h("span", { class: "muted", text: " " + j.task_name })]));
        }
        if (!jobs.length) cols[6].append(h("span", { class: "muted", text: "idle" }));
      }
      setText(cols[7], timeOf(w.started_at));
      setText(cols[8], ago(w.last_heartbeat, data.now));
    });
    $("workers-empty").hidden = data.workers.length > 0;
  }

  // -- jobs -----------------------------------------------------------------------------------------------
  function jobLink(id) {
    const link = h("a", { class: "mono job-link" });
    setAttr(link, "href", "#job/" + encodeURIComponent(id));
    setText(link, shortId(id));
    setAttr(link, "title", id);
    return link;
  }

  function jobsQuery() {
    const params = new URLSearchParams();
    const f = state.jobs;
    if (f.status) params.set("status", f.status);
    if (f.queue) params.set("queue", f.queue);
    if (f.task) params.set("task", f.task);
    params.set("limit", f.limit);
    params.set("offset", f.offset);
    return "api/jobs?" + params.toString();
  }

  function renderJobs(data) {
    state.jobs.hasMore = data.has_more;
    syncRows($("jobs-body"), data.jobs, (j) => j.id, (job) => {
      const row = h("tr", { class: "clickable" });
      row.append(h("td", {}, [jobLink(job.id)]));
      for (const className of ["mono", "mono", "", "mono args", "num", "", ""]) row.append(h("td", { class: className }));
      cells(row)[3].append(h("span"));
      row.addEventListener("click", (event) => {
        if (event.target.tagName !== "A") openDetail(row.dataset.key);
      });
      return row;
    }, (row, job) => {
      const cols = cells(row);
      setText(cols[1], job.task_name);
      setText(cols[2], job.queue);
      statusBadge(cols[3].firstChild, job.status);
      setText(cols[4], preview(job));
      setText(cols[5], job.max_retries === null ? job.retry_count : job.retry_count + " / " + job.max_retries);
      setText(cols[6], timeOf(job.created_at));
      setText(cols[7], duration(job.started_at, job.finished_at));
    });
    $("jobs-empty").hidden = data.jobs.length > 0;
    const first = data.jobs.length ? state.jobs.offset + 1 : 0;
    setText($("jobs-range"), data.jobs.length ? first + "–" + (state.jobs.offset + data.jobs.length) : "");
    $("jobs-prev").disabled = state.jobs.offset === 0;
    $("jobs-next").disabled = !data.has_more;
  }

  // -- tasks ------------------------------------------------------------------------------------------------
  function seconds(value) {
    if (value === null || value === undefined) return "–";
    if (value < 1) return Math.round(value * 1000) + " ms";
    if (value < 120) return value.toFixed(1) + " s";
    if (value < 7200) return (value / 60).toFixed(1) + " min";
    return (value / 3600).toFixed(1) + " h";
  }

  const RANGE_STEPS = { 3600: 60, 86400: 3600, 604800: 10800 };  // older than 2 h, metrics are kept by the hour

  function seriesQuery() {
    return "api/task-series?since=" + state.tasksRange + "&step=" + RANGE_STEPS[state.tasksRange];
  }

  function sparkline(root, values, failures) {
    const width = 120;
    const height = 24;
    const peak = Math.max(1, ...values);
    const step = values.length > 1 ? width / (values.length - 1) : width;
    const path = (series) => series.map((v, i) => (i ? "L" : "M") + (i * step).toFixed(1) + "," +
      (height - 1 - (v / peak) * (height - 2)).toFixed(1)).join(" ");
    if (!root.firstChild) {
      svg("path", { class: "spark-all" }, root);
      svg("path", { class: "spark-failed" }, root);
      svg("title", {}, root);
    }
    setAttr(root.childNodes[0], "d", path(values));
    setAttr(root.childNodes[1], "d", failures.some((v) => v > 0) ? path(failures) : "");
    setText(root.childNodes[2], values.reduce((a, b) => a + b, 0) + " attempts, " +
      failures.reduce((a, b) => a + b, 0) + " failed");
  }

  function renderTaskStats(data, series) {
    const perTask = {};
    series.points.forEach((point, i) => {
      for (const [name, counts] of Object.entries(point.tasks)) {
        const entry = perTask[name] || (perTask[name] = { all: new Array(series.points.length).fill(0),
          failed: new Array(series.points.length).fill(0) });
        entry.all[i] = counts.complete + counts.failed + counts.dead;
        entry.failed[i] = counts.failed + counts.dead;
      }
    });
    syncRows($("tasks-body"), data.stats, (t) => t.task_name, () => {
      const row = h("tr");
      row.append(h("td", { class: "mono" }));
      for (let i = 0; i < 10; i++) row.append(h("td", { class: "num" }));
      const cell = h("td");
      svg("svg", { class: "spark", viewBox: "0 0 120 24", width: "120", height: "24", role: "img" }, cell);
      row.append(cell);
      return row;
    }, (row, t) => {
      const cols = cells(row);
      setText(cols[0], t.task_name);
      setText(cols[1], t.attempts);
      setText(cols[2], t.counts.complete);
      setText(cols[3], t.counts.failed);
      setText(cols[4], t.counts.dead);
      setText(cols[5], (t.failure_rate * 100).toFixed(1) + "%");
      setClass(cols[5], t.failure_rate > 0 ? "num bad" : "num");
      setText(cols[6], seconds(t.runtime.p50));
      setText(cols[7], seconds(t.runtime.p95));
      setText(cols[8], seconds(t.runtime.p99));
      setText(cols[9], seconds(t.wait.p50));
      setText(cols[10], seconds(t.wait.p95));
      const trend = perTask[t.task_name] || { all: [0], failed: [0] };
      sparkline(cols[11].firstChild, trend.all, trend.failed);
      setAttr(cols[11].firstChild, "aria-label", "activity of " + t.task_name);
    });
    $("tasks-empty").hidden = data.stats.length > 0;
  }

  function setupTasks() {
    for (const button of document.querySelectorAll(".range-btn")) {
      button.addEventListener("click", () => {
        state.tasksRange = Number(button.dataset.range);
        for (const other of document.querySelectorAll(".range-btn")) {
          setAttr(other, "aria-pressed", other === button ? "true" : "false");
        }
        refresh();
      });
    }
  }

  function setupSearch() {
    $("search").addEventListener("submit", async (event) => {
      event.preventDefault();
      const query = $("search-id").value.trim();
      if (!query) return;
      try {
        const data = await get("api/search?q=" + encodeURIComponent(query));
        if (data.jobs.length) openDetail(data.jobs[0].id);
        else flash("No job with id " + query + " (purged, retried as a new job, or never enqueued)", true);
      } catch (err) {
        flash(err.message, true);
      }
    });
  }

  function renderTasks(data) {
    const names = data.tasks.join("\n");
    if (names === state.taskNames) return;
    state.taskNames = names;
    const list = $("task-names");
    while (list.firstChild) list.removeChild(list.firstChild);
    for (const name of data.tasks) list.append(h("option", { value: name }));
  }

  function setupFilters() {
    const form = $("job-filters");
    const apply = () => {
      state.jobs.status = $("filter-status").value;
      state.jobs.queue = $("filter-queue").value;
      state.jobs.task = $("filter-task").value.trim();
      state.jobs.offset = 0;
      refresh();
    };
    let typing = null;
    $("filter-status").addEventListener("change", apply);
    $("filter-queue").addEventListener("change", apply);
    $("filter-task").addEventListener("change", apply);
    $("filter-task").addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(apply, 400);
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      apply();
    });
    form.addEventListener("reset", () => setTimeout(apply, 0));
    $("jobs-prev").addEventListener("click", () => {
      state.jobs.offset = Math.max(0, state.jobs.offset - state.jobs.limit);
      refresh();
    });
    $("jobs-next").addEventListener("click", () => {
      if (state.jobs.hasMore) state.jobs.offset += state.jobs.limit;
      refresh();
    });
  }

  // -- dead letters --------------------------------------------------------------------------------------
  function renderDead(data) {
    state.dead.hasMore = data.has_more;
    syncRows($("dead-body"), data.jobs, (j) => j.id, (job) => {
      const row = h("tr");
      row.append(h("td", {}, [jobLink(job.id)]));
      for (const className of ["mono", "mono", "error-cell", "num", ""]) row.append(h("td", { class: className }));
      const actions = h("td", { class: "actions" });
      if (!state.readOnly) {
        const retry = h("button", { type: "button", class: "act-retry primary", text: "Retry" });
        retry.addEventListener("click", () => act(retry, "api/dead-letters/" + encodeURIComponent(job.id) + "/retry", {},
          (result) => "Retried " + shortId(job.id) + " as new job " + shortId(result.new_id)));
        const remove = h("button", { type: "button", class: "act-delete danger", text: "Delete" });
        remove.addEventListener("click", () => {
          if (window.confirm("Delete dead letter " + job.id + " for good?")) {
            act(remove, "api/dead-letters/" + encodeURIComponent(job.id) + "/delete", {},
              () => "Deleted " + shortId(job.id));
          }
        });
        actions.append(retry, remove);
      }
      row.append(actions);
      return row;
    }, (row, job) => {
      const cols = cells(row);
      setText(cols[1], job.task_name);
      setText(cols[2], job.queue);
      setText(cols[3], firstLine(job.error, 120));
      setAttr(cols[3], "title", job.error || "");
      setText(cols[4], job.retry_count + 1);
      setText(cols[5], ago(job.finished_at));
    });
    $("dead-empty").hidden = data.jobs.length > 0;
    $("dead-purge").hidden = state.readOnly || data.jobs.length === 0;
    $("dead-retry-all").hidden = state.readOnly || data.jobs.length === 0;
    setText($("dead-range"), data.jobs.length ? (state.dead.offset + 1) + "–" + (state.dead.offset + data.jobs.length) : "");
    $("dead-prev").disabled = state.dead.offset === 0;
    $("dead-next").disabled = !data.has_more;
  }

  // -- schedules -----------------------------------------------------------------------------------------
  function renderSchedules(data) {
    syncRows($("schedules-body"), data.schedules, (s) => s.name, () => {
      const row = h("tr");
      for (const className of ["mono", "mono", "mono", "", "", "", ""]) row.append(h("td", { class: className }));
      const toggle = h("button", { type: "button", class: "act-toggle" });
      toggle.addEventListener("click", () => {
        const action = row.dataset.paused ? "resume" : "pause";
        act(toggle, "api/schedules/" + encodeURIComponent(row.dataset.name) + "/" + action, {},
          () => (action === "pause" ? "Paused " : "Resumed ") + row.dataset.name);
      });
      const run = h("button", { type: "button", class: "act-run", text: "Run now" });
      run.addEventListener("click", () => act(run, "api/schedules/" + encodeURIComponent(row.dataset.name) + "/run", {},
        (data) => row.dataset.name + " enqueued job " + shortId(data.job_id)));
      row.append(h("td", { class: "actions" }, state.readOnly ? [] : [toggle, run]));
      return row;
    }, (row, s) => {
      const cols = cells(row);
      row.dataset.name = s.name;
      row.dataset.paused = s.paused ? "1" : "";
      setText(cols[0], s.name);
      setText(cols[1], s.task);
      setText(cols[2], s.cron);
      setText(cols[3], s.timezone || "local");
      setText(cols[4], s.last_run ? timeOf(s.last_run) : "never");
      setText(cols[5], s.next_run ? timeOf(s.next_run) : "–");
      setText(cols[6], s.paused ? "paused" : "active");
      const toggle = cols[7].firstChild;
      if (toggle) {
        setText(toggle, s.paused ? "Resume" : "Pause");
        setClass(toggle, s.paused ? "act-toggle act-resume primary" : "act-toggle act-pause");
      }
    });
    $("schedules-empty").hidden = data.schedules.length > 0;
  }

  function setupDead() {
    $("dead-retry-all").addEventListener("click", () => {
      const button = $("dead-retry-all");
      if (window.confirm("Replay every dead letter as a new job?")) {
        act(button, "api/dead-letters/retry-all", {}, (data) => "Replayed " + data.retried + " dead letter(s)");
      }
    });
    $("jobs-revoke").addEventListener("click", () => {
      const task = $("filter-task").value.trim();
      if (!task) {
        flash("Choose a task in the Task filter first: its waiting jobs are the ones revoked.", true);
      } else if (window.confirm("Cancel every waiting job of task " + task + "? Running jobs go on.")) {
        act($("jobs-revoke"), "api/tasks/" + encodeURIComponent(task) + "/revoke", {},
          (data) => "Cancelled " + data.cancelled + " waiting job(s) of " + task);
      }
    });
    $("dead-purge").addEventListener("click", () => {
      const button = $("dead-purge");
      if (window.confirm("Delete every dead letter? Their arguments and errors will be gone.")) {
        act(button, "api/dead-letters/purge", { older_than: 0 }, (data) => "Purged " + data.purged + " dead letter(s)");
      }
    });
    $("dead-prev").addEventListener("click", () => {
      state.dead.offset = Math.max(0, state.dead.offset - state.dead.limit);
      refresh();
    });
    $("dead-next").addEventListener("click", () => {
      if (state.dead.hasMore) state.dead.offset += state.dead.limit;
      refresh();
    });
  }

  // -- job detail ------------------------------------------------------------------------------------------
  const detailValues = {};

  function setupDetail() {
    const list = $("detail-fields");
    for (const [key, label] of DETAIL_FIELDS) {
      list.append(h("dt", { text: label }));
      const value = h("dd", { class: key === "id" || key === "worker_id" ? "mono" : "" });
      detailValues[key] = value;
      list.append(value);
    }
    $("detail-close").addEventListener("click", closeDetail);
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && state.detailId) closeDetail();
    });
    $("detail-cancel").addEventListener("click", () => {
      const id = state.detailId;
      act($("detail-cancel"), "api/jobs/" + encodeURIComponent(id) + "/cancel", {},
        (data) => (data.cancel_requested ? "Cancellation requested: its worker stops " : "Cancelled ") + shortId(id));
    });
    $("detail-replay").addEventListener("click", async () => {
      const id = state.detailId;
      if (!window.confirm("Enqueue job " + id + " again, with the same arguments and options?")) return;
      const data = await act($("detail-replay"), "api/jobs/" + encodeURIComponent(id) + "/replay", {},
        (result) => "Replayed " + shortId(id) + " as new job " + shortId(result.new_id));
      if (data) openDetail(data.new_id);
    });
    $("detail-retry").addEventListener("click", async () => {
      const id = state.detailId;
      const data = await act($("detail-retry"), "api/dead-letters/" + encodeURIComponent(id) + "/retry", {},
        (result) => "Retried " + shortId(id) + " as new job " + shortId(result.new_id));
      if (data) openDetail(data.new_id);
    });
    $("detail-delete").addEventListener("click", () => {
      const id = state.detailId;
      if (window.confirm("Delete dead letter " + id + " for good?")) {
        act($("detail-delete"), "api/dead-letters/" + encodeURIComponent(id) + "/delete", {}, () => "Deleted " + shortId(id));
      }
    });
    window.addEventListener("hashchange", fromHash);
  }

  function fromHash() {
    const match = /^#job\/(.+)$/.exec(window.location.hash);
    if (match) {
      const id = decodeURIComponent(match[1]);
      if (id !== state.detailId) {
        state.detailId = id;
        $("job-detail").hidden = false;
        clearDetail();
        loadDetail();
      }
    } else if (state.detailId) {
      state.detailId = null;
      $("job-detail").hidden = true;
    }
  }

  function openDetail(id) {
    window.location.hash = "#job/" + encodeURIComponent(id);
  }

  function closeDetail() {
    state.detailId = null;
    $("job-detail").hidden = true;
    if (/^#job\//.test(window.location.hash)) {
      history.replaceState(null, "", window.location.pathname + window.location.search + "#jobs");
    }
  }

  function clearDetail() {
    state.detailLogs = { id: state.detailId, after: 0, lines: [] };
    syncRows($("detail-logs"), [], () => "", null, null);
    $("detail-logs-empty").hidden = true;
    setText($("detail-id"), state.detailId);
    for (const node of Object.values(detailValues)) setText(node, "");
    for (const id of ["detail-args", "detail-kwargs", "detail-result", "detail-error"]) setText($(id), "");
    syncRows($("detail-errors"), [], () => "", null, null);
    $("detail-workflow").hidden = true;
  }

  async function loadDetail() {
    const id = state.detailId;
    if (!id) return;
    let job = null;
    try {
      job = await get("api/jobs/" + encodeURIComponent(id));
    } catch (err) {
      if (id !== state.detailId) return;
      if (err.status === 404) {
        $("detail-missing").hidden = false;
        $("detail-body").hidden = true;
        return;
      }
      throw err;
    }
    if (id !== state.detailId) return;  // the user opened another job meanwhile
    $("detail-missing").hidden = true;
    $("detail-body").hidden = false;
    renderDetail(job);
    await loadWorkflow(job);
    await loadLogs(job);
  }

  // New lines only (after the last one shown): a running job's log grows on the page as it runs.
  async function loadLogs(job) {
    const logs = state.detailLogs;
    if (logs.id !== job.id) return;
    const data = await get("api/jobs/" + encodeURIComponent(job.id) + "/logs?after=" + logs.after);
    if (state.detailLogs !== logs) return;
    for (const line of data.lines) logs.lines.push(line);
    if (data.lines.length) logs.after = data.lines[data.lines.length - 1].id;
    syncRows($("detail-logs"), logs.lines, (l) => l.id, () => {
      const row = h("tr");
      row.append(h("td", { class: "nowrap" }), h("td", {}, [h("span")]), h("td", { class: "log-message" }));
      return row;
    }, (row, line) => {
      const cols = cells(row);
      setText(cols[0], timeOf(line.time));
      setText(cols[1].firstChild, line.level);
      setClass(cols[1].firstChild, "badge level-" + line.level);
      const extra = Object.keys(line.extra || {}).length ? "  " + JSON.stringify(line.extra) : "";
      setText(cols[2], line.message + extra);
    });
    $("detail-logs-empty").hidden = logs.lines.length > 0;
    $("detail-logs-live").hidden = !(job.status === "running" || job.status === "pending");
  }

  function renderDetail(job) {
    setText($("detail-id"), job.id);
    const values = {
      id: job.id, task_name: job.task_name, queue: job.queue, status: job.status, priority: job.priority,
      retries: job.retry_count + " of " + (job.max_retries === null ? "the task's max_retries" : job.max_retries),
      timeout: job.timeout === null ? "the task's timeout" : job.timeout,
      progress: job.progress === null ? "" : job.progress + "%", unique_key: job.unique_key,
      created_at: timeOf(job.created_at), scheduled_at: timeOf(job.scheduled_at), started_at: timeOf(job.started_at),
      finished_at: job.finished_at ? timeOf(job.finished_at) + " (ran " + duration(job.started_at, job.finished_at) + ")" : "",
      expires_at: timeOf(job.expires_at), depends_on: (job.depends_on || []).join(", "),
      worker_id: job.worker_id && job.status === "pending" ? job.worker_id + " (claimed it, starts it next)" : job.worker_id,
    };
    for (const [key] of DETAIL_FIELDS) setText(detailValues[key], values[key]);
    setClass(detailValues.status, "badge st-" + job.status);
    setText($("detail-args"), json(job.args));
    setText($("detail-kwargs"), json(job.kwargs));
    setText($("detail-result"), job.result === null ? "" : json(job.result));
    setText($("detail-error"), job.error || "");
    syncRows($("detail-errors"), job.errors || [], (e) => e.attempt, () => {
      const row = h("tr");
      row.append(h("td", { class: "num" }), h("td"));
      const details = h("details", {}, [h("summary"), h("pre", { class: "code code-error" })]);
      row.append(h("td", {}, [details]));
      return row;
    }, (row, entry) => {
      const cols = cells(row);
      setText(cols[0], entry.attempt);
      setText(cols[1], timeOf(entry.failed_at));
      const details = cols[2].firstChild;
      setText(details.firstChild, entry.error);
      setText(details.lastChild, entry.traceback || "(no traceback)");
    });
    $("detail-errors-empty").hidden = (job.errors || []).length > 0;
    // The server decides what may be done to a job (taskito.views.rules), for every adapter alike.
    $("detail-cancel").hidden = state.readOnly || !job.can_cancel;
    $("detail-cancel").textContent = job.status === "running" ? "Cancel running job" : "Cancel job";
    $("detail-replay").hidden = state.readOnly || !job.can_replay;
    $("detail-retry").hidden = state.readOnly || !job.can_retry;
    $("detail-delete").hidden = state.readOnly || !job.can_retry;
  }

  // -- the workflow of the job shown ---------------------------------------------------------------------------
  const WORKFLOW_JOBS_SHOWN = 20;  // per stage: a chord's group may have thousands

  async function loadWorkflow(job) {
    const section = $("detail-workflow");
    if (!job.workflow_id) {
      section.hidden = true;
      return;
    }
    let workflow = null;
    try {
      workflow = await get("api/workflows/" + encodeURIComponent(job.workflow_id) + "?per_stage=" + WORKFLOW_JOBS_SHOWN);
    } catch (err) {
      if (err.status !== 404) throw err;
    }
    if (job.id !== state.detailId) return;  // the user opened another job meanwhile
    section.hidden = workflow === null;
    if (workflow) renderWorkflow(workflow, job.id);
  }

  function renderWorkflow(workflow, currentId) {
    setText($("detail-workflow-kind"), workflow.kind);
    statusBadge($("detail-workflow-status"), workflow.status);
    setText($("detail-workflow-about"), workflow.id + (workflow.error
      ? " · ended by job " + shortId(workflow.failed_job_id) + ": " + firstLine(workflow.error, 200) : ""));
    const stages = workflow.stages.map((stage) => ({
      key: "stage-" + stage.stage, label: stage.group ? "group of " + stage.size : "step",
      jobs: stage.jobs, more: stage.more,
    }));
    if (workflow.on_error) stages.push({ key: "on-error", label: "on error", jobs: [workflow.on_error], more: 0 });
    syncRows($("detail-workflow-stages"), stages, (stage) => stage.key,
      () => h("li", { class: "workflow-stage" }, [h("span", { class: "muted" }), h("ul", { class: "workflow-jobs" })]),
      (item, stage) => {
        setText(item.firstChild, stage.label);
        const members = stage.jobs.map((member) => ({ key: member.id, member: member }));
        if (stage.more) members.push({ key: "more", more: stage.more });
        syncRows(item.lastChild, members, (entry) => entry.key, (entry) => {
          if (entry.more) return h("li", { class: "muted" });
          const row = h("li", {}, [jobLink(entry.member.id), h("span"), h("span", { class: "badge" })]);
          return row;
        }, (row, entry) => {
          if (entry.more) {
            setText(row, "… and " + entry.more + " more");
            return;
          }
          const parts = row.children;
          setClass(parts[0], "mono job-link" + (entry.member.id === currentId ? " current" : ""));
          setText(parts[1], entry.member.task_name);
          statusBadge(parts[2], entry.member.status);
        });
      });
  }

  // -- the refresh loop ------------------------------------------------------------------------------------
  let inflight = null;
  let again = false;

  async function load() {
    const [stats, queues, workers, jobs, dead, throughput, schedules, tasks, series] = await Promise.all([
      get("api/stats"), get("api/queues"), get("api/workers"), get(jobsQuery()),
      get("api/dead-letters?limit=" + state.dead.limit + "&offset=" + state.dead.offset),
      get("api/throughput?window=600&step=10"), get("api/schedules"), get("api/tasks?since=" + state.tasksRange),
      get(seriesQuery()),
    ]);
    state.serverNow = workers.now;
    renderSchedules(schedules);
    renderStats(stats);
    renderTaskStats(tasks, series);
    renderQueues(queues);
    renderWorkers(workers);
    renderJobs(jobs);
    renderDead(dead);
    renderThroughput(throughput);
    await loadDetail();
    const conn = $("conn");
    setText(conn, "updated " + new Date().toLocaleTimeString());
    setClass(conn, "conn conn-ok");
    document.body.dataset.loaded = "1";
  }

  function refresh() {
    if (inflight) {
      again = true;  // something changed while a refresh was running: run one more right after
      return inflight;
    }
    inflight = load().catch((err) => {
      const conn = $("conn");
      setText(conn, "not updating: " + err.message);
      setClass(conn, "conn conn-bad");
    }).finally(() => {
      inflight = null;
      if (again) {
        again = false;
        refresh();
      }
    });
    return inflight;
  }

  function loop() {
    const next = () => setTimeout(loop, REFRESH_MS);
    if (document.hidden) next();
    else refresh().then(next);
  }

  async function loadSession() {
    const session = await get("api/session");
    state.csrf = session.csrf_token;
    state.readOnly = session.read_only;
    state.auth = session.auth;
    setText($("queue-name"), session.queue);
    document.title = session.queue + " · taskito dashboard";
    return session;
  }

  async function start() {
    try {
      await loadSession();
    } catch (err) {
      const conn = $("conn");
      setText(conn, "cannot reach the dashboard API: " + err.message);
      setClass(conn, "conn conn-bad");
      setTimeout(start, REFRESH_MS);
      return;
    }
    document.body.classList.toggle("read-only", state.readOnly);
    $("mode-readonly").hidden = !state.readOnly;
    $("logout").hidden = !state.auth;
    $("logout").addEventListener("click", async () => {
      try {
        await post("logout", {});
      } finally {
        window.location.assign("login");
      }
    });
    setupFilters();
    setupDead();
    setupDetail();
    setupTasks();
    setupSearch();
    get("api/tasks").then(renderTasks).catch(() => {});
    fromHash();
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) refresh();
    });
    loop();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
