//! The revision x invariant matrix and its counterexamples, kept as insta snapshots in
//! `reports/` so a change in the model or the oracles shows up as a reviewable diff.
//! Refresh them with `INSTA_UPDATE=always cargo test --test reports` and review the diff.

use ssesim::report::{build, Matrix, Source};
use ssesim_scenarios::load_file;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Generated cases per revision in the snapshotted matrix (the exploration budget).
pub const CASES: u64 = 12;
/// The fixed seed of that budget.
pub const SEED: u64 = 1;

fn catalog() -> Vec<Source> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/catalog");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| Source {
            name: format!(
                "scenarios/catalog/{}",
                p.file_name().unwrap().to_string_lossy()
            ),
            scenario: load_file(&p).unwrap(),
        })
        .collect()
}

fn matrix() -> &'static Matrix {
    static M: OnceLock<Matrix> = OnceLock::new();
    M.get_or_init(|| build(&catalog(), CASES, SEED, |_| {}))
}

fn snapshot(name: &str, text: &str) {
    insta::with_settings!({
        snapshot_path => "../reports",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, text);
    });
}

#[test]
fn matrix_snapshot() {
    snapshot("matrix", &matrix().to_markdown());
}

#[test]
fn counterexamples_snapshot() {
    snapshot("counterexamples", &matrix().counterexamples_markdown());
}

#[test]
fn reference_has_no_failing_cell() {
    let m = matrix();
    let failing: Vec<&str> = ssesim_oracles::INVARIANTS
        .iter()
        .filter(|i| m.failed("reference", i.id))
        .map(|i| i.id)
        .collect();
    assert!(failing.is_empty(), "reference fails {failing:?}");
}

#[test]
fn every_failing_cell_has_a_counterexample_with_a_diagram() {
    let m = matrix();
    for ((rev, inv), cell) in &m.cells {
        assert_eq!(cell.failed, cell.example.is_some(), "{rev} x {inv}");
    }
    let text = m.counterexamples_markdown();
    assert!(text.contains("```mermaid\nsequenceDiagram"));
    assert!(
        text.contains("## r1 x bounded_queue"),
        "B1 must show as r1 x bounded_queue"
    );
}
