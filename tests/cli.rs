//! The command line as a user meets it: outputs, exit codes, and clear errors on bad input.

mod common;

use common::cli::{json, ssesim, stderr, stdout};
use std::path::PathBuf;

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ssesim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn demo_shows_the_crash() {
    let o = ssesim(&["demo"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("CRASH: unhandled rejection"), "{out}");
    assert!(out.contains("VIOLATED server_survives"), "{out}");
}

#[test]
fn replay_json_has_the_documented_shape_and_exit_code_1_on_violations() {
    let o = ssesim(&[
        "replay",
        "scenarios/catalog/demo-interrupt-crash.json",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v = json(&o);
    for key in [
        "scenario",
        "revision",
        "engine",
        "seed",
        "history_hash",
        "verdict",
        "violations",
        "stats",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    assert_eq!(v["engine"], "turmoil");
    assert_eq!(v["verdict"], "fail");
    let hash = v["history_hash"].as_str().unwrap();
    assert!(
        hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "{hash}"
    );
    for key in [
        "sim_ms",
        "history_records",
        "posts",
        "events_delivered",
        "replayed_events",
        "max_pending",
    ] {
        assert!(v["stats"].get(key).is_some(), "stats lacks {key}");
    }
    let ids: Vec<&str> = v["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["invariant"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"server_survives"), "{ids:?}");
    assert!(v["violations"][0]["at_ms"].is_u64() && v["violations"][0]["detail"].is_string());
}

#[test]
fn replay_of_a_quiet_scenario_passes_with_exit_code_0() {
    let o = ssesim(&["replay", "scenarios/catalog/quiet.json", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(json(&o)["verdict"], "pass");
}

#[test]
fn the_same_replay_in_two_processes_gives_the_same_hash() {
    let args = [
        "replay",
        "scenarios/catalog/flush-reorder.json",
        "--json",
        "--seed",
        "9",
    ];
    let a = json(&ssesim(&args));
    let b = json(&ssesim(&args));
    assert_eq!(a["history_hash"], b["history_hash"]);
    assert_eq!(a["seed"], 9);
}

#[test]
fn history_flag_writes_every_record_as_a_json_line() {
    let out = std::env::temp_dir().join(format!("ssesim-history-{}.jsonl", std::process::id()));
    let o = ssesim(&[
        "replay",
        "scenarios/catalog/quiet.json",
        "--json",
        "--history",
        out.to_str().unwrap(),
    ]);
    let v = json(&o);
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len() as u64,
        v["stats"]["history_records"].as_u64().unwrap()
    );
    for line in lines {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(record["at"].is_u64() && record["ev"].is_string(), "{line}");
    }
}

#[test]
fn a_malformed_scenario_names_file_and_field_and_exits_2() {
    let path = temp_file(
        "bad-step.json",
        r#"{"schema":1,"name":"x","topology":{"clients":1},"duration_ms":100,"steps":[{"at_ms":1,"do":"sendd","client":0}]}"#,
    );
    let o = ssesim(&["replay", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("bad-step.json"), "{err}");
    assert!(err.contains("steps[0]"), "{err}");
    assert!(err.contains("sendd"), "{err}");
}

#[test]
fn a_missing_file_exits_2() {
    let o = ssesim(&["replay", "no/such/file.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no/such/file.json"));
}

#[test]
fn an_unknown_revision_lists_the_known_ones_and_exits_2() {
    let o = ssesim(&[
        "replay",
        "scenarios/catalog/quiet.json",
        "--revision",
        "r42",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("unknown revision `r42`") && err.contains("baseline"),
        "{err}"
    );
}

#[test]
fn a_bad_flag_exits_2() {
    let o = ssesim(&["replay", "scenarios/catalog/quiet.json", "--sed", "3"]);
    assert_eq!(o.status.code(), Some(2));
    let o = ssesim(&["replay", "scenarios/catalog/quiet.json", "--seed", "three"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn replay_runs_on_either_engine_and_they_agree() {
    let file = "scenarios/catalog/demo-interrupt-crash.json";
    let turmoil = json(&ssesim(&["replay", file, "--json"]));
    let direct = json(&ssesim(&["replay", file, "--json", "--engine", "direct"]));
    assert_eq!(turmoil["engine"], "turmoil", "turmoil is replay's default");
    assert_eq!(direct["engine"], "direct");
    // The direct engine records turmoil's very history.
    assert_eq!(direct["history_hash"], turmoil["history_hash"]);
    assert_eq!(direct["violations"], turmoil["violations"]);
    let text = stdout(&ssesim(&["replay", file, "--engine", "direct"]));
    assert!(text.contains("direct engine"), "{text}");
}

#[test]
fn replay_takes_turmoils_tick_and_refuses_it_on_the_direct_engine() {
    let file = "scenarios/catalog/demo-interrupt-crash.json";
    let fine = json(&ssesim(&["replay", file, "--json"]));
    let explicit = json(&ssesim(&["replay", file, "--json", "--tick-ms", "1"]));
    assert_eq!(
        explicit["history_hash"], fine["history_hash"],
        "1 ms is the default"
    );
    // A 5 ms tick rounds every delay up to 5 ms: another history, the same crash.
    let coarse = json(&ssesim(&["replay", file, "--json", "--tick-ms", "5"]));
    assert_eq!(coarse["tick_ms"], 5);
    assert_ne!(coarse["history_hash"], fine["history_hash"]);
    assert_eq!(coarse["verdict"], fine["verdict"]);
    for args in [
        &["replay", file, "--engine", "direct", "--tick-ms", "5"][..],
        &["replay", file, "--tick-ms", "0"][..],
    ] {
        let o = ssesim(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains("tick"), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn an_unknown_engine_names_the_known_ones_and_exits_2() {
    for args in [
        &[
            "replay",
            "scenarios/catalog/quiet.json",
            "--engine",
            "tokio",
        ][..],
        &["explore", "--engine", "tokio"][..],
        &["hunt", "--revision", "r1", "--engine", "tokio"][..],
    ] {
        let o = ssesim(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert!(
            err.contains("unknown engine `tokio`") && err.contains("direct, turmoil"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn invariants_lists_the_twelve_stable_ids() {
    let v = json(&ssesim(&["invariants", "--json"]));
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 12);
    for id in [
        "send_order",
        "no_silent_send_loss",
        "liveness",
        "connection_hygiene",
    ] {
        assert!(ids.contains(&id), "{ids:?}");
    }
    assert!(stdout(&ssesim(&["invariants"])).contains("server_survives"));
}

#[test]
fn schema_prints_the_committed_schema_file() {
    let o = ssesim(&["schema"]);
    let committed = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/scenario.schema.json"),
    )
    .unwrap();
    assert_eq!(stdout(&o), committed);
}

#[test]
fn check_reports_counterexamples_with_exit_code_1_and_bad_flags_with_2() {
    let dir = std::env::temp_dir().join(format!("ssesim-cli-check-{}", std::process::id()));
    let o = ssesim(&[
        "check",
        "--revision",
        "r5",
        "--depth",
        "2",
        "--json",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v = json(&o);
    assert!(v["states_explored"].as_u64().unwrap() > 1000);
    assert!(v["counterexamples"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["invariant"] == "send_order"));
    let o = ssesim(&["check", "--revision", "r5", "--depth", "99"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--depth 99"), "{}", stderr(&o));
}

#[test]
fn bench_quick_reports_the_ratio() {
    let o = ssesim(&["bench", "--quick", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    // Figures are reported, never asserted on (timings are no test's business).
    assert!(v["ratio_direct_over_turmoil"].is_f64(), "{v}");
    assert!(v["direct"]["scenarios_per_s"].is_f64());
    assert!(v["oracle_growth"].as_array().unwrap().len() == 4);
    assert_eq!(v["turmoil_ticks"].as_array().unwrap().len(), 4);
}
