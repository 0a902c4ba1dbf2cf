//! The two engines against each other on the whole catalog, on every revision: the direct
//! engine must reach the turmoil engine's verdicts (the invariants broken, and whether the
//! run ended quiescent). It in fact records the same histories, byte for byte, which the
//! second test holds it to.

mod common;

use common::catalog;
use ssesim_model::revisions;
use ssesim_oracles::{check, Context};
use ssesim_scenarios::Scenario;
use ssesim_sim::history::{EndVerdict, History};
use ssesim_sim::EngineKind;
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// What the oracles say about one run: the broken invariants and the end.
#[derive(Debug, PartialEq, Eq)]
struct Verdict {
    failed: BTreeSet<String>,
    quiescent: bool,
}

struct Run {
    verdict: Verdict,
    history: History,
}

fn run(engine: EngineKind, scenario: &Scenario, revision: &str) -> Run {
    let params = revisions::preset(revision).expect("known revision");
    let report = ssesim_sim::run(engine, scenario, &params, scenario.seed);
    let verdicts = check(&Context::new(scenario, &params), &report.history);
    Run {
        verdict: Verdict {
            failed: verdicts
                .failed_ids()
                .into_iter()
                .map(String::from)
                .collect(),
            quiescent: matches!(report.history.end_verdict(), Some(EndVerdict::Quiescent)),
        },
        history: report.history,
    }
}

/// Every (file, revision) run on both engines, once for both tests.
struct Pair {
    case: String,
    turmoil: Run,
    direct: Run,
}

fn pairs() -> &'static [Pair] {
    static PAIRS: OnceLock<Vec<Pair>> = OnceLock::new();
    PAIRS.get_or_init(|| {
        let mut out = Vec::new();
        for (path, scenario) in catalog() {
            for &revision in revisions::NAMES {
                out.push(Pair {
                    case: format!("{} on {revision}", path.display()),
                    turmoil: run(EngineKind::Turmoil, &scenario, revision),
                    direct: run(EngineKind::Direct, &scenario, revision),
                });
            }
        }
        out
    })
}

#[test]
fn both_engines_give_the_same_verdicts_on_the_whole_catalog() {
    let pairs = pairs();
    assert!(pairs.len() > 400, "only {} runs", pairs.len());
    let mismatches: Vec<String> = pairs
        .iter()
        .filter(|p| p.turmoil.verdict != p.direct.verdict)
        .map(|p| {
            format!(
                "{}: turmoil {:?}, direct {:?}",
                p.case, p.turmoil.verdict, p.direct.verdict
            )
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} of {} verdicts differ:\n{}",
        mismatches.len(),
        pairs.len(),
        mismatches.join("\n")
    );
}

#[test]
fn both_engines_record_the_same_history_on_the_whole_catalog() {
    let mismatches: Vec<String> = pairs()
        .iter()
        .filter_map(|p| {
            let (i, t, d) = p.turmoil.history.first_divergence(&p.direct.history)?;
            Some(format!(
                "{}: first difference at record {i}\n  turmoil: {}\n  direct:  {}",
                p.case,
                t.unwrap_or_else(|| "<end>".into()),
                d.unwrap_or_else(|| "<end>".into())
            ))
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} histories differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
