//! Exploration: generated cases, determinism over jobs and shards, shrinking, the persisted
//! regressions, and the campaign commands' handling of bad input.
//!
//! Every exploration here is bounded and seeded. When the reference revision breaks an
//! invariant in one, the failure is shrunk and persisted twice: as a portable scenario file
//! in `tests/regressions/` (with its expectation for every revision) and as a proptest seed
//! line in `proptest-regressions/explore.txt`. Both are replayed by the tests below.

use proptest::test_runner::{FailurePersistence, FileFailurePersistence, PersistedSeed};
use ssesim::campaign::{self, Config, Shard, Summary};
use ssesim::explore::{self, DURATION_MS, FAULT_KINDS, HEAL_AT_MS};
use ssesim_model::revisions;
use ssesim_scenarios::{load_file, parse_str, Scenario};
use ssesim_sim::EngineKind;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

mod common;
use common::cli::{ssesim, stderr};

fn temp_dir(name: &str) -> PathBuf {
    common::cli::temp_dir("explore", name)
}

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The proptest regression file of this suite (relative to the package root).
const PROPTEST_REGRESSIONS: &str = "proptest-regressions/explore.txt";

/// A campaign on the direct engine, the command line's default.
fn config(revisions: &[&str], seed: u64, cases: u64, jobs: usize, out: &Path) -> Config {
    Config {
        engine: EngineKind::Direct,
        revisions: revisions.iter().map(|s| s.to_string()).collect(),
        seed,
        cases,
        shard: Shard::WHOLE,
        jobs,
        shrink_runs: None,
        out: out.to_path_buf(),
    }
}

fn explore(cfg: &Config) -> Summary {
    campaign::explore(cfg, &mut |_| {}).unwrap()
}

fn run_on(scenario: &Scenario, revision: &str) -> Vec<String> {
    let params = revisions::preset(revision).unwrap();
    campaign::run(scenario, &params)
        .verdicts
        .failed_ids()
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[test]
fn generated_cases_are_valid_scenarios_over_the_whole_fault_vocabulary() {
    let mut faults_seen = BTreeSet::new();
    let mut actions_seen = BTreeSet::new();
    let mut enabled_counts = BTreeSet::new();
    for index in 0..300 {
        let case = explore::case(5, index);
        assert_eq!(
            case,
            explore::case(5, index),
            "a case depends only on (seed, index)"
        );
        enabled_counts.insert(case.enabled().len());
        let s = explore::case_scenario(5, index, "baseline");
        let parsed = parse_str(&s.to_json_pretty()).unwrap_or_else(|e| panic!("case {index}: {e}"));
        assert_eq!(parsed, s, "case {index} round-trips through its file form");
        assert!((1..=3).contains(&s.topology.clients));
        assert!((1..=4).contains(&s.topology.sessions.len()));
        assert_eq!(s.heal_at_ms, Some(HEAL_AT_MS));
        assert_eq!(s.duration_ms, DURATION_MS);
        for step in &s.steps {
            actions_seen.insert(step.action.name());
            if step.action.is_fault() {
                faults_seen.insert(step.action.name());
                assert!(
                    step.at_ms < HEAL_AT_MS,
                    "case {index}: fault after the heal"
                );
                let kind = FAULT_KINDS
                    .iter()
                    .position(|k| *k == step.action.name())
                    .unwrap();
                // Undo steps (restart, repair, release) may belong to their fault's kind.
                let on = |k: &str| case.swarm[FAULT_KINDS.iter().position(|x| *x == k).unwrap()];
                let owner_enabled = case.swarm[kind]
                    || match step.action.name() {
                        "restart" => on("crash"),
                        "repair" => on("partition"),
                        "release" => on("hold"),
                        _ => false,
                    };
                assert!(
                    owner_enabled,
                    "case {index}: {} is not enabled",
                    step.action.name()
                );
            }
        }
    }
    let all: BTreeSet<&str> = FAULT_KINDS.iter().copied().collect();
    assert_eq!(faults_seen, all, "every fault kind is generated");
    for a in [
        "send",
        "interrupt",
        "watch",
        "switch",
        "hidden",
        "visible",
        "emit",
        "session_state",
    ] {
        assert!(actions_seen.contains(a), "no {a} step in 300 cases");
    }
    assert!(
        enabled_counts.iter().any(|n| *n <= 4) && enabled_counts.iter().any(|n| *n >= 11),
        "swarm: cases enable small and large subsets of the faults: {enabled_counts:?}"
    );
    assert_ne!(explore::case(5, 0), explore::case(6, 0));
}

#[test]
fn jobs_and_shards_give_the_results_of_one_thread() {
    let out = temp_dir("jobs");
    let one = explore(&config(&["baseline", "r6"], 11, 10, 1, &out));
    let two = explore(&config(&["baseline", "r6"], 11, 10, 2, &out));
    assert_eq!(one, two, "--jobs 2 changed the results");
    assert_eq!(one.cases_run, 10);
    assert_eq!(one.runs, 20);

    let mut first = config(&["baseline", "r6"], 11, 10, 2, &out);
    first.shard = "1/2".parse().unwrap();
    let mut second = first.clone();
    second.shard = "2/2".parse().unwrap();
    second.jobs = 1;
    let (a, b) = (explore(&first), explore(&second));
    assert_eq!(a.cases_run + b.cases_run, 10);
    assert_eq!(a.shard.as_deref(), Some("1/2"));
    let merged = campaign::merge(&[b.clone(), a.clone()]).unwrap();
    assert_eq!(
        merged, one,
        "shards 1/2 and 2/2 merged differ from the whole campaign"
    );
    let half = campaign::merge(std::slice::from_ref(&a)).unwrap();
    assert_eq!(half.shard.as_deref(), Some("1/2"));
    assert!(
        campaign::merge(&[a.clone(), a]).is_err(),
        "a shard merged twice"
    );
}

#[test]
fn shrinking_in_a_campaign_does_not_depend_on_jobs_or_shards() {
    let out = temp_dir("shrink-jobs");
    let mut whole = config(&["baseline"], 3, 6, 1, &out);
    whole.shrink_runs = Some(6);
    let one = explore(&whole);
    whole.jobs = 2;
    let two = explore(&whole);
    assert_eq!(one, two);
    let shrunk: Vec<&campaign::ShrunkSummary> = one.results["baseline"]
        .invariants
        .values()
        .filter_map(|c| c.first.as_ref()?.shrunk.as_ref())
        .collect();
    assert!(
        !shrunk.is_empty(),
        "baseline fails nothing in 6 cases of seed 3"
    );
    for s in &shrunk {
        assert!(Path::new(&s.path).is_file(), "{} was not written", s.path);
        // Found on the direct engine, replayed in turmoil: the same verdict.
        assert_eq!(
            s.turmoil_violations.as_ref(),
            Some(&s.violations),
            "{}",
            s.path
        );
    }
    let mut parts = Vec::new();
    for k in 1..=2 {
        let mut cfg = whole.clone();
        cfg.shard = Shard { k, n: 2 };
        parts.push(explore(&cfg));
    }
    assert_eq!(campaign::merge(&parts).unwrap(), one);
}

#[test]
fn both_engines_give_the_same_campaign() {
    let out = temp_dir("engines");
    let mut direct = config(&["baseline", "r6"], 13, 6, 2, &out);
    direct.shrink_runs = Some(4);
    let mut turmoil = direct.clone();
    turmoil.engine = EngineKind::Turmoil;
    let (d, t) = (explore(&direct), explore(&turmoil));
    assert_eq!(d.engine, EngineKind::Direct);
    assert_eq!(t.engine, EngineKind::Turmoil);
    assert_eq!(
        Summary {
            engine: EngineKind::Turmoil,
            ..d.clone()
        },
        t,
        "the engines disagree on a campaign"
    );
    assert!(
        campaign::merge(&[d, t]).is_err(),
        "summaries of two engines merged"
    );
}

/// Baseline, campaign seed 6: case 6 is the first to kill the server (interrupt()
/// rejects).
const SHRINK_SEED: u64 = 6;
const SHRINK_INDEX: u64 = 6;

#[test]
fn shrinking_is_deterministic_and_the_file_replays_to_the_same_violations() {
    let key = explore::case_key(SHRINK_SEED, SHRINK_INDEX);
    let shrink = || {
        campaign::shrink(
            EngineKind::Direct,
            &key,
            "baseline",
            "server_survives",
            "shrink-test",
            "a test",
            40,
        )
        .unwrap()
    };
    let (a, b) = (shrink(), shrink());
    assert_eq!(a.scenario, b.scenario, "shrinking twice gave two scenarios");
    assert_eq!(a.runs, b.runs);
    assert!(a.scenario.steps.len() <= a.original_steps);
    assert!(
        a.scenario.steps.len() < a.original_steps,
        "nothing was shrunk"
    );
    assert!(a.verdicts.failed("server_survives"));
    let failed: Vec<String> = a
        .verdicts
        .failed_ids()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(a.turmoil_violations, failed, "turmoil's replay disagrees");
    assert_eq!(
        a.scenario.expect.get("baseline"),
        Some(
            &a.verdicts
                .failed_ids()
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        )
    );

    let dir = temp_dir("shrink");
    let path = campaign::write_scenario(&dir, "shrunk.json", &a.scenario).unwrap();
    let loaded = load_file(&path).unwrap();
    assert_eq!(loaded, a.scenario);
    let o = ssesim(&[
        "replay",
        path.to_str().unwrap(),
        "--revision",
        "baseline",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["violations"],
        serde_json::to_value(&a.verdicts.violations).unwrap(),
        "replay shows other violations than the shrink saw"
    );
}

#[test]
fn regression_files_replay_to_their_expectations() {
    let dir = Path::new(ROOT).join("tests/regressions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|x| x == "json"));
    files.sort();
    let mut mismatches = Vec::new();
    for path in &files {
        let scenario = load_file(path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !scenario.expect.is_empty(),
            "{}: no expect block",
            path.display()
        );
        for (revision, expected) in &scenario.expect {
            let mut expected = expected.clone();
            expected.sort();
            let mut actual = run_on(&scenario, revision);
            actual.sort();
            if actual != expected {
                mismatches.push(format!(
                    "{} on {revision}: expected {expected:?}, got {actual:?}",
                    path.display()
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "regressions changed:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn persisted_proptest_seeds_hold_on_the_reference() {
    let seeds = FileFailurePersistence::Direct(PROPTEST_REGRESSIONS).load_persisted_failures2(None);
    let mut failures = Vec::new();
    for seed in seeds {
        let text = seed.to_string();
        let key = explore::parse_key(&text).unwrap_or_else(|| panic!("not a ChaCha seed: {text}"));
        let case = explore::case_tree(&key);
        let scenario = proptest::strategy::ValueTree::current(&case).to_scenario(
            "reference",
            explore::engine_seed(&key),
            "persisted".into(),
        );
        let failed = run_on(&scenario, "reference");
        if !failed.is_empty() {
            failures.push(format!("{text}: {failed:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "the reference still fails persisted cases (their scenarios are in tests/regressions/):\n{}",
        failures.join("\n")
    );
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config {
        cases: 128,
        rng_seed: proptest::test_runner::RngSeed::Fixed(17),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(PROPTEST_REGRESSIONS))),
        ..proptest::test_runner::Config::default()
    })]

    /// The strategy through proptest's own runner (which also replays the persisted seeds
    /// first): every case is a valid scenario whose faults end before the heal.
    #[test]
    fn the_case_strategy_makes_valid_scenarios(case in explore::case_strategy()) {
        let s = case.to_scenario("reference", 1, "prop".into());
        proptest::prop_assert!(parse_str(&s.to_json_pretty()).is_ok());
        proptest::prop_assert!(s.steps.iter().all(|st| !st.action.is_fault() || st.at_ms < HEAL_AT_MS));
        proptest::prop_assert!(s.steps.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    }
}

/// Shrinks and persists a reference failure: a scenario file in `tests/regressions/` with
/// its expectation on every revision, and the case's seed in the proptest regression file.
fn persist_reference_failure(seed: u64, index: u64, invariant: &str) -> String {
    let key = explore::case_key(seed, index);
    let origin = format!(
        "case {index} of campaign seed {seed} in tests/explore.rs ({})",
        explore::key_text(&key)
    );
    let name = format!("reference-{invariant}-s{seed}-i{index}");
    let mut shrunk = campaign::shrink(
        EngineKind::Direct,
        &key,
        "reference",
        invariant,
        &name,
        &origin,
        150,
    )
    .unwrap();
    let mut expect = BTreeMap::new();
    for rev in revisions::NAMES {
        expect.insert(rev.to_string(), run_on(&shrunk.scenario, rev));
    }
    shrunk.scenario.expect = expect;
    let dir = Path::new(ROOT).join("tests/regressions");
    let path = campaign::write_scenario(&dir, &format!("{name}.json"), &shrunk.scenario).unwrap();
    let mut persistence = FileFailurePersistence::Direct(PROPTEST_REGRESSIONS);
    let line: PersistedSeed = explore::key_text(&key).parse().unwrap();
    if !persistence.load_persisted_failures2(None).contains(&line) {
        persistence.save_persisted_failure2(None, line, &format!("{name} ({invariant})"));
    }
    format!(
        "{invariant}: seed {seed} case {index} ({}), shrunk to {} steps: {}",
        explore::key_text(&key),
        shrunk.scenario.steps.len(),
        path.display()
    )
}

fn assert_reference_holds(summary: &Summary) {
    let r = &summary.results["reference"];
    let failed: Vec<String> = r
        .invariants
        .iter()
        .filter_map(|(inv, c)| {
            let first = c.first.as_ref()?;
            Some(persist_reference_failure(summary.seed, first.index, inv))
        })
        .collect();
    assert!(
        failed.is_empty() && r.engine_errors == 0,
        "the reference broke invariants in {} of {} cases ({} engine errors); persisted:\n{}",
        r.failing_cases,
        r.cases,
        r.engine_errors,
        failed.join("\n")
    );
}

#[test]
fn a_bounded_exploration_per_revision_finds_nothing_on_the_reference() {
    let out = temp_dir("bounded");
    let all: Vec<&str> = revisions::NAMES.to_vec();
    let summary = explore(&config(&all, 1, 20, 2, &out));
    assert_eq!(summary.results.len(), all.len());
    for rev in &all {
        assert_eq!(summary.results[*rev].cases, 20);
        assert_eq!(summary.results[*rev].engine_errors, 0, "{rev}");
    }
    assert!(
        summary.results["baseline"].failing_cases > 0,
        "20 cases found nothing on the baseline: exploration is inert"
    );
    let matrix = summary.matrix_text();
    for inv in ssesim_oracles::INVARIANTS {
        assert!(matrix.contains(&format!("| `{}` |", inv.id)), "{matrix}");
    }
    assert_reference_holds(&summary);
}

#[test]
fn a_longer_exploration_finds_nothing_on_the_reference() {
    let out = temp_dir("reference");
    assert_reference_holds(&explore(&config(&["reference"], 2, 80, 2, &out)));
}

// --- the command line -------------------------------------------------------------------

#[test]
fn campaign_commands_reject_bad_input_with_exit_code_2() {
    let dir = temp_dir("bad");
    let not_summary = dir.join("not-a-summary.json");
    std::fs::write(&not_summary, "{\"a\": 1}").unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["explore", "--revision", "r42"], "unknown revision `r42`"),
        (
            &["explore", "--revision", "baseline,nope"],
            "unknown revision `nope`",
        ),
        (&["explore", "--shard", "3/2"], "K must be between 1 and N"),
        (&["explore", "--shard", "0/2"], "K must be between 1 and N"),
        (&["explore", "--shard", "1/0"], "N must be at least 1"),
        (&["explore", "--shard", "half"], "bad shard"),
        (&["explore", "--cases", "many"], "invalid value"),
        (&["explore", "--jobs", "0"], "--jobs must be at least 1"),
        (&["explore", "--frobnicate"], "unexpected argument"),
        (&["hunt"], "--revision"),
        (&["hunt", "--revision", "r99"], "unknown revision `r99`"),
        (
            &["hunt", "--revision", "r1", "--invariant", "speed"],
            "unknown invariant `speed`",
        ),
        (&["merge"], "FILES"),
        (&["merge", "no/such/file.json"], "cannot read"),
        (
            &["merge", not_summary.to_str().unwrap()],
            "not a campaign summary",
        ),
    ];
    for (args, message) in cases {
        let o = ssesim(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn explore_shards_merge_on_the_command_line() {
    let dir = temp_dir("cli-merge");
    let mut files = Vec::new();
    for shard in ["1/2", "2/2"] {
        let o = ssesim(&[
            "explore",
            "--revision",
            "r1",
            "--cases",
            "4",
            "--seed",
            "9",
            "--shard",
            shard,
            "--json",
            "--no-shrink",
            "--jobs",
            "1",
        ]);
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("cases: 2/2"),
            "plain progress lines: {}",
            stderr(&o)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["shard"], shard);
        assert_eq!(v["cases_run"], 2);
        assert!(v["wall_ms"].is_u64() && v["cases_per_s"].is_number());
        let path = dir.join(format!("part{}.json", files.len()));
        std::fs::write(&path, &o.stdout).unwrap();
        files.push(path);
    }
    let args: Vec<&str> = ["merge", "--json"]
        .into_iter()
        .chain(files.iter().map(|p| p.to_str().unwrap()))
        .collect();
    let o = ssesim(&args);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    let merged: Summary = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(merged.shard, None);
    assert_eq!(merged.cases_run, 4);
    let whole = explore(&config(&["r1"], 9, 4, 1, &dir));
    assert_eq!(merged.without_timing(), whole);
    let text = ssesim(&[
        "merge",
        files[0].to_str().unwrap(),
        files[1].to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("r1: 4 cases"), "{text}");
    assert!(text.contains("probes never hit"), "{text}");
}

#[test]
fn hunt_reports_the_first_failure_and_its_shrunk_file() {
    let dir = temp_dir("hunt");
    let o = ssesim(&[
        "hunt",
        "--revision",
        "baseline",
        "--invariant",
        "server_survives",
        "--seed",
        &SHRINK_SEED.to_string(),
        "--json",
        "--shrink-runs",
        "12",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in ["found", "cases", "wall_ms", "shrunk_steps", "scenario_path"] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    assert_eq!(v["found"], true);
    assert_eq!(v["engine"], "direct", "hunt's default engine");
    assert_eq!(v["cases"], SHRINK_INDEX + 1);
    let found: BTreeSet<&str> = v["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["invariant"].as_str().unwrap())
        .collect();
    let turmoil: BTreeSet<&str> = v["turmoil_violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(turmoil, found, "the turmoil replay breaks other invariants");
    let path = v["scenario_path"].as_str().unwrap();
    let scenario = load_file(Path::new(path)).unwrap();
    assert_eq!(
        scenario.steps.len() as u64,
        v["shrunk_steps"].as_u64().unwrap()
    );
    assert!(scenario.expect["baseline"].contains(&"server_survives".to_string()));
    let o = ssesim(&["replay", path]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("this run matches the file's expectation"));

    let o = ssesim(&[
        "hunt",
        "--revision",
        "reference",
        "--invariant",
        "bounded_replay",
        "--max-cases",
        "2",
        "--json",
        "--jobs",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["found"], false);
    assert_eq!(v["cases"], 2);
}
