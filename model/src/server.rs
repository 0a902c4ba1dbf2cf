//! The server process: the REST/SSE surface of spec §3.3 around the registry, the session
//! runtimes, and the interrupt flow of spec §5.
//!
//! Everything here except the [`EventStore`] is process memory. A crash is an output
//! ([`ServerOutput::Crash`]); the engine then drops the `Server`, keeps the store (the disk)
//! and later boots a new one from it with [`Server::boot`].
//!
//! With `ServerParams::receipts` (the reference design, spec §7) `/send` and `/interrupt`
//! are answered from durable receipts and need no live stream; an `/interrupt` to a running
//! session is answered only when `interrupt()` settles, so its
//! [`ServerOutput::Respond`] comes out of the later `handle` call that takes the
//! [`ServerInput::InterruptSettled`] (or never, if the process dies first).

use crate::params::ServerParams;
use crate::registry::{ConnectionRegistry, Delivery, Origin, SyncBatch, TransportHealth};
use crate::store::{EventStore, ReceiptRequest, ReceiptState, SessionState};
use crate::types::{ConnId, Millis, Seq, SessionId};
use crate::wire::{
    ClientMsg, Endpoint, EventKind, HttpRequest, HttpResponse, Receipt, ServerEvent, SessionCursor,
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
    /// Made under durable receipts: the reply waits for the settlement.
    #[serde(default)]
    receipt: bool,
    /// Requests (the first and any retries) answered when `interrupt()` settles.
    #[serde(default)]
    waiters: Vec<RequestToken>,
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

type Handled = Result<Answer, Reject>;

/// How a handled request is answered.
enum Answer {
    /// The endpoint's success status with `{"ok":true}`.
    Ok,
    /// A specific reply (receipts: 202 or 422 with a receipt body).
    Reply(HttpResponse),
    /// Answered later, by the `handle` call that settles `interrupt()`.
    Deferred,
}

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
        server.registry.set_gap_repair(server.params.gap_repair);
        for change in server.store.recover_stale_sessions(now) {
            server.out.push(ServerOutput::Appended(change.event));
        }
        if server.params.receipts {
            // Persisted before the crash but never dispatched: they will not run.
            for event in server.store.fail_pending_receipts("server_restart") {
                server.out.push(ServerOutput::Appended(event));
            }
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

    pub fn params(&self) -> &ServerParams {
        &self.params
    }

    /// How many `interrupt()` calls have not settled yet.
    pub fn pending_interrupts(&self) -> usize {
        self.pending_interrupts.len()
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
                if let Some(response) = self.request(now, token, request) {
                    self.out.push(ServerOutput::Respond { token, response });
                }
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
        // The reference design never holds live events for a suspended session: a tab
        // shown again without losing its stream never resumes it, and would wait for them.
        let hold = !self.params.gap_repair;
        if let Some(r) = self.runtimes.get_mut(&session).filter(|_| hold) {
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

    /// The reply, or `None` when it is deferred to the settlement of `interrupt()`.
    fn request(
        &mut self,
        now: Millis,
        token: RequestToken,
        request: HttpRequest,
    ) -> Option<HttpResponse> {
        let endpoint = request.endpoint;
        match self.route(now, token, request) {
            Ok(Answer::Ok) => Some(HttpResponse::new(
                endpoint.success_status(),
                "{\"ok\":true}",
            )),
            Ok(Answer::Reply(response)) => Some(response),
            Ok(Answer::Deferred) => None,
            Err(Reject::Status(status, why)) => Some(HttpResponse::new(status, why)),
        }
    }

    /// The checks of spec §3.3, in mitzo's order: header, stream (send/interrupt only),
    /// registration, body, then the handler. Under receipts `/send` and `/interrupt` skip
    /// the stream and registration checks.
    fn route(&mut self, now: Millis, token: RequestToken, request: HttpRequest) -> Handled {
        let endpoint = request.endpoint;
        let conn = request
            .connection_id
            .ok_or(Reject::Status(400, "Missing X-Connection-ID"))?;
        let receipted = self.params.receipts && endpoint.needs_stream();
        if !receipted {
            if endpoint.needs_stream() && !self.streams.contains(&conn) {
                return Err(Reject::Status(404, "No SSE stream for this connection"));
            }
            if !self.registry.contains(conn) {
                return Err(Reject::Status(404, "Unknown connection"));
            }
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
        if receipted {
            return self.receipted(now, token, conn, request.body);
        }
        self.dispatch(now, conn, request.body)
    }

    /// Makes the connection's active session `session` (watching it). With gap repair a
    /// pair that had no cursor yet starts at the session's head.
    fn make_active(&mut self, conn: ConnId, session: &SessionId) {
        self.registry.set_active(conn, Some(session));
        self.start_at_head(conn, session);
    }

    fn start_at_head(&mut self, conn: ConnId, session: &SessionId) {
        if self.params.gap_repair {
            let head = self.store.head_seq(session);
            self.registry.start_at(conn, session, head);
        }
    }

    fn new_session_id(&mut self) -> SessionId {
        self.next_new_session += 1;
        SessionId::new(format!("new-{}.{}", self.boot, self.next_new_session))
    }

    /// `/send` and `/interrupt` under durable receipts ([SC], [C2]): one durable dispatch
    /// per clientMsgId. A known id answers from its receipt (202 dispatched, 422 failed,
    /// 409 for a different payload, or joins the pending interrupt's reply); a new one is
    /// persisted `Pending`, stored as a user message, dispatched and marked `Dispatched`.
    fn receipted(
        &mut self,
        now: Millis,
        token: RequestToken,
        conn: ConnId,
        body: ClientMsg,
    ) -> Handled {
        let (interrupt, named, client_msg_id, text) = match body {
            ClientMsg::Send {
                session,
                client_msg_id,
                text,
            } => (false, session, client_msg_id, text),
            ClientMsg::Interrupt {
                session,
                client_msg_id,
                text,
            } => (true, Some(session), client_msg_id, text),
            _ => return Err(Reject::Status(400, "Invalid message")),
        };
        let request = ReceiptRequest {
            interrupt,
            named_session: named.clone(),
            text: text.clone(),
        };
        let conn = Some(conn).filter(|c| self.registry.contains(*c));
        if let Some(receipt) = self.store.receipt(&client_msg_id).cloned() {
            if !receipt.request.is_retried_by(&request, &receipt.session) {
                return Err(Reject::Status(
                    409,
                    "clientMsgId reused for a different message",
                ));
            }
            return Ok(match receipt.state {
                ReceiptState::Dispatched => {
                    if let Some(c) = conn {
                        self.make_active(c, &receipt.session);
                    }
                    Answer::Reply(accepted(&client_msg_id, &receipt.session))
                }
                ReceiptState::Failed(reason) => {
                    Answer::Reply(failed(&client_msg_id, &receipt.session, &reason))
                }
                ReceiptState::Pending => {
                    let waiting = self
                        .pending_interrupts
                        .values_mut()
                        .find(|p| p.receipt && p.client_msg_id == client_msg_id);
                    match waiting {
                        Some(p) => {
                            p.waiters.push(token);
                            if let Some(c) = conn {
                                self.make_active(c, &receipt.session);
                            }
                            Answer::Deferred
                        }
                        None => return Err(Reject::Status(500, "Receipt pending")),
                    }
                }
            });
        }
        let (session, new_session) = match named {
            Some(s) => (s, false),
            None => (self.new_session_id(), true),
        };
        // The sender follows the session it prompts, interrupts included: its client
        // tracks the session from now on, so the server watches it for that connection
        // (and the echo reaches the sender).
        if let Some(c) = conn {
            self.make_active(c, &session);
        }
        if interrupt && self.runtimes.contains_key(&session) {
            self.store.put_receipt(&client_msg_id, &session, request);
            self.append(
                &session,
                EventKind::UserMessage {
                    client_msg_id: client_msg_id.clone(),
                    text: text.clone(),
                    interrupt: true,
                },
            );
            self.call_interrupt(PendingInterrupt {
                session,
                client_msg_id,
                text,
                was_new: true,
                receipt: true,
                waiters: vec![token],
            });
            return Ok(Answer::Deferred);
        }
        // A send, or an interrupt for a session with no runtime, which resumes it.
        match self.runtimes.get_mut(&session) {
            Some(r) => {
                if conn.is_some() {
                    r.transport = conn;
                }
            }
            None => self.start_runtime(&session, conn, now),
        }
        self.store.put_receipt(&client_msg_id, &session, request);
        self.append(
            &session,
            EventKind::UserMessage {
                client_msg_id: client_msg_id.clone(),
                text: text.clone(),
                interrupt,
            },
        );
        self.out.push(ServerOutput::AgentInput(AgentInput {
            session: session.clone(),
            client_msg_id: client_msg_id.clone(),
            text,
            interrupt,
            new_session,
        }));
        self.store.mark_dispatched(&client_msg_id);
        Ok(Answer::Reply(accepted(&client_msg_id, &session)))
    }

    fn call_interrupt(&mut self, pending: PendingInterrupt) {
        self.next_interrupt += 1;
        let token = self.next_interrupt;
        let session = pending.session.clone();
        self.pending_interrupts.insert(token, pending);
        self.out
            .push(ServerOutput::CallInterrupt { token, session });
    }

    fn dispatch(&mut self, now: Millis, conn: ConnId, body: ClientMsg) -> Handled {
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
                self.start_at_head(conn, &session);
                self.direct(conn, ServerEvent::Watched { session });
            }
            ClientMsg::Unwatch { session } => {
                let head = self.store.head_seq(&session);
                let mut d = Vec::new();
                self.registry
                    .repair_now(conn, &session, &self.store, head, &mut d);
                self.push_deliveries(d);
                self.registry.unwatch_at(conn, &session, head);
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
            ClientMsg::Reconnect { sessions } => {
                return self.handle_reconnect(now, conn, &sessions)
            }
            ClientMsg::Unknown { .. } => {}
        }
        Ok(Answer::Ok)
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
            // No dedup on this path: a retried first message starts a second session.
            None => (self.new_session_id(), true),
        };
        self.make_active(conn, &session);
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
        self.call_interrupt(PendingInterrupt {
            session,
            client_msg_id,
            text,
            was_new,
            receipt: false,
            waiters: Vec::new(),
        });
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
            if p.receipt {
                // Surfaced, not swallowed: every watcher is told; the prompt still runs.
                let event = ServerEvent::Error {
                    session: Some(p.session.clone()),
                    message: format!(
                        "interrupt failed; message {} was still delivered",
                        p.client_msg_id
                    ),
                };
                let mut d = Vec::new();
                self.registry.notify(&p.session, &event, &mut d);
                self.push_deliveries(d);
            }
        }
        if p.receipt {
            self.settle_receipted(p);
            return;
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

    /// The receipted interrupt once `interrupt()` settled (or its failure was caught):
    /// dispatch, mark the receipt and answer every waiting request. A session whose runtime
    /// went away meanwhile cannot take the prompt: the receipt fails (422).
    fn settle_receipted(&mut self, p: PendingInterrupt) {
        let response = if self.runtimes.contains_key(&p.session) {
            self.out.push(ServerOutput::AgentInput(AgentInput {
                session: p.session.clone(),
                client_msg_id: p.client_msg_id.clone(),
                text: p.text,
                interrupt: true,
                new_session: false,
            }));
            self.store.mark_dispatched(&p.client_msg_id);
            accepted(&p.client_msg_id, &p.session)
        } else {
            let reason = "session_ended";
            if let Some(event) = self.store.fail_receipt(&p.client_msg_id, reason) {
                self.publish(event);
            }
            failed(&p.client_msg_id, &p.session, reason)
        };
        for token in p.waiters {
            self.out.push(ServerOutput::Respond {
                token,
                response: response.clone(),
            });
        }
    }

    fn handle_switch(&mut self, conn: ConnId, session: SessionId) {
        let previous = self.registry.get(conn).and_then(|c| c.active.clone());
        // With gap repair (the reference design) a switch only changes the active session:
        // the client goes on tracking the previous one (and re-watches it at every
        // reconnect), and a prompt to it sent before the switch may arrive after it, so an
        // unwatch here would make the watch set depend on arrival order. Only `/unwatch`
        // stops a watch.
        let keep = self.params.gap_repair;
        if let Some(prev) = previous.filter(|p| *p != session && !keep) {
            let head = self.store.head_seq(&prev);
            self.registry.unwatch_at(conn, &prev, head);
        }
        self.make_active(conn, &session);
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
    ///
    /// Reference: a replay cut short by a failing transport is answered 503 instead of 200.
    /// The client asked for those events and nothing on the stream will tell it they did
    /// not go out (`reconnected` fails with them), so the reply must: it retries with
    /// backoff and the retry after the transport recovers replays the rest at once, where
    /// sync alone would crawl through it a batch a tick.
    fn handle_reconnect(
        &mut self,
        now: Millis,
        conn: ConnId,
        sessions: &[SessionCursor],
    ) -> Handled {
        let mut summary = Vec::new();
        let mut incomplete = false;
        for c in sessions {
            let s = &c.session;
            self.registry.watch(conn, s);
            self.registry.reset_cursor(conn, s, c.last_seq);
            let mut d = Vec::new();
            let mut last: Seq = c.last_seq;
            let mut replayed = 0u32;
            let mut failed = false;
            for e in self.store.events_after(s, c.last_seq, None) {
                let sent = self.registry.send_to(
                    conn,
                    ServerEvent::Session(e.clone()),
                    Origin::Replay,
                    &mut d,
                );
                if !sent && self.params.gap_repair {
                    // Never leave a hole: the cursor stays before the failed event and
                    // sync takes over from there.
                    failed = true;
                    break;
                }
                last = e.seq;
                replayed += 1;
            }
            self.push_deliveries(d);
            self.registry.reset_cursor(conn, s, last);
            if failed {
                incomplete = true;
                self.registry.block(conn, s);
            } else {
                self.registry.unblock(conn, s);
            }
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
        if incomplete {
            return Err(Reject::Status(503, "Replay incomplete: the stream failed"));
        }
        Ok(Answer::Ok)
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

fn accepted(client_msg_id: &str, session: &SessionId) -> HttpResponse {
    HttpResponse::new(
        202,
        Receipt::accepted(client_msg_id, session.clone()).to_json(),
    )
}

fn failed(client_msg_id: &str, session: &SessionId, reason: &str) -> HttpResponse {
    HttpResponse::new(
        422,
        Receipt::failed(client_msg_id, session.clone(), reason).to_json(),
    )
}
