//! The revision x invariant matrix, computed by running scenarios (the catalog and a
//! fixed-seed exploration budget), and the smallest counterexample of every failing cell
//! as a timeline and a Mermaid sequence diagram.

use ssesim_model::revisions;
use ssesim_model::{AppNotice, ClientInput, ClientOutput, PostOutcome, ServerEvent, ServerOutput};
use ssesim_oracles::{check, Context, Violation, INVARIANTS};
use ssesim_scenarios::Scenario;
use ssesim_sim::history::{Event, History, Record};
use ssesim_sim::timeline;
use std::collections::BTreeMap;
use std::fmt::Write;

/// A failing run chosen to illustrate a cell.
#[derive(Clone, Debug)]
pub struct Example {
    /// Where the scenario came from: a catalog path or an exploration case.
    pub source: String,
    pub scenario: Scenario,
    pub violation: Violation,
    pub history: History,
}

impl Example {
    /// Smaller is better: fewer steps, then a shorter run, then the source name.
    fn size(&self) -> (usize, u64, &str) {
        (
            self.scenario.steps.len(),
            self.scenario.duration_ms,
            &self.source,
        )
    }
}

#[derive(Clone, Debug, Default)]
pub struct Cell {
    pub failed: bool,
    /// Scenarios in which the invariant failed.
    pub failures: usize,
    pub example: Option<Example>,
}

#[derive(Clone, Debug)]
pub struct Matrix {
    pub revisions: Vec<String>,
    pub cells: BTreeMap<(String, &'static str), Cell>,
    pub catalog_scenarios: usize,
    pub explored_cases: u64,
    pub explore_seed: u64,
}

/// One scenario source the matrix runs: a name for reports and the scenario.
pub struct Source {
    pub name: String,
    pub scenario: Scenario,
}

/// Runs every source on every revision, plus `cases` generated scenarios per revision
/// from `explore_seed`, and keeps the smallest failing example per cell.
pub fn build(
    catalog: &[Source],
    cases: u64,
    explore_seed: u64,
    mut progress: impl FnMut(&str),
) -> Matrix {
    let revisions: Vec<String> = revisions::NAMES.iter().map(|s| s.to_string()).collect();
    let mut cells: BTreeMap<(String, &'static str), Cell> = BTreeMap::new();
    for rev in &revisions {
        for inv in INVARIANTS {
            cells.insert((rev.clone(), inv.id), Cell::default());
        }
    }
    for rev in &revisions {
        progress(rev);
        let params = revisions::preset(rev).expect("known revision");
        let explored = (0..cases).map(|i| {
            let seed = explore_seed.wrapping_add(i);
            Source {
                name: format!("explore case seed {seed}"),
                scenario: crate::explore::generate(seed, rev),
            }
        });
        let catalog = catalog.iter().map(|s| Source {
            name: s.name.clone(),
            scenario: s.scenario.clone(),
        });
        for source in catalog.chain(explored) {
            let mut scenario = source.scenario;
            scenario.revision = rev.clone();
            let report = ssesim_sim::turmoil::run(&scenario, &params, scenario.seed);
            let verdicts = check(&Context::new(&scenario, &params), &report.history);
            for v in &verdicts.violations {
                let Some(inv) = INVARIANTS.iter().find(|i| i.id == v.invariant) else {
                    continue;
                };
                let cell = cells.get_mut(&(rev.clone(), inv.id)).expect("cell exists");
                if !cell.failed
                    || cell
                        .example
                        .as_ref()
                        .is_some_and(|e| e.source != source.name)
                {
                    cell.failures += 1;
                }
                cell.failed = true;
                let candidate = Example {
                    source: source.name.clone(),
                    scenario: scenario.clone(),
                    violation: v.clone(),
                    history: report.history.clone(),
                };
                let better = cell
                    .example
                    .as_ref()
                    .is_none_or(|e| candidate.size() < e.size());
                if better {
                    cell.example = Some(candidate);
                }
            }
        }
    }
    Matrix {
        revisions,
        cells,
        catalog_scenarios: catalog.len(),
        explored_cases: cases,
        explore_seed,
    }
}

impl Matrix {
    pub fn failed(&self, revision: &str, invariant: &str) -> bool {
        self.cells
            .iter()
            .any(|((r, i), c)| r == revision && *i == invariant && c.failed)
    }

    /// The table: one row per invariant, one column per revision.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Revision x invariant, from {} catalog scenarios and {} generated cases per revision (exploration seed {}). `FAIL` means at least one run broke the invariant; `ok` means none did.\n",
            self.catalog_scenarios, self.explored_cases, self.explore_seed
        );
        let _ = write!(out, "| invariant |");
        for r in &self.revisions {
            let _ = write!(out, " {r} |");
        }
        let _ = write!(out, "\n|---|");
        for _ in &self.revisions {
            let _ = write!(out, "---|");
        }
        out.push('\n');
        for inv in INVARIANTS {
            let _ = write!(out, "| `{}` |", inv.id);
            for r in &self.revisions {
                let mark = if self.failed(r, inv.id) { "FAIL" } else { "ok" };
                let _ = write!(out, " {mark} |");
            }
            out.push('\n');
        }
        out
    }

    /// The smallest counterexample of every failing cell.
    pub fn counterexamples_markdown(&self) -> String {
        let mut out = String::from("# Counterexamples\n\nFor every failing cell of the matrix, the smallest failing run found (fewest steps), with the command that replays it, its timeline up to the violation, and a sequence diagram.\n");
        for r in &self.revisions {
            for inv in INVARIANTS {
                let Some(cell) = self.cells.get(&(r.clone(), inv.id)) else {
                    continue;
                };
                let Some(ex) = &cell.example else {
                    continue;
                };
                let _ = writeln!(out, "\n## {r} x {}\n", inv.id);
                let _ = writeln!(
                    out,
                    "Failed in {} scenario(s). Smallest: `{}` ({} steps). At {} ms: {}\n",
                    cell.failures,
                    ex.source,
                    ex.scenario.steps.len(),
                    ex.violation.at_ms,
                    ex.violation.detail
                );
                if ex.source.ends_with(".json") {
                    let _ = writeln!(
                        out,
                        "Replay: `cargo run --release -- replay {} --revision {r}`\n",
                        ex.source
                    );
                }
                out.push_str(&render_example(ex));
            }
        }
        out
    }
}

/// The records of a run up to its violation, as a timeline and a diagram.
pub fn render_example(ex: &Example) -> String {
    let last = ex
        .violation
        .records
        .iter()
        .copied()
        .max()
        .unwrap_or(ex.history.len().saturating_sub(1));
    let records = &ex.history.records[..=last.min(ex.history.len().saturating_sub(1))];
    let mut out = String::new();
    out.push_str("```text\n");
    out.push_str(&clip_lines(&timeline::render(records), 12, 48));
    out.push_str("```\n\n");
    out.push_str("```mermaid\n");
    out.push_str(&mermaid(records, ex.scenario.topology.clients));
    out.push_str("```\n");
    out
}

/// Keeps the first `head` and last `tail` lines, saying how many were left out.
fn clip_lines(text: &str, head: usize, tail: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= head + tail {
        return text.to_string();
    }
    let mut out = String::new();
    for l in &lines[..head] {
        let _ = writeln!(out, "{l}");
    }
    let _ = writeln!(
        out,
        "   ... {} lines left out ...",
        lines.len() - head - tail
    );
    for l in &lines[lines.len() - tail..] {
        let _ = writeln!(out, "{l}");
    }
    out
}

/// Mermaid treats `#` and `;` specially inside messages.
fn safe(text: &str) -> String {
    text.replace('#', ":").replace(';', ",")
}

fn event_label(e: &ServerEvent) -> Option<String> {
    Some(match e {
        ServerEvent::Welcome { connection_id, .. } => format!("welcome {connection_id}"),
        ServerEvent::Session(ev) => format!("{} seq {}", ev.session, ev.seq),
        ServerEvent::Reconnected { .. } => "reconnected".to_string(),
        _ => return None,
    })
}

/// A sequence diagram with one lane per tab, the server and the agent; faults as notes.
pub fn mermaid(records: &[Record], tabs: u32) -> String {
    let mut lines = Vec::new();
    for r in records {
        let line = match &r.event {
            Event::Step { action, .. } if action.is_fault() => {
                let over = action
                    .client()
                    .map_or("server".to_string(), |c| format!("tab{c},server"));
                Some(format!(
                    "Note over {over}: {} FAULT {}",
                    r.at,
                    action.name()
                ))
            }
            Event::ClientOut { tab, output } => match output {
                ClientOutput::Post {
                    req,
                    connection_id,
                    body,
                    ..
                } => Some(format!(
                    "tab{tab}->>server: {} {req} POST {} as {connection_id}",
                    r.at,
                    body.endpoint().map_or("?".to_string(), |e| e.to_string())
                        + &body
                            .client_msg_id()
                            .map_or(String::new(), |id| format!(" {id}"))
                )),
                ClientOutput::App(AppNotice::Open) => {
                    Some(format!("Note over tab{tab}: {} _open", r.at))
                }
                ClientOutput::App(AppNotice::Close) => {
                    Some(format!("Note over tab{tab}: {} _close", r.at))
                }
                ClientOutput::App(AppNotice::SendFailed { msg }) => Some(format!(
                    "Note over tab{tab}: {} send failed {}",
                    r.at,
                    msg.client_msg_id().unwrap_or("")
                )),
                ClientOutput::Dropped { msg, reason } => Some(format!(
                    "Note over tab{tab}: {} dropped {} ({reason:?})",
                    r.at,
                    msg.client_msg_id().unwrap_or("message")
                )),
                _ => None,
            },
            Event::ClientIn { tab, input } => match input {
                ClientInput::PostDone { req, outcome } => Some(format!(
                    "server-->>tab{tab}: {} {req} {}",
                    r.at,
                    match outcome {
                        PostOutcome::Status { status, .. } => status.to_string(),
                        PostOutcome::NetworkError => "network error".to_string(),
                    }
                )),
                ClientInput::Frame { frame, .. } => {
                    event_label(&frame.data).map(|l| format!("server-->>tab{tab}: {} {l}", r.at))
                }
                ClientInput::StreamError { es } => {
                    Some(format!("Note over tab{tab}: {} {es} error", r.at))
                }
                _ => None,
            },
            Event::ServerOut { output } => match output {
                ServerOutput::AgentInput(a) => Some(format!(
                    "server->>agent: {} input {} in {}",
                    r.at, a.client_msg_id, a.session
                )),
                ServerOutput::Crash { reason } => {
                    Some(format!("Note over server: {} CRASH {reason}", r.at))
                }
                _ => None,
            },
            Event::ServerDown { reason } => {
                Some(format!("Note over server: {} down ({reason})", r.at))
            }
            Event::ServerUp { boot } => Some(format!("Note over server: {} up, boot {boot}", r.at)),
            Event::Heal => Some(format!("Note over server: {} heal", r.at)),
            _ => None,
        };
        if let Some(l) = line {
            lines.push(format!("    {}", safe(&l)));
        }
    }
    let mut out = String::from("sequenceDiagram\n");
    for t in 0..tabs {
        let _ = writeln!(out, "    participant tab{t}");
    }
    out.push_str("    participant server\n    participant agent\n");
    out.push_str(
        &clip_lines(&lines.join("\n"), 8, 40)
            .replace("   ... ", "    Note over server: ... ")
            .replace(" ...\n", "\n"),
    );
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}
