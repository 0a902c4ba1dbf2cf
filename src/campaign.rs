//! Campaigns: generated cases ([`crate::explore::case_strategy`]) run over revisions, the
//! first failure of every (revision, invariant) shrunk to a scenario file.
//!
//! A case's result depends only on the campaign seed and the case index (its proptest RNG
//! is keyed by both, see [`crate::explore::case_key`]), so the cases can be spread over
//! threads ([`Config::jobs`]) and machines ([`Shard`]) and the results merged in index
//! order are the ones a single machine would get. Shrinking walks the case's proptest
//! value tree, re-running every candidate and keeping only those that still break the
//! same invariant; it reads no clock and no shared state, so it is deterministic too.
//!
//! Cases run on the engine the configuration names ([`EngineKind::Direct`] by default on
//! the command line: the fast one). Every shrunk failure is then replayed in the turmoil
//! engine, the reference, and the summary shows that verdict beside the one it was found
//! with.
//!
//! Nothing here reads the wall clock: the command line measures throughput around it.

use crate::bugs::{Bug, ProbeRule};
use crate::explore::{self, Case, Weights};
use proptest::strategy::ValueTree;
use serde::{Deserialize, Serialize};
use ssesim_model::{revisions, Params};
use ssesim_oracles::{check, Context, Verdicts, Violation, INVARIANTS, PROBES};
use ssesim_scenarios::Scenario;
use ssesim_sim::history::EndVerdict;
use ssesim_sim::EngineKind;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The version tag of campaign summaries (`ssesim explore --json`, `ssesim merge`).
pub const SUMMARY_FORMAT: &str = "ssesim-explore/1";

/// Where shrunk scenarios go unless `--out` says otherwise.
pub const DEFAULT_OUT: &str = "target/ssesim";

/// Shrinking budget (simulation runs per shrink) unless told otherwise.
pub const DEFAULT_SHRINK_RUNS: u64 = 400;

/// Part `k` of `n` (1-based) of a campaign's case indices: those with `index % n == k - 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Shard {
    pub k: u64,
    pub n: u64,
}

impl Shard {
    /// The whole campaign.
    pub const WHOLE: Shard = Shard { k: 1, n: 1 };

    pub fn contains(&self, index: u64) -> bool {
        index % self.n == self.k - 1
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            |why: &str| format!("bad shard `{s}`: {why} (expected K/N with 1 <= K <= N, e.g. 1/4)");
        let (k, n) = s.split_once('/').ok_or_else(|| bad("no `/`"))?;
        let k: u64 = k.trim().parse().map_err(|_| bad("K is not a number"))?;
        let n: u64 = n.trim().parse().map_err(|_| bad("N is not a number"))?;
        if n == 0 {
            return Err(bad("N must be at least 1"));
        }
        if k == 0 || k > n {
            return Err(bad("K must be between 1 and N"));
        }
        Ok(Shard { k, n })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

/// The preset of a revision, or an error naming the known ones.
pub fn preset(name: &str) -> Result<Params, String> {
    revisions::preset(name).ok_or_else(|| {
        format!(
            "unknown revision `{name}`, expected one of: {} (or `all`)",
            revisions::NAMES.join(", ")
        )
    })
}

/// The invariant called `id`, or an error naming the known ones.
pub fn invariant(id: &str) -> Result<&'static str, String> {
    ssesim_oracles::invariant(id).map(|i| i.id).ok_or_else(|| {
        format!(
            "unknown invariant `{id}`, expected one of: {}",
            INVARIANTS
                .iter()
                .map(|i| i.id)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// What one run of one scenario showed.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub verdicts: Verdicts,
    /// The engine's own failure (or a panic), which is not an invariant verdict.
    pub engine_error: Option<String>,
    pub probes: BTreeMap<&'static str, u64>,
}

/// Runs `scenario` (with its own seed) in the turmoil engine, the reference (replays,
/// regression files), and judges it. See [`run_on`].
pub fn run(scenario: &Scenario, params: &Params) -> Run {
    run_on(EngineKind::Turmoil, scenario, params)
}

/// Runs `scenario` (with its own seed) on `engine` and judges it. A panic in the engine or
/// the oracles is caught and reported as an engine error, so one bad case cannot end a
/// campaign.
pub fn run_on(engine: EngineKind, scenario: &Scenario, params: &Params) -> Run {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let report = ssesim_sim::run(engine, scenario, params, scenario.seed);
        let verdicts = check(&Context::new(scenario, params), &report.history);
        let engine_error = match report.history.end_verdict() {
            Some(EndVerdict::EngineError { detail }) => Some(detail.clone()),
            _ => None,
        };
        Run {
            verdicts,
            engine_error,
            probes: ssesim_oracles::probes(&report.history),
        }
    }));
    outcome.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".to_string());
        Run {
            verdicts: Verdicts::default(),
            engine_error: Some(format!("panic: {message}")),
            probes: BTreeMap::new(),
        }
    })
}

/// Maps `f` over `items` on `jobs` threads; `on_done(n, result)` runs on the calling thread
/// as results arrive (n counts them). The results come back in the order of `items`,
/// whatever the threads did.
pub fn par_map<I: Sync, T: Send>(
    items: &[I],
    jobs: usize,
    f: &(dyn Fn(&I) -> T + Sync),
    on_done: &mut dyn FnMut(usize, &T),
) -> Vec<T> {
    let jobs = jobs.clamp(1, items.len().max(1));
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<T>> = items.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..jobs {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items.len() {
                    break;
                }
                if tx.send((i, f(&items[i]))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        for (done, (i, out)) in rx.into_iter().enumerate() {
            on_done(done + 1, &out);
            slots[i] = Some(out);
        }
    });
    slots
        .into_iter()
        .map(|s| s.expect("every item was mapped"))
        .collect()
}

/// A campaign: which cases, on which revisions, how.
#[derive(Clone, Debug)]
pub struct Config {
    /// The engine the cases run on (shrunk failures are replayed in turmoil as well).
    pub engine: EngineKind,
    pub revisions: Vec<String>,
    pub seed: u64,
    /// The campaign's size: case indices `0..cases` (all shards together).
    pub cases: u64,
    pub shard: Shard,
    pub jobs: usize,
    /// Shrink the first failure of every (revision, invariant) with at most this many
    /// runs each; `None` leaves failures unshrunk and writes nothing.
    pub shrink_runs: Option<u64>,
    /// Where shrunk scenarios are written.
    pub out: PathBuf,
}

/// Progress of a campaign, reported on the calling thread.
#[derive(Clone, Copy, Debug)]
pub enum Progress {
    /// `done` of `total` cases have run (on every revision); `failing` of them broke an
    /// invariant somewhere.
    Cases { done: u64, total: u64, failing: u64 },
    /// `done` of `total` shrinks have finished.
    Shrinks { done: u64, total: u64 },
}

/// One case on every revision of the campaign.
#[derive(Clone, Debug)]
struct CaseOutcome {
    index: u64,
    steps: usize,
    per_revision: Vec<RevisionOutcome>,
}

#[derive(Clone, Debug)]
struct RevisionOutcome {
    failed: Vec<&'static str>,
    engine_error: bool,
    probes_hit: Vec<&'static str>,
}

fn run_case(
    engine: EngineKind,
    seed: u64,
    index: u64,
    revisions: &[String],
    params: &[Params],
) -> CaseOutcome {
    let case = explore::case(seed, index);
    let key = explore::case_key(seed, index);
    let mut steps = 0;
    let per_revision = revisions
        .iter()
        .zip(params)
        .map(|(rev, params)| {
            let scenario =
                case.to_scenario(rev, explore::engine_seed(&key), case_name(seed, index));
            steps = scenario.steps.len();
            let r = run_on(engine, &scenario, params);
            RevisionOutcome {
                failed: r.verdicts.failed_ids(),
                engine_error: r.engine_error.is_some(),
                probes_hit: r
                    .probes
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(p, _)| *p)
                    .collect(),
            }
        })
        .collect();
    CaseOutcome {
        index,
        steps,
        per_revision,
    }
}

/// The scenario name of case `index` of the campaign with `seed`.
pub fn case_name(seed: u64, index: u64) -> String {
    format!("case-{seed}-{index}")
}

/// A campaign's results: what `ssesim explore --json` prints and `ssesim merge` reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// [`SUMMARY_FORMAT`].
    pub format: String,
    /// The engine the cases ran on (summaries from before engines were chosen: turmoil).
    #[serde(default = "turmoil")]
    pub engine: EngineKind,
    pub seed: u64,
    /// The campaign's size: case indices `0..cases`, all shards together.
    pub cases: u64,
    /// The shards covered, as `K/N` or `K1,K2/N`; absent when this is the whole campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    pub revisions: Vec<String>,
    /// The shrinking budget per failure (runs), absent when failures were not shrunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shrink_budget: Option<u64>,
    /// Cases this summary covers (each run on every revision).
    pub cases_run: u64,
    /// Simulation runs of the cases (`cases_run` x revisions).
    pub runs: u64,
    /// Simulation runs spent on the shrinks reported below.
    pub shrink_runs: u64,
    pub results: BTreeMap<String, RevisionSummary>,
    /// Wall-clock figures, filled in by the command line; they never feed results. The
    /// whole campaign, of which `shrink_ms` shrinking; `cases_per_s` is over the cases
    /// alone (for merged shards: the sum of the shards' throughputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shrink_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cases_per_s: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevisionSummary {
    pub cases: u64,
    /// Cases that broke at least one invariant.
    pub failing_cases: u64,
    pub engine_errors: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_engine_error: Option<u64>,
    /// Every invariant, failing or not.
    pub invariants: BTreeMap<String, CellSummary>,
    /// For every probe, the number of cases that hit it.
    pub probes: BTreeMap<String, u64>,
    pub probes_never_hit: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellSummary {
    /// Cases that broke the invariant.
    pub violations: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<FirstFailure>,
}

/// The failing case with the lowest index, and its shrunk scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirstFailure {
    pub index: u64,
    /// The engine seed of the case (the scenario's `seed`).
    pub case_seed: u64,
    /// The case's proptest seed, as a line of a proptest regression file.
    pub proptest_seed: String,
    pub steps: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shrunk: Option<ShrunkSummary>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShrunkSummary {
    /// The scenario file; `ssesim replay PATH` reproduces the violations.
    pub path: String,
    pub steps: usize,
    /// Runs spent shrinking.
    pub runs: u64,
    /// Every invariant the shrunk scenario breaks on the revision (on the campaign's
    /// engine).
    pub violations: Vec<String>,
    /// The same scenario replayed in the turmoil engine: what it breaks there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turmoil_violations: Option<Vec<String>>,
}

fn turmoil() -> EngineKind {
    EngineKind::Turmoil
}

/// What a scenario breaks on a revision when replayed in the turmoil engine (its failed
/// invariants' ids). A shrink on turmoil itself has the answer already.
pub fn turmoil_verdict(
    engine: EngineKind,
    scenario: &Scenario,
    params: &Params,
    verdicts: &Verdicts,
) -> Vec<String> {
    let verdicts = match engine {
        EngineKind::Turmoil => verdicts.clone(),
        EngineKind::Direct => run(scenario, params).verdicts,
    };
    verdicts
        .failed_ids()
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// How a turmoil replay compares, for the text summaries.
fn turmoil_note(found: &[String], turmoil: Option<&Vec<String>>) -> String {
    match turmoil {
        None => String::new(),
        Some(t) if t == found => "; turmoil replay: the same".to_string(),
        Some(t) if t.is_empty() => "; turmoil replay: breaks nothing".to_string(),
        Some(t) => format!("; turmoil replay breaks {}", t.join(", ")),
    }
}

impl Summary {
    /// Violations found on any revision.
    pub fn any_violation(&self) -> bool {
        self.results.values().any(|r| r.failing_cases > 0)
    }

    /// The same summary without the wall-clock figures (for comparing runs).
    pub fn without_timing(&self) -> Summary {
        Summary {
            wall_ms: None,
            shrink_ms: None,
            cases_per_s: None,
            ..self.clone()
        }
    }

    /// The human summary: per revision and invariant, cases, violations, first failing case,
    /// shrunk scenario; coverage probes; throughput.
    pub fn to_text(&self) -> String {
        let s = self;
        let mut out = String::new();
        let shard = s
            .shard
            .as_ref()
            .map_or(String::new(), |sh| format!(" (shard {sh})"));
        let _ = writeln!(
            out,
            "explore ({} engine): seed {}, case indices 0..{}{shard}: {} cases x {} revisions = {} runs, {} shrinking runs",
            s.engine,
            s.seed,
            s.cases,
            s.cases_run,
            s.revisions.len(),
            s.runs,
            s.shrink_runs
        );
        if let (Some(ms), Some(cps)) = (s.wall_ms, s.cases_per_s) {
            let _ = writeln!(
                out,
                "wall time {:.1} s ({:.1} s of it shrinking): {cps:.1} cases/s, {:.1} runs/s",
                ms as f64 / 1000.0,
                s.shrink_ms.unwrap_or(0) as f64 / 1000.0,
                cps * s.revisions.len() as f64
            );
        }
        for rev in &s.revisions {
            let Some(r) = s.results.get(rev) else {
                continue;
            };
            let _ = writeln!(
                out,
                "\n{rev}: {} cases, {} broke an invariant, {} engine errors{}",
                r.cases,
                r.failing_cases,
                r.engine_errors,
                r.first_engine_error
                    .map_or(String::new(), |i| format!(" (first: case {i})"))
            );
            let _ = writeln!(
                out,
                "  {:<22} {:>6}  {:<28} shrunk scenario",
                "invariant", "cases", "first failing case"
            );
            for inv in INVARIANTS {
                let Some(c) = r.invariants.get(inv.id) else {
                    continue;
                };
                let Some(first) = &c.first else {
                    let _ = writeln!(out, "  {:<22} {:>6}", inv.id, "-");
                    continue;
                };
                let shrunk = first
                    .shrunk
                    .as_ref()
                    .map_or("(not shrunk)".to_string(), |sh| {
                        format!(
                            "{} ({} steps{})",
                            sh.path,
                            sh.steps,
                            turmoil_note(&sh.violations, sh.turmoil_violations.as_ref())
                        )
                    });
                let _ = writeln!(
                    out,
                    "  {:<22} {:>6}  {:<28} {shrunk}",
                    inv.id,
                    c.violations,
                    format!(
                        "#{} seed {} ({} steps)",
                        first.index, first.case_seed, first.steps
                    ),
                );
            }
            let hit: Vec<String> = r
                .probes
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(p, n)| format!("{p} {n}"))
                .collect();
            let _ = writeln!(
                out,
                "  probes hit (cases): {}",
                if hit.is_empty() {
                    "none".to_string()
                } else {
                    hit.join(", ")
                }
            );
            let _ = writeln!(
                out,
                "  probes never hit: {}",
                if r.probes_never_hit.is_empty() {
                    "none".to_string()
                } else {
                    r.probes_never_hit.join(", ")
                }
            );
        }
        let shrunk = s.results.values().any(|r| {
            r.invariants
                .values()
                .any(|c| c.first.as_ref().is_some_and(|f| f.shrunk.is_some()))
        });
        if shrunk {
            let _ = writeln!(
                out,
                "\nReplay a shrunk scenario with `ssesim replay PATH` (its revision and expectation are in the file)."
            );
        }
        out
    }

    /// The revision x invariant matrix of a campaign: per cell, the cases that broke it.
    pub fn matrix_text(&self) -> String {
        let s = self;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Revision x invariant: of {} generated cases (swarm faults, seed {}), how many broke each invariant on each revision ('.' = none).\n",
            s.cases_run, s.seed
        );
        let _ = write!(out, "| invariant |");
        for r in &s.revisions {
            let _ = write!(out, " {r} |");
        }
        let _ = write!(out, "\n|---|");
        for _ in &s.revisions {
            let _ = write!(out, "---:|");
        }
        out.push('\n');
        for inv in INVARIANTS {
            let _ = write!(out, "| `{}` |", inv.id);
            for r in &s.revisions {
                let n = s
                    .results
                    .get(r)
                    .and_then(|x| x.invariants.get(inv.id))
                    .map_or(0, |c| c.violations);
                if n == 0 {
                    let _ = write!(out, " . |");
                } else {
                    let _ = write!(out, " {n} |");
                }
            }
            out.push('\n');
        }
        let errors: u64 = s.results.values().map(|r| r.engine_errors).sum();
        if errors > 0 {
            let _ = writeln!(out, "\nengine errors: {errors} runs");
        }
        let never: Vec<&str> = ssesim_oracles::PROBES
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| {
                s.results
                    .values()
                    .all(|r| r.probes.get(*p).copied().unwrap_or(0) == 0)
            })
            .collect();
        let _ = writeln!(
            out,
            "\ncoverage probes never hit on any revision: {}",
            if never.is_empty() {
                "none".to_string()
            } else {
                never.join(", ")
            }
        );
        if let (Some(ms), Some(cps)) = (s.wall_ms, s.cases_per_s) {
            let _ = writeln!(
                out,
                "{} runs in {:.1} s ({cps:.1} cases/s, {:.0} runs/s)",
                s.runs,
                ms as f64 / 1000.0,
                cps * s.revisions.len() as f64
            );
        }
        let _ = writeln!(
            out,
            "\nShrink a cell to a minimal scenario file: cargo run --release -- hunt --revision r1 --invariant bounded_queue\nA longer campaign, shrunk: cargo run --release -- explore --cases 2000\nThe interrupt-crash demo: cargo run --release -- demo"
        );
        out
    }
}

/// Runs a campaign.
pub fn explore(cfg: &Config, progress: &mut dyn FnMut(Progress)) -> Result<Summary, String> {
    let params = cfg
        .revisions
        .iter()
        .map(|r| preset(r))
        .collect::<Result<Vec<_>, _>>()?;
    let indices: Vec<u64> = (0..cfg.cases).filter(|i| cfg.shard.contains(*i)).collect();
    let total = indices.len() as u64;
    let mut failing = 0;
    let outcomes = par_map(
        &indices,
        cfg.jobs,
        &|&index| run_case(cfg.engine, cfg.seed, index, &cfg.revisions, &params),
        &mut |done, o: &CaseOutcome| {
            if o.per_revision.iter().any(|r| !r.failed.is_empty()) {
                failing += 1;
            }
            progress(Progress::Cases {
                done: done as u64,
                total,
                failing,
            });
        },
    );

    let mut results = BTreeMap::new();
    for (r, rev) in cfg.revisions.iter().enumerate() {
        let mut s = RevisionSummary {
            cases: 0,
            failing_cases: 0,
            engine_errors: 0,
            first_engine_error: None,
            invariants: INVARIANTS
                .iter()
                .map(|i| (i.id.to_string(), CellSummary::default()))
                .collect(),
            probes: PROBES.iter().map(|(p, _)| (p.to_string(), 0)).collect(),
            probes_never_hit: Vec::new(),
        };
        for o in &outcomes {
            let ro = &o.per_revision[r];
            s.cases += 1;
            if !ro.failed.is_empty() {
                s.failing_cases += 1;
            }
            if ro.engine_error {
                s.engine_errors += 1;
                s.first_engine_error.get_or_insert(o.index);
            }
            for inv in &ro.failed {
                let cell = s.invariants.entry(inv.to_string()).or_default();
                cell.violations += 1;
                if cell.first.is_none() {
                    let key = explore::case_key(cfg.seed, o.index);
                    cell.first = Some(FirstFailure {
                        index: o.index,
                        case_seed: explore::engine_seed(&key),
                        proptest_seed: explore::key_text(&key),
                        steps: o.steps,
                        shrunk: None,
                    });
                }
            }
            for p in &ro.probes_hit {
                *s.probes.entry(p.to_string()).or_default() += 1;
            }
        }
        s.probes_never_hit = never_hit(&s.probes);
        results.insert(rev.clone(), s);
    }

    let mut shrink_runs = 0;
    if let Some(budget) = cfg.shrink_runs {
        // Every failing cell, in revision then report order.
        let mut todo: Vec<(String, &'static str, u64)> = Vec::new();
        for rev in &cfg.revisions {
            for inv in INVARIANTS {
                if let Some(first) = &results[rev].invariants[inv.id].first {
                    todo.push((rev.clone(), inv.id, first.index));
                }
            }
        }
        let total = todo.len() as u64;
        let shrunk = par_map(
            &todo,
            cfg.jobs,
            &|(rev, inv, index)| {
                let key = explore::case_key(cfg.seed, *index);
                let origin = format!(
                    "case {index} of `ssesim explore --seed {}` ({})",
                    cfg.seed,
                    explore::key_text(&key)
                );
                let shrunk = shrink(
                    cfg.engine,
                    &key,
                    rev,
                    inv,
                    &case_name(cfg.seed, *index),
                    &origin,
                    budget,
                )?;
                let path = write_scenario(
                    &cfg.out,
                    &shrunk_file_name(rev, inv, cfg.seed, *index),
                    &shrunk.scenario,
                )?;
                Ok::<_, String>((path, shrunk))
            },
            &mut |done, _| {
                progress(Progress::Shrinks {
                    done: done as u64,
                    total,
                })
            },
        );
        for ((rev, inv, _), result) in todo.iter().zip(shrunk) {
            let (path, shrunk) = result?;
            shrink_runs += shrunk.runs;
            let cell = results
                .get_mut(rev)
                .and_then(|r| r.invariants.get_mut(*inv))
                .and_then(|c| c.first.as_mut())
                .expect("a failing cell has a first failure");
            cell.shrunk = Some(ShrunkSummary {
                path: path.display().to_string(),
                steps: shrunk.scenario.steps.len(),
                runs: shrunk.runs,
                violations: shrunk
                    .verdicts
                    .failed_ids()
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                turmoil_violations: Some(shrunk.turmoil_violations),
            });
        }
    }

    Ok(Summary {
        format: SUMMARY_FORMAT.to_string(),
        engine: cfg.engine,
        seed: cfg.seed,
        cases: cfg.cases,
        shard: (cfg.shard != Shard::WHOLE).then(|| cfg.shard.to_string()),
        revisions: cfg.revisions.clone(),
        shrink_budget: cfg.shrink_runs,
        cases_run: total,
        runs: total * cfg.revisions.len() as u64,
        shrink_runs,
        results,
        wall_ms: None,
        shrink_ms: None,
        cases_per_s: None,
    })
}

fn never_hit(probes: &BTreeMap<String, u64>) -> Vec<String> {
    PROBES
        .iter()
        .filter(|(p, _)| probes.get(*p).copied().unwrap_or(0) == 0)
        .map(|(p, _)| p.to_string())
        .collect()
}

/// The file name of a shrunk failure.
pub fn shrunk_file_name(revision: &str, invariant: &str, seed: u64, index: u64) -> String {
    format!("{revision}-{invariant}-s{seed}-i{index}.json")
}

/// Writes a scenario as pretty JSON into `dir` (created if needed).
pub fn write_scenario(dir: &Path, file: &str, scenario: &Scenario) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("{}: cannot create the directory: {e}", dir.display()))?;
    let path = dir.join(file);
    std::fs::write(&path, scenario.to_json_pretty())
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    Ok(path)
}

/// The sets of shards a summary covers.
fn shard_set(s: &Summary) -> Result<(u64, BTreeSet<u64>), String> {
    let Some(text) = &s.shard else {
        return Ok((1, BTreeSet::from([1])));
    };
    let bad = || format!("bad shard `{text}` in a summary");
    let (ks, n) = text.split_once('/').ok_or_else(bad)?;
    let n: u64 = n.parse().map_err(|_| bad())?;
    let mut set = BTreeSet::new();
    for k in ks.split(',') {
        let shard: Shard = format!("{k}/{n}").parse()?;
        set.insert(shard.k);
    }
    Ok((n, set))
}

/// Combines the summaries of disjoint shards of one campaign. When they cover every shard
/// the result equals the summary of the whole campaign run on one machine (wall-clock
/// figures aside: the merged `wall_ms` is the longest shard's, `cases_per_s` the sum).
pub fn merge(parts: &[Summary]) -> Result<Summary, String> {
    let first = parts.first().ok_or("nothing to merge")?;
    let mut n_all = None;
    let mut covered = BTreeSet::new();
    for (i, p) in parts.iter().enumerate() {
        if p.format != SUMMARY_FORMAT {
            return Err(format!(
                "summary {}: format `{}`, expected `{SUMMARY_FORMAT}`",
                i + 1,
                p.format
            ));
        }
        let same = p.seed == first.seed
            && p.cases == first.cases
            && p.revisions == first.revisions
            && p.shrink_budget == first.shrink_budget
            && p.engine == first.engine;
        if !same {
            return Err(format!(
                "summary {} is of another campaign (engine, seed, cases, revisions and shrink budget must all match the first)",
                i + 1
            ));
        }
        let (n, set) = shard_set(p)?;
        if *n_all.get_or_insert(n) != n {
            return Err(format!(
                "summary {} splits the campaign into {n} shards, the first into {}",
                i + 1,
                n_all.unwrap_or(n)
            ));
        }
        for k in set {
            if !covered.insert(k) {
                return Err(format!("shard {k}/{n} appears twice"));
            }
        }
    }
    let n = n_all.unwrap_or(1);
    let complete = covered.len() as u64 == n;
    let mut out = Summary {
        shard: (!complete).then(|| {
            let ks: Vec<String> = covered.iter().map(|k| k.to_string()).collect();
            format!("{}/{n}", ks.join(","))
        }),
        cases_run: 0,
        runs: 0,
        shrink_runs: 0,
        results: BTreeMap::new(),
        wall_ms: None,
        shrink_ms: None,
        cases_per_s: None,
        ..first.clone()
    };
    for p in parts {
        out.cases_run += p.cases_run;
        out.runs += p.runs;
        if let Some(w) = p.wall_ms {
            out.wall_ms = Some(out.wall_ms.unwrap_or(0).max(w));
        }
        if let Some(w) = p.shrink_ms {
            out.shrink_ms = Some(out.shrink_ms.unwrap_or(0).max(w));
        }
        if let Some(c) = p.cases_per_s {
            out.cases_per_s = Some(out.cases_per_s.unwrap_or(0.0) + c);
        }
        for (rev, r) in &p.results {
            let Some(m) = out.results.get_mut(rev) else {
                out.results.insert(rev.clone(), r.clone());
                continue;
            };
            m.cases += r.cases;
            m.failing_cases += r.failing_cases;
            m.engine_errors += r.engine_errors;
            m.first_engine_error = match (m.first_engine_error, r.first_engine_error) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            for (inv, c) in &r.invariants {
                let mc = m.invariants.entry(inv.clone()).or_default();
                mc.violations += c.violations;
                let earlier = match (&mc.first, &c.first) {
                    (Some(a), Some(b)) => b.index < a.index,
                    (None, Some(_)) => true,
                    _ => false,
                };
                if earlier {
                    mc.first = c.first.clone();
                }
            }
            for (probe, hits) in &r.probes {
                *m.probes.entry(probe.clone()).or_default() += hits;
            }
        }
    }
    for r in out.results.values_mut() {
        r.probes_never_hit = never_hit(&r.probes);
    }
    // The shrinks the merged summary reports: a shard also shrank its own first failures
    // that another shard's earlier case has superseded.
    out.shrink_runs = out
        .results
        .values()
        .flat_map(|r| r.invariants.values())
        .filter_map(|c| c.first.as_ref()?.shrunk.as_ref())
        .map(|s| s.runs)
        .sum();
    Ok(out)
}

/// A shrunk failure.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The minimal scenario found, with its `expect` block for the revision.
    pub scenario: Scenario,
    /// What it breaks on the revision (the shrink target among them), on the engine it
    /// was shrunk on.
    pub verdicts: Verdicts,
    /// What it breaks when replayed in the turmoil engine (the ids).
    pub turmoil_violations: Vec<String>,
    /// What it breaks on each of the target's control revisions (ids; the target's
    /// invariant is never among them), on the engine it was shrunk on.
    pub controls: BTreeMap<String, Vec<String>>,
    pub original_steps: usize,
    /// Simulation runs spent, the first (the original case) included; a candidate run on
    /// the target's revision and its controls counts once.
    pub runs: u64,
}

/// What a shrink keeps, and what a bug hunt looks for: a scenario that breaks `invariant`
/// on `revision` with `probe` satisfied and `keeps` kept there, and keeps `invariant` on
/// every control
/// revision. Without controls and probe rule it is a (revision, invariant) cell.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub revision: String,
    pub invariant: &'static str,
    pub controls: Vec<String>,
    pub probe: ProbeRule,
    /// Invariants the run on `revision` must keep.
    pub keeps: Vec<&'static str>,
}

impl Target {
    /// The (revision, invariant) cell.
    pub fn cell(revision: &str, invariant: &'static str) -> Target {
        Target {
            revision: revision.to_string(),
            invariant,
            controls: Vec::new(),
            probe: ProbeRule::None,
            keeps: Vec::new(),
        }
    }

    /// A documented bug as itself: its invariant on its hunt revision, its controls and
    /// probe rule.
    pub fn bug(bug: &Bug) -> Result<Target, String> {
        let invariant = invariant(bug.invariant)?;
        for rev in std::iter::once(&bug.hunt_revision).chain(bug.controls) {
            preset(rev)?;
        }
        let keeps = bug
            .keeps
            .iter()
            .map(|k| self::invariant(k))
            .collect::<Result<_, _>>()?;
        Ok(Target {
            revision: bug.hunt_revision.to_string(),
            invariant,
            controls: bug.controls.iter().map(|r| r.to_string()).collect(),
            probe: bug.probe,
            keeps,
        })
    }
}

/// A [`Target`] with its revisions' parameters, to judge scenarios with.
struct Judge<'a> {
    engine: EngineKind,
    target: &'a Target,
    params: Params,
    controls: Vec<Params>,
}

impl<'a> Judge<'a> {
    fn new(engine: EngineKind, target: &'a Target) -> Result<Judge<'a>, String> {
        Ok(Judge {
            engine,
            target,
            params: preset(&target.revision)?,
            controls: target
                .controls
                .iter()
                .map(|r| preset(r))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The run on the target's revision when `scenario` is the target (the controls' runs
    /// as failed ids), `None` when it is not. The controls run only when the target's
    /// revision breaks the invariant with the probe rule satisfied.
    fn judge(&self, scenario: &Scenario) -> Option<(Run, BTreeMap<String, Vec<String>>)> {
        let run = run_on(self.engine, scenario, &self.params);
        if !run.verdicts.failed(self.target.invariant)
            || !self.target.probe.holds(&run.probes)
            || self.target.keeps.iter().any(|k| run.verdicts.failed(k))
        {
            return None;
        }
        let mut controls = BTreeMap::new();
        for (rev, params) in self.target.controls.iter().zip(&self.controls) {
            let c = run_on(self.engine, scenario, params);
            if c.verdicts.failed(self.target.invariant) {
                return None;
            }
            controls.insert(
                rev.clone(),
                c.verdicts
                    .failed_ids()
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            );
        }
        Some((run, controls))
    }
}

/// Shrinks the case with `key` on `revision`, running it on `engine`, to a minimal
/// scenario that still breaks `invariant`: first along the case's proptest value tree
/// (`simplify` while the candidate still fails, `complicate` when it passes; at most 3/4
/// of `max_runs` simulation runs), then by deleting runs of consecutive steps, single
/// steps and pairs of steps until that deletes nothing (at most `max_runs` more runs), then
/// unused tabs and sessions, and the queue override. Candidates already judged are not run
/// again. The result is
/// replayed in turmoil (one more run, not counted, unless `engine` is turmoil).
/// Deterministic: same key, same result.
#[allow(clippy::too_many_arguments)]
pub fn shrink(
    engine: EngineKind,
    key: &[u8; 32],
    revision: &str,
    invariant: &str,
    name: &str,
    origin: &str,
    max_runs: u64,
) -> Result<Shrunk, String> {
    let target = Target::cell(revision, self::invariant(invariant)?);
    shrink_to(
        engine,
        key,
        &Weights::default(),
        &target,
        name,
        origin,
        max_runs,
    )
}

/// [`shrink`] of the case with `key` drawn with `weights`, to a minimal scenario that is
/// still `target`: every candidate must break the target's invariant on its revision,
/// satisfy its probe rule there and keep the invariant on every control revision. The
/// scenario's `expect` block gets the control revisions' verdicts too.
#[allow(clippy::too_many_arguments)]
pub fn shrink_to(
    engine: EngineKind,
    key: &[u8; 32],
    weights: &Weights,
    target: &Target,
    name: &str,
    origin: &str,
    max_runs: u64,
) -> Result<Shrunk, String> {
    let (revision, invariant) = (target.revision.as_str(), target.invariant);
    let judge = Judge::new(engine, target)?;
    let params = &judge.params;
    let seed = explore::engine_seed(key);
    let mut tree = explore::case_tree_with(key, weights);
    let scenario_of = |c: &Case| c.to_scenario(revision, seed, name.to_string());
    let original = scenario_of(&tree.current());
    let mut runs = 0u64;
    type Verdict = Option<(Verdicts, BTreeMap<String, Vec<String>>)>;
    let mut judged: BTreeMap<String, Verdict> = BTreeMap::new();
    let mut fails = |s: &Scenario, runs: &mut u64| -> Verdict {
        let text = serde_json::to_string(s).unwrap_or_default();
        if let Some(v) = judged.get(&text) {
            return v.clone();
        }
        *runs += 1;
        let v = judge.judge(s).map(|(r, c)| (r.verdicts, c));
        judged.insert(text, v.clone());
        v
    };
    let mut rest = String::new();
    match target.probe {
        ProbeRule::None => {}
        ProbeRule::Hit(p) => rest.push_str(&format!(" hitting probe {p}")),
        ProbeRule::Miss(p) => rest.push_str(&format!(" without hitting probe {p}")),
    }
    for k in &target.keeps {
        rest.push_str(&format!(" without breaking {k}"));
    }
    if !target.controls.is_empty() {
        rest.push_str(&format!(
            " and keeps it on {}",
            target.controls.join(" and ")
        ));
    }
    let (mut verdicts, mut controls) = fails(&original, &mut runs).ok_or_else(|| {
        format!("{origin} does not break {invariant} on {revision}{rest}, nothing to shrink")
    })?;
    let mut best = original.clone();

    // Along the value tree, with three quarters of the budget (the rest is for deleting
    // single steps below). The step cap only guards against a tree that never ends.
    let tree_runs = max_runs - max_runs / 4;
    let mut steps = 0u64;
    if tree.simplify() {
        while runs < tree_runs && steps < max_runs.saturating_mul(50) {
            steps += 1;
            let candidate = scenario_of(&tree.current());
            if let Some(v) = fails(&candidate, &mut runs) {
                best = candidate;
                (verdicts, controls) = v;
                if !tree.simplify() {
                    break;
                }
            } else if !tree.complicate() {
                break;
            }
        }
    }

    // Deleting steps, with a budget of its own (`max_runs` more): runs of consecutive steps
    // (half the scenario down to two steps, latest first: steps at the same moment often
    // go together), single steps, then pairs of steps anywhere (a network race can need
    // two steps gone at once, since each step shifts the latency draws of those after
    // it); again until none of these deletes anything or the budget is spent.
    let budget = runs.saturating_add(max_runs);
    let mut try_without = |best: &mut Scenario, drop: &[usize], runs: &mut u64| {
        let mut candidate = best.clone();
        for &i in drop.iter().rev() {
            candidate.steps.remove(i);
        }
        fails(&candidate, runs).inspect(|_| *best = candidate)
    };
    loop {
        let before = best.steps.len();
        let mut size = best.steps.len() / 2;
        while size >= 2 && runs < budget {
            let mut start = best.steps.len().saturating_sub(size) + 1;
            while start > 0 && runs < budget {
                start -= 1;
                if start + size > best.steps.len() {
                    continue;
                }
                let drop: Vec<usize> = (start..start + size).collect();
                if let Some(v) = try_without(&mut best, &drop, &mut runs) {
                    (verdicts, controls) = v;
                }
            }
            size -= 1;
        }
        let mut i = best.steps.len();
        while i > 0 && runs < budget {
            i -= 1;
            if let Some(v) = try_without(&mut best, &[i], &mut runs) {
                (verdicts, controls) = v;
            }
        }
        let n = best.steps.len();
        'pairs: for i in (1..n).rev() {
            for j in (0..i).rev() {
                if runs >= budget {
                    break 'pairs;
                }
                if let Some(v) = try_without(&mut best, &[j, i], &mut runs) {
                    (verdicts, controls) = v;
                    break 'pairs;
                }
            }
        }
        if best.steps.len() == before || runs >= budget {
            break;
        }
    }
    let max_runs = budget;
    // The last tab, while no step names it.
    while best.topology.clients > 1 && runs < max_runs {
        let last = best.topology.clients - 1;
        if best.steps.iter().any(|s| s.action.client() == Some(last)) {
            break;
        }
        let mut candidate = best.clone();
        candidate.topology.clients = last;
        match fails(&candidate, &mut runs) {
            Some(v) => {
                best = candidate;
                (verdicts, controls) = v;
            }
            None => break,
        }
    }
    // The last session, while no step names it.
    while best.topology.sessions.len() > 1 && runs < max_runs {
        let last = best.topology.sessions[best.topology.sessions.len() - 1].clone();
        let named = best.steps.iter().any(|s| {
            serde_json::to_value(&s.action)
                .ok()
                .and_then(|v| v.get("session").cloned())
                .is_some_and(|v| v == last.as_str())
        });
        if named {
            break;
        }
        let mut candidate = best.clone();
        candidate.topology.sessions.pop();
        match fails(&candidate, &mut runs) {
            Some(v) => {
                best = candidate;
                (verdicts, controls) = v;
            }
            None => break,
        }
    }
    if best.constants.max_pending_sends.is_some() && runs < max_runs {
        let mut candidate = best.clone();
        candidate.constants.max_pending_sends = None;
        if let Some(v) = fails(&candidate, &mut runs) {
            best = candidate;
            (verdicts, controls) = v;
        }
    }

    best.description = format!(
        "Shrunk by ssesim on the {engine} engine from {origin}: {} steps to {} in {runs} runs; breaks {invariant} on {revision}{rest}. {}",
        original.steps.len(),
        best.steps.len(),
        original.description
    );
    let turmoil_violations = turmoil_verdict(engine, &best, params, &verdicts);
    best.expect = controls.clone();
    best.expect.insert(
        revision.to_string(),
        verdicts
            .failed_ids()
            .iter()
            .map(|s| s.to_string())
            .collect(),
    );
    Ok(Shrunk {
        scenario: best,
        verdicts,
        turmoil_violations,
        controls,
        original_steps: original.steps.len(),
        runs,
    })
}

/// A search for the first case that breaks an invariant.
#[derive(Clone, Debug)]
pub struct HuntConfig {
    /// The engine the cases run on (the shrunk failure is replayed in turmoil as well).
    pub engine: EngineKind,
    pub revision: String,
    /// The invariant to find; `None`: any.
    pub invariant: Option<&'static str>,
    /// A documented bug to find as itself; it overrides `revision` and `invariant` (see
    /// [`HuntConfig::for_bug`]).
    pub bug: Option<BugHunt>,
    pub seed: u64,
    pub max_cases: u64,
    /// How many failing cases (the first ones, by index) are shrunk; the shortest result
    /// is kept. At least 1.
    pub candidates: usize,
    pub jobs: usize,
    pub shrink_runs: u64,
    pub out: PathBuf,
}

/// How a hunt looks for one documented bug.
#[derive(Clone, Debug)]
pub struct BugHunt {
    pub id: &'static str,
    /// The file-name part of its shrunk scenario.
    pub slug: String,
    /// Its differential identity.
    pub target: Target,
    /// The case strategy's odds: leaned towards the bug's catalog scenario
    /// ([`Weights::focused`]), or the default ones.
    pub weights: Weights,
    pub focused: bool,
}

impl HuntConfig {
    /// Hunt `bug` as itself: on its hunt revision, for its invariant, a case counting only
    /// when the controls keep the invariant (and the probe rule holds); with `focus`, the
    /// cases are drawn with odds leaned towards its catalog scenario.
    pub fn for_bug(mut self, bug: &Bug, focus: bool) -> Result<HuntConfig, String> {
        let target = Target::bug(bug)?;
        let weights = if focus {
            Weights::focused(&bug.catalog_scenario()?)
        } else {
            Weights::default()
        };
        self.revision = target.revision.clone();
        self.invariant = Some(target.invariant);
        self.bug = Some(BugHunt {
            id: bug.id,
            slug: bug.slug(),
            target,
            weights,
            focused: focus,
        });
        Ok(self)
    }
}

/// Progress of a hunt, reported on the calling thread.
#[derive(Clone, Copy, Debug)]
pub enum HuntProgress {
    /// This many cases have run.
    Searched { cases: u64 },
    /// The first failing case is known: it is case `cases - 1`. Shrinking starts.
    Found { cases: u64 },
}

/// What a hunt found.
#[derive(Clone, Debug)]
pub struct Hunt {
    /// Cases a single machine runs to find it: the failing case's index + 1 (or
    /// `max_cases` when nothing was found).
    pub cases: u64,
    pub found: Option<Found>,
}

#[derive(Clone, Debug)]
pub struct Found {
    /// The case the shrunk scenario came from (the shortest of the candidates).
    pub index: u64,
    /// Failing cases shrunk to choose it.
    pub candidates: usize,
    pub invariant: &'static str,
    pub proptest_seed: String,
    pub case_seed: u64,
    pub original_steps: usize,
    pub shrunk_steps: usize,
    pub shrink_runs: u64,
    pub path: PathBuf,
    /// The shrunk scenario's violations on the revision (on the hunt's engine).
    pub violations: Vec<Violation>,
    /// The invariants it breaks when replayed in the turmoil engine.
    pub turmoil_violations: Vec<String>,
    /// For a bug hunt: what the shrunk scenario breaks on each control revision (on the
    /// hunt's engine); never the hunted invariant.
    pub controls: BTreeMap<String, Vec<String>>,
}

/// What a hunt's failing case must keep while it shrinks.
fn hunt_target(cfg: &HuntConfig, inv: &'static str) -> Target {
    match &cfg.bug {
        Some(b) => b.target.clone(),
        None => Target::cell(&cfg.revision, inv),
    }
}

/// Where a hunt's shrunk scenario came from, for its description.
fn hunt_origin(cfg: &HuntConfig, index: u64) -> String {
    let key = explore::key_text(&explore::case_key(cfg.seed, index));
    match &cfg.bug {
        Some(b) => format!(
            "case {index} of `ssesim hunt --bug '{}' --seed {}{}` ({key})",
            b.id,
            cfg.seed,
            if b.focused { "" } else { " --no-focus" },
        ),
        None => format!("case {index} of `ssesim hunt --seed {}` ({key})", cfg.seed),
    }
}

/// Runs cases `0, 1, 2, ...` of the campaign with `seed` on one revision until one breaks
/// the invariant (any invariant without one), then shrinks it and writes the scenario.
/// For a bug hunt a case counts only when it is the bug's [`Target`] (the controls keep the
/// invariant); its cases are drawn with the bug hunt's weights, and the shrink keeps the
/// whole target. With several jobs the cases run out of order, but every case before the
/// first failing one is run, so the answer is the one a single thread gives.
pub fn hunt(cfg: &HuntConfig, progress: &mut dyn FnMut(HuntProgress)) -> Result<Hunt, String> {
    let params = preset(&cfg.revision)?;
    let default_weights = Weights::default();
    let weights = cfg.bug.as_ref().map_or(&default_weights, |b| &b.weights);
    let judge = cfg
        .bug
        .as_ref()
        .map(|b| Judge::new(cfg.engine, &b.target))
        .transpose()?;
    let wanted = cfg.candidates.max(1);
    let next = AtomicU64::new(0);
    // The index of the `wanted`-th failing case known so far: no case after it is needed.
    let bound = AtomicU64::new(u64::MAX);
    let mut hits: BTreeMap<u64, &'static str> = BTreeMap::new();
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..cfg.jobs.max(1) {
            let tx = tx.clone();
            let (next, bound, params, judge) = (&next, &bound, &params, &judge);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= cfg.max_cases || i > bound.load(Ordering::Relaxed) {
                    break;
                }
                let scenario = explore::case_scenario_with(cfg.seed, i, &cfg.revision, weights);
                let hit = match (judge, cfg.invariant) {
                    (Some(j), _) => j.judge(&scenario).map(|_| j.target.invariant),
                    (None, Some(inv)) => run_on(cfg.engine, &scenario, params)
                        .verdicts
                        .failed(inv)
                        .then_some(inv),
                    (None, None) => run_on(cfg.engine, &scenario, params)
                        .verdicts
                        .failed_ids()
                        .first()
                        .copied(),
                };
                if tx.send((i, hit)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        // Time to bug is when the first failing case is certain: every case before it ran.
        let mut ran = BTreeSet::new();
        let mut prefix = 0u64;
        let mut announced = false;
        for (done, (i, hit)) in rx.into_iter().enumerate() {
            if let Some(inv) = hit {
                hits.insert(i, inv);
                if let Some((&kth, _)) = hits.iter().nth(wanted - 1) {
                    bound.fetch_min(kth, Ordering::Relaxed);
                }
            }
            ran.insert(i);
            while ran.remove(&prefix) {
                prefix += 1;
            }
            progress(HuntProgress::Searched {
                cases: done as u64 + 1,
            });
            if let Some((&first, _)) = hits.iter().next().filter(|_| !announced) {
                if prefix > first {
                    announced = true;
                    progress(HuntProgress::Found { cases: first + 1 });
                }
            }
        }
    });
    let Some(&first) = hits.keys().next() else {
        return Ok(Hunt {
            cases: cfg.max_cases,
            found: None,
        });
    };
    // Several failing cases shrink to different stories; the shortest one is kept (the
    // earliest of equal length), so the result does not hang on one unlucky draw.
    let mut kept: Option<(u64, &'static str, Shrunk)> = None;
    let candidates: Vec<(u64, &'static str)> = hits
        .iter()
        .take(wanted)
        .map(|(&i, &inv)| (i, inv))
        .collect();
    for &(index, inv) in &candidates {
        let shrunk = shrink_to(
            cfg.engine,
            &explore::case_key(cfg.seed, index),
            weights,
            &hunt_target(cfg, inv),
            &case_name(cfg.seed, index),
            &hunt_origin(cfg, index),
            cfg.shrink_runs,
        )?;
        let shorter = kept
            .as_ref()
            .is_none_or(|(_, _, k)| shrunk.scenario.steps.len() < k.scenario.steps.len());
        if shorter {
            kept = Some((index, inv, shrunk));
        }
    }
    let Some((index, inv, shrunk)) = kept else {
        return Err("a failing case was found but none was shrunk".to_string());
    };
    let key = explore::case_key(cfg.seed, index);
    let file = match &cfg.bug {
        Some(b) => format!("bug-{}-s{}-i{index}.json", b.slug, cfg.seed),
        None => shrunk_file_name(&cfg.revision, inv, cfg.seed, index),
    };
    let path = write_scenario(&cfg.out, &file, &shrunk.scenario)?;
    Ok(Hunt {
        cases: first + 1,
        found: Some(Found {
            index,
            candidates: candidates.len(),
            invariant: inv,
            proptest_seed: explore::key_text(&key),
            case_seed: explore::engine_seed(&key),
            original_steps: shrunk.original_steps,
            shrunk_steps: shrunk.scenario.steps.len(),
            shrink_runs: shrunk.runs,
            path,
            violations: shrunk.verdicts.violations.clone(),
            turmoil_violations: shrunk.turmoil_violations,
            controls: shrunk.controls,
        }),
    })
}
