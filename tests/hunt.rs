//! `ssesim hunt --bug`: a documented bug hunted as itself. A case counts when it breaks the
//! bug's invariant on its hunt revision and keeps it on the control revisions (and satisfies
//! the bug's probe rule); the shrunk scenario keeps all of that; same seed, same result,
//! whatever the number of jobs. Every hunt here is bounded and seeded.

use ssesim::bugs::{self, ProbeRule};
use ssesim::campaign::{self, HuntConfig};
use ssesim::explore::{self, Weights};
use ssesim_model::revisions;
use ssesim_scenarios::load_file;
use ssesim_sim::EngineKind;
use std::path::{Path, PathBuf};

mod common;
use common::cli::{ssesim, stderr};

fn temp_dir(name: &str) -> PathBuf {
    common::cli::temp_dir("hunt", name)
}

fn bug_hunt(id: &str, seed: u64, jobs: usize, out: &Path) -> campaign::Hunt {
    bug_hunt_of(id, seed, jobs, 2, out)
}

fn bug_hunt_of(id: &str, seed: u64, jobs: usize, candidates: usize, out: &Path) -> campaign::Hunt {
    let cfg = HuntConfig {
        engine: EngineKind::Direct,
        revision: String::new(),
        invariant: None,
        bug: None,
        seed,
        max_cases: 300,
        candidates,
        jobs,
        shrink_runs: 60,
        out: out.to_path_buf(),
    }
    .for_bug(bugs::find(id).unwrap(), true)
    .unwrap();
    campaign::hunt(&cfg, &mut |_| {}).unwrap()
}

/// What `scenario` breaks on `revision`, in the turmoil engine (the reference engine).
fn breaks(path: &Path, revision: &str, invariant: &str) -> bool {
    let scenario = load_file(path).unwrap();
    let params = revisions::preset(revision).unwrap();
    campaign::run(&scenario, &params).verdicts.failed(invariant)
}

/// B5 (a 429 dropped on r3-r4): campaign seed 11 finds it within a few dozen cases.
#[test]
fn a_bug_hunt_finds_its_bug_with_the_controls_keeping_the_invariant() {
    let bug = bugs::find("B5").unwrap();
    let dir = temp_dir("b5");
    let one = bug_hunt("B5", 11, 1, &dir);
    let found = one.found.as_ref().expect("B5 within 300 cases of seed 11");
    assert_eq!(found.invariant, "no_silent_send_loss");
    // Time to bug counts to the first failing case; the kept one may come later.
    assert!(found.index + 1 >= one.cases);
    assert_eq!(found.candidates, 2);
    assert!(found.shrunk_steps <= found.original_steps);
    assert!(found
        .path
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("bug-b5-s11-"));
    // The shrunk scenario is still the bug: broken on the hunt revision, kept on every
    // control, in the turmoil replay as on the direct engine.
    assert!(breaks(&found.path, bug.hunt_revision, bug.invariant));
    for control in bug.controls {
        assert!(
            !breaks(&found.path, control, bug.invariant),
            "the shrunk scenario breaks {} on control {control}",
            bug.invariant
        );
        assert!(
            !found.controls[*control].contains(&bug.invariant.to_string()),
            "{control}"
        );
    }
    let scenario = load_file(&found.path).unwrap();
    for rev in bug.controls.iter().chain([&bug.hunt_revision]) {
        assert!(
            scenario.expect.contains_key(*rev),
            "no expectation for {rev}"
        );
    }
    assert!(found
        .turmoil_violations
        .contains(&bug.invariant.to_string()));

    // Same seed, same result, on two threads too.
    let two = bug_hunt("B5", 11, 2, &temp_dir("b5-two"));
    let again = two.found.as_ref().unwrap();
    assert_eq!(two.cases, one.cases);
    assert_eq!(again.shrunk_steps, found.shrunk_steps);
    assert_eq!(
        load_file(&again.path).unwrap(),
        scenario,
        "another shrunk scenario"
    );
}

#[test]
fn more_candidates_keep_the_shortest_shrunk_scenario() {
    // The first failing case alone, then the first three: the same time to bug, and a
    // result no longer than the first case's own shrink.
    let first = bug_hunt_of("B8b", 11, 1, 1, &temp_dir("b8b-one"));
    let three = bug_hunt_of("B8b", 11, 1, 3, &temp_dir("b8b-three"));
    let (f1, f3) = (first.found.unwrap(), three.found.unwrap());
    assert_eq!(first.cases, three.cases);
    assert_eq!(
        f1.index + 1,
        first.cases,
        "one candidate: the first failing case"
    );
    assert_eq!(f1.candidates, 1);
    assert!(f3.candidates >= 1 && f3.candidates <= 3);
    assert!(f3.shrunk_steps <= f1.shrunk_steps);
}

/// B11 (the replay-gap skip) shares invariant and controls with B10; its identity requires
/// the probe `sync_hit_replay_gap`, and the shrink keeps it.
#[test]
fn a_probe_rule_survives_shrinking() {
    let bug = bugs::find("B11").unwrap();
    assert_eq!(bug.probe, ProbeRule::Hit("sync_hit_replay_gap"));
    let hunt = bug_hunt("B11", 11, 1, &temp_dir("b11"));
    let found = hunt.found.expect("B11 within 300 cases of seed 11");
    let scenario = load_file(&found.path).unwrap();
    let params = revisions::preset(bug.hunt_revision).unwrap();
    let run = campaign::run_on(EngineKind::Direct, &scenario, &params);
    assert!(run.verdicts.failed(bug.invariant));
    assert!(bug.probe.holds(&run.probes), "{:?}", run.probes);
}

/// B3 (a send stranded while the stream is healthy) and B10 (an idle session's events never
/// synced) both break liveness on r3 with the baseline and the reference passing; B3 keeps
/// `no_silent_event_loss`. Seed 15 found B10's story as B3 before that rule.
#[test]
fn a_kept_invariant_tells_b3_from_b10() {
    let bug = bugs::find("B3").unwrap();
    assert_eq!(bug.keeps, ["no_silent_event_loss"]);
    let hunt = bug_hunt("B3", 15, 1, &temp_dir("b3"));
    let found = hunt.found.expect("B3 within 300 cases of seed 15");
    assert!(breaks(&found.path, "r3", "liveness"));
    assert!(!breaks(&found.path, "r3", "no_silent_event_loss"));
}

#[test]
fn focused_weights_leave_the_default_case_stream_alone() {
    for index in 0..50 {
        assert_eq!(
            explore::case_with(3, index, &Weights::default()),
            explore::case(3, index)
        );
    }
    let b4 = bugs::find("B4").unwrap();
    let focused = Weights::focused(&b4.catalog_scenario().unwrap());
    assert_ne!(focused, Weights::default());
    let cases: Vec<_> = (0..50)
        .map(|i| explore::case_with(3, i, &focused))
        .collect();
    assert_eq!(
        cases,
        (0..50)
            .map(|i| explore::case_with(3, i, &focused))
            .collect::<Vec<_>>(),
        "a focused case depends only on (seed, index)"
    );
    assert!(
        (0..50).any(|i| cases[i as usize] != explore::case(3, i)),
        "focusing changed nothing"
    );
    // B4's file forces reconnects and injects 503s on /send: both are drawn more often.
    let kind = |k: &str| explore::WORK_KINDS.iter().position(|x| *x == k).unwrap();
    assert!(
        focused.work[kind("force_reconnect")] > Weights::default().work[kind("force_reconnect")]
    );
    let share = |w: &Weights| {
        w.statuses.iter().filter(|s| **s == 503).count() as f64 / w.statuses.len() as f64
    };
    assert!(share(&focused) > share(&Weights::default()));
}

#[test]
fn hunt_bug_on_the_command_line() {
    let dir = temp_dir("cli");
    let o = ssesim(&[
        "hunt",
        "--bug",
        "b5",
        "--seed",
        "11",
        "--max-cases",
        "300",
        "--shrink-runs",
        "40",
        "--jobs",
        "1",
        "--json",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["found"], true);
    assert_eq!(v["bug"], "B5", "ids are matched without regard to case");
    assert_eq!(v["revision"], "r3");
    assert_eq!(v["invariant"], "no_silent_send_loss");
    assert_eq!(v["controls"], serde_json::json!(["r2", "r5"]));
    for control in ["r2", "r5"] {
        let failed = v["control_violations"][control].as_array().unwrap();
        assert!(!failed.iter().any(|x| x == "no_silent_send_loss"), "{v}");
    }
    let path = v["scenario_path"].as_str().unwrap();
    let o = ssesim(&["replay", path]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("this run matches the file's expectation"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn hunt_bug_rejects_bad_input_with_exit_code_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["hunt", "--bug", "B99"], "unknown bug `B99`"),
        (
            &["hunt", "--bug", "B7", "--revision", "r6"],
            "cannot be used with",
        ),
        (
            &["hunt", "--bug", "B7", "--invariant", "liveness"],
            "cannot be used with",
        ),
        (&["hunt", "--revision", "r1", "--no-focus"], "--bug"),
        (
            &["hunt", "--revision", "r1", "--candidates", "0"],
            "--candidates",
        ),
    ];
    for (args, message) in cases {
        let o = ssesim(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
    }
}
