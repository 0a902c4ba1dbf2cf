//! Running the `ssesim` binary as a user does, and a scratch directory per test.

use std::path::PathBuf;
use std::process::{Command, Output};

/// `ssesim ARGS` from the repository root.
pub fn ssesim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ssesim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

/// An empty directory of its own for test `name` of `suite` (per process, so parallel
/// test binaries do not collide).
pub fn temp_dir(suite: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ssesim-{suite}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
