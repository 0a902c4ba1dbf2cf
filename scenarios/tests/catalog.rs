//! Every scenario in `scenarios/catalog/` loads with this build's loader.

use std::path::Path;

#[test]
fn catalog_files_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return; // no catalog yet
    };
    let mut paths: Vec<_> = entries
        .map(|e| e.expect("read catalog entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let failures: Vec<String> = paths
        .iter()
        .filter_map(|p| ssesim_scenarios::load_file(p).err())
        .map(|e| e.to_string())
        .collect();
    assert!(
        failures.is_empty(),
        "catalog files that do not load:\n{}",
        failures.join("\n")
    );
}
