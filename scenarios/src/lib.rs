//! The scenario format: one run of the bench as data.
//!
//! A scenario names the revision, the topology, constant overrides, a seed and a timeline
//! of steps at simulated milliseconds. Engines read it; they never invent steps. The JSON
//! form is documented in `scenarios/FORMAT.md` and published as a JSON Schema generated
//! from these types.

mod load;
mod step;

pub use load::{load_file, parse_str, ScenarioError};
pub use step::{Action, Direction, EventsEndpoint, FaultEndpoint, Step};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// One run of the bench: what to build, how the network behaves and what happens when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Must equal the version this build understands (currently 1).
    #[schemars(extend("const" = SCHEMA_VERSION))]
    pub schema: u32,
    /// A short name used in reports.
    pub name: String,
    /// What the scenario shows, in a sentence or two.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The revision preset to run (`baseline` for now); `--revision` overrides it. The
    /// loader does not check the name; the engine rejects presets it does not know.
    #[serde(default = "default_revision")]
    pub revision: String,
    /// Seeds every random choice the engine makes (latency draws, ordering).
    #[serde(default)]
    pub seed: u64,
    /// The tabs and the sessions that exist at time 0.
    pub topology: Topology,
    /// Overrides of the revision's constants.
    #[serde(default)]
    pub constants: Constants,
    /// The simulated network and browser.
    #[serde(default)]
    pub network: Network,
    /// Simulated length of the run (greater than 0); steps after it are rejected.
    #[schemars(range(min = 1))]
    pub duration_ms: u64,
    /// When the fault phase ends and the heal phase starts (at most `duration_ms`). At this
    /// time the engine, once, repairs every partition and hold, restarts a dead server,
    /// clears pending injected statuses, lost responses, interrupt failures and an armed
    /// `crash_at_interrupt`, turns `transport_throws` off and makes pages visible (latency
    /// changes stay). Defaults to `duration_ms`, which means no heal phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heal_at_ms: Option<u64>,
    /// The timeline. Steps run in order of `at_ms`; steps at the same time run in file
    /// order. The file need not be sorted.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// What the scenario is expected to show: per revision name, the ids of the
    /// invariants that fail on it (an empty list: all hold). The catalog test runs every
    /// file against every revision and compares; `replay` reports the comparison.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub expect: std::collections::BTreeMap<String, Vec<String>>,
}

fn default_revision() -> String {
    "baseline".to_string()
}

/// The tabs and the sessions that exist at time 0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Number of browser tabs, named `tab0`, `tab1`, ... (1 to 8).
    #[schemars(range(min = 1, max = 8))]
    pub clients: u32,
    /// Sessions the agent has running at time 0 (each must be non-empty and unique).
    #[serde(default)]
    pub sessions: Vec<String>,
    /// Whether every tab calls `connect()` at time 0 (default true).
    #[serde(default = "yes")]
    pub autoconnect: bool,
}

fn yes() -> bool {
    true
}

/// Overrides of the model's constants; absent fields keep the revision's value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Constants {
    /// Client: fixed delay before `scheduleReconnect` opens a new EventSource (baseline
    /// 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnect_delay_ms: Option<u64>,
    /// Client: `MAX_PENDING_SENDS`, the cap of the pending-sends queue (baseline 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pending_sends: Option<usize>,
    /// Server: `SYNC_INTERVAL_MS`, the period of the registry's sync tick (baseline 5000;
    /// must be greater than 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub sync_interval_ms: Option<u64>,
    /// Server: `SYNC_BATCH_LIMIT`, events per (connection, session) per sync tick
    /// (baseline 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_batch_limit: Option<usize>,
    /// Server: how long a suspended session waits before it is closed (baseline 120000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend_grace_ms: Option<u64>,
    /// Server: the SSE heartbeat period (baseline 30000; must be greater than 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub heartbeat_ms: Option<u64>,
}

impl Constants {
    /// Applies the overrides to a revision's parameters.
    pub fn apply(&self, params: &mut ssesim_model::Params) {
        if let Some(v) = self.reconnect_delay_ms {
            params.client.reconnect_delay_ms = v;
        }
        if let Some(v) = self.max_pending_sends {
            params.client.max_pending_sends = v;
        }
        if let Some(v) = self.sync_interval_ms {
            params.server.sync.interval_ms = v;
        }
        if let Some(v) = self.sync_batch_limit {
            params.server.sync.batch_limit = v;
        }
        if let Some(v) = self.suspend_grace_ms {
            params.server.suspend_grace_ms = v;
        }
        if let Some(v) = self.heartbeat_ms {
            params.server.heartbeat_ms = v;
        }
    }
}

/// The simulated network and browser around the machines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Network {
    /// Smallest one-way message latency (at most `max_latency_ms`).
    pub min_latency_ms: u64,
    /// Largest one-way message latency (draws are seeded).
    pub max_latency_ms: u64,
    /// The browser's EventSource retry delay after a network failure.
    pub es_retry_ms: u64,
    /// A stream with no bytes (not even a heartbeat) for this long is treated as dead by
    /// the browser, standing in for TCP's own timeout.
    pub es_idle_timeout_ms: u64,
    /// A POST with no reply after this long fails with a network error.
    pub fetch_timeout_ms: u64,
    /// How long a crashed server stays down before its supervisor restarts it; `null`
    /// leaves it down until a `restart` step or the heal phase. (Absent means the
    /// default, 1000; only an explicit `null` disables the supervisor.)
    pub restart_after_ms: Option<u64>,
    /// Delay between the server calling `interrupt()` and it settling.
    pub interrupt_latency_ms: u64,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            min_latency_ms: 1,
            max_latency_ms: 5,
            es_retry_ms: 3000,
            es_idle_timeout_ms: 45_000,
            fetch_timeout_ms: 20_000,
            restart_after_ms: Some(1000),
            interrupt_latency_ms: 2,
        }
    }
}

impl Scenario {
    /// The time the heal phase starts.
    pub fn heal_at(&self) -> u64 {
        self.heal_at_ms.unwrap_or(self.duration_ms)
    }

    /// Host name of tab `i`.
    pub fn tab_name(i: u32) -> String {
        format!("tab{i}")
    }

    /// The default clientMsgId of the `k`-th (from 1) `send` or `interrupt` of tab `i`.
    pub fn default_msg_id(i: u32, k: usize) -> String {
        format!("tab{i}-m{k}")
    }

    /// The steps' indices in execution order: by `at_ms`, ties in file order.
    pub fn timeline(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.steps.len()).collect();
        order.sort_by_key(|&i| self.steps[i].at_ms); // stable: ties keep file order
        order
    }

    /// The clientMsgId of every step, by step index: the explicit `id` or the default
    /// `tab<N>-m<k>` for `send` and `interrupt` steps (k counts both kinds per tab, from 1,
    /// in file order, whether or not they carry an explicit `id`); `None` for other steps.
    pub fn msg_ids(&self) -> Vec<Option<String>> {
        let mut counts = std::collections::BTreeMap::<u32, usize>::new();
        self.steps
            .iter()
            .map(|step| match &step.action {
                Action::Send { client, id, .. } | Action::Interrupt { client, id, .. } => {
                    let k = counts.entry(*client).or_default();
                    *k += 1;
                    Some(
                        id.clone()
                            .unwrap_or_else(|| Scenario::default_msg_id(*client, *k)),
                    )
                }
                _ => None,
            })
            .collect()
    }

    /// The JSON Schema of the format, generated from these types.
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(Scenario)).expect("schema serialises")
    }

    /// The JSON Schema as published in `scenarios/scenario.schema.json`: pretty-printed,
    /// object keys sorted, with a trailing newline.
    pub fn json_schema_text() -> String {
        let mut text = serde_json::to_string_pretty(&sorted(Scenario::json_schema()))
            .expect("schema serialises");
        text.push('\n');
        text
    }

    /// The scenario as pretty-printed JSON (no trailing newline); `parse_str` reads it back.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("scenario serialises")
    }
}

/// Rebuilds every object with its keys in sorted order, so the text does not depend on
/// whether serde_json's `preserve_order` feature is on somewhere in the build.
fn sorted(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let entries: std::collections::BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(entries.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}
