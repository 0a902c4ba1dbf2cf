//! Engines that run the model's machines over a simulated network and record a history.
//!
//! - [`turmoil`]: every machine a host in turmoil's network; bytes over simulated TCP,
//!   time advanced one millisecond tick at a time.
//! - [`direct`]: the same machines, network model and faults in a discrete-event loop that
//!   jumps from one event to the next; steppable, cloneable and hashable for search.
//! - [`schedule`]: a scenario's steps expanded into timed commands every engine applies.
//! - [`history`]: the record of a run, the only input of the oracles.
//!
//! [`run`] runs a scenario on the engine an [`EngineKind`] names.

pub mod direct;
mod faults;
pub mod history;
pub mod net;
pub mod schedule;
pub mod timeline;
pub mod turmoil;

use history::{EndVerdict, Event, History};
use serde::{Deserialize, Serialize};
use ssesim_model::{AppNotice, Client, ClientOutput, Origin, Params, ServerOutput};
use ssesim_scenarios::Scenario;
use std::fmt;
use std::str::FromStr;

/// Extra simulated time after the scenario's end so in-flight messages can land.
pub const DRAIN_MS: u64 = 1000;

/// Which engine runs a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    /// [`direct`]: the discrete-event loop (fast; what campaigns search with).
    Direct,
    /// [`turmoil`]: turmoil's simulated network and tokio (the reference for fidelity).
    Turmoil,
}

impl EngineKind {
    pub const ALL: [EngineKind; 2] = [EngineKind::Direct, EngineKind::Turmoil];

    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Direct => "direct",
            EngineKind::Turmoil => "turmoil",
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EngineKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        EngineKind::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| format!("unknown engine `{s}`, expected one of: direct, turmoil"))
    }
}

/// Runs one scenario to its end on `engine`. Both engines apply the scenario's
/// `constants` on top of `params`, take the same schedule and faults and record the same
/// kinds of history records, so the oracles judge either alike.
pub fn run(engine: EngineKind, scenario: &Scenario, params: &Params, seed: u64) -> RunReport {
    match engine {
        EngineKind::Direct => direct::run(scenario, params, seed),
        EngineKind::Turmoil => turmoil::run(scenario, params, seed),
    }
}

/// The end verdict of a run: quiescent when nothing is outstanding (the server is up and
/// every tab is connected with nothing queued or in flight).
pub(crate) fn quiescence<'a>(
    server_up: bool,
    clients: impl Iterator<Item = &'a Client>,
) -> EndVerdict {
    let mut problems = Vec::new();
    if !server_up {
        problems.push("server down".to_string());
    }
    for (i, c) in clients.enumerate() {
        if !c.is_connected() {
            problems.push(format!("tab{i} not connected"));
        }
        if c.pending_len() > 0 {
            problems.push(format!("tab{i} has {} queued sends", c.pending_len()));
        }
        if c.in_flight_len() > 0 {
            problems.push(format!(
                "tab{i} has {} requests in flight",
                c.in_flight_len()
            ));
        }
    }
    if problems.is_empty() {
        EndVerdict::Quiescent
    } else {
        EndVerdict::NotQuiescent {
            detail: problems.join("; "),
        }
    }
}

/// What a run produced: the history and figures drawn from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub history: History,
    pub stats: Stats,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Simulated time of the last record.
    pub sim_ms: u64,
    pub history_records: usize,
    /// POSTs the tabs issued.
    pub posts: usize,
    /// Events handed to the app by the tabs.
    pub events_delivered: usize,
    /// Stored events the server re-sent by replay or periodic sync.
    pub replayed_events: usize,
    /// The largest pending-send queue any tab had.
    pub max_pending: usize,
}

impl RunReport {
    pub(crate) fn new(history: History, max_pending: usize) -> Self {
        let mut stats = Stats {
            sim_ms: history.records.last().map_or(0, |r| r.at),
            history_records: history.len(),
            max_pending,
            ..Stats::default()
        };
        for r in &history.records {
            match &r.event {
                Event::ClientOut {
                    output: ClientOutput::Post { .. },
                    ..
                } => stats.posts += 1,
                Event::ClientOut {
                    output: ClientOutput::App(AppNotice::Event { .. }),
                    ..
                } => stats.events_delivered += 1,
                Event::ServerOut {
                    output: ServerOutput::Deliver(d),
                } if matches!(d.origin, Origin::Replay | Origin::Sync) => {
                    stats.replayed_events += 1
                }
                _ => {}
            }
        }
        RunReport { history, stats }
    }
}
