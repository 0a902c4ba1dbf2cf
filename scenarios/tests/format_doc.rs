//! `scenarios/FORMAT.md` stays consistent with the code: its JSON examples parse, it shows
//! every action and mentions every field of the schema.

use serde_json::Value;
use ssesim_scenarios::{parse_str, Action, Scenario};
use std::path::Path;

fn format_md() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("FORMAT.md");
    std::fs::read_to_string(path).expect("read FORMAT.md")
}

/// The bodies of the ```json blocks.
fn json_blocks(doc: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match &mut current {
            None if line.trim() == "```json" => current = Some(String::new()),
            None => {}
            Some(body) if line.trim() == "```" => {
                blocks.push(std::mem::take(body));
                current = None;
            }
            Some(body) => {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    assert!(current.is_none(), "unterminated json block");
    blocks
}

/// A scenario around a doc example: a full scenario as is, a step inside a small
/// scenario, a fragment (`{"network": ...}`) merged into one.
fn scenario_for(example: &Value) -> Value {
    let mut base = serde_json::json!({
        "schema": 1, "name": "doc", "topology": {"clients": 2, "sessions": ["s1", "s2"]},
        "duration_ms": 10000
    });
    let obj = example.as_object().expect("examples are objects");
    if obj.contains_key("schema") {
        return example.clone();
    }
    if obj.contains_key("do") {
        base["steps"] = Value::Array(vec![example.clone()]);
        return base;
    }
    for (k, v) in obj {
        base[k] = v.clone();
    }
    base
}

#[test]
fn every_json_example_in_format_md_parses() {
    let doc = format_md();
    let blocks = json_blocks(&doc);
    assert!(blocks.len() > Action::NAMES.len(), "too few examples found");
    let mut full = 0;
    for block in &blocks {
        let example: Value = serde_json::from_str(block)
            .unwrap_or_else(|e| panic!("FORMAT.md example is not JSON ({e}):\n{block}"));
        if example.get("schema").is_some() {
            // Full scenarios are parsed exactly as written, and must round-trip.
            let s = parse_str(block).unwrap_or_else(|e| panic!("{e}\n{block}"));
            assert_eq!(parse_str(&s.to_json_pretty()).unwrap(), s);
            full += 1;
            continue;
        }
        let text = scenario_for(&example).to_string();
        parse_str(&text).unwrap_or_else(|e| panic!("FORMAT.md example fails: {e}\n{block}"));
    }
    assert!(full >= 2, "the complete example and the smallest one");
}

#[test]
fn the_complete_example_means_what_the_text_says() {
    let doc = format_md();
    let example = json_blocks(&doc)
        .into_iter()
        .find(|b| b.contains("\"b3-stranded-send\""))
        .expect("complete example");
    let s = parse_str(&example).unwrap();
    let ids: Vec<String> = s.msg_ids().into_iter().flatten().collect();
    assert_eq!(ids, ["tab0-m1", "tab0-m2"]);
    assert_eq!(s.heal_at(), 10000);
    assert_eq!(s.network.restart_after_ms, None);
    assert_eq!(Scenario::tab_name(1), "tab1");
}

#[test]
fn format_md_shows_every_action() {
    let doc = format_md();
    for name in Action::NAMES {
        assert!(
            doc.contains(&format!("#### `{name}`")),
            "FORMAT.md has no section for `{name}`"
        );
        let shown = json_blocks(&doc).iter().any(|b| {
            serde_json::from_str::<Value>(b)
                .map(|v| v.get("do") == Some(&Value::String(name.to_string())))
                .unwrap_or(false)
        });
        assert!(shown, "FORMAT.md has no JSON example for `{name}`");
    }
}

#[test]
fn format_md_mentions_every_field() {
    let doc = format_md();
    let schema = Scenario::json_schema();
    let mut fields: Vec<String> = Vec::new();
    let mut collect = |props: &Value| {
        for k in props.as_object().expect("properties").keys() {
            fields.push(k.clone());
        }
    };
    collect(&schema["properties"]);
    for def in ["Topology", "Constants", "Network", "Step"] {
        let def = &schema["$defs"][def];
        if let Some(props) = def.get("properties") {
            collect(props);
        }
        for variant in def
            .get("oneOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            collect(&variant["properties"]);
        }
    }
    for field in fields {
        assert!(
            doc.contains(&format!("`{field}`")),
            "FORMAT.md never mentions `{field}`"
        );
    }
}
