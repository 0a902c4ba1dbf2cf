//! The server process: the REST/SSE surface of spec §3.3 around the registry, the session
//! runtimes, and the interrupt flow of spec §5.
//!
//! Everything here except the [`EventStore`] is process memory. A crash is an output
//! ([`ServerOutput::Crash`]); the engine then drops the `Server`, keeps the store (the disk)
//! and later boots a new one from it with [`Server::boot`].

use crate::params::ServerParams;
use crate::registry::{ConnectionRegistry, Delivery, Origin, SyncBatch, TransportHealth};
use crate::store::{EventStore, SessionState};
use crate::types::{ConnId, Millis, Seq, SessionId};
use crate::wire::{
    ClientMsg, Endpoint, EventKind, HttpRequest, HttpResponse, ServerEvent, SessionCursor,
    SessionEvent,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The protocol version the welcome frame announces.
pub const PROTOCOL_VERSION: u32 = 2;

/// An engine-chosen handle pairing a request with its response.
pub type RequestToken = u64;

/// A server-chosen handle pairing `interrupt()` with its settlement.
pub type InterruptToken = u64;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "timer", content = "session")]
pub enum ServerTimer {
    /// The periodic-sync interval.
    Sync,
    /// The 30 s SSE comment-line heartbeat.
    Heartbeat,
    /// A suspended session's grace period ran out.
    SuspendExpiry(SessionId),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "input")]
pub enum ServerInput {
    /// `GET /api/chat/events`: a new SSE stream.
    OpenStream,
    /// The stream's socket closed or a heartbeat write failed.
    StreamClosed {
        conn: ConnId,
    },
    /// The server forgets a connection on its own; with `close_stream` false the client is
    /// not told (a half-open stream), which is how stale ids meet a "connected" client.
    DropConnection {
        conn: ConnId,
        close_stream: bool,
    },
    Request {
        token: RequestToken,
        request: HttpRequest,
    },
    /// The agent driver starts a running session with no client attached.
    StartSession {
        session: SessionId,
    },
    /// The agent produces its `n`-th output in a session.
    AgentEmit {
        session: SessionId,
        n: u32,
    },
    /// The agent driver moves a session (detach, suspend, end...).
    AgentState {
        session: SessionId,
        to: SessionState,
    },
    /// `await queryInstance.interrupt()` settled.
    InterruptSettled {
        token: InterruptToken,
        ok: bool,
    },
    Timer(ServerTimer),
    /// The next `count` handlers on `endpoint` throw after validation (answer 500).
    FailHandlers {
        endpoint: Endpoint,
        count: u32,
    },
    /// Make a connection's transport throw on send, or heal it.
    SetTransport {
        conn: ConnId,
        health: TransportHealth,
    },
}

/// A prompt handed to the agent's input queue: what "dispatched" means.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInput {
    pub session: SessionId,
    pub client_msg_id: String,
    pub text: String,
    /// Pushed with priority `now` by the interrupt flow.
    pub interrupt: bool,
    /// The send started a session (`sessionId: null`).
    pub new_session: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentControl {
    Stop,
    Permission,
    Mode,
    Close,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "output")]
pub enum ServerOutput {
    StreamOpened {
        conn: ConnId,
    },
    Deliver(Delivery),
    /// The server ends a stream's HTTP response.
    CloseStream {
        conn: ConnId,
    },
    /// Write a heartbeat comment; the engine reports `StreamClosed` if the write fails.
    Heartbeat {
        conn: ConnId,
    },
    Respond {
        token: RequestToken,
        response: HttpResponse,
    },
    Appended(SessionEvent),
    IllegalTransition {
        session: SessionId,
        from: SessionState,
        to: SessionState,
    },
    AgentInput(AgentInput),
    AgentControl {
        session: SessionId,
        control: AgentControl,
    },
    /// Call `interrupt()`; the engine answers with `InterruptSettled`.
    CallInterrupt {
        token: InterruptToken,
        session: SessionId,
    },
    SetTimer {
        timer: ServerTimer,
        at: Millis,
    },
    SyncBatch(SyncBatch),
    Warning {
        message: String,
    },
    /// The process died; every input after this is ignored.
    Crash {
        reason: String,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Runtime {
    /// The connection the session is attached to; `None` when detached.
    transport: Option<ConnId>,
    suspended: bool,
    /// When the current suspension began: a `SuspendExpiry` timer left over from an
    /// earlier suspension must not end a later one before its own grace period.
    suspended_since: Millis,
    /// Live events held while suspended (counted, not kept: the reconnect replay re-reads
    /// the store, so keeping copies would only duplicate it).
    buffered: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct PendingInterrupt {
    session: SessionId,
    client_msg_id: String,
    text: String,
    was_new: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    params: ServerParams,
    store: EventStore,
    registry: ConnectionRegistry,
    /// `SessionSseRegistry`: ids with an open SSE response.
    streams: BTreeSet<ConnId>,
    runtimes: BTreeMap<SessionId, Runtime>,
    boot: u32,
    next_conn: u32,
    next_new_session: u32,
    next_interrupt: InterruptToken,
    pending_interrupts: BTreeMap<InterruptToken, PendingInterrupt>,
    failing_handlers: BTreeMap<Endpoint, u32>,
    crashed: bool,
    #[serde(skip)]
    out: Vec<ServerOutput>,
}

type Handled = Result<(), Reject>;

/// Why a request did not reach its handler's success path.
enum Reject {
    Status(u16, &'static str),
}

impl Server {
    /// Starts a process on top of a (possibly pre-crash) store: stale sessions are ended and
    /// the periodic sync and heartbeat timers armed.
    pub fn boot(
        mut store: EventStore,
        params: ServerParams,
        now: Millis,
    ) -> (Server, Vec<ServerOutput>) {
        let boot = store.record_boot();
        let mut server = Server {
            params,
            store,
            registry: ConnectionRegistry::new(),
            streams: BTreeSet::new(),
            runtimes: BTreeMap::new(),
            boot,
            next_conn: 0,
            next_new_session: 0,
            next_interrupt: 0,
            pending_interrupts: BTreeMap::new(),
            failing_handlers: BTreeMap::new(),
            crashed: false,
            out: Vec::new(),
        };
        for change in server.store.recover_stale_sessions(now) {
            server.out.push(ServerOutput::Appended(change.event));
        }
        server.arm(ServerTimer::Sync, now + server.params.sync.interval_ms);
        server.arm(ServerTimer::Heartbeat, now + server.params.heartbeat_ms);
        let out = std::mem::take(&mut server.out);
        (server, out)
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    pub fn registry(&self) -> &ConnectionRegistry {
        &self.registry
    }

    /// The disk, for the engine to carry across a crash.
    pub fn into_store(self) -> EventStore {
        self.store
    }

    pub fn has_crashed(&self) -> bool {
        self.crashed
    }

    pub fn boot_number(&self) -> u32 {
        self.boot
    }

    pub fn has_stream(&self, conn: ConnId) -> bool {
        self.streams.contains(&conn)
    }

    /// Whether a session has a runtime (its agent is running) in this process.
    pub fn is_running(&self, session: &SessionId) -> bool {
        self.runtimes.contains_key(session)
    }

    pub fn handle(&mut self, now: Millis, input: ServerInput) -> Vec<ServerOutput> {
        if self.crashed {
            return Vec::new();
        }
        match input {
            ServerInput::OpenStream => self.open_stream(),
            ServerInput::StreamClosed { conn } => self.close_connection(now, conn),
            ServerInput::DropConnection { conn, close_stream } => {
                if close_stream && self.streams.contains(&conn) {
                    self.out.push(ServerOutput::CloseStream { conn });
                }
                self.close_connection(now, conn);
            }
            ServerInput::Request { token, request } => {
                let response = self.request(now, request);
                self.out.push(ServerOutput::Respond { token, response });
            }
            ServerInput::StartSession { session } => {
                self.start_runtime(&session, None, now);
            }
            ServerInput::AgentEmit { session, n } => self.agent_emit(&session, n),
            ServerInput::AgentState { session, to } => self.agent_state(now, &session, to),
            ServerInput::InterruptSettled { token, ok } => self.interrupt_settled(token, ok),
            ServerInput::Timer(timer) => self.timer(now, timer),
            ServerInput::FailHandlers { endpoint, count } => {
                self.failing_handlers.insert(endpoint, count);
            }
            ServerInput::SetTransport { conn, health } => self.registry.set_transport(conn, health),
        }
        std::mem::take(&mut self.out)
    }

    fn arm(&mut self, timer: ServerTimer, at: Millis) {
        self.out.push(ServerOutput::SetTimer { timer, at });
    }

    fn warn(&mut self, message: String) {
        self.out.push(ServerOutput::Warning { message });
    }

    fn push_deliveries(&mut self, deliveries: Vec<Delivery>) {
        self.out
            .extend(deliveries.into_iter().map(ServerOutput::Deliver));
    }

    fn direct(&mut self, conn: ConnId, event: ServerEvent) {
        let mut d = Vec::new();
        self.registry.send_to(conn, event, Origin::Direct, &mut d);
        self.push_deliveries(d);
    }

    fn open_stream(&mut self) {
        self.next_conn += 1;
        let conn = ConnId::new(self.boot, self.next_conn);
        self.streams.insert(conn);
        self.registry.register(conn);
        self.out.push(ServerOutput::StreamOpened { conn });
        self.direct(
            conn,
            ServerEvent::Welcome {
                connection_id: conn,
                protocol_version: PROTOCOL_VERSION,
            },
        );
    }

    /// The close handler: connection and cursors go; attached, unsuspended sessions detach.
    fn close_connection(&mut self, now: Millis, conn: ConnId) {
        let known = self.streams.remove(&conn) | self.registry.remove(conn).is_some();
        if !known {
            return;
        }
        let detached: Vec<SessionId> = self
            .runtimes
            .iter()
            .filter(|(_, r)| r.transport == Some(conn) && !r.suspended)
            .map(|(s, _)| s.clone())
            .collect();
        for s in detached {
            if let Some(r) = self.runtimes.get_mut(&s) {
                r.transport = None;
            }
            self.set_state(&s, SessionState::Detached, "transport_close", now);
        }
    }

    fn set_state(&mut self, session: &SessionId, to: SessionState, reason: &str, now: Millis) {
        let change = self.store.set_state(session, to, reason, now, false);
        if !change.legal {
            self.out.push(ServerOutput::IllegalTransition {
                session: session.clone(),
                from: change.from,
                to,
            });
        }
        self.publish(change.event);
    }

    /// Appends to the store and broadcasts, unless the session is suspended, in which case
    /// the live send is held in the suspend buffer.
    fn append(&mut self, session: &SessionId, kind: EventKind) -> SessionEvent {
        let event = self.store.append(session, kind);
        self.publish(event.clone());
        event
    }

    fn publish(&mut self, event: SessionEvent) {
        self.out.push(ServerOutput::Appended(event.clone()));
        let session = event.session.clone();
        if let Some(r) = self.runtimes.get_mut(&session) {
            if r.suspended {
                if r.buffered < self.params.suspend_buffer {
                    r.buffered += 1;
                } else {
                    let message = format!(
                        "suspend buffer full for {session}: dropped seq {}",
                        event.seq
                    );
                    self.warn(message);
                }
                return;
            }
        }
        let mut d = Vec::new();
        self.registry
            .broadcast(&session, &ServerEvent::Session(event), &mut d);
        self.push_deliveries(d);
    }

    /// `startChat`: a runtime for the session, moved through CREATED/STARTING to ACTIVE.
    fn start_runtime(&mut self, session: &SessionId, conn: Option<ConnId>, now: Millis) {
        self.runtimes.insert(
            session.clone(),
            Runtime {
                transport: conn,
                ..Runtime::default()
            },
        );
        if matches!(
            self.store.session_state(session),
            None | Some(SessionState::Ended)
        ) {
            self.set_state(session, SessionState::Created, "start", now);
        }
        if self.store.session_state(session) == Some(SessionState::Created) {
            self.set_state(session, SessionState::Starting, "start", now);
        }
        self.set_state(session, SessionState::Active, "start", now);
    }

    fn request(&mut self, now: Millis, request: HttpRequest) -> HttpResponse {
        let endpoint = request.endpoint;
        match self.route(now, request) {
            Ok(()) => HttpResponse::new(endpoint.success_status(), "{\"ok\":true}"),
            Err(Reject::Status(status, why)) => HttpResponse::new(status, why),
        }
    }

    /// The checks of spec §3.3, in mitzo's order: header, stream (send/interrupt only),
    /// registration, body, then the handler.
    fn route(&mut self, now: Millis, request: HttpRequest) -> Handled {
        let endpoint = request.endpoint;
        let conn = request
            .connection_id
            .ok_or(Reject::Status(400, "Missing X-Connection-ID"))?;
        if endpoint.needs_stream() && !self.streams.contains(&conn) {
            return Err(Reject::Status(404, "No SSE stream for this connection"));
        }
        if !self.registry.contains(conn) {
            return Err(Reject::Status(404, "Unknown connection"));
        }
        if !request.body.is_valid_for(endpoint) {
            return Err(Reject::Status(400, "Invalid message"));
        }
        if let Some(left) = self.failing_handlers.get_mut(&endpoint) {
            if *left > 0 {
                *left -= 1;
                return Err(Reject::Status(500, "Internal error"));
            }
        }
        self.dispatch(now, conn, request.body);
        Ok(())
    }

    fn dispatch(&mut self, now: Millis, conn: ConnId, body: ClientMsg) {
        match body {
            ClientMsg::Send {
                session,
                client_msg_id,
                text,
            } => self.handle_send(now, conn, session, client_msg_id, text),
            ClientMsg::Interrupt {
                session,
                client_msg_id,
                text,
            } => self.handle_interrupt(session, client_msg_id, text),
            ClientMsg::Stop { session } => self.control(session, AgentControl::Stop),
            ClientMsg::PermissionResponse { session, .. } => {
                self.control(session, AgentControl::Permission)
            }
            ClientMsg::SetMode { session, .. } => self.control(session, AgentControl::Mode),
            ClientMsg::Watch { session } => {
                self.registry.watch(conn, &session);
                self.direct(conn, ServerEvent::Watched { session });
            }
            ClientMsg::Unwatch { session } => {
                self.registry.unwatch(conn, &session);
                self.direct(conn, ServerEvent::Unwatched { session });
            }
            ClientMsg::SwitchSession { session } => self.handle_switch(conn, session),
            ClientMsg::SessionSuspend { sessions } => self.handle_suspend(now, conn, &sessions),
            ClientMsg::SessionClose { session } => {
                self.control(session.clone(), AgentControl::Close);
                if self.runtimes.remove(&session).is_some() {
                    self.set_state(&session, SessionState::Closing, "client_close", now);
                }
                self.set_state(&session, SessionState::Ended, "client_close", now);
            }
            ClientMsg::Reconnect { sessions } => self.handle_reconnect(now, conn, &sessions),
            ClientMsg::Unknown { .. } => {}
        }
    }

    fn control(&mut self, session: SessionId, control: AgentControl) {
        if self.runtimes.contains_key(&session) {
            self.out
                .push(ServerOutput::AgentControl { session, control });
        }
    }

    /// `handleSendV2` + `sendToChat`/`startChat` (spec §3.4). The connection watches the
    /// session and makes it active first, so the echo reaches the sender.
    fn handle_send(
        &mut self,
        now: Millis,
        conn: ConnId,
        session: Option<SessionId>,
        client_msg_id: String,
        text: String,
    ) {
        let (session, new_session) = match session {
            Some(s) => (s, false),
            None => {
                // No dedup on this path: a retried first message starts a second session.
                self.next_new_session += 1;
                (
                    SessionId(format!("new-{}.{}", self.boot, self.next_new_session)),
                    true,
                )
            }
        };
        self.registry.set_active(conn, Some(&session));
        let running = self.runtimes.contains_key(&session);
        if (running || self.params.dedup_on_resume)
            && self.store.has_user_message(&session, &client_msg_id)
        {
            return;
        }
        if running {
            if let Some(r) = self.runtimes.get_mut(&session) {
                r.transport = Some(conn);
            }
        } else {
            self.start_runtime(&session, Some(conn), now);
        }
        self.append(
            &session,
            EventKind::UserMessage {
                client_msg_id: client_msg_id.clone(),
                text: text.clone(),
                interrupt: false,
            },
        );
        self.out.push(ServerOutput::AgentInput(AgentInput {
            session,
            client_msg_id,
            text,
            interrupt: false,
            new_session,
        }));
    }

    /// `interruptChat` steps 1, 2 and 4: persist and echo first, then await `interrupt()`.
    /// The REST handler does not wait for it, so the 202 goes out regardless.
    fn handle_interrupt(&mut self, session: SessionId, client_msg_id: String, text: String) {
        if !self.runtimes.contains_key(&session) {
            return;
        }
        let was_new = !self.store.has_user_message(&session, &client_msg_id);
        if was_new {
            self.append(
                &session,
                EventKind::UserMessage {
                    client_msg_id: client_msg_id.clone(),
                    text: text.clone(),
                    interrupt: true,
                },
            );
        }
        self.next_interrupt += 1;
        let token = self.next_interrupt;
        self.pending_interrupts.insert(
            token,
            PendingInterrupt {
                session: session.clone(),
                client_msg_id,
                text,
                was_new,
            },
        );
        self.out
            .push(ServerOutput::CallInterrupt { token, session });
    }

    /// Step 4's outcome and step 5. Without the guard a rejection is an unhandled promise
    /// rejection, and Node ends the process.
    fn interrupt_settled(&mut self, token: InterruptToken, ok: bool) {
        let Some(p) = self.pending_interrupts.remove(&token) else {
            return;
        };
        if !ok {
            if !self.params.interrupt_guard {
                self.crashed = true;
                self.out.push(ServerOutput::Crash {
                    reason: format!("unhandled rejection: interrupt() failed in {}", p.session),
                });
                return;
            }
            self.warn(format!("interrupt() failed in {}; continuing", p.session));
        }
        if p.was_new && self.runtimes.contains_key(&p.session) {
            self.out.push(ServerOutput::AgentInput(AgentInput {
                session: p.session,
                client_msg_id: p.client_msg_id,
                text: p.text,
                interrupt: true,
                new_session: false,
            }));
        }
    }

    fn handle_switch(&mut self, conn: ConnId, session: SessionId) {
        let previous = self.registry.get(conn).and_then(|c| c.active.clone());
        if let Some(prev) = previous.filter(|p| *p != session) {
            self.registry.unwatch(conn, &prev);
        }
        self.registry.set_active(conn, Some(&session));
        let state = self
            .store
            .session_state(&session)
            .unwrap_or(SessionState::Ended)
            .view();
        self.direct(
            conn,
            ServerEvent::SessionSwitched {
                session: session.clone(),
            },
        );
        self.direct(
            conn,
            ServerEvent::SessionStatus {
                session: session.clone(),
                state,
            },
        );
        self.direct(conn, ServerEvent::BootContext { session });
    }

    /// Suspends the listed sessions this connection owns and arms their grace timers.
    fn handle_suspend(&mut self, now: Millis, conn: ConnId, sessions: &[SessionCursor]) {
        for c in sessions {
            let owned = self
                .runtimes
                .get(&c.session)
                .is_some_and(|r| r.transport == Some(conn) && !r.suspended);
            if owned {
                self.suspend(now, &c.session, "ios_background");
            }
        }
    }

    fn suspend(&mut self, now: Millis, session: &SessionId, reason: &str) {
        // The state event goes out live before the buffer starts holding events.
        self.set_state(session, SessionState::Suspended, reason, now);
        if let Some(r) = self.runtimes.get_mut(session) {
            r.suspended = true;
            r.suspended_since = now;
            r.buffered = 0;
        }
        self.arm(
            ServerTimer::SuspendExpiry(session.clone()),
            now + self.params.suspend_grace_ms,
        );
    }

    /// `handleReconnect`: per session, rewind the cursor to the client's lastSeq, replay
    /// everything after it with no limit, resume a suspended runtime; then `reconnected`.
    fn handle_reconnect(&mut self, now: Millis, conn: ConnId, sessions: &[SessionCursor]) {
        let mut summary = Vec::new();
        for c in sessions {
            let s = &c.session;
            self.registry.watch(conn, s);
            self.registry.reset_cursor(conn, s, c.last_seq);
            let mut d = Vec::new();
            let mut last: Seq = c.last_seq;
            let mut replayed = 0u32;
            for e in self.store.events_after(s, c.last_seq, None) {
                self.registry.send_to(
                    conn,
                    ServerEvent::Session(e.clone()),
                    Origin::Replay,
                    &mut d,
                );
                last = e.seq;
                replayed += 1;
            }
            self.push_deliveries(d);
            self.registry.reset_cursor(conn, s, last);
            let resumable = self.runtimes.get(s).is_some_and(|r| r.suspended);
            if resumable {
                if let Some(r) = self.runtimes.get_mut(s) {
                    r.suspended = false;
                    r.buffered = 0;
                    r.transport = Some(conn);
                }
                self.set_state(s, SessionState::Active, "resume", now);
                self.direct(
                    conn,
                    ServerEvent::SessionResumed {
                        session: s.clone(),
                        replayed,
                    },
                );
            }
            self.direct(conn, ServerEvent::BootContext { session: s.clone() });
            summary.push((s.clone(), replayed));
        }
        self.direct(conn, ServerEvent::Reconnected { sessions: summary });
    }

    fn agent_emit(&mut self, session: &SessionId, n: u32) {
        if !self.runtimes.contains_key(session) {
            self.warn(format!("agent output for {session} ignored: no runtime"));
            return;
        }
        self.append(session, EventKind::AgentOutput { n });
    }

    fn agent_state(&mut self, now: Millis, session: &SessionId, to: SessionState) {
        match to {
            SessionState::Suspended if self.runtimes.contains_key(session) => {
                self.suspend(now, session, "agent");
                return;
            }
            SessionState::Detached => {
                if let Some(r) = self.runtimes.get_mut(session) {
                    r.transport = None;
                }
            }
            SessionState::Active => {
                if let Some(r) = self.runtimes.get_mut(session) {
                    r.suspended = false;
                }
            }
            SessionState::Ended => {
                self.runtimes.remove(session);
            }
            _ => {}
        }
        self.set_state(session, to, "agent", now);
    }

    fn timer(&mut self, now: Millis, timer: ServerTimer) {
        match timer {
            ServerTimer::Sync => {
                let mut d = Vec::new();
                let batches = self
                    .registry
                    .sync_tick(&self.store, &self.params.sync, &mut d);
                self.push_deliveries(d);
                self.out.extend(
                    batches
                        .into_iter()
                        .filter(|b| b.sent > 0 || b.skipped.is_some() || b.stopped_on_failure)
                        .map(ServerOutput::SyncBatch),
                );
                self.arm(ServerTimer::Sync, now + self.params.sync.interval_ms);
            }
            ServerTimer::Heartbeat => {
                let conns: Vec<ConnId> = self.streams.iter().copied().collect();
                self.out.extend(
                    conns
                        .into_iter()
                        .map(|conn| ServerOutput::Heartbeat { conn }),
                );
                self.arm(ServerTimer::Heartbeat, now + self.params.heartbeat_ms);
            }
            ServerTimer::SuspendExpiry(session) => {
                let grace = self.params.suspend_grace_ms;
                let expired = self
                    .runtimes
                    .get(&session)
                    .is_some_and(|r| r.suspended && now >= r.suspended_since.saturating_add(grace));
                if expired {
                    if let Some(r) = self.runtimes.get_mut(&session) {
                        r.suspended = false;
                        r.buffered = 0;
                        r.transport = None;
                    }
                    self.set_state(&session, SessionState::Detached, "suspend_timeout", now);
                }
            }
        }
    }
}
