// flowwatch page: reads the JSON API under /api/v1 and draws flows, instances needing
// attention and single instances. No framework and no build step. Every value that comes from
// the API (keys, payloads, names) is inserted as text: elements are built with createElement
// and filled with textContent, never by parsing strings as HTML.
"use strict";

const POLL_MS = 2000;
const TOKEN_KEY = "flowwatch.operatorToken";
const SVG_NS = "http://www.w3.org/2000/svg";

// ---------------------------------------------------------------------------------------------
// DOM helpers: attributes by setAttribute (never event-handler attributes), children as nodes
// or text.

function setAttributes(element, attributes) {
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (/^on/i.test(name)) throw new Error("event handler attributes are not allowed: " + name);
    element.setAttribute(name, value === true ? "" : String(value));
  }
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  setAttributes(element, attributes);
  return append(element, children);
}

function s(tag, attributes, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  setAttributes(element, attributes);
  return append(element, children);
}

function link(href, ...children) {
  return h("a", { href }, ...children);
}

// ---------------------------------------------------------------------------------------------
// Formatting.

function toMillis(value) {
  if (value === null || value === undefined) return null;
  if (typeof value === "number") return value;
  const parsed = Date.parse(value);
  return Number.isNaN(parsed) ? null : parsed;
}

function formatTime(value) {
  const millis = toMillis(value);
  if (millis === null) return value === null || value === undefined ? "" : String(value);
  return new Date(millis).toISOString().replace("T", " ").replace(/\.000Z$/, "Z");
}

function formatDuration(value) {
  if (value === null || value === undefined) return null;
  if (typeof value === "string") return value;
  if (typeof value === "object") return value.text || formatDuration(value.ms);
  let millis = value;
  if (millis === 0) return "0s";
  let text = "";
  for (const [unit, size] of [["d", 86400000], ["h", 3600000], ["m", 60000], ["s", 1000], ["ms", 1]]) {
    if (millis >= size) {
      text += Math.floor(millis / size) + unit;
      millis %= size;
    }
  }
  return text;
}

function payloadText(payload) {
  if (payload === null || payload === undefined) return "";
  let value = payload;
  if (typeof payload === "string") {
    try { value = JSON.parse(payload); } catch (_) { return payload; }
  }
  return JSON.stringify(value, null, 2);
}

function list(value) {
  if (value === null || value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

function number(value) {
  return typeof value === "number" ? value : 0;
}

function instanceHref(flow, key) {
  return "#/flows/" + encodeURIComponent(flow) + "/instances/" + encodeURIComponent(key);
}

function flowHref(flow, query) {
  const params = new URLSearchParams(query || {}).toString();
  return "#/flows/" + encodeURIComponent(flow) + (params ? "?" + params : "");
}

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

// The graph document in one shape whatever its field names: steps with after and awaits.
function normaliseGraph(graph) {
  const names = (items) => list(items).map((item) => (typeof item === "string" ? item : item && (item.name || item.event || item.step)));
  return {
    name: graph.name || graph.flow,
    description: graph.description || null,
    start: names(graph.start),
    fail: names(graph.fail),
    deadline: formatDuration(graph.deadline),
    stuckAfter: formatDuration(graph.stuck_after),
    onDeadline: names(graph.on_deadline),
    onStuck: names(graph.on_stuck),
    steps: list(graph.steps).map((step) => ({
      name: step.name,
      after: names(step.after),
      awaits: names(step.awaits || step.await),
      within: formatDuration(step.within),
      onBreach: names(step.on_breach),
      conditional: Boolean(step.conditional || step.when),
    })),
  };
}

// ---------------------------------------------------------------------------------------------
// Layout: the same rules as `flowwatch diagram` (src/diagram/layout.rs). The start on row 0,
// each step one row below the latest step it comes after, the ends on the last row; long edges
// pass through waypoints; rows ordered by the mean position of what feeds them.

const LAYOUT = { titleChar: 8, lineChar: 6, pad: 10, titleHeight: 18, lineHeight: 16, minWidth: 150, rowGap: 44, columnGap: 24, margin: 14, lane: 24, waypoint: 8 };

function diagramNodes(graph) {
  const nodes = [];
  const startLines = graph.start.map((name) => "on " + name);
  if (graph.deadline) startLines.push("deadline " + graph.deadline);
  if (graph.stuckAfter) startLines.push("stuck after " + graph.stuckAfter);
  nodes.push({ id: "start", kind: "start", title: "start", lines: startLines });
  graph.steps.forEach((step, index) => {
    const lines = [step.awaits.length > 1 ? "await one of " + step.awaits.join(" | ") : "await " + (step.awaits[0] || "?")];
    if (step.within) lines.push("within " + step.within);
    if (step.conditional) lines.push("conditional (when)");
    lines.push("counts:waiting", "counts:done"); // placeholder lines for the live counts
    nodes.push({ id: "s" + index, kind: "step", step, title: step.name, lines, sla: step.within ? "within " + step.within : null });
  });
  nodes.push({ id: "completed", kind: "completed", title: "completed", lines: [] });
  if (graph.fail.length) nodes.push({ id: "failed", kind: "failed", title: "failed", lines: graph.fail.map((name) => "on " + name) });
  const edges = [];
  const index = new Map(graph.steps.map((step, i) => [step.name, 1 + i]));
  const hasDependent = new Set();
  graph.steps.forEach((step, i) => {
    if (!step.after.length) edges.push({ from: 0, to: 1 + i });
    for (const before of step.after) {
      if (index.has(before)) {
        hasDependent.add(before);
        edges.push({ from: index.get(before), to: 1 + i });
      }
    }
  });
  const completed = 1 + graph.steps.length;
  graph.steps.forEach((step, i) => { if (!hasDependent.has(step.name)) edges.push({ from: 1 + i, to: completed }); });
  if (!graph.steps.length) edges.push({ from: 0, to: completed });
  if (graph.fail.length) edges.push({ from: 0, to: completed + 1, dashed: true, label: "any time" });
  return { nodes, edges };
}

function layoutDiagram(nodes, edges) {
  const L = LAYOUT;
  const layers = nodes.map(() => 0);
  for (let pass = 0; pass < nodes.length; pass++) {
    let changed = false;
    for (const edge of edges) {
      if (!edge.dashed && layers[edge.to] < layers[edge.from] + 1) {
        layers[edge.to] = layers[edge.from] + 1;
        changed = true;
      }
    }
    if (!changed) break;
  }
  let lastStepRow = 0;
  nodes.forEach((node, i) => { if (node.kind === "step") lastStepRow = Math.max(lastStepRow, layers[i]); });
  nodes.forEach((node, i) => { if (node.kind === "completed" || node.kind === "failed") layers[i] = lastStepRow + 1; });
  const nRows = Math.max(...layers) + 1;
  const rows = Array.from({ length: nRows }, () => []);
  nodes.forEach((node, i) => rows[layers[i]].push({ node: i }));
  edges.forEach((edge, e) => {
    if (edge.dashed) return;
    for (let row = layers[edge.from] + 1; row < layers[edge.to]; row++) rows[row].push({ edge: e, row });
  });
  const keyOf = (slot) => ("node" in slot ? "n" + slot.node : "w" + slot.edge + ":" + slot.row);
  const position = new Map();
  for (let row = 0; row < nRows; row++) {
    if (row > 0) {
      const feeders = (slot) => {
        const feed = (e) => (layers[edges[e].from] + 1 === row ? "n" + edges[e].from : "w" + e + ":" + (row - 1));
        if ("node" in slot) return edges.map((edge, e) => [edge, e]).filter(([edge]) => edge.to === slot.node && !edge.dashed).map(([, e]) => feed(e));
        return [feed(slot.edge)];
      };
      const keyed = rows[row].map((slot, initial) => {
        const last = "node" in slot && nodes[slot.node].kind === "failed";
        const above = feeders(slot).filter((k) => position.has(k)).map((k) => position.get(k));
        const barycenter = above.length ? above.reduce((a, b) => a + b, 0) / above.length : Number.MAX_VALUE;
        return { last, barycenter, initial, slot };
      });
      keyed.sort((a, b) => (a.last - b.last) || (a.barycenter - b.barycenter) || (a.initial - b.initial));
      rows[row] = keyed.map((k) => k.slot);
    }
    rows[row].forEach((slot, at) => position.set(keyOf(slot), at));
  }
  const sizes = nodes.map((node) => {
    const title = node.title.length * L.titleChar;
    const lines = Math.max(0, ...node.lines.map((line) => (line.startsWith("counts:") ? 30 : line.length) * L.lineChar));
    return [Math.max(Math.max(title, lines) + 2 * L.pad, L.minWidth), 2 * L.pad + L.titleHeight + L.lineHeight * node.lines.length];
  });
  const slotWidth = (slot) => ("node" in slot ? sizes[slot.node][0] : L.waypoint);
  const rowWidth = (row) => row.reduce((sum, slot) => sum + slotWidth(slot), 0) + L.columnGap * Math.max(0, row.length - 1);
  const contentWidth = Math.max(...rows.map(rowWidth));
  const hasLane = edges.some((edge) => edge.dashed);
  const width = 2 * L.margin + contentWidth + (hasLane ? L.lane : 0);
  const boxes = nodes.map(() => null);
  const waypoints = new Map();
  let y = L.margin;
  rows.forEach((row, layer) => {
    let x = L.margin + Math.floor((contentWidth - rowWidth(row)) / 2);
    const rowHeight = Math.max(0, ...row.map((slot) => ("node" in slot ? sizes[slot.node][1] : 0)));
    for (const slot of row) {
      if ("node" in slot) {
        const [w, hgt] = sizes[slot.node];
        boxes[slot.node] = { layer, x, y: y + Math.floor((rowHeight - hgt) / 2), width: w, height: hgt };
      } else {
        waypoints.set(slot.edge + ":" + slot.row, [x + L.waypoint / 2, y, y + rowHeight]);
      }
      x += slotWidth(slot) + L.columnGap;
    }
    y += rowHeight + L.rowGap;
  });
  const height = y - L.rowGap + L.margin;
  const laneX = L.margin + contentWidth + L.lane / 2;
  const routes = edges.map((edge, e) => {
    const from = boxes[edge.from];
    const to = boxes[edge.to];
    if (edge.dashed) {
      const points = [[from.x + from.width, from.y + from.height / 2], [laneX, from.y + from.height / 2], [laneX, to.y + to.height / 2], [to.x + to.width, to.y + to.height / 2]];
      return { d: points.map(([px, py], i) => (i ? "L" : "M") + px + "," + py).join(" "), labelAt: points[1] };
    }
    const points = [[from.x + from.width / 2, from.y + from.height]];
    for (let row = from.layer + 1; row < to.layer; row++) {
      const waypoint = waypoints.get(e + ":" + row);
      if (waypoint) points.push([waypoint[0], waypoint[1]], [waypoint[0], waypoint[2]]);
    }
    points.push([to.x + to.width / 2, to.y]);
    let d = "";
    for (let i = 0; i + 1 < points.length; i += 2) {
      const [[x1, y1], [x2, y2]] = [points[i], points[i + 1]];
      const middle = (y1 + y2) / 2;
      d += (i ? " L" : "M") + x1 + "," + y1 + " C" + x1 + "," + middle + " " + x2 + "," + middle + " " + x2 + "," + y2;
    }
    return { d };
  });
  return { width, height, boxes, routes };
}

// The share of waiting instances that are breached or stuck, as a heat class 0..4.
function heatClass(counts) {
  const hot = number(counts.breached) + number(counts.stuck);
  if (!hot) return "heat0";
  const share = hot / Math.max(1, number(counts.waiting));
  if (share <= 0.1) return "heat1";
  if (share <= 0.33) return "heat2";
  if (share <= 0.66) return "heat3";
  return "heat4";
}

function renderDiagram(graph, flowCounts) {
  const { nodes, edges } = diagramNodes(graph);
  const placed = layoutDiagram(nodes, edges);
  const stepCounts = new Map(list(flowCounts && flowCounts.steps).map((step) => [step.name, step]));
  const svg = s("svg", { viewBox: "0 0 " + placed.width + " " + placed.height, width: placed.width, height: placed.height, role: "img", "aria-label": "flow " + graph.name, "data-flow": graph.name });
  const markerId = "arrow-" + graph.name.replace(/[^a-zA-Z0-9_-]/g, "_");
  svg.appendChild(s("defs", {}, s("marker", { id: markerId, viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }))));
  edges.forEach((edge, e) => {
    svg.appendChild(s("path", { class: "edge" + (edge.dashed ? " dashed" : ""), d: placed.routes[e].d, "marker-end": "url(#" + markerId + ")" }));
    if (edge.label && placed.routes[e].labelAt) {
      const [x, y] = placed.routes[e].labelAt;
      svg.appendChild(s("text", { class: "edge-label", x: x - 4, y: y + 14, "text-anchor": "end" }, edge.label));
    }
  });
  nodes.forEach((node, i) => {
    const box = placed.boxes[i];
    const center = box.x + box.width / 2;
    const counts = node.kind === "step" ? stepCounts.get(node.title) || {} : null;
    const ended = (node.kind === "completed" || node.kind === "failed") && flowCounts ? number(flowCounts[node.kind]) : null;
    const group = s("g", { class: "node " + node.kind + (counts ? " " + heatClass(counts) : ""), "data-node": node.id });
    if (counts) {
      for (const field of ["pending", "waiting", "breached", "stuck", "completed", "skipped"]) group.setAttribute("data-" + field, String(number(counts[field])));
      group.setAttribute("data-step", node.title);
      group.appendChild(s("title", {}, node.title + ": " + number(counts.waiting) + " waiting, " + number(counts.breached) + " breached, " + number(counts.stuck) + " stuck, " + number(counts.completed) + " completed"));
      group.addEventListener("click", () => { location.hash = flowHref(graph.name, { step: node.title, state: "open" }); });
    }
    group.appendChild(s("rect", { class: "box", x: box.x, y: box.y, width: box.width, height: box.height, rx: node.kind === "step" ? 6 : 16 }));
    group.appendChild(s("text", { class: "title", x: center, y: box.y + 23, "text-anchor": "middle" }, ended === null ? node.title : ended + " " + node.title));
    node.lines.forEach((line, index) => {
      const y = box.y + 42 + 16 * index;
      if (line === "counts:waiting" && counts) {
        group.appendChild(s("text", { class: "counts", x: center, y, "text-anchor": "middle" },
          s("tspan", { class: "n-waiting" }, number(counts.waiting) + " waiting"), " · ",
          s("tspan", { class: number(counts.breached) ? "n-breached hot" : "n-breached" }, number(counts.breached) + " breached")));
      } else if (line === "counts:done" && counts) {
        group.appendChild(s("text", { class: "counts", x: center, y, "text-anchor": "middle" },
          s("tspan", { class: number(counts.stuck) ? "n-stuck warm" : "n-stuck" }, number(counts.stuck) + " stuck"), " · ",
          s("tspan", { class: "n-completed" }, number(counts.completed) + " done"),
          number(counts.pending) ? " · " + number(counts.pending) + " pending" : ""));
      } else {
        group.appendChild(s("text", { class: line === node.sla ? "sla" : "detail", x: center, y, "text-anchor": "middle" }, line));
      }
    });
    svg.appendChild(group);
  });
  return svg;
}

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
