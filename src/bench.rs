//! `ssesim bench`: the performance figures, measured side by side in one run.
//!
//! Every figure is a throughput or a ratio measured here, on this machine, single-threaded
//! (per core); nothing in the test suite asserts a timing. The standard scenario is
//! `scenarios/bench/standard.json` (2 tabs, 3 sessions, 60 s of which the last 20 s heal,
//! 11 fault steps), run with consecutive seeds so the latency draws differ.

use crate::wall::Stopwatch;
use crate::Failure;
use serde::Serialize;
use ssesim::check::{self, CheckConfig};
use ssesim_model::{revisions, Params};
use ssesim_oracles::{check as judge, Context};
use ssesim_scenarios::{Scenario, Step};
use ssesim_sim::turmoil::TurmoilConfig;
use ssesim_sim::EngineKind;

/// The standard scenario, built into the binary so `bench` runs from anywhere.
const STANDARD: &str = include_str!("../scenarios/bench/standard.json");

/// The revision the engines are timed on: the one that keeps every tab busiest to the end.
const REVISION: &str = "reference";

#[derive(Clone, Debug, Serialize)]
pub struct EngineFigures {
    pub engine: String,
    /// Turmoil's tick (the direct engine has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tick_ms: Option<u64>,
    pub runs: u64,
    /// Engine and oracles together.
    pub wall_s: f64,
    /// The engine alone (running the scenario, recording the history).
    pub scenarios_per_s: f64,
    pub sim_s_per_wall_s: f64,
    /// Run and judged by every oracle.
    pub judged_scenarios_per_s: f64,
    /// Share of run-plus-judge time spent in the oracles.
    pub oracle_share: f64,
    /// Catalog scenarios x revisions whose verdicts equal the 1 ms turmoil engine's (only
    /// for the coarser ticks; the fidelity cost of a longer tick).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog_agreement: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct OracleGrowth {
    pub history_records: usize,
    pub judge_us: f64,
    pub ns_per_record: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Bench {
    pub machine_cores: usize,
    pub standard_scenario: String,
    pub revision: String,
    pub direct: EngineFigures,
    pub turmoil: EngineFigures,
    /// Turmoil at coarser ticks: faster, less faithful.
    pub turmoil_ticks: Vec<EngineFigures>,
    /// Engine throughput (scenarios per second, oracles not counted), direct over turmoil
    /// at its 1 ms tick.
    pub ratio_direct_over_turmoil: f64,
    /// Oracle time per history record as histories grow (the standard workload stretched).
    pub oracle_growth: Vec<OracleGrowth>,
    /// ns per record at the longest history over ns per record at the shortest: about 1
    /// when the oracles are linear.
    pub oracle_growth_ratio: f64,
    pub check_revision: String,
    pub check_depth: u32,
    pub check_states: u64,
    pub check_unique_states: u64,
    pub check_states_per_s: f64,
    pub command: String,
}

fn standard() -> Scenario {
    ssesim_scenarios::parse_str(STANDARD).expect("the standard scenario parses")
}

fn params() -> Params {
    revisions::preset(REVISION).expect("reference preset")
}

/// Runs `runs` seeds of `scenario` on an engine and judges each, timing both.
fn time_engine(
    engine: EngineKind,
    tick_ms: Option<u64>,
    scenario: &Scenario,
    runs: u64,
) -> EngineFigures {
    let params = params();
    let ctx = Context::new(scenario, &params);
    let mut sim_ms = 0u64;
    let mut run_s = 0.0;
    let mut judge_s = 0.0;
    for seed in 1..=runs {
        let w = Stopwatch::start();
        let report = match (engine, tick_ms) {
            (EngineKind::Turmoil, Some(tick)) => ssesim_sim::turmoil::run_with(
                scenario,
                &params,
                seed,
                &TurmoilConfig { tick_ms: tick },
            ),
            _ => ssesim_sim::run(engine, scenario, &params, seed),
        };
        run_s += w.secs();
        let w = Stopwatch::start();
        let verdicts = judge(&ctx, &report.history);
        judge_s += w.secs();
        std::hint::black_box(verdicts);
        sim_ms += report.stats.sim_ms;
    }
    let wall_s = run_s + judge_s;
    EngineFigures {
        engine: engine.to_string(),
        tick_ms,
        runs,
        wall_s,
        scenarios_per_s: runs as f64 / run_s,
        sim_s_per_wall_s: sim_ms as f64 / 1000.0 / run_s,
        judged_scenarios_per_s: runs as f64 / wall_s,
        oracle_share: judge_s / wall_s,
        catalog_agreement: None,
    }
}

/// The standard scenario stretched `k` times: the same workload and faults repeated in
/// consecutive 60 s windows, healing in the last 20 s (faults that would fall after the
/// heal are left out).
fn stretched(base: &Scenario, k: u64) -> Scenario {
    let mut s = base.clone();
    let span = base.duration_ms;
    s.steps = (0..k)
        .flat_map(|i| {
            base.steps.iter().map(move |st| Step {
                at_ms: st.at_ms + i * span,
                action: st.action.clone(),
            })
        })
        .filter(|st| !st.action.is_fault() || st.at_ms < span * k - 20_000)
        .collect();
    s.duration_ms = span * k;
    s.heal_at_ms = Some(span * k - 20_000);
    s
}

fn oracle_growth(base: &Scenario) -> (Vec<OracleGrowth>, f64) {
    let params = params();
    let mut out = Vec::new();
    for k in [1u64, 2, 4, 8] {
        let scenario = stretched(base, k);
        let ctx = Context::new(&scenario, &params);
        let report = ssesim_sim::run(EngineKind::Direct, &scenario, &params, 1);
        let reps = (16 / k).max(2);
        let w = Stopwatch::start();
        for _ in 0..reps {
            std::hint::black_box(judge(&ctx, &report.history));
        }
        let judge_us = w.secs() * 1e6 / reps as f64;
        let n = report.history.len();
        out.push(OracleGrowth {
            history_records: n,
            judge_us,
            ns_per_record: judge_us * 1000.0 / n as f64,
        });
    }
    let ratio = out.last().map_or(1.0, |l| l.ns_per_record) / out[0].ns_per_record;
    (out, ratio)
}

/// For each tick, how many catalog scenarios x revisions give the same verdicts as at the
/// 1 ms tick (which is run once).
fn catalog_agreement(ticks: &[u64]) -> Result<Vec<String>, Failure> {
    let catalog = crate::load_catalog()?;
    let mut same = vec![0; ticks.len()];
    let mut total = 0;
    for source in &catalog {
        let scenario = &source.scenario;
        for rev in revisions::NAMES {
            let params = revisions::preset(rev).expect("known revision");
            let ctx = Context::new(scenario, &params);
            let verdicts = |tick_ms| {
                let report = ssesim_sim::turmoil::run_with(
                    scenario,
                    &params,
                    scenario.seed,
                    &TurmoilConfig { tick_ms },
                );
                judge(&ctx, &report.history).failed_ids()
            };
            let fine = verdicts(1);
            total += 1;
            for (n, &tick) in same.iter_mut().zip(ticks) {
                if verdicts(tick) == fine {
                    *n += 1;
                }
            }
        }
    }
    Ok(same.into_iter().map(|n| format!("{n}/{total}")).collect())
}

pub struct BenchArgs {
    pub json: bool,
    /// Fewer runs, for a quick look (and the CLI test).
    pub quick: bool,
}

pub fn run(args: BenchArgs) -> Result<u8, Failure> {
    let base = standard();
    let (direct_runs, turmoil_runs, check_depth) = if args.quick {
        (20, 2, 1)
    } else {
        (2000, 20, 2)
    };
    let say = |m: &str| {
        if !args.json {
            eprintln!("bench: {m}");
        }
    };
    say("direct engine");
    let direct = time_engine(EngineKind::Direct, None, &base, direct_runs);
    say("turmoil engine, 1 ms tick");
    let turmoil = time_engine(EngineKind::Turmoil, None, &base, turmoil_runs);
    const TICKS: [u64; 4] = [2, 3, 4, 5];
    let mut turmoil_ticks = Vec::new();
    for tick in TICKS {
        say(&format!("turmoil engine, {tick} ms tick"));
        turmoil_ticks.push(time_engine(
            EngineKind::Turmoil,
            Some(tick),
            &base,
            turmoil_runs,
        ));
    }
    if !args.quick {
        say("catalog verdicts at each tick");
        for (f, agreement) in turmoil_ticks.iter_mut().zip(catalog_agreement(&TICKS)?) {
            f.catalog_agreement = Some(agreement);
        }
    }
    say("oracle growth");
    let (growth, growth_ratio) = oracle_growth(&base);
    say("exhaustive check");
    let cfg = CheckConfig {
        revision: "r7".into(),
        depth: check_depth,
        clients: 1,
        sessions: 1,
        jobs: 1,
        out: None,
    };
    let w = Stopwatch::start();
    let report = check::check(&cfg, &mut |_, _, _| {}).map_err(|e| Failure(2, e))?;
    let check_s = w.secs();
    let bench = Bench {
        machine_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        standard_scenario: "scenarios/bench/standard.json".into(),
        revision: REVISION.into(),
        ratio_direct_over_turmoil: direct.scenarios_per_s / turmoil.scenarios_per_s,
        direct,
        turmoil,
        turmoil_ticks,
        oracle_growth: growth,
        oracle_growth_ratio: growth_ratio,
        check_revision: cfg.revision.clone(),
        check_depth,
        check_states: report.states_explored,
        check_unique_states: report.unique_states,
        check_states_per_s: report.states_explored as f64 / check_s,
        command: if args.quick {
            "cargo run --release -- bench --quick".into()
        } else {
            "cargo run --release -- bench".into()
        },
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&bench).expect("figures serialise")
        );
    } else {
        print!("{}", bench.to_text());
    }
    Ok(0)
}

impl Bench {
    fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "ssesim bench on {} core(s), single-threaded; standard scenario {} on {}",
            self.machine_cores, self.standard_scenario, self.revision
        );
        let _ = writeln!(
            s,
            "{:<22} {:>6} {:>12} {:>14} {:>10} {:>13} {:>10}",
            "engine", "runs", "scenarios/s", "sim s/wall s", "judged/s", "oracle share", "catalog"
        );
        for f in std::iter::once(&self.direct)
            .chain(std::iter::once(&self.turmoil))
            .chain(&self.turmoil_ticks)
        {
            let name = match f.tick_ms {
                Some(t) => format!("{} ({t} ms tick)", f.engine),
                None if f.engine == "turmoil" => "turmoil (1 ms tick)".to_string(),
                None => f.engine.clone(),
            };
            let _ = writeln!(
                s,
                "{:<22} {:>6} {:>12.1} {:>14.0} {:>10.1} {:>12.1}% {:>10}",
                name,
                f.runs,
                f.scenarios_per_s,
                f.sim_s_per_wall_s,
                f.judged_scenarios_per_s,
                f.oracle_share * 100.0,
                f.catalog_agreement.as_deref().unwrap_or("-")
            );
        }
        let _ = writeln!(
            s,
            "ratio_direct_over_turmoil: {:.0}",
            self.ratio_direct_over_turmoil
        );
        let _ = writeln!(s, "oracles as the history grows:");
        for g in &self.oracle_growth {
            let _ = writeln!(
                s,
                "  {:>7} records: {:>9.0} us, {:>6.0} ns/record",
                g.history_records, g.judge_us, g.ns_per_record
            );
        }
        let _ = writeln!(
            s,
            "  ns/record, longest over shortest: {:.2} (1.0 = linear)",
            self.oracle_growth_ratio
        );
        let _ = writeln!(
            s,
            "exhaustive check ({} depth {}): {} states ({} unique), {:.0} states/s",
            self.check_revision,
            self.check_depth,
            self.check_states,
            self.check_unique_states,
            self.check_states_per_s
        );
        let _ = writeln!(s, "reproduce: {}", self.command);
        s
    }
}
