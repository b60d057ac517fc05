// flowwatch page, part 2 of 3: a flow's step graph laid out and drawn as SVG with live counts
// per step (heatmap classes for breached and stuck), from the graph and counts of the API.
"use strict";

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
