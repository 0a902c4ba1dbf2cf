//! One timeline entry: an action at a simulated time.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ssesim_model::Endpoint;

/// One timeline entry: a flat JSON object holding `at_ms`, the action's name in `do` and
/// the action's own fields, e.g. `{"at_ms": 100, "do": "send", "client": 0}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Step {
    /// Simulated time of the step, in milliseconds from the start (at most `duration_ms`).
    pub at_ms: u64,
    #[serde(flatten)]
    pub action: Action,
}

/// Which way a partition cuts a tab off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Nothing crosses either way.
    #[default]
    Both,
    /// The tab's packets to the server are lost; the server's still arrive.
    ToServer,
    /// The server's packets to the tab are lost; the tab's still arrive.
    FromServer,
}

/// What happens at a step, named by the `do` field. `client` is a tab index (0-based, below
/// `topology.clients`); `session` a session name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    // --- the app, in one tab -------------------------------------------------------
    /// `connect()`.
    Connect { client: u32 },
    /// `disconnect()`.
    Disconnect { client: u32 },
    /// `send({type:'send'})`; no `session` starts a new one. `id` is the clientMsgId
    /// (default `tab<N>-m<k>`: the k-th `send` or `interrupt` step of tab N, counted from 1
    /// in file order); an empty `text` is a body the server rejects with 400.
    Send {
        client: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default = "default_text")]
        text: String,
    },
    /// `send({type:'interrupt'})`; `id` and `text` as for `send`.
    Interrupt {
        client: u32,
        session: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default = "default_text")]
        text: String,
    },
    /// `send({type:'stop'})`.
    Stop { client: u32, session: String },
    /// `send({type:'watch'})`.
    Watch { client: u32, session: String },
    /// `send({type:'unwatch'})`.
    Unwatch { client: u32, session: String },
    /// `send({type:'switch_session'})`.
    Switch { client: u32, session: String },
    /// `visibilitychange` to hidden.
    Hidden { client: u32 },
    /// `visibilitychange` to visible.
    Visible { client: u32 },
    /// `checkAndReconnect(true)`.
    ForceReconnect { client: u32 },
    /// The app loads a session's history itself and calls `trackSeq(session, seq)`, so it
    /// holds every event up to `seq`; no `seq` means the store's head for the session at
    /// that moment.
    TrackSeq {
        client: u32,
        session: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },

    // --- the agent, on the server ----------------------------------------------------
    /// The agent appends `count` outputs to a session, one every `every_ms` (the first at
    /// `at_ms`; `every_ms` 0 appends them all at once).
    Emit {
        session: String,
        #[serde(default = "one")]
        count: u32,
        #[serde(default)]
        every_ms: u64,
    },
    /// The agent driver moves a session to `state`: `CREATED`, `STARTING`, `ACTIVE`,
    /// `DETACHED`, `SUSPENDED`, `CLOSING` or `ENDED`.
    SessionState {
        session: String,
        state: ssesim_model::SessionState,
    },

    // --- faults ------------------------------------------------------------------------
    /// The server process dies now; the store survives.
    Crash,
    /// The server process dies at its next `interrupt()` call, after the message was
    /// persisted and echoed.
    CrashAtInterrupt,
    /// Starts a crashed server (no-op when it is up).
    Restart,
    /// Crash and restart at the same instant.
    Bounce,
    /// Cuts a tab off from the server, one way or both (default `both`).
    Partition {
        client: u32,
        #[serde(default)]
        direction: Direction,
    },
    /// Heals a partition in the given direction (default `both`).
    Repair {
        client: u32,
        #[serde(default)]
        direction: Direction,
    },
    /// Holds every packet between a tab and the server, both ways, until `release`.
    Hold { client: u32 },
    /// Ends a `hold`: the held packets go on their way.
    Release { client: u32 },
    /// Changes the latency range of a tab's link (both ways); `min_ms` must not exceed
    /// `max_ms`.
    Latency {
        client: u32,
        min_ms: u64,
        max_ms: u64,
    },
    /// The server forgets the tab's current connection. With `notify` false the stream
    /// stays open and silent, so the tab keeps using a now-stale connectionId.
    DropConnection {
        client: u32,
        #[serde(default)]
        notify: bool,
    },
    /// The next `count` requests to `endpoint` are answered with `status` (100 to 599)
    /// before reaching the handler (`events` means the EventSource's GET);
    /// `retry_after_s` adds a `Retry-After` header.
    InjectStatus {
        endpoint: FaultEndpoint,
        #[schemars(range(min = 100, max = 599))]
        status: u16,
        #[serde(default = "one")]
        count: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_s: Option<u32>,
    },
    /// The next `count` requests to the POST `endpoint` are applied by the server, but the
    /// reply is lost (the tab sees a network error).
    LoseResponse {
        endpoint: Endpoint,
        #[serde(default = "one")]
        count: u32,
    },
    /// The next `count` `interrupt()` calls reject.
    InterruptFails {
        #[serde(default = "one")]
        count: u32,
    },
    /// The browser re-opens the tab's stream twice in quick succession; the tab gets the
    /// two welcomes, each with a fresh connectionId, `gap_ms` apart.
    DoubleWelcome {
        client: u32,
        #[serde(default = "default_gap")]
        gap_ms: u64,
    },
    /// The server's sends to the tab's current connection throw (`on`) or work again.
    TransportThrows { client: u32, on: bool },
}

/// An endpoint for status injection: a POST endpoint (`send`, `stop`, ...) or `events`,
/// the SSE stream's GET.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(untagged)]
pub enum FaultEndpoint {
    Post(Endpoint),
    Events(EventsEndpoint),
}

/// `events`: the EventSource's GET of the SSE stream.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EventsEndpoint {
    Events,
}

impl FaultEndpoint {
    /// The names `inject_status` accepts: `events`, then the POST endpoints.
    pub fn names() -> Vec<String> {
        let mut names = vec!["events".to_string()];
        names.extend(Endpoint::ALL.iter().map(|e| {
            serde_json::to_value(e)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| e.to_string())
        }));
        names
    }
}

fn default_text() -> String {
    "hello".to_string()
}

fn one() -> u32 {
    1
}

fn default_gap() -> u64 {
    3
}

impl Action {
    /// Every action name (`do` value), in declaration order.
    pub const NAMES: [&'static str; 29] = [
        "connect",
        "disconnect",
        "send",
        "interrupt",
        "stop",
        "watch",
        "unwatch",
        "switch",
        "hidden",
        "visible",
        "force_reconnect",
        "track_seq",
        "emit",
        "session_state",
        "crash",
        "crash_at_interrupt",
        "restart",
        "bounce",
        "partition",
        "repair",
        "hold",
        "release",
        "latency",
        "drop_connection",
        "inject_status",
        "lose_response",
        "interrupt_fails",
        "double_welcome",
        "transport_throws",
    ];

    /// The fault vocabulary's names: the tail of [`Self::NAMES`], from `crash` on.
    pub const FAULT_NAMES: &'static [&'static str] = Self::NAMES.split_at(14).1;

    /// The action's name, as written in `do`.
    pub fn name(&self) -> &'static str {
        use Action::*;
        match self {
            Connect { .. } => "connect",
            Disconnect { .. } => "disconnect",
            Send { .. } => "send",
            Interrupt { .. } => "interrupt",
            Stop { .. } => "stop",
            Watch { .. } => "watch",
            Unwatch { .. } => "unwatch",
            Switch { .. } => "switch",
            Hidden { .. } => "hidden",
            Visible { .. } => "visible",
            ForceReconnect { .. } => "force_reconnect",
            TrackSeq { .. } => "track_seq",
            Emit { .. } => "emit",
            SessionState { .. } => "session_state",
            Crash => "crash",
            CrashAtInterrupt => "crash_at_interrupt",
            Restart => "restart",
            Bounce => "bounce",
            Partition { .. } => "partition",
            Repair { .. } => "repair",
            Hold { .. } => "hold",
            Release { .. } => "release",
            Latency { .. } => "latency",
            DropConnection { .. } => "drop_connection",
            InjectStatus { .. } => "inject_status",
            LoseResponse { .. } => "lose_response",
            InterruptFails { .. } => "interrupt_fails",
            DoubleWelcome { .. } => "double_welcome",
            TransportThrows { .. } => "transport_throws",
        }
    }

    /// The tab an action is about, if any.
    pub fn client(&self) -> Option<u32> {
        use Action::*;
        match self {
            Connect { client }
            | Disconnect { client }
            | Send { client, .. }
            | Interrupt { client, .. }
            | Stop { client, .. }
            | Watch { client, .. }
            | Unwatch { client, .. }
            | Switch { client, .. }
            | Hidden { client }
            | Visible { client }
            | ForceReconnect { client }
            | TrackSeq { client, .. }
            | Partition { client, .. }
            | Repair { client, .. }
            | Hold { client }
            | Release { client }
            | Latency { client, .. }
            | DropConnection { client, .. }
            | DoubleWelcome { client, .. }
            | TransportThrows { client, .. } => Some(*client),
            _ => None,
        }
    }

    /// True for the fault vocabulary (as opposed to app and agent actions).
    pub fn is_fault(&self) -> bool {
        use Action::*;
        !matches!(
            self,
            Connect { .. }
                | Disconnect { .. }
                | Send { .. }
                | Interrupt { .. }
                | Stop { .. }
                | Watch { .. }
                | Unwatch { .. }
                | Switch { .. }
                | Hidden { .. }
                | Visible { .. }
                | ForceReconnect { .. }
                | TrackSeq { .. }
                | Emit { .. }
                | SessionState { .. }
        )
    }
}
