//! What crosses the network: POST requests and responses, and SSE frames.
//!
//! These are plain data; the engines serialise them with serde_json over their own
//! codecs. Field names follow mitzo's JSON where it has one.

use crate::store::{SessionState, SessionView};
use crate::types::{ConnId, Seq, SessionId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The POST endpoints under `/api/chat/` (spec §1, type→endpoint map).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    Send,
    Stop,
    Interrupt,
    Permission,
    Mode,
    Watch,
    Unwatch,
    Switch,
    Suspend,
    Close,
    Reconnect,
}

impl Endpoint {
    pub const ALL: [Endpoint; 11] = [
        Endpoint::Send,
        Endpoint::Stop,
        Endpoint::Interrupt,
        Endpoint::Permission,
        Endpoint::Mode,
        Endpoint::Watch,
        Endpoint::Unwatch,
        Endpoint::Switch,
        Endpoint::Suspend,
        Endpoint::Close,
        Endpoint::Reconnect,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Send => "/api/chat/send",
            Endpoint::Stop => "/api/chat/stop",
            Endpoint::Interrupt => "/api/chat/interrupt",
            Endpoint::Permission => "/api/chat/permission",
            Endpoint::Mode => "/api/chat/mode",
            Endpoint::Watch => "/api/chat/watch",
            Endpoint::Unwatch => "/api/chat/unwatch",
            Endpoint::Switch => "/api/chat/switch",
            Endpoint::Suspend => "/api/chat/suspend",
            Endpoint::Close => "/api/chat/close",
            Endpoint::Reconnect => "/api/chat/reconnect",
        }
    }

    /// `/send` and `/interrupt` insist on a live SSE stream before anything else (spec §3.3).
    pub fn needs_stream(self) -> bool {
        matches!(self, Endpoint::Send | Endpoint::Interrupt)
    }

    /// 202 for the two fire-and-forget endpoints, 200 for the rest.
    pub fn success_status(self) -> u16 {
        if self.needs_stream() {
            202
        } else {
            200
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path()["/api/chat/".len()..])
    }
}

/// A `(sessionId, lastSeq)` pair as the client reports it in reconnect and suspend bodies.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SessionCursor {
    pub session: SessionId,
    pub last_seq: Seq,
}

/// The `{type, ...}` object the app hands to `SseConnection.send()`, which is also the POST
/// body. `Unknown` stands for a type with no endpoint: `send()` refuses it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    Send {
        /// `None` starts a new session (mitzo's `sessionId: null`).
        session: Option<SessionId>,
        client_msg_id: String,
        text: String,
    },
    Interrupt {
        session: SessionId,
        client_msg_id: String,
        text: String,
    },
    Stop {
        session: SessionId,
    },
    PermissionResponse {
        session: SessionId,
        request_id: String,
        allow: bool,
    },
    SetMode {
        session: SessionId,
        mode: String,
    },
    Watch {
        session: SessionId,
    },
    Unwatch {
        session: SessionId,
    },
    SwitchSession {
        session: SessionId,
    },
    SessionSuspend {
        sessions: Vec<SessionCursor>,
    },
    SessionClose {
        session: SessionId,
    },
    Reconnect {
        sessions: Vec<SessionCursor>,
    },
    Unknown {
        type_name: String,
    },
}

impl ClientMsg {
    /// The endpoint this message type is posted to, `None` for an unknown type.
    pub fn endpoint(&self) -> Option<Endpoint> {
        Some(match self {
            ClientMsg::Send { .. } => Endpoint::Send,
            ClientMsg::Interrupt { .. } => Endpoint::Interrupt,
            ClientMsg::Stop { .. } => Endpoint::Stop,
            ClientMsg::PermissionResponse { .. } => Endpoint::Permission,
            ClientMsg::SetMode { .. } => Endpoint::Mode,
            ClientMsg::Watch { .. } => Endpoint::Watch,
            ClientMsg::Unwatch { .. } => Endpoint::Unwatch,
            ClientMsg::SwitchSession { .. } => Endpoint::Switch,
            ClientMsg::SessionSuspend { .. } => Endpoint::Suspend,
            ClientMsg::SessionClose { .. } => Endpoint::Close,
            ClientMsg::Reconnect { .. } => Endpoint::Reconnect,
            ClientMsg::Unknown { .. } => return None,
        })
    }

    /// The idempotency key carried by prompts, if any.
    pub fn client_msg_id(&self) -> Option<&str> {
        match self {
            ClientMsg::Send { client_msg_id, .. } | ClientMsg::Interrupt { client_msg_id, .. } => {
                Some(client_msg_id)
            }
            _ => None,
        }
    }

    /// The session the message is about, when it names exactly one.
    pub fn session(&self) -> Option<&SessionId> {
        match self {
            ClientMsg::Send { session, .. } => session.as_ref(),
            ClientMsg::Interrupt { session, .. }
            | ClientMsg::Stop { session }
            | ClientMsg::PermissionResponse { session, .. }
            | ClientMsg::SetMode { session, .. }
            | ClientMsg::Watch { session }
            | ClientMsg::Unwatch { session }
            | ClientMsg::SwitchSession { session }
            | ClientMsg::SessionClose { session } => Some(session),
            _ => None,
        }
    }

    /// The server's body validation: prompts need text, session messages need a session id.
    /// A body posted to the wrong endpoint is invalid too.
    pub fn is_valid_for(&self, endpoint: Endpoint) -> bool {
        if self.endpoint() != Some(endpoint) {
            return false;
        }
        let named = |s: &SessionId| !s.0.is_empty();
        match self {
            ClientMsg::Send {
                session,
                client_msg_id,
                text,
            } => {
                !text.is_empty() && !client_msg_id.is_empty() && session.as_ref().is_none_or(named)
            }
            ClientMsg::Interrupt {
                session,
                client_msg_id,
                text,
            } => named(session) && !text.is_empty() && !client_msg_id.is_empty(),
            ClientMsg::SessionSuspend { sessions } | ClientMsg::Reconnect { sessions } => {
                sessions.iter().all(|c| named(&c.session))
            }
            ClientMsg::Unknown { .. } => false,
            other => other.session().is_some_and(named),
        }
    }
}

/// One POST as it leaves the client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    pub endpoint: Endpoint,
    /// The `X-Connection-ID` header; `None` models a request without it.
    pub connection_id: Option<ConnId>,
    pub body: ClientMsg,
}

impl HttpRequest {
    /// A POST the client makes on connection `conn`: it always sends the header.
    pub fn on(conn: ConnId, endpoint: Endpoint, body: ClientMsg) -> Self {
        HttpRequest {
            endpoint,
            connection_id: Some(conn),
            body,
        }
    }

    /// The suspend beacon of connection `conn` as the server receives it.
    pub fn suspend_beacon(conn: ConnId, sessions: Vec<SessionCursor>) -> Self {
        HttpRequest::on(
            conn,
            Endpoint::Suspend,
            ClientMsg::SessionSuspend { sessions },
        )
    }
}

/// A POST's reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
    /// Seconds, as a `Retry-After` header would carry them (only injected faults set it in
    /// this era; mitzo's server never sends 429).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u32>,
}

impl HttpResponse {
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        HttpResponse {
            status,
            body: body.into(),
            retry_after_s: None,
        }
    }
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// What an event stored in the EventStore says.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// A prompt persisted by `storeAndEchoIfNew`; `interrupt` marks the interrupt flow.
    UserMessage {
        client_msg_id: String,
        text: String,
        interrupt: bool,
    },
    /// Anything the agent produced (assistant text, tool calls...), numbered per session
    /// by the agent driver.
    AgentOutput { n: u32 },
    /// Every `setSessionState` appends one of these (spec §0.3).
    SessionStateChanged {
        state: SessionView,
        internal: SessionState,
        reason: String,
    },
    /// The reference design's durable marker that a persisted prompt will never be
    /// executed (its receipt is `Failed`), e.g. `reason: "server_restart"` for a prompt
    /// that was stored but not dispatched when the process died.
    MessageFailed {
        client_msg_id: String,
        reason: String,
    },
}

/// An event as stored and as broadcast: it always carries its session and seq.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionEvent {
    pub seq: Seq,
    /// The previous seq of the same session, 0 for its first event (the reference design's
    /// `prevSessionSeq`: seq is global, so a client can only tell a gap by this). Set by
    /// `EventStore::append`; absent in old JSON, where it reads as 0.
    #[serde(default)]
    pub prev_seq: Seq,
    pub session: SessionId,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The JSON payload of one SSE frame.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    Welcome {
        connection_id: ConnId,
        protocol_version: u32,
    },
    /// A stored session event (live, synced or replayed).
    Session(SessionEvent),
    Watched {
        session: SessionId,
    },
    Unwatched {
        session: SessionId,
    },
    SessionSwitched {
        session: SessionId,
    },
    /// The current state as `/switch` reports it; not a stored event, so no seq.
    SessionStatus {
        session: SessionId,
        state: SessionView,
    },
    BootContext {
        session: SessionId,
    },
    SessionResumed {
        session: SessionId,
        replayed: u32,
    },
    Reconnected {
        sessions: Vec<(SessionId, u32)>,
    },
    Error {
        session: Option<SessionId>,
        message: String,
    },
}

impl ServerEvent {
    /// The `(session, seq)` pair the client tracks, for events that carry both.
    pub fn tracked(&self) -> Option<(&SessionId, Seq)> {
        match self {
            ServerEvent::Session(e) => Some((&e.session, e.seq)),
            _ => None,
        }
    }
}

/// The SSE event name: only the welcome is named; everything else is the default
/// `message` event ([SSR]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameName {
    Welcome,
    Message,
}

/// One SSE frame: event name, `id:` line (the seq, when the payload has one) and data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    pub name: FrameName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Seq>,
    pub data: ServerEvent,
}

impl Frame {
    pub fn of(data: ServerEvent) -> Self {
        let name = match data {
            ServerEvent::Welcome { .. } => FrameName::Welcome,
            _ => FrameName::Message,
        };
        let id = data.tracked().map(|(_, seq)| seq);
        Frame { name, id, data }
    }
}

/// The reference design's reply body for a prompt (`/send`, `/interrupt`) under durable
/// receipts ([SC], [C2]): `{"accepted":true,"clientMsgId":"m1","sessionId":"s1"}` on 202;
/// on 422 `accepted` is false and `error` says why the prompt will never run.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub accepted: bool,
    pub client_msg_id: String,
    #[serde(rename = "sessionId")]
    pub session: SessionId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Receipt {
    pub fn accepted(client_msg_id: impl Into<String>, session: SessionId) -> Self {
        Receipt {
            accepted: true,
            client_msg_id: client_msg_id.into(),
            session,
            error: None,
        }
    }

    pub fn failed(
        client_msg_id: impl Into<String>,
        session: SessionId,
        error: impl Into<String>,
    ) -> Self {
        Receipt {
            accepted: false,
            client_msg_id: client_msg_id.into(),
            session,
            error: Some(error.into()),
        }
    }

    /// The HTTP body: `{"accepted":..,"clientMsgId":"..","sessionId":".."[,"error":".."]}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a receipt serialises")
    }

    /// Reads a receipt body; `None` for anything that is not one.
    pub fn parse(body: &str) -> Option<Receipt> {
        serde_json::from_str(body).ok()
    }
}
