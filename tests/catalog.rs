//! Every catalog scenario against every revision, compared with what the file says it shows.

mod common;

use common::catalog;
use ssesim_model::revisions;
use ssesim_oracles::{check, invariant, Context};
use ssesim_scenarios::Scenario;
use std::collections::BTreeSet;

fn failed(scenario: &Scenario, revision: &str) -> BTreeSet<String> {
    let params = revisions::preset(revision).expect("known revision");
    let report = ssesim_sim::turmoil::run(scenario, &params, scenario.seed);
    let verdicts = check(&Context::new(scenario, &params), &report.history);
    verdicts
        .failed_ids()
        .into_iter()
        .map(String::from)
        .collect()
}

#[test]
fn every_catalog_file_matches_its_expectation_on_every_revision() {
    let mut mismatches = Vec::new();
    for (path, scenario) in catalog() {
        for &revision in revisions::NAMES {
            let Some(expected) = scenario.expect.get(revision) else {
                mismatches.push(format!(
                    "{}: states no expectation for revision {revision}",
                    path.display()
                ));
                continue;
            };
            for id in expected {
                assert!(
                    invariant(id).is_some(),
                    "{}: unknown invariant `{id}`",
                    path.display()
                );
            }
            let expected: BTreeSet<String> = expected.iter().cloned().collect();
            let actual = failed(&scenario, revision);
            if actual != expected {
                mismatches.push(format!(
                    "{} on {revision}: expected {:?}, got {:?} (see: cargo run --release -- replay {} --revision {revision})",
                    path.display(),
                    expected,
                    actual,
                    path.display()
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "catalog mismatches:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn the_quiet_scenario_passes_every_invariant_and_judges_liveness() {
    let (_, quiet) = catalog()
        .into_iter()
        .find(|(_, s)| s.name == "quiet")
        .expect("scenarios/catalog/quiet.json");
    let params = revisions::preset("baseline").unwrap();
    let report = ssesim_sim::turmoil::run(&quiet, &params, quiet.seed);
    let verdicts = check(&Context::new(&quiet, &params), &report.history);
    assert!(verdicts.violations.is_empty(), "{:#?}", verdicts.violations);
    assert!(
        verdicts.unjudged.is_empty(),
        "unjudged: {:?}",
        verdicts.unjudged
    );
}

#[test]
fn the_baseline_fails_the_headline_invariants_somewhere_in_the_catalog() {
    let mut seen = BTreeSet::new();
    for (_, scenario) in catalog() {
        seen.extend(failed(&scenario, "baseline"));
    }
    for id in [
        "server_survives",
        "no_silent_send_loss",
        "connection_hygiene",
    ] {
        assert!(
            seen.contains(id),
            "no catalog scenario shows {id} failing on the baseline"
        );
    }
}

#[test]
fn every_documented_bug_fails_on_the_revisions_the_spec_names() {
    let files = catalog();
    for ssesim::bugs::Bug {
        id: bug,
        catalog: name,
        revisions: revs,
        invariant: id,
        hunt_revision,
        ..
    } in ssesim::bugs::DOCUMENTED
    {
        assert!(
            revs.contains(hunt_revision),
            "{bug}: hunted on a revision it shows on"
        );
        let (path, scenario) = files
            .iter()
            .find(|(p, _)| p.file_stem().is_some_and(|s| s == *name))
            .unwrap_or_else(|| panic!("{bug}: scenarios/catalog/{name}.json is missing"));
        for rev in *revs {
            let expected = scenario
                .expect
                .get(*rev)
                .unwrap_or_else(|| panic!("{}: no expectation for {rev}", path.display()));
            assert!(
                expected.iter().any(|x| x == id),
                "{bug}: {} must show {id} failing on {rev} (the catalog test checks the run matches)",
                path.display()
            );
        }
        assert_eq!(
            scenario.expect.get("reference").map(Vec::len),
            Some(0),
            "{bug}: the reference design must pass {}",
            path.display()
        );
    }
}

/// The bugs whose catalog file breaks the bug's invariant on a control revision too, for a
/// reason other than the bug (said in `src/bugs.rs`): their files are not instances of the
/// bug's differential identity; hunted ones are.
const NOT_INSTANCES: &[&str] = &["budget drop", "B9"];

#[test]
fn every_documented_bug_has_controls_and_its_catalog_file_is_an_instance_of_it() {
    use ssesim::bugs::{ProbeRule, DOCUMENTED};
    let files = catalog();
    for bug in DOCUMENTED {
        assert!(!bug.controls.is_empty(), "{}: no control revision", bug.id);
        let (path, scenario) = files
            .iter()
            .find(|(p, _)| p.file_stem().is_some_and(|s| s == bug.catalog))
            .unwrap_or_else(|| {
                panic!(
                    "{}: scenarios/catalog/{}.json is missing",
                    bug.id, bug.catalog
                )
            });
        assert_eq!(
            &bug.catalog_scenario().unwrap(),
            scenario,
            "{}: the built-in copy of {} differs from the file",
            bug.id,
            path.display()
        );
        let mut instance = true;
        for control in bug.controls {
            assert!(
                revisions::NAMES.contains(control),
                "{}: unknown control revision {control}",
                bug.id
            );
            assert!(
                !bug.revisions.contains(control) && *control != bug.hunt_revision,
                "{}: control {control} is a revision the bug shows on",
                bug.id
            );
            if scenario.expect[*control].iter().any(|x| x == bug.invariant) {
                instance = false;
            }
        }
        // The probe rule, on the hunt revision (the direct engine, as hunts run).
        let params = revisions::preset(bug.hunt_revision).unwrap();
        let run = ssesim::campaign::run_on(ssesim_sim::EngineKind::Direct, scenario, &params);
        if let ProbeRule::Hit(p) | ProbeRule::Miss(p) = bug.probe {
            assert!(
                ssesim_oracles::PROBES.iter().any(|(id, _)| *id == p),
                "{}: unknown probe {p}",
                bug.id
            );
        }
        assert!(
            run.verdicts.failed(bug.invariant),
            "{}: {} does not break {} on {}",
            bug.id,
            path.display(),
            bug.invariant,
            bug.hunt_revision
        );
        if !bug.probe.holds(&run.probes) || bug.keeps.iter().any(|k| run.verdicts.failed(k)) {
            instance = false;
        }
        assert_eq!(
            instance,
            !NOT_INSTANCES.contains(&bug.id),
            "{}: {} is{} an instance of the bug's identity (controls {:?}, probe {:?}, keeps {:?})",
            bug.id,
            path.display(),
            if instance { "" } else { " not" },
            bug.controls,
            bug.probe,
            bug.keeps
        );
    }
}
