//! The campaign commands of the command line: `explore`, `hunt`, `merge`, and the short
//! default campaign `ssesim` runs with no arguments.

use crate::Failure;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use ssesim::campaign::{self, HuntConfig, HuntProgress, Progress, Shard, Summary};
use ssesim_model::revisions;
use ssesim_sim::EngineKind;
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::wall::Stopwatch;

/// Cases of the default campaign (`ssesim` with no arguments), per revision.
pub const DEFAULT_CASES: u64 = 80;

/// The revisions named by `--revision`: `all`, one name, or a comma-separated list.
pub fn revision_list(spec: &str) -> Result<Vec<String>, Failure> {
    if spec == "all" {
        return Ok(revisions::NAMES.iter().map(|s| s.to_string()).collect());
    }
    let mut out = Vec::new();
    for name in spec.split(',').map(str::trim) {
        campaign::preset(name).map_err(|e| Failure(2, e))?;
        if !out.iter().any(|r| r == name) {
            out.push(name.to_string());
        }
    }
    Ok(out)
}

/// `--jobs`, defaulting to the machine's parallelism.
pub fn jobs(jobs: Option<usize>) -> Result<usize, Failure> {
    match jobs {
        Some(0) => Err(Failure(2, "--jobs must be at least 1".to_string())),
        Some(j) => Ok(j),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// A progress display on stderr: a bar on a terminal, a line per tenth otherwise.
struct Meter {
    bar: Option<ProgressBar>,
    label: String,
    total: u64,
    last_tenth: u64,
}

impl Meter {
    fn new(label: &str, total: u64, quiet: bool) -> Meter {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{prefix:>9} [{bar:24}] {pos}/{len} {msg}, eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(label.to_string());
            bar
        });
        Meter {
            bar,
            label: label.to_string(),
            total,
            last_tenth: 0,
        }
    }

    fn update(&mut self, done: u64, message: String, clock: &Stopwatch) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.set_message(message);
            return;
        }
        let tenth = (done * 10).checked_div(self.total).unwrap_or(10);
        if tenth > self.last_tenth {
            self.last_tenth = tenth;
            let secs = clock.ms() as f64 / 1000.0;
            eprintln!(
                "{}: {done}/{} ({}%), {message}, {:.1} s",
                self.label,
                self.total,
                done * 100 / self.total.max(1),
                secs
            );
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

pub struct ExploreArgs {
    pub engine: EngineKind,
    pub revision: String,
    pub cases: u64,
    pub seed: u64,
    pub jobs: Option<usize>,
    pub shard: Option<Shard>,
    pub json: bool,
    pub out: PathBuf,
    pub shrink_runs: u64,
    pub no_shrink: bool,
}

/// Runs a campaign with a progress display; fills in the wall-clock figures.
fn run_campaign(cfg: &campaign::Config, quiet: bool) -> Result<Summary, Failure> {
    let clock = Stopwatch::start();
    let mut cases = Meter::new("cases", cfg.cases.div_ceil(cfg.shard.n), quiet);
    let mut shrinks: Option<Meter> = None;
    let runs_per_case = cfg.revisions.len() as u64;
    let mut cases_ms = None;
    let mut summary = campaign::explore(cfg, &mut |p| match p {
        Progress::Cases {
            done,
            total,
            failing,
        } => {
            cases.total = total;
            if done == total {
                cases_ms = Some(clock.ms());
            }
            let secs = (clock.ms() as f64 / 1000.0).max(1e-3);
            cases.update(
                done,
                format!(
                    "{failing} failing, {:.0} runs/s",
                    (done * runs_per_case) as f64 / secs
                ),
                &clock,
            );
        }
        Progress::Shrinks { done, total } => {
            cases.finish();
            let m = shrinks.get_or_insert_with(|| Meter::new("shrinking", total, quiet));
            m.update(done, "failures shrunk".to_string(), &clock);
        }
    })
    .map_err(|e| Failure(2, e))?;
    cases.finish();
    if let Some(m) = &shrinks {
        m.finish();
    }
    let ms = clock.ms();
    let cases_ms = cases_ms.unwrap_or(ms);
    summary.wall_ms = Some(ms);
    summary.shrink_ms = Some(ms - cases_ms);
    summary.cases_per_s = Some(summary.cases_run as f64 * 1000.0 / cases_ms.max(1) as f64);
    Ok(summary)
}

pub fn explore(args: ExploreArgs) -> Result<u8, Failure> {
    let cfg = campaign::Config {
        engine: args.engine,
        revisions: revision_list(&args.revision)?,
        seed: args.seed,
        cases: args.cases,
        shard: args.shard.unwrap_or(Shard::WHOLE),
        jobs: jobs(args.jobs)?,
        shrink_runs: (!args.no_shrink).then_some(args.shrink_runs),
        out: args.out,
    };
    let summary = run_campaign(&cfg, false)?;
    if args.json {
        println!("{}", to_json(&summary)?);
    } else {
        print!("{}", summary.to_text());
    }
    Ok(if summary.any_violation() { 1 } else { 0 })
}

fn to_json(summary: &Summary) -> Result<String, Failure> {
    serde_json::to_string_pretty(summary)
        .map_err(|e| Failure(2, format!("cannot write the summary: {e}")))
}

/// `ssesim` with no arguments: a short campaign over every revision, printed as the
/// revision x invariant matrix.
pub fn default_campaign() -> Result<u8, Failure> {
    let cfg = campaign::Config {
        engine: EngineKind::Direct,
        revisions: revisions::NAMES.iter().map(|s| s.to_string()).collect(),
        seed: 1,
        cases: DEFAULT_CASES,
        shard: Shard::WHOLE,
        jobs: jobs(None)?,
        shrink_runs: None,
        out: PathBuf::from(campaign::DEFAULT_OUT),
    };
    eprintln!(
        "ssesim: exploring {} generated cases (seed 1) on each of the {} revisions ...",
        cfg.cases,
        cfg.revisions.len()
    );
    let summary = run_campaign(&cfg, false)?;
    print!("{}", summary.matrix_text());
    Ok(0)
}

pub struct HuntArgs {
    pub engine: EngineKind,
    /// `None` only with `bug`.
    pub revision: Option<String>,
    pub invariant: Option<String>,
    pub bug: Option<String>,
    pub focus: bool,
    pub max_cases: u64,
    pub candidates: usize,
    pub seed: u64,
    pub jobs: Option<usize>,
    pub json: bool,
    pub out: PathBuf,
    pub shrink_runs: u64,
}

pub fn hunt(args: HuntArgs) -> Result<u8, Failure> {
    let bug = args
        .bug
        .as_deref()
        .map(ssesim::bugs::find)
        .transpose()
        .map_err(|e| Failure(2, e))?;
    if !args.focus && bug.is_none() {
        return Err(Failure(2, "--no-focus needs --bug".to_string()));
    }
    let revision = match (&args.revision, bug) {
        (_, Some(b)) => b.hunt_revision.to_string(),
        (Some(r), None) => r.clone(),
        (None, None) => return Err(Failure(2, "--revision or --bug is required".to_string())),
    };
    campaign::preset(&revision).map_err(|e| Failure(2, e))?;
    let invariant = args
        .invariant
        .as_deref()
        .map(campaign::invariant)
        .transpose()
        .map_err(|e| Failure(2, e))?;
    let mut cfg = HuntConfig {
        engine: args.engine,
        revision: revision.clone(),
        invariant,
        bug: None,
        seed: args.seed,
        max_cases: args.max_cases,
        candidates: args.candidates,
        jobs: jobs(args.jobs)?,
        shrink_runs: args.shrink_runs,
        out: args.out,
    };
    if let Some(b) = bug {
        cfg = cfg.for_bug(b, args.focus).map_err(|e| Failure(2, e))?;
    }
    let what = match bug {
        Some(b) => format!("{} ({} on {})", b.id, b.invariant, b.hunt_revision),
        None => revision.clone(),
    };
    let clock = Stopwatch::start();
    let mut found_ms = None;
    let mut meter = Meter::new("hunting", args.max_cases, false);
    let result = campaign::hunt(&cfg, &mut |p| match p {
        HuntProgress::Searched { cases } => {
            meter.update(cases, format!("cases for {what}"), &clock)
        }
        HuntProgress::Found { .. } => {
            found_ms = Some(clock.ms());
            meter.finish();
        }
    })
    .map_err(|e| Failure(2, e))?;
    meter.finish();
    let total_ms = clock.ms();
    let wall_ms = found_ms.unwrap_or(total_ms);
    let f = result.found.as_ref();
    if args.json {
        let out = json!({
            "found": f.is_some(),
            "engine": args.engine,
            "bug": bug.map(|b| b.id),
            "focused": bug.map(|_| args.focus),
            "revision": revision,
            "invariant": f.map(|f| f.invariant).or(cfg.invariant),
            "controls": cfg.bug.as_ref().map(|b| &b.target.controls),
            "probe": cfg.bug.as_ref().map(|b| format!("{:?}", b.target.probe)),
            "keeps": cfg.bug.as_ref().map(|b| &b.target.keeps),
            "seed": args.seed,
            "cases": result.cases,
            "wall_ms": wall_ms,
            "shrink_ms": total_ms - wall_ms,
            "original_steps": f.map(|f| f.original_steps),
            "shrunk_steps": f.map(|f| f.shrunk_steps),
            "shrink_runs": f.map(|f| f.shrink_runs),
            "scenario_path": f.map(|f| f.path.display().to_string()),
            "case_index": f.map(|f| f.index),
            "candidates": f.map(|f| f.candidates),
            "case_seed": f.map(|f| f.case_seed),
            "proptest_seed": f.map(|f| f.proptest_seed.clone()),
            "violations": f.map(|f| &f.violations),
            "turmoil_violations": f.map(|f| &f.turmoil_violations),
            "control_violations": f.filter(|_| bug.is_some()).map(|f| &f.controls),
        });
        println!("{out}");
    } else if let Some(f) = f {
        if let Some(b) = bug {
            let controls: Vec<String> = f
                .controls
                .iter()
                .map(|(rev, failed)| {
                    if failed.is_empty() {
                        format!("{rev} breaks nothing")
                    } else {
                        format!("{rev} breaks {}", failed.join(", "))
                    }
                })
                .collect();
            println!(
                "{}: {} on {}, kept on the controls ({})",
                b.id,
                f.invariant,
                revision,
                controls.join("; ")
            );
        }
        println!(
            "found {} on {} ({} engine) after {} cases in {:.2} s (case {}, seed {}, {})",
            f.invariant,
            revision,
            args.engine,
            result.cases,
            wall_ms as f64 / 1000.0,
            f.index,
            f.case_seed,
            f.proptest_seed
        );
        println!(
            "shrunk from {} to {} steps in {} runs ({:.2} s): {}",
            f.original_steps,
            f.shrunk_steps,
            f.shrink_runs,
            (total_ms - wall_ms) as f64 / 1000.0,
            f.path.display()
        );
        for v in &f.violations {
            println!(
                "VIOLATED {:<22} at {:>7} ms: {}",
                v.invariant, v.at_ms, v.detail
            );
        }
        let found: BTreeSet<&str> = f.violations.iter().map(|v| v.invariant.as_str()).collect();
        let turmoil: BTreeSet<&str> = f.turmoil_violations.iter().map(String::as_str).collect();
        println!(
            "replayed in turmoil: {}",
            if turmoil == found {
                "the same invariants broken".to_string()
            } else if turmoil.is_empty() {
                "breaks nothing".to_string()
            } else {
                format!(
                    "breaks {}",
                    turmoil.into_iter().collect::<Vec<_>>().join(", ")
                )
            }
        );
        println!("replay it with: ssesim replay {}", f.path.display());
    } else {
        println!(
            "nothing found for {} ({} engine) in {} cases ({:.1} s, seed {})",
            what,
            args.engine,
            result.cases,
            total_ms as f64 / 1000.0,
            args.seed
        );
    }
    Ok(if f.is_some() { 1 } else { 0 })
}

pub fn merge(files: &[PathBuf], as_json: bool) -> Result<u8, Failure> {
    let parts = files
        .iter()
        .map(|p| read_summary(p))
        .collect::<Result<Vec<_>, _>>()?;
    let merged = campaign::merge(&parts).map_err(|e| Failure(2, e))?;
    if let Some(shard) = &merged.shard {
        eprintln!("warning: the summaries cover shards {shard} only, not the whole campaign");
    }
    if as_json {
        println!("{}", to_json(&merged)?);
    } else {
        print!("{}", merged.to_text());
    }
    Ok(if merged.any_violation() { 1 } else { 0 })
}

fn read_summary(path: &Path) -> Result<Summary, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure(2, format!("{}: cannot read: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        Failure(
            2,
            format!(
                "{}: not a campaign summary (the output of `ssesim explore --json`): {e}",
                path.display()
            ),
        )
    })
}

/// `ssesim check`: the bounded exhaustive search, with a line per finished level.
pub fn check(
    mut cfg: ssesim::check::CheckConfig,
    jobs_flag: Option<usize>,
    as_json: bool,
) -> Result<u8, Failure> {
    cfg.jobs = jobs(jobs_flag)?;
    ssesim::check::validate(&cfg).map_err(|e| Failure(2, e))?;
    let clock = Stopwatch::start();
    let report = ssesim::check::check(&cfg, &mut |depth, done, total| {
        if done == total {
            eprintln!("check: depth {depth}: {total} states run");
        }
    })
    .map_err(|e| Failure(2, e))?;
    let wall_ms = clock.ms();
    if as_json {
        let mut v = serde_json::to_value(&report).expect("the report serialises");
        v["wall_ms"] = json!(wall_ms);
        println!("{v}");
    } else {
        print!("{}", report.to_text());
        println!(
            "wall time {:.1} s ({:.0} states/s)",
            wall_ms as f64 / 1000.0,
            report.states_explored as f64 * 1000.0 / wall_ms.max(1) as f64
        );
    }
    Ok(u8::from(!report.counterexamples.is_empty()))
}
