//! Pure, sans-IO state machines of mitzo's SSE chat transport.
//!
//! Each machine takes a typed input and the current simulated time and returns typed
//! outputs; none of them owns a clock, a socket, a thread or a random number generator.
//! The engines in `ssesim-sim` carry the outputs across a (simulated) network and feed the
//! results back in.
//!
//! - [`store::EventStore`]: the durable SQLite store (global seq, session states).
//! - [`registry::ConnectionRegistry`]: connections, watches, cursors, periodic sync.
//! - [`server::Server`]: the REST/SSE surface and the interrupt flow around both.
//! - [`client::Client`]: the browser `SseConnection` with its pending-send queue.
//! - [`params::Params`]: every constant and policy, so revisions are values, not forks.

pub mod applied;
pub mod client;
pub mod outbox;
pub mod params;
pub mod registry;
pub mod revisions;
pub mod server;
pub mod store;
pub mod types;
pub mod wire;

pub use client::{
    AppNotice, Client, ClientInput, ClientOutput, ClientTimer, PageEvent, PostOutcome,
};
pub use params::{ClientParams, Params, ServerParams};
pub use registry::{ConnectionRegistry, Delivery, Origin, SyncFilter, SyncParams, TransportHealth};
pub use server::{AgentInput, Server, ServerInput, ServerOutput, ServerTimer};
pub use store::{EventStore, SessionState, SessionView};
pub use types::{ConnId, EsId, Millis, ReqId, Seq, SessionId};
pub use wire::{
    ClientMsg, Endpoint, EventKind, Frame, FrameName, HttpRequest, HttpResponse, ServerEvent,
    SessionCursor, SessionEvent,
};
