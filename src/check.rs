//! Bounded exhaustive search (`ssesim check`): every schedule of up to `depth` moves over a
//! small configuration, breadth first, with states already seen skipped.
//!
//! A *move* is one action of a small alphabet (a send, a forced reconnect, a double
//! welcome, a latency spike on a tab's link, a crash, a lost reply) placed at one of the
//! moments where the run does something next: right after the previous move, or just before
//! one of the next [`MOMENTS`] distinct times at which a machine takes an input or a step
//! takes effect. Those are the only places where placing an action can change the outcome,
//! so enumerating them enumerates the interleavings of actions with deliveries, timers and
//! faults; the spike reorders deliveries across a tab's connections (a POST sent in that
//! millisecond is slow, everything after it is not).
//!
//! Every node is a scenario (the moves so far as steps), run from scratch on the direct
//! engine: its state after the last move is hashed for deduplication
//! ([`ssesim_sim::direct::DirectSim::state_digest`]: machines, store, network, timers, faults,
//! RNG) and its completed run (heal, settle) is judged by the oracles. Every node is judged,
//! including those whose state was seen already (their past may differ); only the first node
//! of each state is expanded. Breadth first, so the first failing node of an invariant is a
//! shortest counterexample, written as a scenario file that `ssesim replay` reproduces
//! exactly.

use crate::campaign::{par_map, write_scenario};
use ssesim_model::Params;
use ssesim_oracles::{check as judge, Context};
use ssesim_scenarios::{Action, Constants, Network, Scenario, Step, Topology, SCHEMA_VERSION};
use ssesim_sim::direct::DirectSim;
use ssesim_sim::history::Event;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// How many upcoming moments a move may be placed before (besides "right after the
/// previous move").
pub const MOMENTS: usize = 4;

/// The fault phase: moves happen before it ends; liveness is judged after.
const HEAL_AT_MS: u64 = 6000;
const DURATION_MS: u64 = 30_000;
/// The one-way latency of a link during a spike.
const SPIKE_MS: u64 = 500;

/// Largest configuration `check` accepts: the search grows as (alphabet x moments)^depth.
pub const MAX_CLIENTS: u32 = 2;
pub const MAX_SESSIONS: u32 = 2;
pub const MAX_DEPTH: u32 = 6;

#[derive(Clone, Debug)]
pub struct CheckConfig {
    pub revision: String,
    pub depth: u32,
    pub clients: u32,
    pub sessions: u32,
    pub jobs: usize,
    /// Where shortest counterexamples are written (`None`: nowhere).
    pub out: Option<PathBuf>,
}

/// What one level of the search did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Level {
    pub depth: u32,
    /// Nodes run and judged at this depth.
    pub states: u64,
    /// Of them, states not seen at a smaller depth or earlier at this one.
    pub unique: u64,
}

/// A shortest schedule breaking one invariant.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Counterexample {
    pub invariant: String,
    pub depth: u32,
    /// Every invariant the scenario breaks on the direct engine.
    pub direct_verdict: Vec<String>,
    /// The same scenario replayed in turmoil.
    pub turmoil_verdict: Vec<String>,
    pub scenario_path: Option<PathBuf>,
    #[serde(skip)]
    pub scenario: Scenario,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct CheckReport {
    pub revision: String,
    pub depth: u32,
    pub clients: u32,
    pub sessions: u32,
    /// The alphabet's actions, as step names.
    pub alphabet: Vec<String>,
    /// Nodes run and judged.
    pub states_explored: u64,
    /// Distinct states among them.
    pub unique_states: u64,
    /// The deepest level reached (smaller than `depth` when the space ran out first).
    pub max_depth: u32,
    pub levels: Vec<Level>,
    /// Per invariant, a shortest counterexample; empty when every invariant held.
    pub counterexamples: Vec<Counterexample>,
}

/// One move of the alphabet: the steps it expands to, relative to its time.
#[derive(Clone, Debug)]
struct Move {
    name: String,
    steps: Vec<(u64, Action)>,
}

fn alphabet(clients: u32, sessions: u32) -> Vec<Move> {
    let mut moves = Vec::new();
    let one = |name: String, action: Action| Move {
        name,
        steps: vec![(0, action)],
    };
    for c in 0..clients {
        for s in 1..=sessions {
            moves.push(one(
                format!("send tab{c} s{s}"),
                Action::Send {
                    client: c,
                    session: Some(format!("s{s}")),
                    id: None,
                    text: "hi".into(),
                },
            ));
        }
        moves.push(one(
            format!("send tab{c} new chat"),
            Action::Send {
                client: c,
                session: None,
                id: None,
                text: "new".into(),
            },
        ));
        moves.push(one(
            format!("force_reconnect tab{c}"),
            Action::ForceReconnect { client: c },
        ));
        moves.push(one(
            format!("double_welcome tab{c}"),
            Action::DoubleWelcome {
                client: c,
                gap_ms: 1,
            },
        ));
        let latency = |ms: u64| Action::Latency {
            client: c,
            min_ms: ms,
            max_ms: ms,
        };
        moves.push(Move {
            name: format!("spike tab{c}"),
            steps: vec![(0, latency(SPIKE_MS)), (1, latency(1))],
        });
    }
    moves.push(one("crash".into(), Action::Crash));
    moves.push(one(
        "lose_response send".into(),
        Action::LoseResponse {
            endpoint: ssesim_model::Endpoint::Send,
            count: 1,
        },
    ));
    moves
}

/// The configuration's scenario with no moves yet: fixed 1 ms links (so the moments are
/// exact), every tab watching every session from the start, one agent event per session.
fn root(cfg: &CheckConfig) -> Scenario {
    let sessions: Vec<String> = (1..=cfg.sessions).map(|s| format!("s{s}")).collect();
    let mut steps = Vec::new();
    for c in 0..cfg.clients {
        for s in &sessions {
            steps.push(Step {
                at_ms: 0,
                action: Action::Watch {
                    client: c,
                    session: s.clone(),
                },
            });
        }
    }
    Scenario {
        schema: SCHEMA_VERSION,
        name: format!("check-{}", cfg.revision),
        description: String::new(),
        revision: cfg.revision.clone(),
        seed: 0,
        topology: Topology {
            clients: cfg.clients,
            sessions,
            autoconnect: true,
        },
        constants: Constants {
            heartbeat_ms: Some(1000),
            ..Constants::default()
        },
        network: Network {
            min_latency_ms: 1,
            max_latency_ms: 1,
            ..crate::explore::compact_network()
        },
        duration_ms: DURATION_MS,
        heal_at_ms: Some(HEAL_AT_MS),
        steps,
        expect: BTreeMap::new(),
    }
}

/// A node of the search: the moves so far.
#[derive(Clone, Debug)]
struct Node {
    steps: Vec<Step>,
    /// Time of the last move (0 at the root).
    at: u64,
    depth: u32,
    moves: Vec<String>,
}

/// What running a node showed.
struct Eval {
    digest: u64,
    failed: Vec<&'static str>,
    /// The moments a child may be placed at (besides `at`).
    moments: Vec<u64>,
}

fn evaluate(base: &Scenario, params: &Params, node: &Node) -> Eval {
    let mut scenario = base.clone();
    scenario.steps = node.steps.clone();
    let mut sim = DirectSim::new(&scenario, params, scenario.seed);
    sim.run_until(node.at);
    let digest = sim.state_digest();
    let report = sim.finish();
    let failed = judge(&Context::new(&scenario, params), &report.history).failed_ids();
    let mut moments = BTreeSet::new();
    for r in &report.history.records {
        if r.at <= node.at || r.at >= HEAL_AT_MS {
            continue;
        }
        if matches!(
            r.event,
            Event::ClientIn { .. } | Event::ServerIn { .. } | Event::Step { .. }
        ) {
            moments.insert(r.at);
            if moments.len() == MOMENTS {
                break;
            }
        }
    }
    Eval {
        digest,
        failed,
        moments: moments.into_iter().collect(),
    }
}

fn children(node: &Node, moments: &[u64], alphabet: &[Move]) -> Vec<Node> {
    let mut out = Vec::new();
    let times = std::iter::once(node.at).chain(moments.iter().copied());
    for at in times {
        for m in alphabet {
            let mut steps = node.steps.clone();
            steps.extend(m.steps.iter().map(|(dt, action)| Step {
                at_ms: at + dt,
                action: action.clone(),
            }));
            let mut moves = node.moves.clone();
            moves.push(format!("{} @{at}ms", m.name));
            out.push(Node {
                steps,
                at,
                depth: node.depth + 1,
                moves,
            });
        }
    }
    out
}

/// Validates a configuration; the message names what is wrong.
pub fn validate(cfg: &CheckConfig) -> Result<Params, String> {
    let params = crate::campaign::preset(&cfg.revision)?;
    if cfg.depth == 0 || cfg.depth > MAX_DEPTH {
        return Err(format!(
            "--depth {} is out of range: expected 1 to {MAX_DEPTH}",
            cfg.depth
        ));
    }
    if cfg.clients == 0 || cfg.clients > MAX_CLIENTS {
        return Err(format!(
            "--clients {} is out of range: expected 1 to {MAX_CLIENTS}",
            cfg.clients
        ));
    }
    if cfg.sessions == 0 || cfg.sessions > MAX_SESSIONS {
        return Err(format!(
            "--sessions {} is out of range: expected 1 to {MAX_SESSIONS}",
            cfg.sessions
        ));
    }
    Ok(params)
}

/// Runs the search. `progress(depth, done, total)` is called on this thread.
pub fn check(
    cfg: &CheckConfig,
    progress: &mut dyn FnMut(u32, usize, usize),
) -> Result<CheckReport, String> {
    let params = validate(cfg)?;
    let base = root(cfg);
    let alphabet = alphabet(cfg.clients, cfg.sessions);
    let mut seen: BTreeSet<u64> = BTreeSet::new();
    let mut levels = Vec::new();
    let mut found: BTreeMap<&'static str, (u32, Node, Vec<&'static str>)> = BTreeMap::new();
    let root_node = Node {
        steps: base.steps.clone(),
        at: 0,
        depth: 0,
        moves: Vec::new(),
    };
    let mut frontier = vec![root_node];
    let mut explored = 0u64;
    let mut max_depth = 0;
    for depth in 0..=cfg.depth {
        if frontier.is_empty() {
            break;
        }
        let evals = par_map(
            &frontier,
            cfg.jobs,
            &|n: &Node| evaluate(&base, &params, n),
            &mut |done, _| progress(depth, done, frontier.len()),
        );
        explored += frontier.len() as u64;
        max_depth = depth;
        let mut next = Vec::new();
        let mut unique = 0;
        for (node, eval) in frontier.iter().zip(&evals) {
            for inv in &eval.failed {
                found
                    .entry(inv)
                    .or_insert_with(|| (depth, node.clone(), eval.failed.clone()));
            }
            if seen.insert(eval.digest) {
                unique += 1;
                if depth < cfg.depth {
                    next.extend(children(node, &eval.moments, &alphabet));
                }
            }
        }
        levels.push(Level {
            depth,
            states: frontier.len() as u64,
            unique,
        });
        frontier = next;
    }
    let mut counterexamples = Vec::new();
    for (inv, (depth, node, failed)) in found {
        let mut scenario = base.clone();
        scenario.steps = node.steps.clone();
        scenario.name = format!("check-{}-{inv}-d{depth}", cfg.revision);
        scenario.description = format!(
            "Found by `ssesim check --revision {} --depth {} --clients {} --sessions {}`: a \
             shortest schedule ({depth} moves) breaking {inv}: {}.",
            cfg.revision,
            cfg.depth,
            cfg.clients,
            cfg.sessions,
            if node.moves.is_empty() {
                "no move at all".to_string()
            } else {
                node.moves.join(", ")
            }
        );
        let direct_verdict: Vec<String> = failed.iter().map(|s| s.to_string()).collect();
        scenario
            .expect
            .insert(cfg.revision.clone(), direct_verdict.clone());
        let turmoil_verdict = crate::campaign::run(&scenario, &params)
            .verdicts
            .failed_ids()
            .into_iter()
            .map(String::from)
            .collect();
        let scenario_path = match &cfg.out {
            Some(dir) => Some(write_scenario(
                dir,
                &format!("check-{}-{inv}-d{depth}.json", cfg.revision),
                &scenario,
            )?),
            None => None,
        };
        counterexamples.push(Counterexample {
            invariant: inv.to_string(),
            depth,
            direct_verdict,
            turmoil_verdict,
            scenario_path,
            scenario,
        });
    }
    Ok(CheckReport {
        revision: cfg.revision.clone(),
        depth: cfg.depth,
        clients: cfg.clients,
        sessions: cfg.sessions,
        alphabet: alphabet.iter().map(|m| m.name.clone()).collect(),
        states_explored: explored,
        unique_states: seen.len() as u64,
        max_depth,
        levels,
        counterexamples,
    })
}

impl CheckReport {
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "check: {} at depth {} with {} tab(s) and {} session(s); {} moves x up to {} \
             moments per level",
            self.revision,
            self.depth,
            self.clients,
            self.sessions,
            self.alphabet.len(),
            MOMENTS + 1
        );
        let _ = writeln!(
            s,
            "states explored {}, unique states {}, max depth {}",
            self.states_explored, self.unique_states, self.max_depth
        );
        for l in &self.levels {
            let _ = writeln!(
                s,
                "  depth {}: {} states, {} unique",
                l.depth, l.states, l.unique
            );
        }
        if self.counterexamples.is_empty() {
            let _ = writeln!(s, "no invariant broken up to depth {}", self.max_depth);
        }
        for c in &self.counterexamples {
            let _ = writeln!(
                s,
                "VIOLATED {} at depth {}: {} (turmoil replay: {})",
                c.invariant,
                c.depth,
                c.scenario.description,
                if c.turmoil_verdict.is_empty() {
                    "holds".to_string()
                } else {
                    c.turmoil_verdict.join(", ")
                }
            );
            if let Some(p) = &c.scenario_path {
                let _ = writeln!(s, "  scenario: {}", p.display());
            }
        }
        s
    }
}

/// Where `check` writes counterexamples unless told otherwise.
pub fn default_out() -> &'static Path {
    Path::new(crate::campaign::DEFAULT_OUT)
}
