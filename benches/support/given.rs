//! What a benchmark may be given instead of its generated stream and the shipped flows
//! (`--stream FILE`, `--flows PATH`): the flows of a directory or files, and a stream file's
//! lines in the replay input format (SPEC.md).

use flowwatch::flow::{load_dir_or_files, Flow};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// The shipped flows' directory.
pub fn shipped_flows() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("flows")
}

/// The flows of `path` (a directory or a file), which must validate.
pub fn flows(path: &Path) -> Vec<Flow> {
    let report = load_dir_or_files(&[path.to_path_buf()]);
    assert!(report.errors.is_empty(), "flows must validate: {:?}", report.errors);
    report.flows
}

/// The lines of a stream file, blank ones left out.
pub fn lines(path: &Path) -> impl Iterator<Item = String> {
    let file = std::fs::File::open(path)
        .unwrap_or_else(|error| panic!("--stream {}: {error}", path.display()));
    BufReader::with_capacity(1 << 20, file)
        .lines()
        .map(|line| line.expect("read a line of the stream"))
        .filter(|line| !line.trim().is_empty())
}
