//! What the engines put on a simulated TCP connection: one length-delimited JSON message
//! per frame (tokio-util's codec; no hand-written parser).
//!
//! An SSE stream is one long-lived connection that starts with [`Up::Events`]; each POST
//! is its own connection carrying one [`Up::Post`] and at most one [`Down::Response`], so a
//! reply lost after the server applied the request is as ambiguous as in real HTTP.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use ssesim_model::{ConnId, Frame, HttpRequest, HttpResponse, SessionCursor};

/// The TCP port the simulated server listens on.
pub const PORT: u16 = 8080;

/// Client to server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "up", rename_all = "snake_case")]
pub enum Up {
    /// `GET /api/chat/events`.
    Events,
    Post {
        request: HttpRequest,
    },
    /// `navigator.sendBeacon(suspendUrl, {connectionId, sessions})`.
    Beacon {
        connection_id: ConnId,
        sessions: Vec<SessionCursor>,
    },
}

/// Server to client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "down", rename_all = "snake_case")]
pub enum Down {
    Frame {
        frame: Frame,
    },
    /// The SSE comment line `:\n`; carries nothing but liveness.
    Heartbeat,
    /// The GET was answered with an HTTP error instead of a stream.
    Refused {
        status: u16,
    },
    Response {
        response: HttpResponse,
    },
}

pub fn encode<T: Serialize>(msg: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(msg).expect("wire messages serialise"))
}

pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Option<T> {
    serde_json::from_slice(bytes).ok()
}
