//! The published JSON Schema must match the types.

use ssesim_scenarios::Scenario;
use std::path::Path;

#[test]
fn schema_file_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenario.schema.json");
    let generated = Scenario::json_schema_text();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).expect("write scenario.schema.json");
        return;
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .replace("\r\n", "\n");
    assert!(
        committed == generated,
        "{} is out of date with the scenario types.\n\
         Regenerate it with: UPDATE_SCHEMA=1 cargo test -p ssesim-scenarios --test schema\n\
         and commit the result.",
        path.display()
    );
}

#[test]
fn schema_text_is_pretty_sorted_and_ends_with_newline() {
    let text = Scenario::json_schema_text();
    assert!(text.ends_with("}\n") && !text.ends_with("\n\n"));
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value, Scenario::json_schema());
    assert_eq!(value["title"], "Scenario");
    assert_eq!(value["properties"]["schema"]["const"], 1);
}

#[test]
fn schema_lists_every_action() {
    let schema = Scenario::json_schema();
    let variants = schema["$defs"]["Step"]["oneOf"]
        .as_array()
        .expect("Step is a oneOf");
    let names: Vec<&str> = variants
        .iter()
        .map(|v| v["properties"]["do"]["const"].as_str().expect("do const"))
        .collect();
    assert_eq!(names, ssesim_scenarios::Action::NAMES);
}
