//! Layered layout of a [`Graph`]: the start on the first row, each step one row below the
//! latest of the steps it comes `after` (so steps that can run in parallel share a row and
//! stand side by side), the ends on the last row. Within a row, nodes are ordered by the mean
//! position of their predecessors (ties in file order) to keep edges from crossing; rows are
//! centred. An edge that spans several rows passes each through a waypoint of its own (as in
//! Sugiyama's method), so it runs between boxes rather than through them. Sizes are estimated from the text (a fixed width per character), so the layout is
//! deterministic and needs no font.

use super::{Graph, NodeKind};

/// Estimated width of a title character and of a detail character, in pixels.
const TITLE_CHAR: u32 = 8;
const LINE_CHAR: u32 = 6;
/// Padding inside a box, height of the title and of each detail line.
const PAD: u32 = 10;
const TITLE_HEIGHT: u32 = 18;
const LINE_HEIGHT: u32 = 16;
/// The narrowest box.
const MIN_WIDTH: u32 = 110;
/// Space between rows, between boxes of a row, around the drawing, and the lane on the right
/// where the dashed edge to `failed` runs.
const ROW_GAP: u32 = 48;
const COLUMN_GAP: u32 = 28;
const MARGIN: u32 = 16;
const LANE: u32 = 24;
/// The width a passing edge takes in a row.
const WAYPOINT_WIDTH: u32 = 8;

/// Where every node and edge of a graph is drawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Width of the whole drawing.
    pub width: u32,
    /// Height of the whole drawing.
    pub height: u32,
    /// One box per node, by node index.
    pub boxes: Vec<NodeBox>,
    /// One route per edge, by edge index.
    pub routes: Vec<Route>,
}

/// A node's box: its row, its place in the row, and its rectangle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeBox {
    /// The row (0 is the start).
    pub layer: usize,
    /// Position within the row, from the left.
    pub order: usize,
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Box width.
    pub width: u32,
    /// Box height.
    pub height: u32,
}

/// How an edge is drawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// From the bottom centre of one box to the top centre of another: pairs of points
    /// (leaving, arriving) joined by vertical S-curves, consecutive pairs by straight lines
    /// (an edge passing through rows runs straight down its waypoint in each).
    Curve(Vec<(u32, u32)>),
    /// An orthogonal polyline (the dashed edge to `failed`, run in the right-hand lane).
    Lines(Vec<(u32, u32)>),
}

impl Route {
    /// The route as SVG path data.
    pub fn path_data(&self) -> String {
        match self {
            Route::Curve(points) => {
                let mut data = String::new();
                for (index, pair) in points.chunks(2).enumerate() {
                    let [from, to] = pair else { break };
                    let middle = (from.1 + to.1) / 2;
                    let (verb, gap) = if index == 0 { ('M', "") } else { ('L', " ") };
                    data.push_str(&format!(
                        "{gap}{verb}{},{} C{},{} {},{} {},{}",
                        from.0, from.1, from.0, middle, to.0, middle, to.0, to.1
                    ));
                }
                data
            }
            Route::Lines(points) => points
                .iter()
                .enumerate()
                .map(|(index, (x, y))| format!("{}{x},{y}", if index == 0 { 'M' } else { 'L' }))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

impl NodeBox {
    fn center_x(&self) -> u32 {
        self.x + self.width / 2
    }
}

/// One slot of a row: a node, or a waypoint of an edge passing through the row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Slot {
    Node(usize),
    /// Edge index and the row it passes.
    Waypoint(usize, usize),
}

/// Lays a graph out.
// The row index is needed beside the row (the closures name the row above it).
#[allow(clippy::needless_range_loop)]
pub fn layout(graph: &Graph) -> Layout {
    let n_nodes = graph.nodes.len();
    let layers = assign_layers(graph);
    let n_layers = layers.iter().copied().max().unwrap_or(0) + 1;
    // Rows in node order first; an edge that spans several rows gets a waypoint in each row it
    // passes, so it runs between boxes instead of through them.
    let mut rows: Vec<Vec<Slot>> = vec![Vec::new(); n_layers];
    for (node, &layer) in layers.iter().enumerate() {
        rows[layer].push(Slot::Node(node));
    }
    for (edge_idx, edge) in graph.edges.iter().enumerate() {
        if !edge.dashed {
            let passed = layers[edge.from] + 1..layers[edge.to];
            for (row, slots) in rows
                .iter_mut()
                .enumerate()
                .take(passed.end)
                .skip(passed.start)
            {
                slots.push(Slot::Waypoint(edge_idx, row));
            }
        }
    }
    // Reorder each row by the mean position of what feeds it from the row above.
    let mut position: hashbrown::HashMap<Slot, usize> = hashbrown::HashMap::new();
    for row in 0..n_layers {
        if row > 0 {
            let feeders = |slot: Slot| -> Vec<Slot> {
                match slot {
                    Slot::Node(node) => graph
                        .edges
                        .iter()
                        .enumerate()
                        .filter(|(_, edge)| edge.to == node && !edge.dashed)
                        .map(|(edge_idx, edge)| {
                            if layers[edge.from] + 1 == row {
                                Slot::Node(edge.from)
                            } else {
                                Slot::Waypoint(edge_idx, row - 1)
                            }
                        })
                        .collect(),
                    Slot::Waypoint(edge_idx, _) => {
                        let edge = &graph.edges[edge_idx];
                        if layers[edge.from] + 1 == row {
                            vec![Slot::Node(edge.from)]
                        } else {
                            vec![Slot::Waypoint(edge_idx, row - 1)]
                        }
                    }
                }
            };
            let mut keyed: Vec<(bool, f64, usize, Slot)> = rows[row]
                .iter()
                .enumerate()
                .map(|(initial, &slot)| {
                    let last = matches!(slot, Slot::Node(node) if graph.nodes[node].kind == NodeKind::Failed);
                    let above: Vec<f64> = feeders(slot)
                        .iter()
                        .filter_map(|feeder| position.get(feeder))
                        .map(|&at| at as f64)
                        .collect();
                    let barycenter = if above.is_empty() {
                        f64::MAX
                    } else {
                        above.iter().sum::<f64>() / above.len() as f64
                    };
                    (last, barycenter, initial, slot)
                })
                .collect();
            keyed.sort_by(|a, b| {
                (a.0, a.1)
                    .partial_cmp(&(b.0, b.1))
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then(a.2.cmp(&b.2))
            });
            rows[row] = keyed.into_iter().map(|(_, _, _, slot)| slot).collect();
        }
        for (at, &slot) in rows[row].iter().enumerate() {
            position.insert(slot, at);
        }
    }
    let sizes: Vec<(u32, u32)> = graph.nodes.iter().map(box_size).collect();
    let slot_width = |slot: &Slot| match slot {
        Slot::Node(node) => sizes[*node].0,
        Slot::Waypoint(..) => WAYPOINT_WIDTH,
    };
    let row_width = |row: &[Slot]| -> u32 {
        row.iter().map(slot_width).sum::<u32>() + COLUMN_GAP * (row.len().saturating_sub(1) as u32)
    };
    let content_width = rows.iter().map(|row| row_width(row)).max().unwrap_or(0);
    let has_lane = graph.edges.iter().any(|edge| edge.dashed);
    let width = MARGIN * 2 + content_width + if has_lane { LANE } else { 0 };
    let mut boxes = vec![
        NodeBox {
            layer: 0,
            order: 0,
            x: 0,
            y: 0,
            width: 0,
            height: 0
        };
        n_nodes
    ];
    // Waypoints: (x, top of row, bottom of row), by (edge, row).
    let mut waypoints: hashbrown::HashMap<(usize, usize), (u32, u32, u32)> =
        hashbrown::HashMap::new();
    let mut y = MARGIN;
    for (layer, row) in rows.iter().enumerate() {
        let mut x = MARGIN + (content_width - row_width(row)) / 2;
        let row_height = row
            .iter()
            .map(|slot| match slot {
                Slot::Node(node) => sizes[*node].1,
                Slot::Waypoint(..) => 0,
            })
            .max()
            .unwrap_or(0);
        let mut n_placed = 0;
        for slot in row {
            match *slot {
                Slot::Node(node) => {
                    let (node_width, node_height) = sizes[node];
                    boxes[node] = NodeBox {
                        layer,
                        order: n_placed,
                        x,
                        y: y + (row_height - node_height) / 2,
                        width: node_width,
                        height: node_height,
                    };
                    n_placed += 1;
                }
                Slot::Waypoint(edge_idx, row_idx) => {
                    waypoints.insert(
                        (edge_idx, row_idx),
                        (x + WAYPOINT_WIDTH / 2, y, y + row_height),
                    );
                }
            }
            x += slot_width(slot) + COLUMN_GAP;
        }
        y += row_height + ROW_GAP;
    }
    let height = y - ROW_GAP + MARGIN;
    let lane_x = MARGIN + content_width + LANE / 2;
    let routes = graph
        .edges
        .iter()
        .enumerate()
        .map(|(edge_idx, edge)| {
            let (from, to) = (boxes[edge.from], boxes[edge.to]);
            if edge.dashed {
                return Route::Lines(vec![
                    (from.x + from.width, from.y + from.height / 2),
                    (lane_x, from.y + from.height / 2),
                    (lane_x, to.y + to.height / 2),
                    (to.x + to.width, to.y + to.height / 2),
                ]);
            }
            let mut points = vec![(from.center_x(), from.y + from.height)];
            for row in from.layer + 1..to.layer {
                if let Some(&(x, top, bottom)) = waypoints.get(&(edge_idx, row)) {
                    points.push((x, top));
                    points.push((x, bottom));
                }
            }
            points.push((to.center_x(), to.y));
            Route::Curve(points)
        })
        .collect();
    Layout {
        width,
        height,
        boxes,
        routes,
    }
}

/// The row of every node: 0 for the start, one below the latest predecessor for a step, the
/// row after the last step for the ends.
fn assign_layers(graph: &Graph) -> Vec<usize> {
    let mut layers = vec![0usize; graph.nodes.len()];
    // `after` is acyclic (validated), so longest-path layering settles within one pass per
    // node; the bound guards against a graph that was not validated.
    for _ in 0..graph.nodes.len() {
        let mut changed = false;
        for edge in graph.edges.iter().filter(|edge| !edge.dashed) {
            if layers[edge.to] < layers[edge.from] + 1 {
                layers[edge.to] = layers[edge.from] + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let last_step_row = graph
        .nodes
        .iter()
        .zip(&layers)
        .filter(|(node, _)| matches!(node.kind, NodeKind::Step(_)))
        .map(|(_, &layer)| layer)
        .max()
        .unwrap_or(0);
    for (node, layer) in graph.nodes.iter().zip(layers.iter_mut()) {
        if matches!(node.kind, NodeKind::Completed | NodeKind::Failed) {
            *layer = last_step_row + 1;
        }
    }
    layers
}

/// A box's estimated width and height from its text.
fn box_size(node: &super::Node) -> (u32, u32) {
    let title = node.title.chars().count() as u32 * TITLE_CHAR;
    let lines = node
        .lines
        .iter()
        .map(|line| line.chars().count() as u32 * LINE_CHAR)
        .max()
        .unwrap_or(0);
    let width = (title.max(lines) + 2 * PAD).max(MIN_WIDTH);
    let height = 2 * PAD + TITLE_HEIGHT + LINE_HEIGHT * node.lines.len() as u32;
    (width, height)
}
