//! Invariants checked over a recorded history, and coverage probes.
//!
//! Oracles read nothing but a [`History`] and a [`Context`] of the constants in force, so
//! every engine is judged the same way. Each invariant has a stable id used by the command
//! line, JSON output and reports. Safety invariants are judged over the whole run;
//! liveness only over the heal phase, and only when that phase is long enough for the
//! bound derived from the constants ([`Context::settle_ms`]).

mod checks;
mod facts;
mod probes;

pub use probes::{probes, PROBES};

use serde::{Deserialize, Serialize};
use ssesim_model::{Millis, Params};
use ssesim_scenarios::{Network, Scenario};
use ssesim_sim::history::History;

/// Whether an invariant is about what must never happen or what must eventually happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Safety,
    Liveness,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Invariant {
    pub id: &'static str,
    pub kind: Kind,
    pub definition: &'static str,
}

/// Every invariant, safety first, in report order.
pub const INVARIANTS: &[Invariant] = &[
    Invariant {
        id: "send_order",
        kind: Kind::Safety,
        definition: "a tab's sends for one session reach the agent in the order send() accepted them",
    },
    Invariant {
        id: "no_silent_send_loss",
        kind: Kind::Safety,
        definition: "every send() that returned true ends, by the end of the heal phase, dispatched to the agent or reported failed to the app",
    },
    Invariant {
        id: "no_duplicate_dispatch",
        kind: Kind::Safety,
        definition: "at most one agent input per clientMsgId, first messages of new sessions included",
    },
    Invariant {
        id: "event_order",
        kind: Kind::Safety,
        definition: "the app sees each session's events in strictly increasing seq (an unseen event older than one already seen is a reorder)",
    },
    Invariant {
        id: "no_silent_event_loss",
        kind: Kind::Safety,
        definition: "every event stored after the server confirmed a tab's watch of its session reaches that tab's app, or an explicit gap/resync marker does",
    },
    Invariant {
        id: "no_duplicate_apply",
        kind: Kind::Safety,
        definition: "the app never applies the same (session, seq) twice, and a tab's per-session cursor never moves backwards",
    },
    Invariant {
        id: "bounded_replay",
        kind: Kind::Safety,
        definition: "no sync tick sends more than SYNC_BATCH_LIMIT events per (connection, session), and a tab is re-sent at most SYNC_BATCH_LIMIT events it already had per simulated minute (more is a replay storm)",
    },
    Invariant {
        id: "bounded_queue",
        kind: Kind::Safety,
        definition: "the pending queue never exceeds MAX_PENDING_SENDS, and no message is posted more often than the revision's attempt budget (3 when it states none)",
    },
    Invariant {
        id: "server_survives",
        kind: Kind::Safety,
        definition: "an injected interrupt() failure (or any handler failure) never terminates the server",
    },
    Invariant {
        id: "restart_consistency",
        kind: Kind::Safety,
        definition: "after a restart no session is left non-terminal, and every user message persisted before the crash is executed, reported failed to the app, or marked failed in the store",
    },
    Invariant {
        id: "liveness",
        kind: Kind::Liveness,
        definition: "within the settle bound after the last fault heals, every connected tab is connected, its queue and requests drained, and at the store's head for every session it tracks (a session's lag at the heal adds one sync interval per batch the bounded sync needs to catch it up; a lag the run is too short for is not judged)",
    },
    Invariant {
        id: "connection_hygiene",
        kind: Kind::Safety,
        definition: "a POST answered 404 for a connectionId the server no longer knows is never taken as success, and callbacks of a replaced stream change nothing",
    },
];

pub fn invariant(id: &str) -> Option<&'static Invariant> {
    INVARIANTS.iter().find(|i| i.id == id)
}

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub invariant: String,
    pub at_ms: Millis,
    /// Indices into the history of the records involved.
    pub records: Vec<usize>,
    pub detail: String,
}

/// The constants an oracle judges by.
#[derive(Clone, Debug, PartialEq)]
pub struct Context {
    pub params: Params,
    pub network: Network,
    /// Start of the heal phase, `None` when the run has none.
    pub heal_at: Option<Millis>,
    /// The scenario's end (the engine drains a little past it).
    pub duration_ms: Millis,
}

impl Context {
    pub fn new(scenario: &Scenario, params: &Params) -> Self {
        let heal = scenario.heal_at();
        // Judge by the constants the run used: the revision's, with the scenario's overrides.
        let mut params = params.clone();
        scenario.constants.apply(&mut params);
        Context {
            params,
            network: scenario.network.clone(),
            heal_at: (heal < scenario.duration_ms).then_some(heal),
            duration_ms: scenario.duration_ms,
        }
    }

    /// How long after faults heal a correct transport may take to converge: a silent
    /// stream must be noticed, the browser must retry, a POST may time out, the server may
    /// be restarting, and two reconnect-plus-sync rounds must fit.
    pub fn settle_ms(&self) -> Millis {
        let c = &self.params.client;
        let s = &self.params.server;
        let n = &self.network;
        n.es_idle_timeout_ms
            + n.es_retry_ms
            + n.fetch_timeout_ms
            + n.restart_after_ms.unwrap_or(0)
            + 2 * (c.reconnect_delay_ms + s.sync.interval_ms)
    }

    /// The latest time by which something that had to happen is judged as missing.
    pub fn judged_until(&self) -> Millis {
        self.duration_ms.saturating_sub(self.settle_ms())
    }
}

/// The verdicts of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdicts {
    pub violations: Vec<Violation>,
    /// Invariants that could not be judged (e.g. liveness with a heal phase shorter than
    /// the settle bound).
    pub unjudged: Vec<String>,
}

impl Verdicts {
    pub fn failed(&self, id: &str) -> bool {
        self.violations.iter().any(|v| v.invariant == id)
    }

    /// The ids that failed, in report order.
    pub fn failed_ids(&self) -> Vec<&'static str> {
        INVARIANTS
            .iter()
            .filter(|i| self.failed(i.id))
            .map(|i| i.id)
            .collect()
    }
}

/// Runs every invariant over a history.
pub fn check(ctx: &Context, history: &History) -> Verdicts {
    let facts = facts::Facts::gather(history);
    let mut verdicts = Verdicts::default();
    for inv in INVARIANTS {
        match checks::run(inv.id, ctx, &facts) {
            Some(mut found) => verdicts.violations.append(&mut found),
            None => verdicts.unjudged.push(inv.id.to_string()),
        }
    }
    verdicts
}
