//! `promtool check metrics` on the rendered output: Prometheus' own linter must accept every
//! family (names, units, `_total` suffixes, help texts). The test fails, saying how to install
//! promtool, when it is missing: a check that cannot run must not pass.

use super::tests::populated;
use std::io::Write;
use std::process::{Command, Stdio};

/// Where to find promtool: `PROMTOOL` if set, else `promtool` on the `PATH`.
fn promtool() -> String {
    std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".to_string())
}

#[test]
fn promtool_check_metrics_accepts_the_output() {
    let metrics = populated();
    let text = metrics.render();
    let program = promtool();
    let mut child = Command::new(&program)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run `{program}` ({error}): install Prometheus' tools with \
                 `sudo apt-get install prometheus` (Debian/Ubuntu) or put promtool on the PATH \
                 (or set PROMTOOL=/path/to/promtool)"
            )
        });
    // The pipe was requested above, so stdin is present.
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin
        .write_all(text.as_bytes())
        .expect("promtool reads its input");
    drop(stdin);
    let output = child.wait_with_output().expect("promtool runs to the end");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.trim().is_empty() && stderr.trim().is_empty(),
        "promtool check metrics: {}\nstdout:\n{stdout}\nstderr:\n{stderr}\ninput:\n{text}",
        output.status
    );
}
