//! SVG rendering of a laid-out [`Graph`]: one `<g class="node ...">` per node (a step's group
//! carries `data-step` with its name), one `<path>` per edge, presentation attributes only (no
//! `<style>`, no script), so the file renders the same in a browser, an image viewer or a
//! Markdown page. All text is escaped.

use super::layout::{layout, Layout};
use super::{Graph, NodeKind};
use std::fmt::Write;

/// Renders a graph as a standalone SVG document.
pub fn render(graph: &Graph) -> String {
    render_layout(graph, &layout(graph))
}

/// Renders a graph with a layout computed by [`layout`].
pub fn render_layout(graph: &Graph, layout: &Layout) -> String {
    let mut svg = String::new();
    // Writing to a String cannot fail, hence the ignored results below.
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12" role="img" aria-label="flow {name}">"##,
        w = layout.width,
        h = layout.height,
        name = escape(&graph.flow),
    );
    let _ = writeln!(svg, "<title>flow {}</title>", escape(&graph.flow));
    if let Some(description) = &graph.description {
        let _ = writeln!(svg, "<desc>{}</desc>", escape(description));
    }
    svg.push_str(concat!(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" ",
        "markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">",
        "<path d=\"M0,0 L10,5 L0,10 z\" fill=\"#5f6b7a\"/></marker></defs>\n",
    ));
    let _ = writeln!(
        svg,
        r##"<rect x="0" y="0" width="{}" height="{}" fill="#ffffff"/>"##,
        layout.width, layout.height
    );
    for (edge, route) in graph.edges.iter().zip(&layout.routes) {
        let dash = if edge.dashed {
            r#" stroke-dasharray="5 4""#
        } else {
            ""
        };
        let _ = writeln!(
            svg,
            r##"<path class="edge" d="{}" fill="none" stroke="#5f6b7a" stroke-width="1.5"{dash} marker-end="url(#arrow)"/>"##,
            route.path_data()
        );
        if let (Some(label), super::layout::Route::Lines(points)) = (&edge.label, route) {
            if let Some(&(x, y)) = points.get(1) {
                let _ = writeln!(
                    svg,
                    r##"<text class="edge-label" x="{}" y="{}" fill="#5f6b7a" font-size="10" text-anchor="end">{}</text>"##,
                    x.saturating_sub(4),
                    y + 14,
                    escape(label)
                );
            }
        }
    }
    for (node, node_box) in graph.nodes.iter().zip(&layout.boxes) {
        let (class, fill, stroke, radius) = match node.kind {
            NodeKind::Start => ("start", "#e8f0fe", "#3b6fc4", 16),
            NodeKind::Step(_) => ("step", "#ffffff", "#3b4a5a", 6),
            NodeKind::Completed => ("completed", "#e6f4ea", "#2e7d32", 16),
            NodeKind::Failed => ("failed", "#fce8e6", "#c62828", 16),
        };
        let data = match node.kind {
            NodeKind::Step(_) => format!(r#" data-step="{}""#, escape(&node.title)),
            _ => String::new(),
        };
        let _ = writeln!(
            svg,
            r#"<g class="node {class}" id="node-{id}"{data}>"#,
            id = node.id
        );
        let _ = writeln!(
            svg,
            r#"<rect x="{}" y="{}" width="{}" height="{}" rx="{radius}" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>"#,
            node_box.x, node_box.y, node_box.width, node_box.height
        );
        let center = node_box.x + node_box.width / 2;
        let _ = writeln!(
            svg,
            r##"<text x="{center}" y="{}" text-anchor="middle" font-weight="bold" font-size="13" fill="#1f2933">{}</text>"##,
            node_box.y + 23,
            escape(&node.title)
        );
        for (index, line) in node.lines.iter().enumerate() {
            let is_sla = node.sla.as_deref() == Some(line.as_str());
            let (class, color) = if is_sla {
                ("sla", "#b45309")
            } else {
                ("detail", "#3e4c59")
            };
            let _ = writeln!(
                svg,
                r#"<text class="{class}" x="{center}" y="{}" text-anchor="middle" fill="{color}">{}</text>"#,
                node_box.y + 42 + 16 * index as u32,
                escape(line)
            );
        }
        svg.push_str("</g>\n");
    }
    svg.push_str("</svg>\n");
    svg
}

/// Escapes text for XML content and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}
