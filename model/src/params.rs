//! Every constant and policy the machines read, in one plain struct.
//!
//! The PR #396 revisions and the reference design are values of [`Params`]
//! (see [`crate::revisions`]), never forks of the machines. Defaults are the baseline: the
//! client at 040fc27 and the pre-#396 server.

use crate::registry::SyncParams;
use crate::wire::Endpoint;
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

/// Which failed POSTs a revision puts back in the pending queue (spec 2.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Endpoints whose failures are re-queued (rev1-5: send; rev6+: send and permission).
    pub endpoints: Vec<Endpoint>,
    pub on: RetryOn,
}

/// Which outcomes count as retryable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryOn {
    /// rev1-2: any non-2xx status or a network error.
    AnyFailure,
    /// rev3-4: 404, >= 500 or a network error; 400/401/403/409/422/429 are dropped silently.
    NotFoundOrServerError,
    /// rev5+: as above plus 429.
    NotFoundServerErrorOrTooMany,
}

impl RetryOn {
    /// Whether a POST outcome (a status, or `None` for a network error) is retried.
    pub fn retries(self, status: Option<u16>) -> bool {
        match status {
            None => true,
            Some(s) if (200..300).contains(&s) => false,
            Some(s) => match self {
                RetryOn::AnyFailure => true,
                RetryOn::NotFoundOrServerError => s == 404 || s >= 500,
                RetryOn::NotFoundServerErrorOrTooMany => s == 404 || s == 429 || s >= 500,
            },
        }
    }
}

/// How a failed POST goes back into the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Requeue {
    /// rev1: appended directly, bypassing `MAX_PENDING_SENDS` (B1).
    Uncapped,
    /// rev2+: through `enqueuePending` (cap, evicting the oldest).
    Capped,
}

/// How `flushPendingSends` posts the captured queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlushMode {
    /// base-rev4: every item at once, not awaited.
    Parallel,
    /// rev5-8: one after another, each awaited.
    Sequential,
    /// rev9: sequential, then capture again while the queue is non-empty.
    LoopUntilEmpty,
}

/// What a flush does when one is already running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlushGuard {
    /// base-rev6: a second flush runs concurrently (B7).
    None,
    /// rev7: return at once (`_flushing`), as if done (B8a).
    Skip,
    /// rev8+: join the running flush (`_flushPromise`).
    Join,
}

/// When the welcome handlers set `_connected` and emit `_open` relative to the flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenTiming {
    /// base-rev5: `_connected = true`, start the flush (not awaited), `_open` at once.
    BeforeFlush,
    /// rev6+: first-connect path sets `_connected` before the flush but emits `_open` only
    /// when it settles; reconnect path awaits the flush, then connects and emits `_open`.
    AfterFlush,
}

/// The reference design's acknowledged, ordered outbox for prompts (spec 7, [OB]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxParams {
    /// Items held; `send()` refuses (returns false) when full, never evicts.
    pub capacity: usize,
    /// Backoff before retry n (from 0): min(base * 2^n, max).
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientParams {
    /// Fixed delay before `scheduleReconnect` opens a new EventSource (no backoff).
    pub reconnect_delay_ms: u64,
    /// `MAX_PENDING_SENDS`: at the cap the oldest queued item is evicted, silently.
    pub max_pending_sends: usize,
    /// Whether a `suspendUrl` is configured, so a hidden page beacons when disconnected.
    pub suspend_beacon: bool,
    /// POST attempts a message may get in all (rev4+ `MAX_SEND_ATTEMPTS`, the reference's
    /// give-up point); `None` when the revision states no budget.
    pub attempt_budget: Option<u32>,
    /// Re-queueing of failed POSTs; `None` in the baseline (`doPost` ignores the status).
    pub retry: Option<RetryPolicy>,
    pub requeue: Requeue,
    pub flush: FlushMode,
    pub flush_guard: FlushGuard,
    pub open_timing: OpenTiming,
    /// rev6+ first-connect path: `_connected` becomes true before the flush settles (B6).
    /// Not visible in the sources for rev7-9; the review thread leaves it in place.
    pub connect_before_flush: bool,
    /// The reference design: prompts go through an acknowledged outbox.
    pub outbox: Option<OutboxParams>,
    /// The reference design: events apply only in per-session order (`prev_seq`), the
    /// cursor never moves backwards, duplicates are dropped and gaps repaired. A session a
    /// reconnect POST declares gets the declared cursor if it had none, so a live event
    /// that overtakes the replay waits for it.
    pub applied_delivery: bool,
    /// The reference design: a 404 (stale connectionId) forces a reconnect and re-queues;
    /// a reconnect POST is sent whenever a session is tracked, first welcome included; a
    /// replaced stream's frames and errors change nothing. The client keeps its tracked
    /// sessions and the server's watch set in step: control messages go out one at a time
    /// in `send()` order (a failed one retried at the head), an unwatched session stays
    /// tracked until the server's `unwatched` frame arrives on the current stream with
    /// nothing pending that could watch it again (whatever watched it again meanwhile, a
    /// reconnect included, sends the unwatch again), an unwatch answered after the app
    /// followed the session again re-watches it, and `trackSeq` of a new session (or a
    /// watch of one it had stopped tracking) asks for a replay from the cursor it holds,
    /// retried until served. A stream error with no welcome after it within
    /// `client::STREAM_WATCHDOG_MS` makes the client open a new EventSource itself.
    pub strict_hygiene: bool,
}

impl Default for ClientParams {
    fn default() -> Self {
        ClientParams {
            reconnect_delay_ms: 500,
            max_pending_sends: 100,
            suspend_beacon: true,
            attempt_budget: None,
            retry: None,
            requeue: Requeue::Capped,
            flush: FlushMode::Parallel,
            flush_guard: FlushGuard::None,
            open_timing: OpenTiming::BeforeFlush,
            connect_before_flush: true,
            outbox: None,
            applied_delivery: false,
            strict_hygiene: false,
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
    /// The reference design: durable receipts keyed by clientMsgId (new sessions
    /// included), `/send` and `/interrupt` need no live stream, an interrupt failure is
    /// surfaced, and at boot a persisted but undispatched prompt is marked failed. An
    /// interrupt, like a send, makes its session the sender's active (watched) one.
    pub receipts: bool,
    /// The reference design: after a failed live send the (connection, session) pair gets
    /// no live sends until sync repaired the gap (an unwatch repairs it at once, before its
    /// `unwatched` frame; if that fails, sync goes on up to the head it had then); a newly
    /// watched pair (a pair watched again after an unwatch included) starts at the head;
    /// `/switch` changes the active session without unwatching the previous one (only
    /// `/unwatch` ends a watch).
    pub gap_repair: bool,
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
            receipts: false,
            gap_repair: false,
        }
    }
}
