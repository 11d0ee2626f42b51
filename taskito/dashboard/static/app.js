// taskito dashboard: pages over the JSON API under ./api, one per address (#/jobs?status=failed, #/jobs/<id>...).
// Rules kept throughout: every value that comes from a job (arguments, results, errors, names) reaches the
// page through textContent or an attribute, never parsed as HTML; the page is updated in place (rows
// are keyed and reused) so the periodic refresh never flashes; what a page shows (filters, sort, range,
// offset) lives in its address, so that a reload or a link lands on the same view and back/forward work.
"use strict";

(function () {
  const REFRESH_MS = 3000;
  const PAGE_SIZE = 25;
  const STAT_KEYS = ["pending", "running", "completed", "failed", "dead", "cancelled"];
  const DETAIL_FIELDS = [
    ["id", "ID"], ["task_name", "Task"], ["queue", "Queue"], ["status", "Status"], ["priority", "Priority"],
    ["retries", "Retries"], ["timeout", "Timeout (s)"], ["progress", "Progress"], ["unique_key", "Unique key"],
    ["created_at", "Created"], ["scheduled_at", "Scheduled for"], ["started_at", "Started"],
    ["finished_at", "Finished"], ["expires_at", "Expires"], ["worker_id", "Worker"], ["depends_on", "Depends on"],
  ];
  const WORKFLOW_FIELDS = [["kind", "Kind"], ["status", "Status"], ["created_at", "Sent"], ["finished_at", "Finished"],
    ["failed_job_id", "Failed step"], ["error", "Error"]];
  // Time ranges of the charts: 10 minutes are read from the jobs (per 10 s), longer ones from the task
  // minutes, by the hour and by 3 hours past a day (older minutes are kept by the hour).
  const RANGES = {
    "10m": { since: 600, step: 10, title: "last 10 minutes, per 10 s", start: "-10 min", middle: "-5 min" },
    "1h": { since: 3600, step: 60, title: "last hour, per minute", start: "-60 min", middle: "-30 min" },
    "24h": { since: 86400, step: 3600, title: "last 24 hours, per hour", start: "-24 h", middle: "-12 h" },
    "7d": { since: 604800, step: 10800, title: "last 7 days, per 3 hours", start: "-7 d", middle: "-3.5 d" },
  };
  const TITLES = { overview: "Overview", jobs: "Jobs", job: "Job", dead: "Dead letters", queues: "Queues",
    workers: "Workers", schedules: "Schedules", tasks: "Tasks", workflows: "Workflows", workflow: "Workflow",
    missing: "No such page" };
  const NAV_OF = { job: "jobs", workflow: "workflows" };
  const SVG = "http://www.w3.org/2000/svg";
  const HEX = /^[0-9a-f]{1,32}$/i;

  const state = {
    csrf: "",
    readOnly: false,
    auth: false,
    queueLabel: "",
    route: null,
    serverNow: Date.now() / 1000,  // the server's clock, from the last refresh (ages are judged by it)
    queueNames: null,
    taskNames: null,
    selected: { jobs: new Set(), dead: new Set() },
    listAddress: "#/jobs",  // the last list of jobs shown: where a job's page leads back to
    detailLogs: { id: null, after: 0, lines: [] },
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

  // A form control shows the address's value, unless the user is typing in it.
  function setValue(control, value) {
    if (document.activeElement !== control && control.value !== value) control.value = value;
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

  function replaceChildren(node, children) {
    while (node.firstChild) node.removeChild(node.firstChild);
    for (const child of children) node.append(child);
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
    return seconds(Math.max(0, end - start));
  }

  function seconds(value) {
    if (value === null || value === undefined) return "–";
    if (value < 1) return Math.round(value * 1000) + " ms";
    if (value < 120) return value.toFixed(1) + " s";
    if (value < 7200) return (value / 60).toFixed(1) + " min";
    return (value / 3600).toFixed(1) + " h";
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

  function jobLink(id) {
    const link = h("a", { class: "mono job-link" });
    setAttr(link, "href", "#/jobs/" + encodeURIComponent(id));
    setText(link, shortId(id));
    setAttr(link, "title", id);
    return link;
  }

  // -- addresses --------------------------------------------------------------------------------
  // "#/jobs?status=failed" -> {page: "jobs", id: null, params}; "#/jobs/<id>" -> {page: "job", id}.
  function parseRoute() {
    let hash = window.location.hash.slice(1);
    if (!hash.startsWith("/")) {  // the first edition's addresses: #jobs, #job/<id>
      const old = /^job\/(.+)$/.exec(hash);
      hash = old ? "/jobs/" + old[1] : "/" + (hash || "overview");
      history.replaceState(null, "", "#" + hash);
    }
    const cut = hash.indexOf("?");
    const path = cut === -1 ? hash : hash.slice(0, cut);
    const params = new URLSearchParams(cut === -1 ? "" : hash.slice(cut + 1));
    let parts;
    try {
      parts = path.split("/").filter(Boolean).map(decodeURIComponent);
    } catch (err) {
      parts = ["missing"];
    }
    let page = parts[0] || "overview";
    let id = null;
    if (parts.length === 2 && (page === "jobs" || page === "workflows")) {
      id = parts[1];
      page = page === "jobs" ? "job" : "workflow";
    } else if (parts.length !== 1 || !PAGES[page] || page === "job" || page === "workflow") {
      page = "missing";
    }
    return { page: page, id: id, params: params, key: hash };
  }

  function address(path, params) {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params || {})) {
      if (value !== "" && value !== null && value !== undefined) query.set(key, value);
    }
    const text = query.toString();
    return "#/" + path + (text ? "?" + text : "");
  }

  // Go to an address: a new history entry (back returns), or in place of this one (typing in a filter).
  // The page changes at once (links, back and forward change it on hashchange).
  function go(target, replace) {
    if (target === window.location.hash) return;
    if (replace) history.replaceState(null, "", target);
    else history.pushState(null, "", target);
    route();
  }

  function param(route, name) {
    return route.params.get(name) || "";
  }

  function route() {
    const next = parseRoute();
    const previous = state.route;
    state.route = next;
    const moved = !previous || previous.page !== next.page || previous.id !== next.id;
    for (const name of Object.keys(PAGES)) $("page-" + name).hidden = name !== next.page;
    const nav = NAV_OF[next.page] || next.page;
    for (const link of document.querySelectorAll(".nav a")) {
      if (link.dataset.page === nav) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    document.title = [TITLES[next.page] + (next.id ? " " + shortId(next.id) : ""), state.queueLabel,
      "taskito dashboard"].filter(Boolean).join(" · ");
    const page = PAGES[next.page];
    if (page.enter) page.enter(next, moved);
    if (moved && previous) {
      // Keyboard and screen-reader users land on the new page's heading, not at the top of the old one.
      const heading = $("h-" + next.page);
      if (heading) heading.focus({ preventScroll: true });
      window.scrollTo(0, 0);
    }
    return refresh();
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

  function query(path, params) {
    const found = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== "" && value !== null && value !== undefined) found.set(key, value);
    }
    return path + "?" + found.toString();
  }

  let flashTimer = null;
  function flash(message, isError) {
    const node = $("flash");
    setText(node, message);
    setClass(node, isError ? "flash flash-error" : "flash");
    node.hidden = false;
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => { node.hidden = true; }, isError ? 8000 : 4000);
  }

  // Post an action, say what it did, and refresh; ``then`` (the answer) runs first, e.g. to leave a job's page
  // that the action ended. Refreshes wait meanwhile, so that none asks for what the action just removed.
  async function act(button, path, body, describe, then) {
    button.disabled = true;
    holding = true;
    try {
      if (inflight) await inflight;
      const data = await post(path, body);
      flash(describe(data));
      if (then) then(data);
      return data;
    } catch (err) {
      flash(err.message, true);
      return null;
    } finally {
      holding = false;
      button.disabled = false;
      await refresh();
    }
  }

  // One confirmation for every action that cannot be undone: a modal dialog (focus stays in it, Escape
  // cancels), answered true for its confirm button only.
  function confirmed(message, confirmLabel) {
    const dialog = $("confirm");
    setText($("confirm-text"), message);
    setText($("confirm-yes"), confirmLabel);
    dialog.returnValue = "";
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.showModal();
      $("confirm-no").focus();
    });
  }

  async function confirmThen(button, message, path, body, describe, then) {
    if (await confirmed(message, button.textContent)) return act(button, path, body, describe, then);
    return null;
  }

  // -- sortable tables --------------------------------------------------------------------------------
  // A header with data-sort gets a button (Enter and Space sort, like a click); aria-sort says the order.
  // The order lives in the address's "sort" (a key, "-" first for descending).
  function setupSortable(table, page) {
    for (const th of table.querySelectorAll("th[data-sort]")) {
      const label = th.textContent;
      const button = h("button", { type: "button", class: "sort" }, [label, h("span", { class: "sort-icon", "aria-hidden": "true" })]);
      button.dataset.label = label;
      replaceChildren(th, [button]);
      button.addEventListener("click", () => {
        const key = th.dataset.sort;
        const current = param(state.route, "sort") || table.dataset.defaultSort || "";
        let next;
        if (current === key) next = "-" + key;
        else if (current === "-" + key) next = key;
        else next = th.dataset.first === "desc" ? "-" + key : key;
        const params = Object.fromEntries(state.route.params);
        delete params.offset;
        params.sort = next;
        go(address(page, params));
      });
    }
  }

  function showSort(table, sort, allowed, why) {
    const key = sort.replace(/^-/, "");
    for (const th of table.querySelectorAll("th[data-sort]")) {
      const button = th.firstChild;
      if (th.dataset.sort === key) setAttr(th, "aria-sort", sort.startsWith("-") ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
      const ok = !allowed || allowed.indexOf(th.dataset.sort) !== -1;
      button.disabled = !ok;
      setAttr(button, "title", ok ? "Sort by " + button.dataset.label.toLowerCase() : why);
    }
  }

  // Small tables (queues, workers, schedules, tasks) are sorted here; nulls last either way.
  function sortItems(items, sort, values) {
    const key = sort.replace(/^-/, "");
    const value = values[key];
    if (!value) return items;
    const sign = sort.startsWith("-") ? -1 : 1;
    return items.slice().sort((a, b) => {
      const x = value(a);
      const y = value(b);
      if (x === y) return 0;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * sign;
    });
  }

  // -- pagers ---------------------------------------------------------------------------------------
  // Previous and Next are links to the neighbouring pages' addresses (an address without href is no
  // link: it cannot be focused or followed).
  function renderPager(name, page, route, count, hasMore) {
    const offset = Number(param(route, "offset")) || 0;
    const params = Object.fromEntries(route.params);
    const link = (node, target) => {
      if (target === null) node.removeAttribute("href");
      else setAttr(node, "href", address(page, { ...params, offset: target || "" }));
      setAttr(node, "aria-disabled", target === null ? "true" : "false");
    };
    link($(name + "-prev"), offset > 0 ? Math.max(0, offset - PAGE_SIZE) : null);
    link($(name + "-next"), hasMore ? offset + PAGE_SIZE : null);
    setText($(name + "-range"), count ? (offset + 1) + "–" + (offset + count) : "");
  }

  // -- selecting rows for bulk actions -------------------------------------------------------------------
  function pickCell(kind, id, what) {
    const box = h("input", { type: "checkbox", class: "pick-row", "aria-label": "Select " + what + " " + id });
    box.addEventListener("change", () => {
      if (box.checked) state.selected[kind].add(id);
      else state.selected[kind].delete(id);
      showSelection(kind);
    });
    return h("td", { class: "pick" }, [box]);
  }

  // Only rows on the page can be selected: those that left it are dropped.
  function showSelection(kind) {
    const chosen = state.selected[kind];
    const shown = new Set();
    for (const row of $(kind + "-body").children) {
      shown.add(row.dataset.key);
      row.querySelector(".pick-row").checked = chosen.has(row.dataset.key);
    }
    for (const id of Array.from(chosen)) if (!shown.has(id)) chosen.delete(id);
    const all = $(kind + "-all");
    all.checked = shown.size > 0 && chosen.size === shown.size;
    all.indeterminate = chosen.size > 0 && chosen.size < shown.size;
    setText($(kind + "-selected"), chosen.size + " selected");
    for (const button of document.querySelectorAll("#page-" + kind + " .bulk button")) button.disabled = !chosen.size;
  }

  function setupSelection(kind) {
    $(kind + "-all").addEventListener("change", () => {
      const chosen = state.selected[kind];
      chosen.clear();
      if ($(kind + "-all").checked) for (const row of $(kind + "-body").children) chosen.add(row.dataset.key);
      showSelection(kind);
    });
  }

  function refusedText(refused) {
    if (!refused.length) return "";
    return "; " + refused.length + " refused (" + refused[0].error + (refused.length > 1 ? ", …" : "") + ")";
  }

  async function bulk(kind, button, message, path, describe) {
    const ids = Array.from(state.selected[kind]);
    if (!ids.length) return;
    const data = await confirmThen(button, message(ids.length), path, { ids: ids }, (result) => describe(result, ids.length));
    if (data) {
      state.selected[kind].clear();
      setText($(kind + "-bulk-result"), describe(data, ids.length));
      showSelection(kind);
    }
  }

  // -- overview ---------------------------------------------------------------------------------------
  function renderStats(data) {
    for (const key of STAT_KEYS) setText($("count-" + key), data.stats[key]);
    const dead = $("nav-dead");
    setText(dead, data.stats.dead);
    dead.hidden = !data.stats.dead;
    setAttr(dead, "aria-label", data.stats.dead + " dead letters");
    const names = Array.from(new Set([...Object.keys(data.queues), ...data.paused])).sort();
    if (names.join("\n") !== state.queueNames) {
      state.queueNames = names.join("\n");
      const select = $("filter-queue");
      const chosen = param(state.route, "queue");
      while (select.options.length > 1) select.remove(1);
      for (const name of names) select.append(h("option", { value: name, text: name }));
      if (chosen && names.indexOf(chosen) === -1) select.append(h("option", { value: chosen, text: chosen }));
      select.value = chosen;
    }
  }

  function rangeOf(route, fallback) {
    const name = param(route, "range");
    return RANGES[name] ? name : fallback;
  }

  function showRange(page, route, fallback) {
    const chosen = rangeOf(route, fallback);
    for (const button of document.querySelectorAll("#page-" + page + " .range-btn")) {
      setAttr(button, "aria-pressed", button.dataset.range === chosen ? "true" : "false");
    }
    return chosen;
  }

  function setupRange(page, fallback) {
    for (const button of document.querySelectorAll("#page-" + page + " .range-btn")) {
      button.addEventListener("click", () => {
        const params = Object.fromEntries(state.route.params);
        params.range = button.dataset.range === fallback ? "" : button.dataset.range;
        go(address(page, params));
      });
    }
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

  function renderThroughput(data, rangeName) {
    const range = RANGES[rangeName];
    const root = $("throughput-chart");
    const points = data.points;
    if (chart.count !== points.length) buildChart(root, points.length);
    let peak = 0;
    const totals = { completed: 0, failed: 0, dead: 0, recentDone: 0, recentFailed: 0 };
    const minuteAgo = data.now - 60;
    for (const point of points) {
      peak = Math.max(peak, point.completed + point.failed);
      totals.completed += point.completed;
      totals.failed += point.failed;
      totals.dead += point.dead;
      if (point.t + data.step > minuteAgo) {
        totals.recentDone += point.completed;
        totals.recentFailed += point.failed;
      }
    }
    const top = niceMax(peak);
    const scale = (PLOT.bottom - PLOT.top) / top;
    const when = (t) => data.step >= 3600 ? new Date(t * 1000).toLocaleString() : new Date(t * 1000).toLocaleTimeString();
    points.forEach((point, i) => {
      const bar = chart.bars[i];
      const doneHeight = point.completed * scale;
      const failedHeight = point.failed * scale;
      setAttr(bar.done, "y", (PLOT.bottom - doneHeight).toFixed(1));
      setAttr(bar.done, "height", doneHeight.toFixed(1));
      setAttr(bar.failed, "y", (PLOT.bottom - doneHeight - failedHeight).toFixed(1));
      setAttr(bar.failed, "height", failedHeight.toFixed(1));
      setText(bar.tip, when(point.t) + ": " + point.completed + " completed, " + point.failed + " failed attempts, " +
        point.dead + " died");
    });
    setText(chart.labels.top, top);
    setText(chart.labels.mid, top / 2);
    setText(chart.labels.zero, 0);
    setText(chart.labels.start, range.start);
    setText(chart.labels.middle, range.middle);
    setText(chart.labels.end, "now");
    setText($("throughput-title"), range.title);
    setAttr(root, "aria-label", "Jobs completed and attempts failed, " + range.title + ": " + totals.completed +
      " completed, " + totals.failed + " failed attempts");
    setText($("throughput-summary"), rangeName === "10m"
      ? "last minute: " + totals.recentDone + " completed, " + totals.recentFailed + " failed (" +
        (totals.recentDone / 60).toFixed(2) + " jobs/s)"
      : totals.completed + " completed, " + totals.failed + " failed attempts, " + totals.dead + " died");
  }

  // -- jobs and dead letters: lists sorted and searched by the server ----------------------------------------
  const SORT_WHY = "Not with these filters: more than 10,000 jobs match and no index keeps them in this " +
    "order. Filter by status or queue, or search by text.";

  function listParams(route, fields) {
    const found = { limit: PAGE_SIZE, offset: param(route, "offset"), sort: param(route, "sort") };
    for (const name of fields) found[name] = param(route, name);
    return found;
  }

  async function loadList(kind, path, route, fields, render) {
    let data;
    try {
      data = await get(query(path, listParams(route, fields)));
    } catch (err) {
      if (err.status !== 400 || state.route !== route) throw err;
      // An address the server refuses (typed by hand, or a sort the filters no longer allow): say why,
      // and show the list without what it refused.
      flash(err.message, true);
      const params = Object.fromEntries(route.params);
      if (!params.sort && !params.offset) throw err;
      delete params.sort;
      delete params.offset;
      go(address(kind, params), true);
      return;
    }
    if (state.route === route) render(data, route);
  }

  function textNote(node, data) {
    node.hidden = !data.text_scan;
    setText(node, data.text_scan ? "Text search looks at the " + data.text_scan.toLocaleString("en") +
      " most recent jobs that match the other filters, and at the first 4 KiB of each one's arguments and error." : "");
  }

  function renderJobs(data, route) {
    syncRows($("jobs-body"), data.jobs, (j) => j.id, (job) => {
      const row = h("tr", { class: "clickable" });
      row.append(pickCell("jobs", job.id, "job"), h("td", {}, [jobLink(job.id)]));
      for (const className of ["mono", "mono", "", "mono args", "num", "nowrap", "nowrap", "nowrap", "nowrap"]) {
        row.append(h("td", { class: className }));
      }
      cells(row)[4].append(h("span"));
      row.addEventListener("click", (event) => {
        if (!event.target.closest("a, input, button")) go("#/jobs/" + encodeURIComponent(row.dataset.key));
      });
      return row;
    }, (row, job) => {
      const cols = cells(row);
      setText(cols[2], job.task_name);
      setText(cols[3], job.queue);
      statusBadge(cols[4].firstChild, job.status);
      setText(cols[5], preview(job));
      setText(cols[6], job.max_retries === null ? job.retry_count : job.retry_count + " / " + job.max_retries);
      setText(cols[7], timeOf(job.created_at));
      setText(cols[8], timeOf(job.started_at));
      setText(cols[9], timeOf(job.finished_at));
      setText(cols[10], duration(job.started_at, job.finished_at));
    });
    $("jobs-empty").hidden = data.jobs.length > 0;
    showSort($("jobs-table"), data.sort, data.sortable, SORT_WHY);
    textNote($("jobs-text-note"), data);
    renderPager("jobs", "jobs", route, data.jobs.length, data.has_more);
    showSelection("jobs");
  }

  function renderDead(data, route) {
    syncRows($("dead-body"), data.jobs, (j) => j.id, (job) => {
      const row = h("tr");
      row.append(pickCell("dead", job.id, "dead letter"), h("td", {}, [jobLink(job.id)]));
      for (const className of ["mono", "mono", "error-cell", "num", "nowrap"]) row.append(h("td", { class: className }));
      const actions = h("td", { class: "actions" });
      if (!state.readOnly) {
        const retry = h("button", { type: "button", class: "act-retry primary", text: "Retry",
          "aria-label": "Retry dead letter " + job.id });
        retry.addEventListener("click", () => act(retry, "api/dead-letters/" + encodeURIComponent(job.id) + "/retry", {},
          (result) => "Retried " + shortId(job.id) + " as new job " + shortId(result.new_id)));
        const remove = h("button", { type: "button", class: "act-delete danger", text: "Delete",
          "aria-label": "Delete dead letter " + job.id });
        remove.addEventListener("click", () => confirmThen(remove, "Delete dead letter " + job.id + " for good?",
          "api/dead-letters/" + encodeURIComponent(job.id) + "/delete", {}, () => "Deleted " + shortId(job.id)));
        actions.append(retry, remove);
      }
      row.append(actions);
      return row;
    }, (row, job) => {
      const cols = cells(row);
      setText(cols[2], job.task_name);
      setText(cols[3], job.queue);
      setText(cols[4], firstLine(job.error, 120));
      setAttr(cols[4], "title", job.error || "");
      setText(cols[5], job.retry_count + 1);
      setText(cols[6], ago(job.finished_at, state.serverNow));
    });
    $("dead-empty").hidden = data.jobs.length > 0;
    const none = data.jobs.length === 0 && !data.filters.text;
    $("dead-purge").hidden = state.readOnly || none;
    $("dead-retry-all").hidden = state.readOnly || none;
    showSort($("dead-table"), data.sort, data.sortable, SORT_WHY);
    textNote($("dead-text-note"), data);
    renderPager("dead", "dead", route, data.jobs.length, data.has_more);
    showSelection("dead");
  }

  // Filters: a choice in a list applies at once (a new history entry); typing applies after a pause,
  // in place of the current entry, and Enter or Search at once. A filter that changes keeps the sort
  // only if it is the enqueue order (any other may need the filters it had).
  function setupFilters(form, page, fields) {
    let typing = null;
    const apply = (replace) => {
      clearTimeout(typing);
      const params = {};
      for (const name of fields) params[name] = form.elements[name].value.trim();
      if (params.id && !HEX.test(params.id)) {
        flash("Id: type the start of a job id, hex digits only (0-9, a-f)", true);
        return;
      }
      if (page === "jobs") state.selected.jobs.clear();
      const sort = param(state.route, "sort");
      const changed = fields.some((name) => params[name] !== param(state.route, name));
      params.sort = changed && sort.replace(/^-/, "") !== "created" ? "" : sort;
      if (!changed) params.offset = param(state.route, "offset");
      go(address(page, params), replace);
    };
    for (const name of fields) {
      const control = form.elements[name];
      control.addEventListener("change", () => apply(false));
      if (control.tagName === "INPUT") {
        control.addEventListener("input", () => {
          clearTimeout(typing);
          typing = setTimeout(() => apply(true), 500);
        });
      }
    }
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      apply(false);
    });
    form.addEventListener("reset", () => setTimeout(() => apply(false), 0));
  }

  function showFilters(form, route, fields) {
    for (const name of fields) setValue(form.elements[name], param(route, name));
  }

  const JOB_FILTERS = ["status", "queue", "task", "id", "text"];

  function setupJobs() {
    setupFilters($("job-filters"), "jobs", JOB_FILTERS);
    setupSortable($("jobs-table"), "jobs");
    setupSelection("jobs");
    $("jobs-revoke").addEventListener("click", () => {
      const task = param(state.route, "task");
      if (!task) {
        flash("Choose a task in the Task filter first: its waiting jobs are the ones revoked.", true);
        return;
      }
      confirmThen($("jobs-revoke"), "Cancel every waiting job of task " + task + "? Running jobs go on.",
        "api/tasks/" + encodeURIComponent(task) + "/revoke", {},
        (data) => "Cancelled " + data.cancelled + " waiting job(s) of " + task);
    });
    $("jobs-bulk-retry").addEventListener("click", () => bulk("jobs", $("jobs-bulk-retry"),
      (n) => "Retry the dead letters among the " + n + " selected jobs as new jobs? Other jobs are left as they are.",
      "api/dead-letters/retry", (data, n) => "Retried " + data.retried + " of " + n + " selected" + refusedText(data.refused)));
    $("jobs-bulk-cancel").addEventListener("click", () => bulk("jobs", $("jobs-bulk-cancel"),
      (n) => "Cancel the " + n + " selected jobs? Running ones are asked to stop; finished ones stay as they are.",
      "api/jobs/cancel", (data, n) => "Cancelled " + data.cancelled + " of " + n + " selected" + refusedText(data.refused)));
  }

  function setupDead() {
    setupFilters($("dead-filters"), "dead", ["text"]);
    setupSortable($("dead-table"), "dead");
    setupSelection("dead");
    $("dead-retry-all").addEventListener("click", () => confirmThen($("dead-retry-all"),
      "Replay every dead letter as a new job?", "api/dead-letters/retry-all", {},
      (data) => "Replayed " + data.retried + " dead letter(s)"));
    $("dead-purge").addEventListener("click", () => confirmThen($("dead-purge"),
      "Delete every dead letter? Their arguments and errors will be gone.", "api/dead-letters/purge", { older_than: 0 },
      (data) => "Purged " + data.purged + " dead letter(s)"));
    $("dead-bulk-retry").addEventListener("click", () => bulk("dead", $("dead-bulk-retry"),
      (n) => "Retry the " + n + " selected dead letters as new jobs?", "api/dead-letters/retry",
      (data, n) => "Retried " + data.retried + " of " + n + " selected" + refusedText(data.refused)));
    $("dead-bulk-delete").addEventListener("click", () => bulk("dead", $("dead-bulk-delete"),
      (n) => "Delete the " + n + " selected dead letters for good?", "api/dead-letters/delete",
      (data, n) => "Deleted " + data.deleted + " of " + n + " selected" + refusedText(data.refused)));
  }

  // -- queues -------------------------------------------------------------------------------------------
  const QUEUE_SORTS = {
    name: (q) => q.name, pending: (q) => q.stats.pending, running: (q) => q.stats.running,
    completed: (q) => q.stats.completed, failed: (q) => q.stats.failed, dead: (q) => q.stats.dead,
    cancelled: (q) => q.stats.cancelled,
    oldest: (q) => (q.oldest_due_at === null || q.oldest_due_at === undefined ? null : state.serverNow - q.oldest_due_at),
    wait: (q) => (q.wait && q.wait.count ? q.wait.p95 : null),
  };

  function renderQueues(data, route) {
    const sort = param(route, "sort") || "name";
    syncRows($("queues-body"), sortItems(data.queues, sort, QUEUE_SORTS), (q) => q.name, () => {
      const row = h("tr");
      row.append(h("td", { class: "mono" }, [h("a")]));
      for (let i = 0; i < STAT_KEYS.length + 2; i++) row.append(h("td", { class: "num" }));
      row.append(h("td", {}, [h("span")]));
      const button = h("button", { type: "button", class: "act-toggle" });
      button.addEventListener("click", () => {
        const name = row.dataset.name;
        const action = row.dataset.paused ? "resume" : "pause";
        act(button, "api/queues/" + encodeURIComponent(name) + "/" + action, {},
          () => (action === "pause" ? "Paused " : "Resumed ") + name);
      });
      const purge = h("button", { type: "button", class: "act-purge danger", text: "Purge" });
      purge.addEventListener("click", () => {
        const name = row.dataset.name;
        confirmThen(purge, "Cancel every waiting job of queue " + name + "? Running jobs go on.",
          "api/queues/" + encodeURIComponent(name) + "/purge", {},
          (result) => "Cancelled " + result.cancelled + " waiting job(s) of " + name);
      });
      row.append(h("td", { class: "actions" }, state.readOnly ? [] : [button, purge]));
      return row;
    }, (row, q) => {
      const cols = cells(row);
      const link = cols[0].firstChild;
      setText(link, q.name);
      setAttr(link, "href", address("jobs", { queue: q.name }));
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
        setAttr(button, "aria-label", (q.paused ? "Resume" : "Pause") + " queue " + q.name);
        setClass(button, q.paused ? "act-toggle act-resume primary" : "act-toggle act-pause");
        setAttr(cols[10].lastChild, "aria-label", "Purge queue " + q.name);
      }
    });
    $("queues-empty").hidden = data.queues.length > 0;
    showSort($("queues-table"), sort, null, "");
  }

  // -- workers -------------------------------------------------------------------------------------------
  const WORKER_SORTS = {
    id: (w) => w.id, hostname: (w) => w.hostname, concurrency: (w) => w.concurrency, running: (w) => w.running,
    started_at: (w) => w.started_at,
  };

  function renderWorkers(data, route) {
    const sort = param(route, "sort") || "id";
    syncRows($("workers-body"), sortItems(data.workers, sort, WORKER_SORTS), (w) => w.id, () => {
      const row = h("tr");
      const classes = ["mono", "", "num", "", "num", "num", "running-now", "nowrap", "nowrap"];
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
        replaceChildren(cols[6], jobs.length ? jobs.map((j) => h("div", {}, [
          jobLink(j.id), " ", h("span", { class: "mono", text: j.task_name }), " ", h("span", { class: "muted running-for" })]))
          : [h("span", { class: "muted", text: "idle" })]);
      }
      Array.from(cols[6].querySelectorAll(".running-for")).forEach((node, i) => {
        const started = jobs[i] && jobs[i].started_at;
        setText(node, started ? "for " + seconds(Math.max(0, data.now - started)) : "starting");
      });
      setText(cols[7], timeOf(w.started_at));
      setText(cols[8], ago(w.last_heartbeat, data.now));
    });
    $("workers-empty").hidden = data.workers.length > 0;
    showSort($("workers-table"), sort, null, "");
  }

  // -- schedules -----------------------------------------------------------------------------------------
  const SCHEDULE_SORTS = { name: (s) => s.name, task: (s) => s.task, last_run: (s) => s.last_run, next_run: (s) => s.next_run };

  function renderSchedules(data, route) {
    const sort = param(route, "sort") || "name";
    syncRows($("schedules-body"), sortItems(data.schedules, sort, SCHEDULE_SORTS), (s) => s.name, () => {
      const row = h("tr");
      for (const className of ["mono", "mono", "mono", "", "nowrap", "nowrap", ""]) row.append(h("td", { class: className }));
      const toggle = h("button", { type: "button", class: "act-toggle" });
      toggle.addEventListener("click", () => {
        const action = row.dataset.paused ? "resume" : "pause";
        act(toggle, "api/schedules/" + encodeURIComponent(row.dataset.name) + "/" + action, {},
          () => (action === "pause" ? "Paused " : "Resumed ") + row.dataset.name);
      });
      const run = h("button", { type: "button", class: "act-run", text: "Run now" });
      run.addEventListener("click", () => act(run, "api/schedules/" + encodeURIComponent(row.dataset.name) + "/run", {},
        (result) => row.dataset.name + " enqueued job " + shortId(result.job_id)));
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
        setAttr(toggle, "aria-label", (s.paused ? "Resume" : "Pause") + " schedule " + s.name);
        setAttr(cols[7].lastChild, "aria-label", "Run schedule " + s.name + " now");
        setClass(toggle, s.paused ? "act-toggle act-resume primary" : "act-toggle act-pause");
      }
    });
    $("schedules-empty").hidden = data.schedules.length > 0;
    showSort($("schedules-table"), sort, null, "");
  }

  // -- tasks ------------------------------------------------------------------------------------------------
  const TASK_SORTS = {
    task_name: (t) => t.task_name, attempts: (t) => t.attempts, complete: (t) => t.counts.complete,
    failed: (t) => t.counts.failed, dead: (t) => t.counts.dead, failure_rate: (t) => t.failure_rate,
    p50: (t) => t.runtime.p50, p95: (t) => t.runtime.p95, p99: (t) => t.runtime.p99,
    wait_p50: (t) => t.wait.p50, wait_p95: (t) => t.wait.p95,
  };

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

  function renderTaskStats(data, series, route) {
    const perTask = {};
    series.points.forEach((point, i) => {
      for (const [name, counts] of Object.entries(point.tasks)) {
        const entry = perTask[name] || (perTask[name] = { all: new Array(series.points.length).fill(0),
          failed: new Array(series.points.length).fill(0) });
        entry.all[i] = counts.complete + counts.failed + counts.dead;
        entry.failed[i] = counts.failed + counts.dead;
      }
    });
    const sort = param(route, "sort");
    syncRows($("tasks-body"), sort ? sortItems(data.stats, sort, TASK_SORTS) : data.stats, (t) => t.task_name, () => {
      const row = h("tr");
      row.append(h("td", { class: "mono" }, [h("a")]));
      for (let i = 0; i < 10; i++) row.append(h("td", { class: "num" }));
      const cell = h("td");
      svg("svg", { class: "spark", viewBox: "0 0 120 24", width: "120", height: "24", role: "img" }, cell);
      row.append(cell);
      return row;
    }, (row, t) => {
      const cols = cells(row);
      const link = cols[0].firstChild;
      setText(link, t.task_name);
      setAttr(link, "href", address("jobs", { task: t.task_name }));
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
    showSort($("tasks-table"), sort, null, "");
  }

  function renderTaskNames(data) {
    const names = data.tasks.join("\n");
    if (names === state.taskNames) return;
    state.taskNames = names;
    replaceChildren($("task-names"), data.tasks.map((name) => h("option", { value: name })));
  }

  // -- workflows -----------------------------------------------------------------------------------------
  function renderWorkflows(data, route) {
    syncRows($("workflows-body"), data.workflows, (w) => w.id, () => {
      const row = h("tr");
      row.append(h("td", {}, [h("a", { class: "mono" })]), h("td"), h("td", {}, [h("span")]), h("td", { class: "num" }),
        h("td", { class: "num" }), h("td", { class: "nowrap" }), h("td", { class: "nowrap" }), h("td", { class: "error-cell" }));
      return row;
    }, (row, w) => {
      const cols = cells(row);
      const link = cols[0].firstChild;
      setText(link, shortId(w.id));
      setAttr(link, "title", w.id);
      setAttr(link, "href", "#/workflows/" + encodeURIComponent(w.id));
      setText(cols[1], w.kind);
      statusBadge(cols[2].firstChild, w.status);
      setText(cols[3], w.stages_done + " of " + w.stages);
      setText(cols[4], w.jobs);
      setText(cols[5], timeOf(w.created_at));
      setText(cols[6], timeOf(w.finished_at));
      setText(cols[7], firstLine(w.error, 120));
    });
    $("workflows-empty").hidden = data.workflows.length > 0;
    renderPager("workflows", "workflows", route, data.workflows.length, data.has_more);
  }

  const WORKFLOW_JOBS_SHOWN = 20;  // per stage: a chord's group may have thousands

  // The stages of a workflow in order, each with its jobs (links to their pages); currentId is marked.
  function renderStages(list, workflow, currentId) {
    const stages = workflow.stages.map((stage) => ({
      key: "stage-" + stage.stage, label: stage.group ? "group of " + stage.size : "step",
      jobs: stage.jobs, more: stage.more,
    }));
    if (workflow.on_error) stages.push({ key: "on-error", label: "on error", jobs: [workflow.on_error], more: 0 });
    syncRows(list, stages, (stage) => stage.key,
      () => h("li", { class: "workflow-stage" }, [h("span", { class: "muted" }), h("ul", { class: "workflow-jobs" })]),
      (item, stage) => {
        setText(item.firstChild, stage.label);
        const members = stage.jobs.map((member) => ({ key: member.id, member: member }));
        if (stage.more) members.push({ key: "more", more: stage.more });
        syncRows(item.lastChild, members, (entry) => entry.key, (entry) => {
          if (entry.more) return h("li", { class: "muted" });
          return h("li", {}, [jobLink(entry.member.id), h("span"), h("span", { class: "badge" })]);
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

  const workflowValues = {};

  async function loadWorkflowPage(route) {
    let workflow = null;
    try {
      workflow = await get("api/workflows/" + encodeURIComponent(route.id) + "?per_stage=" + WORKFLOW_JOBS_SHOWN);
    } catch (err) {
      if (err.status !== 404) throw err;
    }
    if (state.route !== route) return;
    $("workflow-missing").hidden = workflow !== null;
    $("workflow-body").hidden = workflow === null;
    if (!workflow) return;
    const values = { kind: workflow.kind, status: workflow.status, created_at: timeOf(workflow.created_at),
      finished_at: timeOf(workflow.finished_at), failed_job_id: workflow.failed_job_id || "", error: workflow.error || "" };
    for (const [key] of WORKFLOW_FIELDS) setText(workflowValues[key], values[key]);
    setClass(workflowValues.status, "badge st-" + workflow.status);
    replaceChildren(workflowValues.failed_job_id, workflow.failed_job_id ? [jobLink(workflow.failed_job_id)] : []);
    renderStages($("workflow-stages"), workflow, null);
  }

  // -- job detail ------------------------------------------------------------------------------------------
  const detailValues = {};

  function setupDetail() {
    for (const [key, label] of DETAIL_FIELDS) {
      $("detail-fields").append(h("dt", { text: label }));
      detailValues[key] = h("dd", { class: key === "id" || key === "worker_id" ? "mono" : "" });
      $("detail-fields").append(detailValues[key]);
    }
    for (const [key, label] of WORKFLOW_FIELDS) {
      $("workflow-fields").append(h("dt", { text: label }));
      workflowValues[key] = h("dd", { class: key === "error" ? "code-error" : "" });
      $("workflow-fields").append(workflowValues[key]);
    }
    const jobPath = (suffix) => "api/jobs/" + encodeURIComponent(state.route.id) + suffix;
    const deadPath = (suffix) => "api/dead-letters/" + encodeURIComponent(state.route.id) + suffix;
    $("detail-cancel").addEventListener("click", () => {
      const id = state.route.id;
      act($("detail-cancel"), jobPath("/cancel"), {},
        (data) => (data.cancel_requested ? "Cancellation requested: its worker stops " : "Cancelled ") + shortId(id));
    });
    const toNewJob = (data) => go("#/jobs/" + encodeURIComponent(data.new_id));
    $("detail-replay").addEventListener("click", () => {
      const id = state.route.id;
      confirmThen($("detail-replay"), "Enqueue job " + id + " again, with the same arguments and options?",
        jobPath("/replay"), {}, (result) => "Replayed " + shortId(id) + " as new job " + shortId(result.new_id), toNewJob);
    });
    $("detail-retry").addEventListener("click", () => {
      const id = state.route.id;
      act($("detail-retry"), deadPath("/retry"), {},
        (result) => "Retried " + shortId(id) + " as new job " + shortId(result.new_id), toNewJob);
    });
    $("detail-delete").addEventListener("click", () => {
      const id = state.route.id;
      // The job is gone: back to the list it was found in.
      confirmThen($("detail-delete"), "Delete dead letter " + id + " for good?", deadPath("/delete"), {},
        () => "Deleted " + shortId(id), () => go(state.listAddress));
    });
  }

  function clearDetail(id) {
    state.detailLogs = { id: id, after: 0, lines: [] };
    syncRows($("detail-logs"), [], () => "", null, null);
    $("detail-logs-empty").hidden = true;
    setText($("detail-id"), id);
    for (const node of Object.values(detailValues)) setText(node, "");
    for (const name of ["detail-args", "detail-kwargs", "detail-result", "detail-error"]) setText($(name), "");
    syncRows($("detail-errors"), [], () => "", null, null);
    $("detail-workflow").hidden = true;
    $("detail-missing").hidden = true;
    $("detail-body").hidden = false;
  }

  async function loadDetail(route) {
    let job = null;
    try {
      job = await get("api/jobs/" + encodeURIComponent(route.id));
    } catch (err) {
      if (err.status !== 404) throw err;
    }
    if (state.route !== route) return;  // the user went elsewhere meanwhile
    $("detail-missing").hidden = job !== null;
    $("detail-body").hidden = job === null;
    if (!job) return;
    renderDetail(job);
    await loadDetailWorkflow(job, route);
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
      row.append(h("td", { class: "num" }), h("td", { class: "nowrap" }));
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
    setText($("detail-cancel"), job.status === "running" ? "Cancel running job" : "Cancel job");
    $("detail-replay").hidden = state.readOnly || !job.can_replay;
    $("detail-retry").hidden = state.readOnly || !job.can_retry;
    $("detail-delete").hidden = state.readOnly || !job.can_retry;
  }

  async function loadDetailWorkflow(job, route) {
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
    if (state.route !== route) return;
    section.hidden = workflow === null;
    if (!workflow) return;
    setText($("detail-workflow-kind"), workflow.kind);
    statusBadge($("detail-workflow-status"), workflow.status);
    const link = $("detail-workflow-link");
    setText(link, shortId(workflow.id));
    setAttr(link, "title", workflow.id);
    setAttr(link, "href", "#/workflows/" + encodeURIComponent(workflow.id));
    setText($("detail-workflow-about"), workflow.error
      ? "ended by job " + shortId(workflow.failed_job_id) + ": " + firstLine(workflow.error, 200) : "");
    renderStages($("detail-workflow-stages"), workflow, job.id);
  }

  // -- the pages ----------------------------------------------------------------------------------------------
  // enter(route, moved): show the address's choices in the page's controls; load(route): fetch and render.
  const PAGES = {
    overview: {
      enter: (route) => showRange("overview", route, "10m"),
      load: async (route) => {
        const range = RANGES[rangeOf(route, "10m")];
        const data = await get(query("api/throughput", { window: range.since, step: range.step }));
        state.serverNow = data.now;
        if (state.route === route) renderThroughput(data, rangeOf(route, "10m"));
      },
    },
    jobs: {
      enter: (route, moved) => {
        showFilters($("job-filters"), route, JOB_FILTERS);
        state.listAddress = "#" + route.key;
        if (moved) get("api/tasks").then(renderTaskNames).catch(() => {});
      },
      load: (route) => loadList("jobs", "api/jobs", route, JOB_FILTERS, renderJobs),
    },
    job: {
      enter: (route, moved) => {
        setAttr($("detail-back"), "href", state.listAddress);
        setText($("detail-back"), state.listAddress.startsWith("#/dead") ? "‹ Dead letters" : "‹ Jobs");
        if (moved) clearDetail(route.id);
      },
      load: loadDetail,
    },
    dead: {
      enter: (route) => {
        showFilters($("dead-filters"), route, ["text"]);
        state.listAddress = "#" + route.key;
      },
      load: (route) => loadList("dead", "api/dead-letters", route, ["text"], renderDead),
    },
    queues: {
      load: async (route) => {
        // Ages are judged by the server's clock (the queues' answer stays the same while a job waits).
        const [data, workers] = await Promise.all([get("api/queues"), get("api/workers")]);
        state.serverNow = workers.now;
        if (state.route === route) renderQueues(data, route);
      },
    },
    workers: {
      load: async (route) => {
        const data = await get("api/workers");
        state.serverNow = data.now;
        if (state.route === route) renderWorkers(data, route);
      },
    },
    schedules: {
      load: async (route) => {
        const data = await get("api/schedules");
        if (state.route === route) renderSchedules(data, route);
      },
    },
    tasks: {
      enter: (route) => showRange("tasks", route, "1h"),
      load: async (route) => {
        const range = RANGES[rangeOf(route, "1h")];
        const step = Math.max(60, range.step);
        const [tasks, series] = await Promise.all([get("api/tasks?since=" + range.since),
          get(query("api/task-series", { since: range.since, step: step }))]);
        renderTaskNames(tasks);
        if (state.route === route) renderTaskStats(tasks, series, route);
      },
    },
    workflows: {
      load: async (route) => {
        const data = await get(query("api/workflows", { limit: PAGE_SIZE, offset: param(route, "offset") }));
        if (state.route === route) renderWorkflows(data, route);
      },
    },
    workflow: {
      enter: (route, moved) => {
        if (moved) {
          setText($("workflow-id"), route.id);
          syncRows($("workflow-stages"), [], () => "", null, null);
        }
      },
      load: loadWorkflowPage,
    },
    missing: {},
  };

  // -- the refresh loop ------------------------------------------------------------------------------------
  let inflight = null;
  let again = false;
  let holding = false;  // an action is being posted (act)

  async function load() {
    const current = state.route;
    const page = PAGES[current.page];
    await Promise.all([get("api/stats").then(renderStats), page.load ? page.load(current) : null]);
    const conn = $("conn");
    setText(conn, "updated " + new Date().toLocaleTimeString());
    setClass(conn, "conn conn-ok");
    document.body.dataset.loaded = "1";
    if (state.route === current) document.body.dataset.shown = current.key;  // tests wait for a page by this
  }

  function refresh() {
    if (holding) return Promise.resolve();  // the action refreshes when it is done
    if (inflight) {
      again = true;  // something changed while a refresh was running: run one more right after
      return inflight;
    }
    again = false;
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
    state.queueLabel = session.queue;
    setText($("queue-name"), session.queue);
    return session;
  }

  // The top bar's search: a whole job id opens the job, the start of one (or a shortened id as lists
  // show it, "01a22b…9f3c1d") lists the jobs it starts, anything else is searched as text.
  function setupSearch() {
    $("search").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("search-id").value.trim();
      if (!value) return;
      const shortened = /^([0-9a-f]+)…[0-9a-f]+$/i.exec(value);
      if (/^[0-9a-f]{32}$/i.test(value)) go("#/jobs/" + value.toLowerCase());
      else if (HEX.test(value) || shortened) go(address("jobs", { id: (shortened ? shortened[1] : value).toLowerCase() }));
      else go(address("jobs", { text: value }));
    });
  }

  function setupSkipLink() {
    // The address holds the page, so the skip link moves the focus itself instead of following its href.
    $("skip-link").addEventListener("click", (event) => {
      event.preventDefault();
      const heading = state.route && $("h-" + state.route.page);
      (heading || $("content")).focus();
    });
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
    setupSkipLink();
    setupSearch();
    setupJobs();
    setupDead();
    setupDetail();
    setupRange("overview", "10m");
    setupRange("tasks", "1h");
    for (const [name, page] of [["queues", "queues"], ["workers", "workers"], ["schedules", "schedules"], ["tasks", "tasks"]]) {
      setupSortable($(name + "-table"), page);
    }
    window.addEventListener("hashchange", route);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) refresh();
    });
    await route();
    setTimeout(loop, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
