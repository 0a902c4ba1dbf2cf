//! The direct engine on its own: its fidelity to the turmoil engine, and the steppable form
//! (`DirectSim`): clones, state digests, steps added while it runs. (Its determinism over
//! many seeds is in `determinism.rs`, every fault kind on both engines in `faults.rs`.)

mod common;

use common::{busy, catalog};
use ssesim_model::revisions;
use ssesim_scenarios::{Action, Scenario, Step};
use ssesim_sim::direct::{run, DirectSim};
use ssesim_sim::history::EndVerdict;
use ssesim_sim::EngineKind;
use std::collections::BTreeSet;

fn baseline() -> ssesim_model::Params {
    revisions::preset("baseline").expect("baseline preset")
}

/// The direct engine draws turmoil's latencies and orders a millisecond's work as turmoil
/// does, so it records the very history the turmoil engine records.
#[test]
fn it_records_the_turmoil_engines_history_on_the_busy_scenario() {
    let scenario = busy();
    let params = baseline();
    for seed in 0..100 {
        let direct = run(&scenario, &params, seed);
        let turmoil = ssesim_sim::turmoil::run(&scenario, &params, seed);
        if let Some((i, d, t)) = direct.history.first_divergence(&turmoil.history) {
            panic!(
                "seed {seed}: the engines diverge at record {i}\n direct:  {}\n turmoil: {}",
                d.unwrap_or_else(|| "<end>".into()),
                t.unwrap_or_else(|| "<end>".into())
            );
        }
        assert_eq!(direct.stats, turmoil.stats, "seed {seed}");
    }
}

#[test]
fn history_hash_is_stable_across_processes() {
    let report = run(&busy(), &baseline(), 42);
    insta::assert_snapshot!("busy_seed_42_hash", report.history.hash_hex());
}

#[test]
fn the_dispatcher_runs_the_engine_it_is_told() {
    let s = catalog("fault-crash");
    let params = baseline();
    for engine in EngineKind::ALL {
        let report = ssesim_sim::run(engine, &s, &params, s.seed);
        assert!(matches!(
            report.history.end_verdict(),
            Some(EndVerdict::NotQuiescent { .. })
        ));
        assert_eq!(engine.to_string().parse::<EngineKind>(), Ok(engine));
    }
    let err = "tokio".parse::<EngineKind>().unwrap_err();
    assert!(err.contains("unknown engine `tokio`"), "{err}");
}

// --- the steppable form ------------------------------------------------------------------

#[test]
fn new_then_finish_is_run() {
    let s = busy();
    let params = baseline();
    let stepped = DirectSim::new(&s, &params, 3).finish();
    assert_eq!(stepped, run(&s, &params, 3));
    // Running in stretches changes nothing either.
    let mut sim = DirectSim::new(&s, &params, 3);
    for t in (0..s.duration_ms).step_by(137) {
        sim.run_until(t);
        assert_eq!(sim.done_through(), Some(t));
    }
    assert_eq!(sim.finish(), run(&s, &params, 3));
}

#[test]
fn a_clone_continues_identically() {
    let s = busy();
    let params = baseline();
    let whole = run(&s, &params, 7);
    for at in [0, 150, 333, 1000, 1800, 2400] {
        let mut a = DirectSim::new(&s, &params, 7);
        a.run_until(at);
        let b = a.clone();
        assert_eq!(a.state_digest(), b.state_digest(), "clone at {at}");
        let (a, b) = (a.finish(), b.finish());
        assert_eq!(
            a.history.first_divergence(&b.history),
            None,
            "clone at {at}"
        );
        assert_eq!(a, whole, "clone at {at}");
    }
}

#[test]
fn equal_states_have_equal_digests_and_different_states_differ() {
    let s = busy();
    let params = baseline();
    let sim = |seed| DirectSim::new(&s, &params, seed);

    // Same inputs, same state, at every point of the run.
    let (mut a, mut b) = (sim(5), sim(5));
    let mut seen = BTreeSet::new();
    for t in [0, 20, 100, 450, 1000, 1900, 2600] {
        a.run_until(t);
        b.run_until(t);
        assert_eq!(a.state_digest(), b.state_digest(), "at {t}");
        // The state moves on as the run does.
        assert!(
            seen.insert(a.state_digest()),
            "the state at {t} was seen before"
        );
    }

    // Another seed is another latency stream.
    let (mut c, mut d) = (sim(5), sim(6));
    c.run_until(100);
    d.run_until(100);
    assert_ne!(c.state_digest(), d.state_digest());

    // A step that changes something changes the state...
    let mut e = sim(5);
    let mut f = sim(5);
    e.run_until(99);
    f.run_until(99);
    f.add_step(Step {
        at_ms: 100,
        action: Action::Hold { client: 1 },
    })
    .unwrap();
    assert_ne!(
        e.state_digest(),
        f.state_digest(),
        "a pending step is state"
    );
    e.run_until(100);
    f.run_until(100);
    assert_ne!(e.state_digest(), f.state_digest());

    // ...one that changes nothing leaves the same state behind a different history (a
    // restart of a running server is a no-op).
    let mut g = sim(5);
    let mut h = sim(5);
    h.add_step(Step {
        at_ms: 30,
        action: Action::Restart,
    })
    .unwrap();
    g.run_until(40);
    h.run_until(40);
    assert_ne!(g.history(), h.history());
    assert_eq!(g.state_digest(), h.state_digest());
}

/// The checker's use: steps added while the sim runs, then the path written as a file.
#[test]
fn added_steps_replay_as_a_scenario_file() {
    let full = busy();
    let params = baseline();
    // The same scenario without its steps from 400 ms on, added back one at a time.
    let mut head = full.clone();
    head.steps.retain(|st| st.at_ms < 400);
    let tail: Vec<Step> = full
        .steps
        .iter()
        .filter(|st| st.at_ms >= 400)
        .cloned()
        .collect();
    let mut sim = DirectSim::new(&head, &params, 11);
    for (i, step) in tail.into_iter().enumerate() {
        sim.run_until(step.at_ms - 1);
        assert_eq!(sim.next_ms(), step.at_ms);
        if i % 2 == 0 {
            sim.add_step(step).unwrap();
        } else {
            sim.add_action(step.action).unwrap();
        }
    }
    let path = sim.scenario().clone();
    let stepped = sim.finish();
    assert_eq!(path.steps.len(), full.steps.len());
    let replayed = run(&path, &params, 11);
    assert_eq!(stepped.history.first_divergence(&replayed.history), None);
    // And so does the file form of the path.
    let text = path.to_json_pretty();
    let reread: Scenario = ssesim_scenarios::parse_str(&text).unwrap();
    assert_eq!(run(&reread, &params, 11), stepped);
}

#[test]
fn add_step_refuses_the_past_and_unknown_tabs() {
    let s = busy();
    let mut sim = DirectSim::new(&s, &baseline(), 1);
    sim.run_until(500);
    let past = sim.add_step(Step {
        at_ms: 500,
        action: Action::Crash,
    });
    assert!(past.unwrap_err().contains("already through 500 ms"));
    let tab = sim.add_step(Step {
        at_ms: 600,
        action: Action::Hold { client: 9 },
    });
    assert!(tab.unwrap_err().contains("no tab 9"));
    let late = sim.add_step(Step {
        at_ms: s.duration_ms + 1,
        action: Action::Crash,
    });
    assert!(late.unwrap_err().contains("after the scenario's duration"));
    assert!(sim
        .add_step(Step {
            at_ms: 501,
            action: Action::Crash,
        })
        .is_ok());
}
