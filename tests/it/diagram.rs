//! `flowwatch diagram` as users run it: SVG by default, Mermaid on request, the same text the
//! library renders, and exit 1 with the validation errors for a broken flow file.

use std::path::Path;
use std::process::{Command, Output};

fn flowwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowwatch"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("the flowwatch binary runs")
}

#[test]
fn prints_svg_by_default_and_mermaid_on_request() {
    let svg = flowwatch(&["diagram", "flows/customer-onboarding.yaml"]);
    assert_eq!(svg.status.code(), Some(0));
    let svg = String::from_utf8(svg.stdout).expect("utf-8");
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.contains(r#"data-step="address-check""#));
    assert!(svg.trim_end().ends_with("</svg>"));

    let mermaid = flowwatch(&[
        "diagram",
        "flows/order-fulfillment.yaml",
        "--format",
        "mermaid",
    ]);
    assert_eq!(mermaid.status.code(), Some(0));
    let text = String::from_utf8(mermaid.stdout).expect("utf-8");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("flows/order-fulfillment.yaml");
    let expected = flowwatch::diagram::render_file(&file, flowwatch::cli::DiagramFormat::Mermaid)
        .expect("renders");
    assert_eq!(text, expected);
    assert!(text.starts_with("flowchart TD\n"));
}

#[test]
fn a_broken_or_missing_flow_file_is_a_user_error() {
    let missing = flowwatch(&["diagram", "flows/no-such-flow.yaml"]);
    assert_eq!(missing.status.code(), Some(1));
    let message = String::from_utf8_lossy(&missing.stderr);
    assert!(
        message.contains("cannot read flows/no-such-flow.yaml"),
        "{message}"
    );

    let broken = tempfile_with("flow: Bad Name\n");
    let output = flowwatch(&["diagram", broken.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(1));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("is not a valid flow file"), "{message}");
    let _ = std::fs::remove_file(&broken);
}

#[test]
fn an_unknown_format_is_a_usage_error() {
    let output = flowwatch(&["diagram", "flows/parcel-delivery.yaml", "--format", "png"]);
    assert_eq!(output.status.code(), Some(2));
}

fn tempfile_with(text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("flowwatch-diagram-{}.yaml", std::process::id()));
    std::fs::write(&path, text).expect("write a temporary flow file");
    path
}
