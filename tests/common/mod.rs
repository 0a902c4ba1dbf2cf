//! What several integration tests share: the catalog, in file-name order, and the command
//! line helpers of [`cli`]. Each test crate uses part of it.
#![allow(dead_code)]

pub mod cli;

use ssesim_scenarios::{load_file, Scenario};
use std::path::PathBuf;

/// Every scenario of `scenarios/catalog/`, with its path.
pub fn catalog() -> Vec<(PathBuf, Scenario)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/catalog");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the catalog directory exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let s = load_file(&p).unwrap_or_else(|e| panic!("{e}"));
            (p, s)
        })
        .collect()
}
