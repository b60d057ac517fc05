//! Build script: records the git commit flowwatch is built from in `FLOWWATCH_GIT_COMMIT`
//! for the `flowwatch_build_info` metric. A value already set in the environment wins (for
//! builds from a source tarball or in CI); without git or outside a repository nothing is set
//! and the metric says `unknown`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=FLOWWATCH_GIT_COMMIT");
    if let Ok(commit) = std::env::var("FLOWWATCH_GIT_COMMIT") {
        println!("cargo:rustc-env=FLOWWATCH_GIT_COMMIT={commit}");
        return;
    }
    let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return;
    };
    // Rebuild when HEAD moves (a commit, a checkout); paths are per worktree.
    for file in ["HEAD", "logs/HEAD"] {
        // A path that does not exist would make cargo rerun the script on every build.
        let path = git(&["rev-parse", "--git-path", file]);
        if let Some(path) = path.filter(|path| std::path::Path::new(path).exists()) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rustc-env=FLOWWATCH_GIT_COMMIT={commit}");
}

/// The trimmed output of a successful git command.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}
