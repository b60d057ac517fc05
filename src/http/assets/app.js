// flowwatch page, part 3 of 3: reads the JSON API under /api/v1 and draws flows, instances
// needing attention and single instances, with routing, polling and operator commands. No
// framework and no build step. Every value that comes from the API (keys, payloads, names) is
// inserted as text: elements are built with createElement and filled with textContent, never
// by parsing strings as HTML.
"use strict";

const POLL_MS = 2000;
const TOKEN_KEY = "flowwatch.operatorToken";

// ---------------------------------------------------------------------------------------------
// The API. Normalisers accept a bare array or an object holding one, so the page keeps working
// whether a list comes wrapped or not.

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, options) {
  const response = await fetch("/api/v1" + path, Object.assign({ headers: { Accept: "application/json" } }, options));
  const text = await response.text();
  let body = null;
  if (text) {
    try { body = JSON.parse(text); } catch (_) { body = text; }
  }
  if (!response.ok) {
    const message = body && typeof body === "object" ? (body.message || body.error || JSON.stringify(body)) : (body || response.statusText);
    throw new ApiError(response.status, message);
  }
  return body;
}

function unwrap(body, field) {
  if (Array.isArray(body)) return body;
  if (body && Array.isArray(body[field])) return body[field];
  return [];
}

let eventClock = null; // the engine's event clock, from the latest flow list

const Api = {
  flows: async () => {
    const body = await api("/flows");
    if (body && body.clock !== undefined) eventClock = body.clock;
    return unwrap(body, "flows");
  },
  graph: (flow) => api("/flows/" + encodeURIComponent(flow) + "/graph"),
  instances: async (flow, query) => {
    const params = new URLSearchParams(query || {}).toString();
    const body = await api("/flows/" + encodeURIComponent(flow) + "/instances" + (params ? "?" + params : ""));
    return {
      instances: unwrap(body, "instances"),
      next_cursor: body && body.next_cursor,
      total: body && typeof body.total === "number" ? body.total : null,
    };
  },
  instance: (flow, key) => api("/flows/" + encodeURIComponent(flow) + "/instances/" + encodeURIComponent(key)),
  orphans: async () => unwrap(await api("/orphans"), "orphans"),
  command: (flow, key, command, body) => {
    const token = sessionStorage.getItem(TOKEN_KEY) || "";
    return api("/flows/" + encodeURIComponent(flow) + "/instances/" + encodeURIComponent(key) + "/" + command, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", Authorization: "Bearer " + token },
      body: JSON.stringify(body),
    });
  },
};

// ---------------------------------------------------------------------------------------------
// Views. Each returns an element; the router swaps it in after every poll.

const graphs = new Map(); // flow name -> normalised graph (definitions do not change while running)

async function graphOf(flow) {
  if (!graphs.has(flow)) graphs.set(flow, normaliseGraph(await Api.graph(flow)));
  return graphs.get(flow);
}

function pill(kind, count, label) {
  return h("span", { class: "pill " + kind + (count ? "" : " zero"), "data-total": kind }, count + " " + (label || kind));
}

function instanceRow(flow, instance) {
  const flags = [];
  if (instance.breached) flags.push(h("span", { class: "pill breached" }, "breached"));
  if (instance.stuck) flags.push(h("span", { class: "pill stuck" }, "stuck"));
  return h("tr", { "data-key": instance.key },
    h("td", {}, flow),
    h("td", { class: "mono" }, link(instanceHref(flow, instance.key), instance.key)),
    h("td", {}, String(instance.status || "")), h("td", {}, flags),
    h("td", {}, list(instance.waiting_in).join(", ")),
    h("td", { class: "mono" }, formatTime(instance.started)),
    h("td", { class: "mono" }, formatTime(instance.last_event)));
}

function instanceTable(rows, emptyText) {
  if (!rows.length) return h("p", { class: "empty" }, emptyText);
  return h("table", {}, h("thead", {}, h("tr", {}, ["flow", "key", "status", "", "waiting in", "started", "last event"].map((t) => h("th", {}, t)))), h("tbody", {}, rows));
}

async function overview() {
  const flows = await Api.flows();
  const root = h("div", { id: "overview" });
  root.appendChild(h("h1", {}, "Flows"));
  const grid = h("div", { class: "flows" });
  const attention = { breached: [], stuck: [] };
  for (const flow of flows) {
    const graph = await graphOf(flow.name);
    const card = h("section", { class: "card flow", "data-flow": flow.name },
      h("h2", {}, link(flowHref(flow.name), flow.name)),
      flow.description ? h("div", { class: "muted" }, flow.description) : null,
      h("div", { class: "totals" }, pill("open", number(flow.open)), pill("breached", number(flow.breached)), pill("stuck", number(flow.stuck)), pill("completed", number(flow.completed)), pill("failed", number(flow.failed))),
      h("div", { class: "diagram" }, renderDiagram(graph, flow)));
    grid.appendChild(card);
    for (const state of ["breached", "stuck"]) {
      if (number(flow[state]) > 0) {
        const page = await Api.instances(flow.name, { state, limit: 50 });
        for (const instance of page.instances) attention[state].push(instanceRow(flow.name, instance));
      }
    }
  }
  if (!flows.length) grid.appendChild(h("p", { class: "empty" }, "No flows loaded."));
  root.appendChild(grid);
  const orphans = await Api.orphans();
  root.appendChild(h("div", { class: "attention" },
    h("section", { id: "breached" }, h("h2", {}, "Breached instances"), instanceTable(attention.breached, "No open instance is past an SLA.")),
    h("section", { id: "stuck" }, h("h2", {}, "Stuck instances"), instanceTable(attention.stuck, "No open instance is stuck."))));
  root.appendChild(h("section", { id: "orphans" }, h("h2", {}, "Orphaned events (held, start not seen)"),
    orphans.length
      ? h("table", {}, h("thead", {}, h("tr", {}, ["flow", "held under", "value", "events", "first", "reported at"].map((t) => h("th", {}, t)))),
          h("tbody", {}, orphans.map((orphan) => h("tr", {},
            h("td", {}, orphan.flow), h("td", {}, orphan.alias || "key"), h("td", { class: "mono" }, orphan.value),
            h("td", {}, list(orphan.events).join(", ") || String(orphan.held || "")),
            h("td", { class: "mono" }, formatTime(orphan.first)), h("td", { class: "mono" }, formatTime(orphan.expires))))))
      : h("p", { class: "empty" }, "No events are held.")));
  return root;
}

async function flowView(flow, query) {
  const flows = await Api.flows();
  const counts = flows.find((f) => f.name === flow);
  if (!counts) throw new ApiError(404, "no flow named " + flow);
  const graph = await graphOf(flow);
  const state = query.get("state") || "";
  const step = query.get("step") || "";
  const cursor = query.get("cursor") || "";
  const params = { limit: 50 };
  if (state) params.state = state;
  if (step) params.step = step;
  if (cursor) params.cursor = cursor;
  const page = await Api.instances(flow, params);
  const filterLink = (label, value) => {
    const next = {};
    if (value) next.state = value;
    if (step) next.step = step;
    return h("a", { href: flowHref(flow, next), class: value === state ? "active" : null }, label);
  };
  return h("div", { id: "flow", "data-flow": flow },
    h("h1", {}, flow),
    counts.description ? h("p", { class: "muted" }, counts.description) : null,
    h("div", { class: "diagram card" }, renderDiagram(graph, counts)),
    h("h2", {}, "Instances" + (step ? " waiting in " + step : "") + (page.total !== null ? " (" + page.total + ")" : "")),
    h("div", { class: "filters" }, filterLink("all", ""), ["open", "breached", "stuck", "completed", "failed"].map((value) => filterLink(value, value)),
      step ? h("a", { href: flowHref(flow, state ? { state } : {}) }, "any step ✕") : null),
    instanceTable(page.instances.map((instance) => instanceRow(flow, instance)), "No instance matches."),
    page.next_cursor ? h("p", {}, link(flowHref(flow, Object.assign(state ? { state } : {}, step ? { step } : {}, { cursor: page.next_cursor })), "next page →")) : null);
}

// The instance's summary fields, whether they are nested under `summary` or flat.
function summaryOf(detail) {
  return Object.assign({}, detail, detail.summary || {});
}

function historyEntries(detail) {
  return list(detail.history).map((entry) => {
    const kind = entry.kind || entry.type || (entry.command ? "operator" : "event");
    return Object.assign({ kind }, entry);
  });
}

function timeline(detail) {
  const summary = summaryOf(detail);
  const steps = list(detail.steps);
  const history = historyEntries(detail);
  const times = [toMillis(summary.started), toMillis(summary.ended), toMillis(summary.last_event), toMillis(detail.deadline)];
  for (const step of steps) {
    times.push(toMillis(step.opened), toMillis(step.completed));
    for (const window of list(step.windows)) times.push(toMillis(window.opened), toMillis(window.due), toMillis(window.completed));
  }
  for (const entry of history) times.push(toMillis(entry.time));
  const known = times.filter((t) => t !== null);
  if (!known.length) return h("p", { class: "empty" }, "Nothing to draw yet.");
  const low = Math.min(...known);
  const high = Math.max(...known, low + 1000);
  const width = 1000, laneWidth = 150, right = 20, laneHeight = 26, top = 30;
  const x = (t) => laneWidth + ((t - low) / (high - low)) * (width - laneWidth - right);
  const lanes = ["events"].concat(steps.map((step) => step.name));
  const height = top + lanes.length * laneHeight + 10;
  const svg = s("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": "timeline of " + summary.key, id: "timeline-svg" });
  svg.appendChild(s("line", { class: "axis", x1: laneWidth, y1: top - 8, x2: width - right, y2: top - 8 }));
  for (let i = 0; i <= 4; i++) {
    const t = low + ((high - low) * i) / 4;
    svg.appendChild(s("text", { class: "tick", x: x(t), y: top - 14, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" }, formatTime(Math.round(t)).slice(5)));
  }
  lanes.forEach((lane, i) => svg.appendChild(s("text", { class: "lane", x: 6, y: top + i * laneHeight + 16 }, lane)));
  history.forEach((entry) => {
    const t = toMillis(entry.time);
    if (t === null) return;
    const mark = s("circle", { class: entry.kind === "operator" ? "operator" : "event", cx: x(t), cy: top + 12, r: 5, "data-kind": entry.kind });
    mark.appendChild(s("title", {}, formatTime(t) + " " + (entry.event || entry.command || entry.kind)));
    svg.appendChild(mark);
  });
  for (const [name, value, cls] of [["deadline", detail.deadline, "deadline"], ["stuck if silent until", summary.ended ? null : detail.stuck_due, "stuck-due"]]) {
    const t = toMillis(value);
    if (t === null) continue;
    svg.appendChild(s("line", { class: "marker " + cls, x1: x(t), y1: top - 4, x2: x(t), y2: height - 6 }, s("title", {}, name + " " + formatTime(t))));
  }
  steps.forEach((step, i) => {
    const y = top + (i + 1) * laneHeight;
    for (const window of list(step.windows)) {
      const opened = toMillis(window.opened), due = toMillis(window.due);
      if (opened === null || due === null) continue;
      const bar = s("rect", { class: "window" + (window.breached ? " breached" : ""), x: x(opened), y: y + 4, width: Math.max(2, x(due) - x(opened)), height: 14, rx: 3 });
      bar.appendChild(s("title", {}, "window " + formatTime(opened) + " → " + formatTime(due) + (window.breached ? " (breached)" : "")));
      svg.appendChild(bar);
      if (window.breached) svg.appendChild(s("path", { class: "breach", d: "M" + x(due) + "," + (y + 2) + " l5,9 l-5,9 l-5,-9 z" }, s("title", {}, "breach at " + formatTime(due))));
    }
    const done = toMillis(step.completed);
    if (done !== null) svg.appendChild(s("rect", { class: "done", x: x(done) - 4, y: y + 7, width: 8, height: 8 }, s("title", {}, "completed " + formatTime(done))));
  });
  return h("div", { class: "timeline" }, svg,
    h("p", { class: "muted" }, "Blue dots: events received; purple: operator commands; bars: step SLA windows (red when breached, diamond at the breach); green squares: completions; dashed red line: the instance deadline; dashed orange: when it counts as stuck."));
}

async function instanceView(flow, key) {
  const detail = await Api.instance(flow, key);
  const summary = summaryOf(detail);
  const steps = list(detail.steps);
  const history = historyEntries(detail);
  const openInstance = !summary.ended && !/^(completed|failed)$/i.test(String(summary.status || ""));
  const stepCard = (step) => h("div", { class: "step-card" + (step.unresolved || (list(step.windows).some((w) => w.breached) && !step.completed) ? " breached" : ""), "data-step": step.name },
    h("strong", {}, step.name), " ", h("span", { class: "pill" }, String(step.status || "")),
    h("div", { class: "muted" }, "opened ", formatTime(step.opened) || "–", step.completed ? ["; completed ", formatTime(step.completed)] : null),
    number(step.breaches) ? h("div", {}, h("span", { class: "pill breached" }, step.breaches + " breach" + (step.breaches > 1 ? "es" : "")), step.unresolved ? " unresolved" : "") : null,
    openInstance && (step.status === "open" || step.unresolved) ? h("div", { class: "actions" },
      step.status === "open" ? commandButton("Retry step now", () => runCommand(flow, key, "retry", { step: step.name, note: noteValue() })) : null,
      step.unresolved ? commandButton("Resolve breach", () => runCommand(flow, key, "resolve", { step: step.name, note: noteValue() })) : null) : null);
  return h("div", { id: "instance", "data-flow": flow, "data-key": key },
    h("h1", {}, "Instance ", h("span", { class: "mono" }, summary.key || key), " ", h("span", { class: "pill" }, String(summary.status || ""))),
    h("p", {}, "flow ", link(flowHref(flow), flow), " · started ", formatTime(summary.started),
      summary.ended ? [" · ended ", formatTime(summary.ended)] : null,
      " · last event ", formatTime(summary.last_event),
      summary.breached ? [" ", h("span", { class: "pill breached" }, "breached")] : null,
      summary.stuck ? [" ", h("span", { class: "pill stuck" }, "stuck")] : null),
    detail.deadline || detail.stuck_due || number(detail.stuck_breaches)
      ? h("p", { class: "muted" },
          detail.deadline ? ["deadline ", formatTime(detail.deadline), number(detail.deadline_breaches) ? " (breached)" : "", " "] : null,
          detail.stuck_due ? ["· stuck if silent until ", formatTime(detail.stuck_due), " "] : null,
          number(detail.stuck_breaches) ? ["· ", h("span", { class: "pill stuck" }, detail.stuck_breaches + " stuck breach(es)"), " "] : null,
          openInstance && (number(detail.deadline_breaches) || number(detail.stuck_breaches))
            ? commandButton("Resolve deadline/stuck breach", () => runCommand(flow, key, "resolve", { note: noteValue() }))
            : null)
      : null,
    openInstance ? h("div", { class: "operator-form" },
      h("label", { for: "operator-note" }, "Note for the audit trail"),
      h("input", { id: "operator-note", type: "text", placeholder: "why (optional)" }),
      confirmButton("Cancel instance", "Click again to cancel it", () => runCommand(flow, key, "cancel", { note: noteValue() }))) : null,
    h("div", { id: "command-result" }),
    h("h2", {}, "Timeline"), timeline(detail),
    h("h2", {}, "Steps"), h("div", { class: "steps" }, steps.map(stepCard)),
    h("h2", {}, "History (" + history.length + (number(detail.history_dropped) ? ", " + detail.history_dropped + " older dropped" : "") + ")"),
    history.length
      ? h("table", { id: "history" }, h("thead", {}, h("tr", {}, ["time", "what", "where", "payload / details"].map((t) => h("th", {}, t)))),
          h("tbody", {}, history.map((entry) => h("tr", { class: "history-" + entry.kind },
            h("td", { class: "mono" }, formatTime(entry.time)),
            h("td", {}, entry.kind === "operator" ? "operator " + (entry.command || "") : entry.event || ""),
            h("td", { class: "mono" }, entry.kind === "operator" ? entry.request_id || "" : [entry.topic, entry.partition, entry.offset].filter((v) => v !== undefined && v !== null).join(" / ")),
            h("td", {}, entry.kind === "operator"
              ? [entry.step ? "step " + entry.step + ". " : "", entry.note ? "note: " + entry.note + ". " : "", entry.outcome || ""]
              : h("pre", { class: "payload" }, payloadText(entry.payload)))))))
      : h("p", { class: "empty" }, "No history recorded (the audit trail may be off)."));
}

// ---------------------------------------------------------------------------------------------
// Operator commands: they need the bearer token, kept in sessionStorage for this tab only.

function noteValue() {
  const input = document.getElementById("operator-note");
  return input && input.value ? input.value : null;
}

function commandButton(label, action, cls) {
  const button = h("button", { type: "button", class: cls || null }, label);
  button.addEventListener("click", action);
  return button;
}

// A destructive command asks twice, in the page (no modal dialog): the first click arms the
// button for a few seconds, the second runs the command.
function confirmButton(label, armedLabel, action) {
  const button = h("button", { type: "button", class: "danger", id: "cancel-instance" }, label);
  let disarm = null;
  button.addEventListener("click", () => {
    if (button.getAttribute("data-armed") === "yes") {
      clearTimeout(disarm);
      button.removeAttribute("data-armed");
      button.textContent = label;
      action();
      return;
    }
    button.setAttribute("data-armed", "yes");
    button.textContent = armedLabel;
    pausePolling = true; // keep the armed button on screen
    disarm = setTimeout(() => {
      button.removeAttribute("data-armed");
      button.textContent = label;
      pausePolling = false;
    }, 5000);
  });
  return button;
}

function showCommandResult(ok, text) {
  const target = document.getElementById("command-result");
  if (!target) return;
  target.replaceChildren(h("div", { class: "message " + (ok ? "ok" : "error") }, text));
}

async function runCommand(flow, key, command, body) {
  if (!sessionStorage.getItem(TOKEN_KEY)) {
    showCommandResult(false, "Operator commands need the bearer token: enter it at the top right (it is kept for this tab only).");
    document.getElementById("token-input").focus();
    return;
  }
  pausePolling = true;
  try {
    const result = await Api.command(flow, key, command, body);
    showCommandResult(true, command + " done" + (result && result.signals ? ": " + list(result.signals).length + " signal(s)" : "") + ".");
  } catch (error) {
    const hint = error.status === 401 ? " (the token is wrong: enter it again)" : "";
    showCommandResult(false, command + " refused: " + error.message + hint);
  } finally {
    pausePolling = false;
    setTimeout(refresh, 600);
  }
}

function setupToken() {
  const form = document.getElementById("token-form");
  const input = document.getElementById("token-input");
  const state = document.getElementById("token-state");
  const show = () => { state.textContent = sessionStorage.getItem(TOKEN_KEY) ? "token set" : "no token"; };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (input.value) sessionStorage.setItem(TOKEN_KEY, input.value);
    input.value = "";
    show();
  });
  document.getElementById("token-clear").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); show(); });
  show();
}

// ---------------------------------------------------------------------------------------------
// Routing and polling.

function parseRoute() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, queryText] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const query = new URLSearchParams(queryText || "");
  if (parts[0] === "flows" && parts.length >= 4 && parts[2] === "instances") return { view: "instance", flow: parts[1], key: parts.slice(3).join("/"), query };
  if (parts[0] === "flows" && parts.length === 2) return { view: "flow", flow: parts[1], query };
  return { view: "overview", query };
}

function crumbs(route) {
  const items = [];
  if (route.flow) items.push(link(flowHref(route.flow), route.flow));
  if (route.key) items.push(h("span", {}, "/ "), h("span", { class: "mono" }, route.key));
  return items;
}

let pausePolling = false;
let generation = 0;
let timer = null;

function focusedInput() {
  const active = document.activeElement;
  return active && active.tagName === "INPUT" && active.closest("#view") ? active : null;
}

async function refresh() {
  clearTimeout(timer);
  const mine = ++generation;
  const route = parseRoute();
  const status = document.getElementById("status");
  try {
    let element;
    if (route.view === "instance") element = await instanceView(route.flow, route.key);
    else if (route.view === "flow") element = await flowView(route.flow, route.query);
    else element = await overview();
    if (mine !== generation) return; // a newer refresh started (the route changed)
    const view = document.getElementById("view");
    // Keep what an operator is typing: carry the note over to the new view.
    const typing = focusedInput();
    const note = document.getElementById("operator-note");
    const result = document.getElementById("command-result");
    view.replaceChildren(element);
    const newNote = document.getElementById("operator-note");
    if (note && newNote) newNote.value = note.value;
    const newResult = document.getElementById("command-result");
    if (result && newResult) newResult.replaceChildren(...result.childNodes);
    if (typing && typing.id && document.getElementById(typing.id)) document.getElementById(typing.id).focus();
    document.getElementById("crumbs").replaceChildren(...crumbs(route));
    status.className = "status";
    // The event clock, not the wall clock: what the tracker has seen up to (and a stable
    // picture for screenshots); the wall-clock refresh time is in the tooltip.
    status.textContent = eventClock ? "event clock " + formatTime(eventClock) : "no records yet";
    status.setAttribute("title", "refreshed at " + new Date().toLocaleTimeString());
    document.body.setAttribute("data-ready", String(mine));
  } catch (error) {
    if (mine !== generation) return;
    status.className = "status error";
    status.textContent = error instanceof ApiError ? "API " + error.status + ": " + error.message : "cannot reach flowwatch (" + error.message + ")";
    if (error instanceof ApiError && error.status === 404) {
      document.getElementById("view").replaceChildren(h("p", { class: "message error" }, "Not found: " + error.message + ". ", link("#/", "Back to all flows")));
    }
  } finally {
    if (mine === generation) timer = setTimeout(poll, POLL_MS);
  }
}

function poll() {
  if (pausePolling || document.hidden) {
    timer = setTimeout(poll, POLL_MS);
    return;
  }
  refresh();
}

window.addEventListener("hashchange", () => { graphs.clear(); refresh(); });
document.addEventListener("DOMContentLoaded", () => {
  setupToken();
  refresh();
});
