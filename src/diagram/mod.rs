//! Flow diagrams: a flow's step graph laid out in layers and rendered as SVG or Mermaid, for
//! `flowwatch diagram` and for documentation. [`Graph::from_def`] reads a validated
//! [`FlowDef`] into nodes (the start, one per step, the completed end and, when the flow has
//! `fail` events, the failed end) and edges (the `after` relation); [`layout`] places them in
//! layers so that parallel steps stand side by side; [`svg`] and [`mermaid`] turn the result
//! into text. Everything here is pure: no I/O, no clock.

pub mod layout;
pub mod mermaid;
pub mod svg;

#[cfg(test)]
mod tests;

use crate::cli::DiagramFormat;
use crate::flow::{parse_flow_file, ActionRef, Diagnostic, FlowDef};
use crate::time::format_duration;
use std::path::{Path, PathBuf};

/// Why a flow file could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read {}: {source}", file.display())]
    Read {
        /// The file named on the command line.
        file: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file is not a valid flow.
    #[error("{} is not a valid flow file:\n{}", file.display(), diagnostics_text(.diagnostics))]
    Invalid {
        /// The file named on the command line.
        file: PathBuf,
        /// Every problem found, as `flowwatch validate` reports them.
        diagnostics: Vec<Diagnostic>,
    },
}

fn diagnostics_text(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|diagnostic| diagnostic.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads and validates one flow file and renders its diagram (`flowwatch diagram`).
pub fn render_file(file: &Path, format: DiagramFormat) -> Result<String, Error> {
    let text = std::fs::read_to_string(file).map_err(|source| Error::Read {
        file: file.to_path_buf(),
        source,
    })?;
    let def = parse_flow_file(file, &text).map_err(|diagnostics| Error::Invalid {
        file: file.to_path_buf(),
        diagnostics,
    })?;
    Ok(render(&def, format))
}

/// Renders a flow definition's diagram in the given format.
pub fn render(def: &FlowDef, format: DiagramFormat) -> String {
    let graph = Graph::from_def(def);
    match format {
        DiagramFormat::Svg => svg::render(&graph),
        DiagramFormat::Mermaid => mermaid::render(&graph),
    }
}

/// A flow's step graph, ready to lay out and render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Graph {
    /// The flow's name.
    pub flow: String,
    /// The flow's description, shown as a caption.
    pub description: Option<String>,
    /// The start node first, then one node per step in file order, then the ends.
    pub nodes: Vec<Node>,
    /// Edges between nodes, by index into `nodes`.
    pub edges: Vec<Edge>,
}

/// What a node stands for, which decides its shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// The start event(s) that open an instance, with the instance-level deadline and stuck
    /// detection.
    Start,
    /// One step; its index into `FlowDef::steps`.
    Step(usize),
    /// The instance completed: every step is complete.
    Completed,
    /// The instance failed: one of the `fail` events arrived (at any time).
    Failed,
}

/// One box of the diagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// A stable identifier, safe in Mermaid and as an SVG attribute (`start`, `s0`, ...).
    pub id: String,
    /// What the node stands for.
    pub kind: NodeKind,
    /// The first line: the step name, `start`, `completed` or `failed`.
    pub title: String,
    /// Further lines: awaited events (an exclusive choice when there are several), the SLA,
    /// the condition, the breach actions; for the ends, the events that lead there.
    pub lines: Vec<String>,
    /// The SLA label (`within 15m`), also among `lines`; `None` for a step without one.
    pub sla: Option<String>,
}

/// A directed edge between two nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// Index of the node the edge leaves.
    pub from: usize,
    /// Index of the node the edge enters.
    pub to: usize,
    /// An optional label (`any time` on the edge to `failed`).
    pub label: Option<String>,
    /// Drawn dashed: the instance may take this edge at any time, not in sequence.
    pub dashed: bool,
}

impl Graph {
    /// Reads a flow definition into its step graph.
    pub fn from_def(def: &FlowDef) -> Graph {
        let event_name = |event: usize| def.events[event].name.as_str();
        let action_names = |actions: &[ActionRef]| -> String {
            actions
                .iter()
                .map(|action| match action {
                    ActionRef::Alert => "alert",
                    ActionRef::Declared(index) => def.actions[*index].name.as_str(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut nodes = Vec::with_capacity(def.steps.len() + 3);
        let mut start_lines: Vec<String> = def
            .start
            .iter()
            .map(|&event| format!("on {}", event_name(event)))
            .collect();
        if let Some(deadline) = def.deadline {
            start_lines.push(format!(
                "deadline {} → {}",
                format_duration(deadline),
                action_names(&def.on_deadline)
            ));
        }
        if let Some(stuck_after) = def.stuck_after {
            start_lines.push(format!(
                "stuck after {} → {}",
                format_duration(stuck_after),
                action_names(&def.on_stuck)
            ));
        }
        nodes.push(Node {
            id: "start".to_string(),
            kind: NodeKind::Start,
            title: "start".to_string(),
            lines: start_lines,
            sla: None,
        });
        for (step_idx, step) in def.steps.iter().enumerate() {
            let mut lines = Vec::new();
            let awaits: Vec<&str> = step.awaits.iter().map(|&event| event_name(event)).collect();
            if awaits.len() == 1 {
                lines.push(format!("await {}", awaits[0]));
            } else {
                lines.push(format!("await one of {}", awaits.join(" | ")));
            }
            let sla = step
                .within
                .map(|within| format!("within {}", format_duration(within)));
            if let Some(sla) = &sla {
                lines.push(sla.clone());
            }
            if let Some(condition) = &step.when {
                lines.push(format!("when {}", condition.source));
            }
            if step.within.is_some() {
                lines.push(format!("on breach → {}", action_names(&step.on_breach)));
            }
            nodes.push(Node {
                id: format!("s{step_idx}"),
                kind: NodeKind::Step(step_idx),
                title: step.name.clone(),
                lines,
                sla,
            });
        }
        let completed = nodes.len();
        nodes.push(Node {
            id: "completed".to_string(),
            kind: NodeKind::Completed,
            title: "completed".to_string(),
            lines: Vec::new(),
            sla: None,
        });
        let mut edges = Vec::new();
        let mut has_dependent = vec![false; def.steps.len()];
        for (step_idx, step) in def.steps.iter().enumerate() {
            if step.after.is_empty() {
                edges.push(Edge {
                    from: 0,
                    to: 1 + step_idx,
                    label: None,
                    dashed: false,
                });
            }
            for &before in &step.after {
                has_dependent[before] = true;
                edges.push(Edge {
                    from: 1 + before,
                    to: 1 + step_idx,
                    label: None,
                    dashed: false,
                });
            }
        }
        for (step_idx, _) in def.steps.iter().enumerate() {
            if !has_dependent[step_idx] {
                edges.push(Edge {
                    from: 1 + step_idx,
                    to: completed,
                    label: None,
                    dashed: false,
                });
            }
        }
        if def.steps.is_empty() {
            edges.push(Edge {
                from: 0,
                to: completed,
                label: None,
                dashed: false,
            });
        }
        if !def.fail.is_empty() {
            let failed = nodes.len();
            nodes.push(Node {
                id: "failed".to_string(),
                kind: NodeKind::Failed,
                title: "failed".to_string(),
                lines: def
                    .fail
                    .iter()
                    .map(|&event| format!("on {}", event_name(event)))
                    .collect(),
                sla: None,
            });
            edges.push(Edge {
                from: 0,
                to: failed,
                label: Some("any time".to_string()),
                dashed: true,
            });
        }
        Graph {
            flow: def.name.clone(),
            description: def.description.clone(),
            nodes,
            edges,
        }
    }
}
