//! Same scenario and seed, byte-identical history: checked over many seeds, with the first
//! differing record printed on a mismatch.

use ssesim_model::revisions;
use ssesim_scenarios::{parse_str, Scenario};
use ssesim_sim::turmoil::run;

/// Two tabs, two sessions, and a fault of most kinds, so that latency draws, reconnects
/// and replays all depend on the seed.
const BUSY: &str = r#"{
  "schema": 1,
  "name": "determinism-busy",
  "topology": { "clients": 2, "sessions": ["s1", "s2"] },
  "network": { "min_latency_ms": 1, "max_latency_ms": 20, "es_retry_ms": 200, "es_idle_timeout_ms": 800, "fetch_timeout_ms": 500, "restart_after_ms": 150 },
  "constants": { "sync_interval_ms": 500, "heartbeat_ms": 300 },
  "duration_ms": 2500,
  "heal_at_ms": 1800,
  "steps": [
    { "at_ms": 20, "do": "watch", "client": 0, "session": "s1" },
    { "at_ms": 20, "do": "switch", "client": 1, "session": "s2" },
    { "at_ms": 50, "do": "emit", "session": "s1", "count": 20, "every_ms": 7 },
    { "at_ms": 60, "do": "emit", "session": "s2", "count": 20, "every_ms": 11 },
    { "at_ms": 100, "do": "send", "client": 0, "session": "s1" },
    { "at_ms": 101, "do": "send", "client": 1, "session": "s2" },
    { "at_ms": 150, "do": "lose_response", "endpoint": "send" },
    { "at_ms": 160, "do": "send", "client": 0, "session": "s1" },
    { "at_ms": 200, "do": "double_welcome", "client": 1, "gap_ms": 2 },
    { "at_ms": 300, "do": "inject_status", "endpoint": "send", "status": 503, "count": 2 },
    { "at_ms": 310, "do": "send", "client": 1, "session": "s2" },
    { "at_ms": 400, "do": "partition", "client": 0 },
    { "at_ms": 450, "do": "send", "client": 0, "session": "s1" },
    { "at_ms": 700, "do": "repair", "client": 0 },
    { "at_ms": 800, "do": "interrupt_fails" },
    { "at_ms": 820, "do": "interrupt", "client": 1, "session": "s2" },
    { "at_ms": 900, "do": "send", "client": 1 },
    { "at_ms": 1000, "do": "drop_connection", "client": 0 },
    { "at_ms": 1050, "do": "send", "client": 0, "session": "s1" },
    { "at_ms": 1200, "do": "hidden", "client": 1 },
    { "at_ms": 1400, "do": "visible", "client": 1 }
  ]
}"#;

fn busy() -> Scenario {
    parse_str(BUSY).expect("the determinism scenario parses")
}

fn seeds() -> std::ops::Range<u64> {
    // Override with SSESIM_DETERMINISM_SEEDS=N for a longer local run.
    let n = std::env::var("SSESIM_DETERMINISM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    0..n
}

#[test]
fn same_seed_gives_byte_identical_history() {
    let scenario = busy();
    let params = revisions::preset("baseline").unwrap();
    let mut distinct = std::collections::BTreeSet::new();
    for seed in seeds() {
        let a = run(&scenario, &params, seed);
        let b = run(&scenario, &params, seed);
        if let Some((i, left, right)) = a.history.first_divergence(&b.history) {
            panic!(
                "seed {seed}: histories diverge at record {i}\n first run:  {}\n second run: {}",
                left.unwrap_or_else(|| "<end>".into()),
                right.unwrap_or_else(|| "<end>".into())
            );
        }
        assert_eq!(a.history.hash_hex(), b.history.hash_hex());
        distinct.insert(a.history.hash_hex());
    }
    // The seed must matter, or this test would pass for a bench that ignores it.
    let n = seeds().end as usize;
    assert!(
        distinct.len() * 2 > n,
        "only {} distinct histories over {n} seeds",
        distinct.len()
    );
}

#[test]
fn history_hash_is_sixteen_hex_digits_and_stable_across_processes() {
    // A golden value: a hash that depended on process state (RandomState, addresses,
    // wall time) would differ here from one `cargo test` to the next.
    let report = run(&busy(), &revisions::preset("baseline").unwrap(), 42);
    let hash = report.history.hash_hex();
    assert_eq!(hash.len(), 16);
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
    insta::assert_snapshot!("busy_seed_42_hash", hash);
}

#[test]
fn first_divergence_names_the_first_differing_record() {
    let params = revisions::preset("baseline").unwrap();
    let a = run(&busy(), &params, 1);
    let mut b = a.history.clone();
    let i = b.records.len() / 2;
    b.records[i].at += 1;
    let (at, left, right) = a.history.first_divergence(&b).expect("they differ");
    assert_eq!(at, i);
    assert_ne!(left, right);
    assert!(a.history.first_divergence(&a.history.clone()).is_none());
}
