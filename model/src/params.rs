//! Every constant and policy the machines read, in one plain struct.
//!
//! The PR #396 revisions and the reference design are values of [`Params`], never forks of
//! the machines. Defaults are the baseline: the client at 040fc27 and the pre-#396 server.

use crate::registry::SyncParams;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Params {
    pub client: ClientParams,
    pub server: ServerParams,
}

impl Params {
    /// The client as of 040fc27 and the #396-era server before the fix.
    pub fn baseline() -> Self {
        Params::default()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientParams {
    /// Fixed delay before `scheduleReconnect` opens a new EventSource (no backoff).
    pub reconnect_delay_ms: u64,
    /// `MAX_PENDING_SENDS`: at the cap the oldest queued item is evicted, silently.
    pub max_pending_sends: usize,
    /// Whether a `suspendUrl` is configured, so a hidden page beacons when disconnected.
    pub suspend_beacon: bool,
    /// POST attempts a message may get in all (rev4+ `MAX_SEND_ATTEMPTS`); `None` when the
    /// revision states no budget (the baseline never retries at all).
    pub attempt_budget: Option<u32>,
}

impl Default for ClientParams {
    fn default() -> Self {
        ClientParams {
            reconnect_delay_ms: 500,
            max_pending_sends: 100,
            suspend_beacon: true,
            attempt_budget: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerParams {
    pub sync: SyncParams,
    /// #396's try/catch around `interrupt()`: without it a rejection kills the process.
    pub interrupt_guard: bool,
    /// Whether a send that resumes a stopped session is de-duplicated by clientMsgId like a
    /// send to a running one. Not visible in the sources; default off (spec §3.4).
    pub dedup_on_resume: bool,
    /// How long a suspended session waits for its client before detaching.
    pub suspend_grace_ms: u64,
    /// Live events held for a suspended session; past this they are dropped with a warning.
    pub suspend_buffer: usize,
    /// Comment-line heartbeat period on every open stream; a failed write removes the stream.
    pub heartbeat_ms: u64,
}

impl Default for ServerParams {
    fn default() -> Self {
        ServerParams {
            sync: SyncParams::default(),
            interrupt_guard: false,
            dedup_on_resume: false,
            suspend_grace_ms: 120_000,
            suspend_buffer: 1000,
            heartbeat_ms: 30_000,
        }
    }
}
