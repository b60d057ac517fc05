//! Mermaid rendering of a [`Graph`] (a top-down `flowchart`), for Markdown documentation that
//! renders Mermaid (GitHub, GitLab, most wikis). Labels are quoted, with `"`, `<` and `>` written
//! as Mermaid entity codes so that conditions like `total > 1000.0` survive.

use super::{Graph, NodeKind};
use std::fmt::Write;

/// Renders a graph as a Mermaid flowchart.
pub fn render(graph: &Graph) -> String {
    let mut text = String::from("flowchart TD\n");
    // Writing to a String cannot fail, hence the ignored results below.
    let _ = writeln!(text, "  %% flow {}", graph.flow);
    if let Some(description) = &graph.description {
        let _ = writeln!(text, "  %% {}", description.replace('\n', " "));
    }
    for node in &graph.nodes {
        let mut label = escape(&node.title);
        if matches!(node.kind, NodeKind::Step(_)) {
            label = format!("<b>{label}</b>");
        }
        for line in &node.lines {
            label.push_str("<br/>");
            label.push_str(&escape(line));
        }
        let (open, close) = match node.kind {
            NodeKind::Start | NodeKind::Completed => ("([", "])"),
            NodeKind::Step(_) => ("[", "]"),
            NodeKind::Failed => ("{{", "}}"),
        };
        let _ = writeln!(text, "  {}{open}\"{label}\"{close}", node.id);
    }
    for edge in &graph.edges {
        let arrow = if edge.dashed { "-.->" } else { "-->" };
        let from = &graph.nodes[edge.from].id;
        let to = &graph.nodes[edge.to].id;
        match &edge.label {
            Some(label) => {
                let _ = writeln!(text, "  {from} {arrow}|\"{}\"| {to}", escape(label));
            }
            None => {
                let _ = writeln!(text, "  {from} {arrow} {to}");
            }
        }
    }
    for node in &graph.nodes {
        let class = match node.kind {
            NodeKind::Start => "start",
            NodeKind::Step(_) => continue,
            NodeKind::Completed => "completed",
            NodeKind::Failed => "failed",
        };
        let _ = writeln!(text, "  class {} {class}", node.id);
    }
    text.push_str("  classDef start fill:#e8f0fe,stroke:#3b6fc4\n");
    text.push_str("  classDef completed fill:#e6f4ea,stroke:#2e7d32\n");
    text.push_str("  classDef failed fill:#fce8e6,stroke:#c62828\n");
    text
}

/// Writes `"`, `<`, `>` and `#` as Mermaid entity codes.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '"' => escaped.push_str("#quot;"),
            '<' => escaped.push_str("#lt;"),
            '>' => escaped.push_str("#gt;"),
            '#' => escaped.push_str("#35;"),
            other => escaped.push(other),
        }
    }
    escaped
}
