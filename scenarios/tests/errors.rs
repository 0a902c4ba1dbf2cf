//! Malformed scenarios: every error names the field and what was expected, and nothing
//! panics.

mod common;

use common::{assert_error, error_of, with_steps, TempFile};
use ssesim_scenarios::{load_file, parse_str, Action};

#[test]
fn unknown_action_lists_the_expected_ones() {
    let text = with_steps(
        r#"{"at_ms": 1, "do": "connect", "client": 0},
           {"at_ms": 100, "do": "sendd", "client": 0, "session": "s1"}"#,
    );
    let e = assert_error(
        &text,
        "steps[1].do",
        &[
            "unknown action `sendd`",
            "expected one of: connect, disconnect, send, ",
        ],
    );
    for name in Action::NAMES {
        assert!(e.message.contains(name), "{name} missing from: {e}");
    }
}

#[test]
fn action_name_of_the_wrong_type_or_missing() {
    assert_error(
        &with_steps(r#"{"at_ms": 1, "do": 5}"#),
        "steps[0].do",
        &[
            "expected an action name (a string), found number 5",
            "transport_throws",
        ],
    );
    assert_error(
        &with_steps(r#"{"at_ms": 1, "client": 0}"#),
        "steps[0].do",
        &["missing required field `do`", "expected one of: connect"],
    );
}

#[test]
fn missing_required_field() {
    assert_error(
        &with_steps(r#"{"at_ms": 1, "do": "send"}"#),
        "steps[0].client",
        &["missing required field `client` for action `send`"],
    );
    assert_error(
        &with_steps(r#"{"do": "crash"}"#),
        "steps[0].at_ms",
        &["missing required field `at_ms`"],
    );
    assert_error(
        &with_steps(r#"{"at_ms": 1, "do": "latency", "client": 0, "min_ms": 1}"#),
        "steps[0].max_ms",
        &["missing required field `max_ms` for action `latency`"],
    );
    assert_error(
        r#"{"schema": 1, "name": "x", "topology": {"clients": 1}}"#,
        "duration_ms",
        &["missing required field `duration_ms`"],
    );
    assert_error(
        r#"{"schema": 1, "name": "x", "topology": {"sessions": []}, "duration_ms": 5}"#,
        "topology.clients",
        &["missing required field `clients`"],
    );
}

#[test]
fn wrong_type_names_the_field() {
    assert_error(
        &with_steps(r#"{"at_ms": 1, "do": "send", "client": "0"}"#),
        "steps[0].client",
        &["invalid type: string \"0\", expected u32", "action `send`"],
    );
    assert_error(
        &with_steps(r#"{"at_ms": "soon", "do": "crash"}"#),
        "steps[0].at_ms",
        &["invalid type: string \"soon\""],
    );
    assert_error(
        &with_steps(r#"{"at_ms": 1.5, "do": "crash"}"#),
        "steps[0].at_ms",
        &["expected u64"],
    );
    assert_error(
        &with_steps(r#"{"at_ms": 1, "do": "transport_throws", "client": 0, "on": "yes"}"#),
        "steps[0].on",
        &["expected a boolean"],
    );
    assert_error(
        r#"{"schema": 1, "name": "x", "topology": {"clients": -1}, "duration_ms": 5}"#,
        "topology.clients",
        &["invalid value: integer `-1`, expected u32"],
    );
    assert_error(
        r#"{"schema": 1, "name": "x", "topology": {"clients": 1}, "duration_ms": 5,
            "network": {"es_retry_ms": "3s"}}"#,
        "network.es_retry_ms",
        &["invalid type: string \"3s\", expected u64"],
    );
}

#[test]
fn wrong_names_inside_a_step() {
    assert_error(
        &with_steps(r#"{"at_ms": 1, "do": "partition", "client": 0, "direction": "up"}"#),
        "steps[0].direction",
        &["unknown variant `up`", "`both`, `to_server`, `from_server`"],
    );
    assert_error(
        &with_steps(r#"{"at_ms": 1, "do": "session_state", "session": "s1", "state": "idle"}"#),
        "steps[0].state",
        &["unknown variant `idle`", "`DETACHED`"],
    );
    assert_error(
        &with_steps(r#"{"at_ms": 1, "do": "inject_status", "endpoint": "sendx", "status": 500}"#),
        "steps[0].endpoint",
        &[
            "unknown endpoint `sendx`",
            "expected one of: events, send, stop",
        ],
    );
    assert_error(
        &with_steps(r#"{"at_ms": 1, "do": "lose_response", "endpoint": "events"}"#),
        "steps[0].endpoint",
        &["unknown variant `events`", "`send`"],
    );
}

#[test]
fn step_that_is_not_an_object() {
    assert_error(
        &with_steps(r#"{"at_ms": 1, "do": "crash"}, 3"#),
        "steps[1]",
        &["expected a step object", "found number 3"],
    );
}

#[test]
fn unknown_fields_are_rejected_everywhere() {
    assert_error(
        r#"{"schema": 1, "name": "x", "topology": {"clients": 1}, "duration_ms": 5, "sede": 1}"#,
        "sede",
        &["unknown field `sede`", "`seed`"],
    );
    assert_error(
        r#"{"schema": 1, "name": "x", "topology": {"clients": 1, "tabs": 2}, "duration_ms": 5}"#,
        "topology.tabs",
        &["unknown field `tabs`"],
    );
    assert_error(
        r#"{"schema": 1, "name": "x", "topology": {"clients": 1}, "duration_ms": 5,
            "network": {"latency_ms": 3}}"#,
        "network.latency_ms",
        &["unknown field `latency_ms`", "`min_latency_ms`"],
    );
    assert_error(
        r#"{"schema": 1, "name": "x", "topology": {"clients": 1}, "duration_ms": 5,
            "constants": {"heartbeat": 3}}"#,
        "constants.heartbeat",
        &["unknown field `heartbeat`", "`heartbeat_ms`"],
    );
    assert_error(
        &with_steps(r#"{"at_ms": 1, "do": "send", "client": 0, "sesion": "s1"}"#),
        "steps[0].sesion",
        &["unknown field `sesion` for action `send`", "`session`"],
    );
    // serde ignores extra fields on unit variants; the loader does not.
    assert_error(
        &with_steps(
            r#"{"at_ms": 1, "do": "connect", "client": 0}, {"at_ms": 2, "do": "crash", "client": 0}"#,
        ),
        "steps[1].client",
        &["unknown field `client`", "action `crash` takes no fields"],
    );
}

#[test]
fn bad_schema_version() {
    let text = r#"{"schema": 2, "name": "x", "topology": {"clients": 1}, "duration_ms": 5}"#;
    assert_error(
        text,
        "schema",
        &["unsupported schema version 2, expected 1"],
    );
}

#[test]
fn client_index_out_of_range() {
    assert_error(
        &with_steps(
            r#"{"at_ms": 1, "do": "connect", "client": 0}, {"at_ms": 1, "do": "hidden", "client": 2}"#,
        ),
        "steps[1].client",
        &["tab 2 does not exist", "topology.clients is 2"],
    );
    assert_error(
        r#"{"schema": 1, "name": "x", "topology": {"clients": 9}, "duration_ms": 5}"#,
        "topology.clients",
        &["9 tabs, expected 1 to 8"],
    );
    assert_error(
        r#"{"schema": 1, "name": "x", "topology": {"clients": 0}, "duration_ms": 5}"#,
        "topology.clients",
        &["0 tabs, expected 1 to 8"],
    );
}

#[test]
fn step_after_duration() {
    assert_error(
        &with_steps(r#"{"at_ms": 10001, "do": "crash"}"#),
        "steps[0].at_ms",
        &["10001 is after duration_ms 10000"],
    );
}

#[test]
fn heal_at_after_duration_and_zero_duration() {
    assert_error(
        r#"{"schema": 1, "name": "x", "topology": {"clients": 1}, "duration_ms": 5, "heal_at_ms": 6}"#,
        "heal_at_ms",
        &["6 is after duration_ms 5"],
    );
    assert_error(
        r#"{"schema": 1, "name": "x", "topology": {"clients": 1}, "duration_ms": 0}"#,
        "duration_ms",
        &["must be greater than 0"],
    );
}

#[test]
fn min_latency_above_max_latency() {
    assert_error(
        r#"{"schema": 1, "name": "x", "topology": {"clients": 1}, "duration_ms": 5,
            "network": {"min_latency_ms": 10}}"#,
        "network.max_latency_ms",
        &["5 is below min_latency_ms 10"],
    );
    assert_error(
        &with_steps(r#"{"at_ms": 1, "do": "latency", "client": 0, "min_ms": 9, "max_ms": 2}"#),
        "steps[0].max_ms",
        &["2 is below min_ms 9"],
    );
}

#[test]
fn status_that_is_not_http() {
    assert_error(
        &with_steps(r#"{"at_ms": 1, "do": "inject_status", "endpoint": "send", "status": 42}"#),
        "steps[0].status",
        &["42 is not an HTTP status, expected 100 to 599"],
    );
    assert_error(
        &with_steps(r#"{"at_ms": 1, "do": "inject_status", "endpoint": "events", "status": 600}"#),
        "steps[0].status",
        &["600 is not an HTTP status"],
    );
}

#[test]
fn zero_timer_periods() {
    assert_error(
        r#"{"schema": 1, "name": "x", "topology": {"clients": 1}, "duration_ms": 5,
            "constants": {"heartbeat_ms": 0}}"#,
        "constants.heartbeat_ms",
        &["must be greater than 0"],
    );
    assert_error(
        r#"{"schema": 1, "name": "x", "topology": {"clients": 1}, "duration_ms": 5,
            "constants": {"sync_interval_ms": 0}}"#,
        "constants.sync_interval_ms",
        &["must be greater than 0"],
    );
}

#[test]
fn repeated_or_empty_session_name() {
    assert_error(
        r#"{"schema": 1, "name": "x", "topology": {"clients": 1, "sessions": ["a", "b", "a"]},
            "duration_ms": 5}"#,
        "topology.sessions[2]",
        &["session name \"a\" is repeated"],
    );
    assert_error(
        r#"{"schema": 1, "name": "x", "topology": {"clients": 1, "sessions": [""]},
            "duration_ms": 5}"#,
        "topology.sessions[0]",
        &["session name is empty"],
    );
}

#[test]
fn not_json_at_all() {
    for text in ["not json", "{\"schema\": 1,", "{} {}", "[1, 2"] {
        let e = error_of(text);
        let shown = e.to_string();
        assert!(
            shown.contains("line 1 column"),
            "no position for {text:?}: {shown}"
        );
    }
    let e = error_of("scenario: yes");
    assert_eq!(e.field, None);
    assert!(e.to_string().starts_with("not valid JSON: "), "{e}");
    for (text, found) in [
        ("[1, 2]", "an array"),
        ("42", "number 42"),
        ("null", "null"),
    ] {
        let e = error_of(text);
        assert_eq!(e.field, None);
        let expected = format!("expected a JSON object describing a scenario, found {found}");
        assert_eq!(e.to_string(), expected);
    }
    let e = error_of(&(with_steps("") + " trailing"));
    assert!(e.to_string().contains("trailing characters"), "{e}");
}

#[test]
fn empty_file() {
    for text in ["", "   \n\t"] {
        let e = error_of(text);
        assert_eq!(e.field, None);
        assert!(e.to_string().contains("the file is empty"), "{e}");
    }
}

#[test]
fn load_file_errors_name_the_file() {
    let file = TempFile::new(
        "load_file_errors_name_the_file",
        &with_steps(r#"{"at_ms": 1, "do": "sendd", "client": 0}"#),
    );
    let e = load_file(&file.0).unwrap_err();
    assert_eq!(e.file.as_deref(), Some(file.0.as_path()));
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!(
            "{}: field `steps[0].do`: unknown action `sendd`",
            file.0.display()
        )),
        "{shown}"
    );

    let empty = TempFile::new("load_file_errors_name_the_file-empty", "");
    let e = load_file(&empty.0).unwrap_err();
    assert!(e
        .to_string()
        .starts_with(&format!("{}: the file is empty", empty.0.display())));
}

#[test]
fn load_file_of_a_missing_file() {
    let path =
        std::env::temp_dir().join("ssesim-scenarios-load_file_of_a_missing_file-absent.json");
    let e = load_file(&path).unwrap_err();
    assert_eq!(e.file.as_deref(), Some(path.as_path()));
    assert!(e.to_string().contains("cannot read the file"), "{e}");
}

#[test]
fn garbage_never_panics() {
    // A few mangled variants of a valid file: every one must be an Ok or an Err, not a panic.
    let valid = with_steps(
        r#"{"at_ms": 1, "do": "send", "client": 0, "session": "s1"},
           {"at_ms": 2, "do": "inject_status", "endpoint": "send", "status": 500}"#,
    );
    for cut in 0..valid.len() {
        if valid.is_char_boundary(cut) {
            let _ = parse_str(&valid[..cut]);
        }
    }
    for (from, to) in [
        ("\"client\": 0", "\"client\": null"),
        ("\"client\": 0", "\"client\": [0]"),
        ("\"status\": 500", "\"status\": 70000"),
        ("\"endpoint\": \"send\"", "\"endpoint\": {}"),
        ("\"steps\": [", "\"steps\": {\"a\": ["),
        ("\"at_ms\": 1", "\"at_ms\": -1"),
        ("\"at_ms\": 1", "\"at_ms\": 18446744073709551616"),
    ] {
        let e = error_of(&valid.replacen(from, to, 1));
        assert!(!e.message.is_empty());
    }
}
