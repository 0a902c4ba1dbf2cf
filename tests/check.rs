//! Bounded exhaustive search: it finds the ordering and duplicate bugs at small depths on
//! their revisions, nothing on the reference at the same depth, writes counterexamples that
//! replay, and gives the same answer whatever the number of threads.

use ssesim::check::{check, CheckConfig, CheckReport};
use ssesim_model::revisions;
use ssesim_oracles::Context;
use std::path::PathBuf;

fn out_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ssesim-check-{}-{name}", std::process::id()))
}

fn run(revision: &str, depth: u32, jobs: usize, out: Option<PathBuf>) -> CheckReport {
    let cfg = CheckConfig {
        revision: revision.into(),
        depth,
        clients: 1,
        sessions: 1,
        jobs,
        out,
    };
    check(&cfg, &mut |_, _, _| {}).expect("a valid configuration")
}

fn found(r: &CheckReport, invariant: &str) -> Option<u32> {
    r.counterexamples
        .iter()
        .find(|c| c.invariant == invariant)
        .map(|c| c.depth)
}

#[test]
fn it_finds_the_first_connect_reordering_at_depth_two_and_the_file_replays() {
    let dir = out_dir("r5");
    let r = run("r5", 2, 2, Some(dir.clone()));
    assert_eq!(found(&r, "send_order"), Some(2), "{}", r.to_text());
    let c = r
        .counterexamples
        .iter()
        .find(|c| c.invariant == "send_order")
        .unwrap();
    assert!(c.turmoil_verdict.contains(&"send_order".to_string()));
    // The file on disk is the scenario that was judged: it replays to the same verdict.
    let path = c.scenario_path.as_ref().expect("written");
    let scenario = ssesim_scenarios::load_file(path).expect("a valid scenario file");
    let params = revisions::preset("r5").unwrap();
    for engine in ssesim_sim::EngineKind::ALL {
        let report = ssesim_sim::run(engine, &scenario, &params, scenario.seed);
        let v = ssesim_oracles::check(&Context::new(&scenario, &params), &report.history);
        assert!(v.failed("send_order"), "{engine}: {v:?}");
    }
    assert_eq!(scenario.expect.get("r5"), Some(&c.direct_verdict));
}

#[test]
fn it_finds_the_duplicate_dispatch_of_r6_at_depth_three() {
    let r = run("r6", 3, 2, None);
    assert_eq!(
        found(&r, "no_duplicate_dispatch"),
        Some(3),
        "{}",
        r.to_text()
    );
    assert_eq!(found(&r, "send_order"), Some(2));
    assert!(
        r.unique_states < r.states_explored,
        "states are deduplicated"
    );
    assert_eq!(r.max_depth, 3);
}

#[test]
fn the_reference_passes_at_the_same_depth() {
    let r = run("reference", 2, 2, None);
    assert!(r.counterexamples.is_empty(), "{}", r.to_text());
    assert_eq!(r.levels.len(), 3);
    assert!(r.states_explored > 1000);
}

#[test]
fn the_answer_does_not_depend_on_the_threads() {
    let one = run("r9", 2, 1, None);
    let two = run("r9", 2, 2, None);
    assert_eq!(one.levels, two.levels);
    let steps = |r: &CheckReport| {
        r.counterexamples
            .iter()
            .map(|c| (c.invariant.clone(), c.scenario.steps.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(steps(&one), steps(&two));
    assert!(!one.counterexamples.is_empty());
}

#[test]
fn bad_configurations_are_refused_with_a_message() {
    for (cfg, needle) in [
        (("nope", 2, 1, 1), "unknown revision `nope`"),
        (("r1", 0, 1, 1), "--depth 0"),
        (("r1", 2, 9, 1), "--clients 9"),
        (("r1", 2, 1, 0), "--sessions 0"),
    ] {
        let (revision, depth, clients, sessions) = cfg;
        let err = check(
            &CheckConfig {
                revision: revision.into(),
                depth,
                clients,
                sessions,
                jobs: 1,
                out: None,
            },
            &mut |_, _, _| {},
        )
        .unwrap_err();
        assert!(err.contains(needle), "{err}");
    }
}
