//! Helpers shared by the scenario tests.
#![allow(dead_code)]

use ssesim_scenarios::{parse_str, ScenarioError};
use std::path::PathBuf;

/// A valid scenario with two tabs, session `s1` and the given steps (a JSON array body).
pub fn with_steps(steps: &str) -> String {
    format!(
        r#"{{"schema": 1, "name": "t", "topology": {{"clients": 2, "sessions": ["s1"]}},
            "duration_ms": 10000, "steps": [{steps}]}}"#
    )
}

/// The error `text` gives; panics (failing the test) when it parses.
pub fn error_of(text: &str) -> ScenarioError {
    match parse_str(text) {
        Ok(s) => panic!("expected an error, parsed {s:?}"),
        Err(e) => e,
    }
}

/// Asserts the error names `field` and its message contains every one of `needles`.
pub fn assert_error(text: &str, field: &str, needles: &[&str]) -> ScenarioError {
    let e = error_of(text);
    assert_eq!(e.field.as_deref(), Some(field), "wrong field in: {e}");
    let shown = e.to_string();
    assert!(
        shown.contains(&format!("field `{field}`")),
        "Display lacks the field path: {shown}"
    );
    for needle in needles {
        assert!(shown.contains(needle), "{needle:?} not in: {shown}");
    }
    e
}

/// A file in the temp directory named after the test, removed on drop.
pub struct TempFile(pub PathBuf);

impl TempFile {
    pub fn new(test: &str, contents: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!(
            "ssesim-scenarios-{test}-{}.json",
            std::process::id()
        ));
        std::fs::write(&path, contents).expect("write temp file");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
