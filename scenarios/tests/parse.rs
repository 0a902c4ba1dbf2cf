//! Well-formed scenarios: parsing, defaults, round trips and the derived helpers.

mod common;

use common::{with_steps, TempFile};
use ssesim_model::{Endpoint, SessionState};
use ssesim_scenarios::{
    load_file, parse_str, Action, Constants, Direction, EventsEndpoint, FaultEndpoint, Network,
    Scenario, Step, SCHEMA_VERSION,
};

/// One scenario that sets every top-level field and uses every action.
const FULL: &str = r#"{
  "schema": 1,
  "name": "everything",
  "description": "Every field and every action once.",
  "revision": "baseline",
  "seed": 42,
  "topology": { "clients": 3, "sessions": ["s1", "s2"], "autoconnect": false },
  "constants": {
    "reconnect_delay_ms": 250, "max_pending_sends": 5, "sync_interval_ms": 1000,
    "sync_batch_limit": 10, "suspend_grace_ms": 60000, "heartbeat_ms": 15000
  },
  "network": {
    "min_latency_ms": 2, "max_latency_ms": 20, "es_retry_ms": 1000, "es_idle_timeout_ms": 30000,
    "fetch_timeout_ms": 10000, "restart_after_ms": null, "interrupt_latency_ms": 5
  },
  "duration_ms": 60000,
  "heal_at_ms": 30000,
  "steps": [
    { "at_ms": 0, "do": "connect", "client": 0 },
    { "at_ms": 0, "do": "connect", "client": 1 },
    { "at_ms": 10, "do": "watch", "client": 1, "session": "s1" },
    { "at_ms": 20, "do": "send", "client": 0, "session": "s1", "id": "m-a", "text": "hi" },
    { "at_ms": 20, "do": "send", "client": 0 },
    { "at_ms": 30, "do": "interrupt", "client": 0, "session": "s1", "text": "wait" },
    { "at_ms": 40, "do": "stop", "client": 0, "session": "s1" },
    { "at_ms": 50, "do": "unwatch", "client": 1, "session": "s1" },
    { "at_ms": 60, "do": "switch", "client": 0, "session": "s2" },
    { "at_ms": 70, "do": "hidden", "client": 2 },
    { "at_ms": 80, "do": "visible", "client": 2 },
    { "at_ms": 90, "do": "force_reconnect", "client": 0 },
    { "at_ms": 100, "do": "disconnect", "client": 1 },
    { "at_ms": 110, "do": "emit", "session": "s1", "count": 4, "every_ms": 25 },
    { "at_ms": 120, "do": "session_state", "session": "s1", "state": "DETACHED" },
    { "at_ms": 130, "do": "crash" },
    { "at_ms": 140, "do": "restart" },
    { "at_ms": 150, "do": "crash_at_interrupt" },
    { "at_ms": 160, "do": "bounce" },
    { "at_ms": 170, "do": "partition", "client": 0, "direction": "from_server" },
    { "at_ms": 180, "do": "repair", "client": 0 },
    { "at_ms": 190, "do": "hold", "client": 1 },
    { "at_ms": 200, "do": "release", "client": 1 },
    { "at_ms": 210, "do": "latency", "client": 2, "min_ms": 50, "max_ms": 80 },
    { "at_ms": 220, "do": "drop_connection", "client": 0, "notify": true },
    { "at_ms": 230, "do": "inject_status", "endpoint": "send", "status": 429, "count": 2, "retry_after_s": 3 },
    { "at_ms": 235, "do": "inject_status", "endpoint": "events", "status": 503 },
    { "at_ms": 240, "do": "lose_response", "endpoint": "interrupt", "count": 2 },
    { "at_ms": 250, "do": "interrupt_fails" },
    { "at_ms": 260, "do": "double_welcome", "client": 1, "gap_ms": 7 },
    { "at_ms": 270, "do": "transport_throws", "client": 1, "on": true },
    { "at_ms": 280, "do": "track_seq", "client": 1, "session": "s2", "seq": 12 }
  ]
}"#;

#[test]
fn parses_a_full_example() {
    let s = parse_str(FULL).expect("full example parses");
    assert_eq!(s.schema, SCHEMA_VERSION);
    assert_eq!(s.name, "everything");
    assert_eq!(s.seed, 42);
    assert_eq!(s.topology.clients, 3);
    assert_eq!(s.topology.sessions, ["s1", "s2"]);
    assert!(!s.topology.autoconnect);
    assert_eq!(
        s.constants,
        Constants {
            reconnect_delay_ms: Some(250),
            max_pending_sends: Some(5),
            sync_interval_ms: Some(1000),
            sync_batch_limit: Some(10),
            suspend_grace_ms: Some(60000),
            heartbeat_ms: Some(15000),
        }
    );
    assert_eq!(
        s.network.restart_after_ms, None,
        "explicit null disables restarts"
    );
    assert_eq!(s.network.max_latency_ms, 20);
    assert_eq!(s.heal_at(), 30000);
    assert_eq!(s.steps.len(), 32);
    // Every action appears at least once.
    let mut names: Vec<&str> = s.steps.iter().map(|st| st.action.name()).collect();
    names.sort_unstable();
    names.dedup();
    let mut all = Action::NAMES.to_vec();
    all.sort_unstable();
    assert_eq!(names, all, "FULL should use every action");
    // The fault names are exactly the actions `is_fault` says are faults.
    let mut faults: Vec<&str> = s
        .steps
        .iter()
        .filter(|st| st.action.is_fault())
        .map(|st| st.action.name())
        .collect();
    faults.sort_unstable();
    faults.dedup();
    let mut fault_names = Action::FAULT_NAMES.to_vec();
    fault_names.sort_unstable();
    assert_eq!(faults, fault_names);

    assert_eq!(
        s.steps[3].action,
        Action::Send {
            client: 0,
            session: Some("s1".into()),
            id: Some("m-a".into()),
            text: "hi".into()
        }
    );
    assert_eq!(
        s.steps[14].action,
        Action::SessionState {
            session: "s1".into(),
            state: SessionState::Detached
        }
    );
    assert_eq!(
        s.steps[19].action,
        Action::Partition {
            client: 0,
            direction: Direction::FromServer
        }
    );
    assert_eq!(
        s.steps[25].action,
        Action::InjectStatus {
            endpoint: FaultEndpoint::Post(Endpoint::Send),
            status: 429,
            count: 2,
            retry_after_s: Some(3)
        }
    );
    assert_eq!(
        s.steps[26].action,
        Action::InjectStatus {
            endpoint: FaultEndpoint::Events(EventsEndpoint::Events),
            status: 503,
            count: 1,
            retry_after_s: None
        }
    );
    assert_eq!(
        s.steps[27].action,
        Action::LoseResponse {
            endpoint: Endpoint::Interrupt,
            count: 2
        }
    );
}

#[test]
fn round_trip_preserves_the_scenario() {
    let s = parse_str(FULL).unwrap();
    let text = s.to_json_pretty();
    let back = parse_str(&text).expect("serialised scenario parses");
    assert_eq!(back, s);
    // And the written form is stable.
    assert_eq!(back.to_json_pretty(), text);
}

#[test]
fn round_trip_of_a_minimal_scenario_with_defaults() {
    let s = parse_str(&with_steps(r#"{"at_ms": 1, "do": "crash"}"#)).unwrap();
    let text = s.to_json_pretty();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(
        value.get("heal_at_ms").is_none(),
        "absent stays absent: {text}"
    );
    assert!(
        value.get("description").is_none(),
        "empty description omitted: {text}"
    );
    assert_eq!(
        value["steps"][0],
        serde_json::json!({"at_ms": 1, "do": "crash"})
    );
    assert_eq!(parse_str(&text).unwrap(), s);
}

#[test]
fn defaults_are_applied() {
    let s = parse_str(&with_steps(
        r#"{"at_ms": 1, "do": "send", "client": 0},
           {"at_ms": 2, "do": "emit", "session": "s1"},
           {"at_ms": 3, "do": "inject_status", "endpoint": "send", "status": 500},
           {"at_ms": 4, "do": "lose_response", "endpoint": "send"},
           {"at_ms": 5, "do": "interrupt_fails"},
           {"at_ms": 6, "do": "partition", "client": 1},
           {"at_ms": 7, "do": "drop_connection", "client": 1},
           {"at_ms": 8, "do": "double_welcome", "client": 1},
           {"at_ms": 9, "do": "interrupt", "client": 0, "session": "s1"}"#,
    ))
    .unwrap();
    assert_eq!(s.revision, "baseline");
    assert_eq!(s.seed, 0);
    assert_eq!(s.description, "");
    assert!(s.topology.autoconnect);
    assert_eq!(s.constants, Constants::default());
    assert_eq!(s.network, Network::default());
    assert_eq!(s.network.min_latency_ms, 1);
    assert_eq!(s.network.max_latency_ms, 5);
    assert_eq!(s.network.es_retry_ms, 3000);
    assert_eq!(s.network.es_idle_timeout_ms, 45_000);
    assert_eq!(s.network.fetch_timeout_ms, 20_000);
    assert_eq!(s.network.restart_after_ms, Some(1000));
    assert_eq!(s.network.interrupt_latency_ms, 2);
    assert_eq!(s.heal_at_ms, None);
    assert_eq!(s.heal_at(), s.duration_ms);

    let actions: Vec<&Action> = s.steps.iter().map(|st| &st.action).collect();
    assert_eq!(
        actions[0],
        &Action::Send {
            client: 0,
            session: None,
            id: None,
            text: "hello".into()
        }
    );
    assert_eq!(
        actions[1],
        &Action::Emit {
            session: "s1".into(),
            count: 1,
            every_ms: 0
        }
    );
    assert!(matches!(
        actions[2],
        Action::InjectStatus {
            count: 1,
            retry_after_s: None,
            ..
        }
    ));
    assert!(matches!(actions[3], Action::LoseResponse { count: 1, .. }));
    assert_eq!(actions[4], &Action::InterruptFails { count: 1 });
    assert_eq!(
        actions[5],
        &Action::Partition {
            client: 1,
            direction: Direction::Both
        }
    );
    assert_eq!(
        actions[6],
        &Action::DropConnection {
            client: 1,
            notify: false
        }
    );
    assert_eq!(
        actions[7],
        &Action::DoubleWelcome {
            client: 1,
            gap_ms: 3
        }
    );
    assert!(matches!(actions[8], Action::Interrupt { id: None, text, .. } if text == "hello"));
}

#[test]
fn network_fields_default_one_by_one() {
    let s = parse_str(
        r#"{"schema": 1, "name": "n", "topology": {"clients": 1}, "duration_ms": 10,
            "network": {"max_latency_ms": 9}}"#,
    )
    .unwrap();
    assert_eq!(
        s.network,
        Network {
            max_latency_ms: 9,
            ..Network::default()
        }
    );
}

#[test]
fn constants_apply_to_params() {
    let s = parse_str(FULL).unwrap();
    let mut params = ssesim_model::Params::baseline();
    let untouched = params.clone();
    Constants::default().apply(&mut params);
    assert_eq!(params, untouched, "no overrides, no change");
    s.constants.apply(&mut params);
    assert_eq!(params.client.reconnect_delay_ms, 250);
    assert_eq!(params.client.max_pending_sends, 5);
    assert_eq!(params.server.sync.interval_ms, 1000);
    assert_eq!(params.server.sync.batch_limit, 10);
    assert_eq!(params.server.suspend_grace_ms, 60000);
    assert_eq!(params.server.heartbeat_ms, 15000);
}

#[test]
fn tab_names_and_default_client_msg_ids() {
    assert_eq!(Scenario::tab_name(0), "tab0");
    assert_eq!(Scenario::tab_name(7), "tab7");
    let s = parse_str(&with_steps(
        r#"{"at_ms": 50, "do": "send", "client": 1},
           {"at_ms": 10, "do": "send", "client": 0, "id": "explicit"},
           {"at_ms": 20, "do": "watch", "client": 0, "session": "s1"},
           {"at_ms": 30, "do": "interrupt", "client": 0, "session": "s1"},
           {"at_ms": 40, "do": "send", "client": 0, "session": "s1"},
           {"at_ms": 5, "do": "send", "client": 1, "id": "tab1-m1"}"#,
    ))
    .unwrap();
    assert_eq!(
        s.msg_ids(),
        [
            Some("tab1-m1".to_string()),
            Some("explicit".to_string()),
            None,
            Some("tab0-m2".to_string()),
            Some("tab0-m3".to_string()),
            Some("tab1-m1".to_string()),
        ],
        "k counts send and interrupt steps per tab in file order, explicit ids included"
    );
}

#[test]
fn timeline_orders_by_time_then_file_order() {
    let s = parse_str(&with_steps(
        r#"{"at_ms": 30, "do": "crash"},
           {"at_ms": 10, "do": "restart"},
           {"at_ms": 30, "do": "bounce"},
           {"at_ms": 0, "do": "crash_at_interrupt"}"#,
    ))
    .unwrap();
    assert_eq!(s.timeline(), [3, 1, 0, 2]);
}

#[test]
fn action_names_match_the_do_field() {
    let s = parse_str(FULL).unwrap();
    for step in &s.steps {
        let value = serde_json::to_value(step).unwrap();
        assert_eq!(value["do"], step.action.name());
        assert_eq!(value["at_ms"], step.at_ms);
    }
    let faults: Vec<&str> = s
        .steps
        .iter()
        .filter(|st| st.action.is_fault())
        .map(|st| st.action.name())
        .collect();
    assert!(faults.contains(&"crash") && faults.contains(&"latency"));
    assert!(!faults.contains(&"send") && !faults.contains(&"emit"));
    assert_eq!(s.steps[3].action.client(), Some(0));
    assert_eq!(s.steps[13].action.client(), None, "emit has no tab");
}

#[test]
fn steps_at_the_boundaries_are_accepted() {
    let s = parse_str(
        r#"{"schema": 1, "name": "b", "topology": {"clients": 8}, "duration_ms": 100,
            "heal_at_ms": 100, "network": {"min_latency_ms": 3, "max_latency_ms": 3},
            "steps": [{"at_ms": 100, "do": "hold", "client": 7},
                      {"at_ms": 0, "do": "inject_status", "endpoint": "events", "status": 599},
                      {"at_ms": 0, "do": "inject_status", "endpoint": "events", "status": 100},
                      {"at_ms": 1, "do": "latency", "client": 0, "min_ms": 4, "max_ms": 4}]}"#,
    )
    .unwrap();
    assert_eq!(s.heal_at(), 100);
    assert_eq!(
        s.steps[0],
        Step {
            at_ms: 100,
            action: Action::Hold { client: 7 }
        }
    );
}

#[test]
fn load_file_reads_a_file() {
    let file = TempFile::new("load_file_reads_a_file", FULL);
    let s = load_file(&file.0).expect("loads");
    assert_eq!(s, parse_str(FULL).unwrap());
}
