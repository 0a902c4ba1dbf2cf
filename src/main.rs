//! `ssesim`: the command line of the bench.
//!
//! Exit codes: 0 the run passed, 1 it found violations, 2 bad input (unreadable or
//! malformed scenario, unknown revision or invariant, bad flag). Nothing here panics on
//! user input. With no command, `ssesim` runs a short campaign over every revision and
//! prints the revision x invariant matrix.

mod bench;
mod commands;
mod wall;

use clap::{Parser, Subcommand};
use serde_json::json;
use ssesim::campaign::{Shard, DEFAULT_OUT, DEFAULT_SHRINK_RUNS};
use ssesim_model::revisions;
use ssesim_scenarios::Scenario;
use ssesim_sim::history::EndVerdict;
use ssesim_sim::EngineKind;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The scenario `ssesim demo` runs.
const DEMO: &str = include_str!("../scenarios/catalog/demo-interrupt-crash.json");

#[derive(Parser)]
#[command(
    name = "ssesim",
    version,
    about = "Deterministic simulation and fault-injection bench for mitzo's SSE chat transport"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the built-in demo scenario (the interrupt crash) and print its timeline.
    Demo,
    /// A campaign: generated cases (swarm faults) on revisions; the first failure of every
    /// (revision, invariant) shrunk to a scenario file.
    Explore {
        /// A revision, a comma-separated list, or `all`.
        #[arg(long, default_value = "all")]
        revision: String,
        /// The engine the cases run on: `direct` or `turmoil` (shrunk failures are replayed
        /// in turmoil either way).
        #[arg(long, default_value = "direct")]
        engine: EngineKind,
        /// The campaign's size: case indices 0..N (all shards together).
        #[arg(long, default_value_t = 200)]
        cases: u64,
        /// The campaign seed; a case depends only on (seed, index).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Worker threads (default: the machine's parallelism); results do not depend on it.
        #[arg(long)]
        jobs: Option<usize>,
        /// Run only shard K of N: the cases with index % N == K-1.
        #[arg(long, value_name = "K/N")]
        shard: Option<Shard>,
        /// Print the summary as JSON (the input of `ssesim merge`).
        #[arg(long)]
        json: bool,
        /// Where shrunk scenarios are written.
        #[arg(long, value_name = "DIR", default_value = DEFAULT_OUT)]
        out: PathBuf,
        /// Simulation runs each shrink may spend along the case's value tree (3/4 of it),
        /// and again deleting steps.
        #[arg(long, value_name = "N", default_value_t = DEFAULT_SHRINK_RUNS)]
        shrink_runs: u64,
        /// Do not shrink failures (and write no scenario files).
        #[arg(long)]
        no_shrink: bool,
    },
    /// Time to bug: run cases on one revision until one breaks an invariant (or until one
    /// is a documented bug, with --bug), shrink it, write the scenario file.
    Hunt {
        #[arg(long, required_unless_present = "bug")]
        revision: Option<String>,
        /// The engine the cases run on: `direct` or `turmoil` (the shrunk failure is
        /// replayed in turmoil either way).
        #[arg(long, default_value = "direct")]
        engine: EngineKind,
        /// The invariant to find (default: any).
        #[arg(long)]
        invariant: Option<String>,
        /// Find a documented bug as itself (an id of `src/bugs.rs`, e.g. B7, "budget drop"):
        /// a case counts when it breaks the bug's invariant on its hunt revision and not on
        /// its control revisions (the one before the bug and the one that fixed it), and
        /// satisfies its probe and keeps rules; the shrink keeps all of that. Cases are drawn
        /// leaning towards the fault and workload kinds of the bug's catalog file.
        #[arg(long, value_name = "ID", conflicts_with_all = ["revision", "invariant"])]
        bug: Option<String>,
        /// With --bug: draw cases with the default odds, not leaning towards the catalog.
        #[arg(long)]
        no_focus: bool,
        /// Give up after this many cases.
        #[arg(long, default_value_t = 100_000)]
        max_cases: u64,
        /// Shrink the first N failing cases and keep the shortest result (time to bug is
        /// still the first one's; the search goes on to the N-th, within --max-cases).
        #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
        candidates: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Worker threads (default: the machine's parallelism); results do not depend on it.
        #[arg(long)]
        jobs: Option<usize>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Where the shrunk scenario is written.
        #[arg(long, value_name = "DIR", default_value = DEFAULT_OUT)]
        out: PathBuf,
        /// Simulation runs the shrink may spend along the case's value tree (3/4 of it),
        /// and again deleting steps.
        #[arg(long, value_name = "N", default_value_t = DEFAULT_SHRINK_RUNS)]
        shrink_runs: u64,
    },
    /// Combine the JSON summaries of shards (`explore --shard K/N --json`) into one.
    Merge {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print the merged summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run one scenario file (in the turmoil engine unless told otherwise).
    Replay {
        /// The scenario file (JSON; see scenarios/FORMAT.md).
        file: PathBuf,
        /// The engine: `turmoil` or `direct`.
        #[arg(long, default_value = "turmoil")]
        engine: EngineKind,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Override the scenario's revision.
        #[arg(long)]
        revision: Option<String>,
        /// Print one JSON object instead of the timeline.
        #[arg(long)]
        json: bool,
        /// Also write the full history as JSON lines to this file.
        #[arg(long, value_name = "PATH")]
        history: Option<PathBuf>,
        /// turmoil's tick in ms (turmoil engine only; default 1, the resolution of scenario
        /// times). A longer tick runs faster and rounds every delay up to a whole tick, so
        /// races decided within it may go the other way: `reports/bench.md` measures both.
        #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=1000))]
        tick_ms: Option<u64>,
    },
    /// Revision x invariant matrix from the catalog and a fixed-seed exploration budget.
    Matrix {
        /// Generated cases per revision, on top of the catalog.
        #[arg(long, default_value_t = 40)]
        cases: u64,
        /// First seed of the generated cases.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write matrix.md and counterexamples.md into this directory.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Print the scenario of a generated exploration case, ready for `replay`.
    Generate {
        /// The case seed (as shown in reports: "explore case seed N"); with `--index`, the
        /// campaign seed.
        seed: u64,
        #[arg(long, default_value = "baseline")]
        revision: String,
        /// Print case INDEX of the campaign with this seed (`explore`/`hunt` cases).
        #[arg(long)]
        index: Option<u64>,
    },
    /// Bounded exhaustive search: every schedule of up to DEPTH moves (sends, reconnects,
    /// double welcomes, latency spikes, crashes, lost replies) at every moment something
    /// happens, on the direct engine, states already seen skipped; a shortest
    /// counterexample per broken invariant, written as a scenario file.
    Check {
        #[arg(long)]
        revision: String,
        #[arg(long, default_value_t = 3)]
        depth: u32,
        #[arg(long, default_value_t = 1)]
        clients: u32,
        #[arg(long, default_value_t = 1)]
        sessions: u32,
        /// Worker threads (default: the machine's parallelism); results do not depend on it.
        #[arg(long)]
        jobs: Option<usize>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Where the counterexamples are written.
        #[arg(long, value_name = "DIR", default_value = DEFAULT_OUT)]
        out: PathBuf,
    },
    /// Performance figures: both engines on the standard scenario, turmoil's tick, oracle
    /// cost and growth, exhaustive states per second, and the direct/turmoil ratio.
    Bench {
        /// Print one JSON object (with `ratio_direct_over_turmoil`).
        #[arg(long)]
        json: bool,
        /// A few runs of each, for a quick look.
        #[arg(long)]
        quick: bool,
    },
    /// List the invariants the oracles check, with their definitions.
    Invariants {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of scenario files.
    Schema,
    /// List the revision presets.
    Revisions,
}

/// A failure to report: the message and the exit code.
struct Failure(u8, String);

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        return exit(commands::default_campaign());
    };
    let result = match command {
        Command::Demo => demo(),
        Command::Explore {
            engine,
            revision,
            cases,
            seed,
            jobs,
            shard,
            json,
            out,
            shrink_runs,
            no_shrink,
        } => commands::explore(commands::ExploreArgs {
            engine,
            revision,
            cases,
            seed,
            jobs,
            shard,
            json,
            out,
            shrink_runs,
            no_shrink,
        }),
        Command::Hunt {
            revision,
            engine,
            invariant,
            bug,
            no_focus,
            max_cases,
            candidates,
            seed,
            jobs,
            json,
            out,
            shrink_runs,
        } => commands::hunt(commands::HuntArgs {
            engine,
            revision,
            invariant,
            bug,
            focus: !no_focus,
            max_cases,
            candidates: candidates as usize,
            seed,
            jobs,
            json,
            out,
            shrink_runs,
        }),
        Command::Merge { files, json } => commands::merge(&files, json),
        Command::Check {
            revision,
            depth,
            clients,
            sessions,
            jobs,
            json,
            out,
        } => commands::check(
            ssesim::check::CheckConfig {
                revision,
                depth,
                clients,
                sessions,
                jobs: 1,
                out: Some(out),
            },
            jobs,
            json,
        ),
        Command::Bench { json, quick } => bench::run(bench::BenchArgs { json, quick }),
        Command::Replay {
            file,
            engine,
            seed,
            revision,
            json,
            history,
            tick_ms,
        } => replay(
            &file,
            engine,
            tick_ms,
            seed,
            revision.as_deref(),
            json,
            history.as_deref(),
        ),
        Command::Matrix { cases, seed, out } => matrix(cases, seed, out.as_deref()),
        Command::Generate {
            seed,
            revision,
            index,
        } => preset(&revision).map(|_| {
            let scenario = match index {
                Some(i) => ssesim::explore::case_scenario(seed, i, &revision),
                None => ssesim::explore::generate(seed, &revision),
            };
            println!("{}", scenario.to_json_pretty());
            0
        }),
        Command::Invariants { json } => {
            invariants(json);
            Ok(0)
        }
        Command::Schema => {
            print!("{}", Scenario::json_schema_text());
            Ok(0)
        }
        Command::Revisions => {
            for name in revisions::NAMES {
                println!("{name}");
            }
            Ok(0)
        }
    };
    exit(result)
}

fn exit(result: Result<u8, Failure>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Failure(code, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

/// `RUST_LOG=ssesim::history=debug` mirrors every history record as a tracing event.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .init();
}

fn demo() -> Result<u8, Failure> {
    let scenario =
        ssesim_scenarios::parse_str(DEMO).map_err(|e| Failure(2, format!("built-in demo: {e}")))?;
    println!("{}\n{}\n", scenario.name, scenario.description);
    let params = preset(&scenario.revision)?;
    let report = ssesim_sim::turmoil::run(&scenario, &params, scenario.seed);
    print!("{}", ssesim_sim::timeline::render(&report.history.records));
    let verdicts = ssesim_oracles::check(
        &ssesim_oracles::Context::new(&scenario, &params),
        &report.history,
    );
    print_verdicts(&verdicts);
    println!(
        "\n{} records, history hash {}; replay it with: cargo run --release -- replay scenarios/catalog/demo-interrupt-crash.json",
        report.history.len(),
        report.history.hash_hex()
    );
    Ok(0)
}

fn preset(name: &str) -> Result<ssesim_model::Params, Failure> {
    revisions::preset(name).ok_or_else(|| {
        Failure(
            2,
            format!(
                "unknown revision `{name}`, expected one of: {}",
                revisions::NAMES.join(", ")
            ),
        )
    })
}

fn replay(
    file: &Path,
    engine: EngineKind,
    tick_ms: Option<u64>,
    seed: Option<u64>,
    revision: Option<&str>,
    as_json: bool,
    history: Option<&Path>,
) -> Result<u8, Failure> {
    let mut scenario = ssesim_scenarios::load_file(file).map_err(|e| Failure(2, e.to_string()))?;
    if let Some(r) = revision {
        scenario.revision = r.to_string();
    }
    let seed = seed.unwrap_or(scenario.seed);
    let params = preset(&scenario.revision)?;
    let report = match (engine, tick_ms) {
        (EngineKind::Turmoil, Some(tick_ms)) => ssesim_sim::turmoil::run_with(
            &scenario,
            &params,
            seed,
            &ssesim_sim::turmoil::TurmoilConfig { tick_ms },
        ),
        (EngineKind::Direct, Some(_)) => {
            return Err(Failure(
                2,
                "--tick-ms is turmoil's; the direct engine has no tick".to_string(),
            ))
        }
        (_, None) => ssesim_sim::run(engine, &scenario, &params, seed),
    };
    if let Some(path) = history {
        std::fs::write(path, report.history.to_jsonl()).map_err(|e| {
            Failure(
                2,
                format!("{}: cannot write the history: {e}", path.display()),
            )
        })?;
    }
    let engine_error = matches!(
        report.history.end_verdict(),
        Some(EndVerdict::EngineError { .. })
    );
    let ctx = ssesim_oracles::Context::new(&scenario, &params);
    let verdicts = ssesim_oracles::check(&ctx, &report.history);
    let pass = verdicts.violations.is_empty() && !engine_error;
    if as_json {
        let out = json!({
            "scenario": scenario.name,
            "revision": scenario.revision,
            "engine": engine,
            "tick_ms": (engine == EngineKind::Turmoil).then(|| tick_ms.unwrap_or(1)),
            "seed": seed,
            "history_hash": report.history.hash_hex(),
            "verdict": if pass { "pass" } else { "fail" },
            "violations": verdicts.violations,
            "unjudged": verdicts.unjudged,
            "expected": scenario.expect.get(&scenario.revision),
            "end": report.history.end_verdict(),
            "probes": ssesim_oracles::probes(&report.history),
            "stats": report.stats,
        });
        println!("{out}");
    } else {
        print!("{}", ssesim_sim::timeline::render(&report.history.records));
        print_verdicts(&verdicts);
        if let Some(expected) = scenario.expect.get(&scenario.revision) {
            let mut expected: Vec<&str> = expected.iter().map(String::as_str).collect();
            expected.sort_unstable();
            let mut actual = verdicts.failed_ids();
            actual.sort_unstable();
            let verdict = if expected == actual {
                "matches"
            } else {
                "DIFFERS from"
            };
            println!(
                "this run {verdict} the file's expectation for {}: {expected:?}",
                scenario.revision
            );
        }
        println!(
            "\n{}: revision {}, {engine} engine, seed {seed}, {} records, hash {}: {}",
            scenario.name,
            scenario.revision,
            report.history.len(),
            report.history.hash_hex(),
            if pass { "pass" } else { "fail" }
        );
    }
    Ok(if pass { 0 } else { 1 })
}

fn print_verdicts(verdicts: &ssesim_oracles::Verdicts) {
    println!();
    if verdicts.violations.is_empty() {
        println!("no invariant violated");
    }
    for v in &verdicts.violations {
        println!(
            "VIOLATED {:<22} at {:>7} ms: {}",
            v.invariant, v.at_ms, v.detail
        );
    }
    if !verdicts.unjudged.is_empty() {
        println!("not judged in this run: {}", verdicts.unjudged.join(", "));
    }
}

fn invariants(as_json: bool) {
    if as_json {
        let list: Vec<serde_json::Value> = ssesim_oracles::INVARIANTS
            .iter()
            .map(|i| json!({"id": i.id, "kind": i.kind, "definition": i.definition}))
            .collect();
        println!("{}", serde_json::Value::Array(list));
        return;
    }
    for i in ssesim_oracles::INVARIANTS {
        let kind = match i.kind {
            ssesim_oracles::Kind::Safety => "safety",
            ssesim_oracles::Kind::Liveness => "liveness",
        };
        println!("{:<22} {:<8} {}", i.id, kind, i.definition);
    }
}

/// The catalog directory, relative to the working directory (the repository root).
const CATALOG: &str = "scenarios/catalog";

fn load_catalog() -> Result<Vec<ssesim::report::Source>, Failure> {
    let dir = Path::new(CATALOG);
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Failure(
            2,
            format!("{CATALOG}: cannot read the catalog ({e}); run from the repository root"),
        )
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let scenario =
                ssesim_scenarios::load_file(&p).map_err(|e| Failure(2, e.to_string()))?;
            Ok(ssesim::report::Source {
                name: p.display().to_string(),
                scenario,
            })
        })
        .collect()
}

fn matrix(cases: u64, seed: u64, out: Option<&Path>) -> Result<u8, Failure> {
    let catalog = load_catalog()?;
    let m = ssesim::report::build(&catalog, cases, seed, |rev| eprintln!("running {rev} ..."));
    let table = m.to_markdown();
    print!("{table}");
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).map_err(|e| Failure(2, format!("{}: {e}", dir.display())))?;
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| Failure(2, format!("{}: {e}", path.display())))
        };
        write(
            "matrix.md",
            &format!("# Revision x invariant matrix\n\n{table}"),
        )?;
        write("counterexamples.md", &m.counterexamples_markdown())?;
        eprintln!(
            "wrote {0}/matrix.md and {0}/counterexamples.md",
            dir.display()
        );
    }
    Ok(0)
}
