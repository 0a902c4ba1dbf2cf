//! The server's side of the direct engine: one process lifetime around the [`Server`]
//! machine (its streams, pending replies, timers and `interrupt()` calls), the agent
//! driver's inbox, and crashes and boots.
//!
//! It does what turmoil's `server_host` does, step for step: a stream's first request is
//! checked against injected statuses before the handler sees it; a deferred reply is
//! polled for every millisecond; a lost response drops the connection after the handler
//! applied the request; a crash the machine asks for takes the process down at once but
//! its sockets only at the next millisecond, when turmoil's loop reaps the host.

use super::network::{ConnKind, Msg, ServerEnd, WINDOW};
use super::queue::{class, Key, ENGINE, SERVER};
use super::{Ev, Local, World};
use crate::faults::InterruptCall;
use crate::history::{Event, WireEvent};
use crate::net::{Down, Up};
use serde::Serialize;
use ssesim_model::{
    ConnId, Endpoint, EventStore, Frame, HttpRequest, HttpResponse, Millis, Server, ServerInput,
    ServerOutput, ServerTimer,
};
use ssesim_scenarios::{EventsEndpoint, FaultEndpoint};
use std::collections::{BTreeMap, VecDeque};

/// One process lifetime: everything here dies with a crash.
#[derive(Clone, Debug, Default, Serialize)]
pub(super) struct Process {
    /// Open SSE streams: the machine's connection id and the network connection (the
    /// sending half of the stream's channel).
    streams: BTreeMap<ConnId, u64>,
    /// Frames written to a stream that its task has not sent yet (the channel). An open
    /// stream keeps its (emptied) queue between flushes; only non-empty ones are state.
    #[serde(serialize_with = "nonempty")]
    queued: BTreeMap<u64, VecDeque<Down>>,
    /// Replies the machine gave, until their request's connection takes them.
    replies: BTreeMap<u64, HttpResponse>,
    /// Armed timers and their events.
    timers: BTreeMap<ServerTimer, (Millis, Key)>,
    next_token: u64,
}

/// The streams' queues that hold something (an empty one is as good as none).
fn nonempty<S: serde::Serializer>(
    queued: &BTreeMap<u64, VecDeque<Down>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(queued.iter().filter(|(_, q)| !q.is_empty()))
}

impl World {
    /// The server host's main task: boots a process from the disk. Packets that waited
    /// for the host are taken first, before it listens: SYNs are refused and data is
    /// answered with an RST.
    pub(super) fn boot(&mut self) {
        self.boot_pending = false;
        for (conn, msg) in self.take_parked() {
            match msg {
                // No listener yet: the SYN is dropped and the connect fails.
                Msg::Syn => {
                    let Some(c) = self.conns.get_mut(&conn) else {
                        continue;
                    };
                    c.refused = true;
                    if c.tab_held {
                        let rank = super::queue::tab_rank(c.tab);
                        self.queue
                            .push(self.now, rank, class::ACK, Ev::TabWake { conn });
                    }
                }
                // No socket (the crash closed them all).
                Msg::Up(_) | Msg::Down(_) | Msg::Fin => {
                    self.send(conn, false, Msg::Rst);
                }
                Msg::Rst => {}
            }
            self.collect(conn);
        }
        let store = self.disk.take().unwrap_or_default();
        let (server, outputs) = Server::boot(store, self.params.server.clone(), self.now);
        let boot = server.boot_number();
        self.server = Some(server);
        self.process = Some(Process::default());
        self.record(Event::ServerUp { boot });
        self.apply_all(outputs);
    }

    /// Pushes an input for the server (agent driver, engine faults); dropped while the
    /// server is down, as turmoil's inbox is.
    pub(super) fn push_server(&mut self, input: ServerInput) {
        if self.server.is_some() {
            self.queue
                .push(self.now, SERVER, class::INBOX, Ev::ServerInput(input));
        }
    }

    /// Feeds one input to the machine and acts on what it says, recording both.
    pub(super) fn server_handle(&mut self, input: ServerInput) {
        if self.server.is_none() {
            return;
        }
        self.record(Event::ServerIn {
            input: input.clone(),
        });
        let now = self.now;
        let Some(server) = self.server.as_mut() else {
            return;
        };
        let outputs = server.handle(now, input);
        self.apply_all(outputs);
    }

    fn apply_all(&mut self, outputs: Vec<ServerOutput>) {
        for output in outputs {
            if self.server.is_none() {
                return;
            }
            // The output goes into the history; `apply` gets a copy only of those it acts on.
            let applied = match &output {
                ServerOutput::StreamOpened { .. }
                | ServerOutput::Deliver(_)
                | ServerOutput::Heartbeat { .. }
                | ServerOutput::CloseStream { .. }
                | ServerOutput::Respond { .. }
                | ServerOutput::CallInterrupt { .. }
                | ServerOutput::SetTimer { .. }
                | ServerOutput::Crash { .. } => Some(output.clone()),
                _ => None,
            };
            self.record(Event::ServerOut { output });
            if let Some(output) = applied {
                self.apply(output);
            }
        }
    }

    /// Acts on an output (`apply_all` hands over only the kinds matched here).
    fn apply(&mut self, output: ServerOutput) {
        match output {
            ServerOutput::StreamOpened { conn: id } => {
                if let Some(conn) = self.opening.take() {
                    if let Some(p) = self.process.as_mut() {
                        p.streams.insert(id, conn);
                    }
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.server = ServerEnd::Stream(id);
                    }
                }
            }
            ServerOutput::Deliver(d) => {
                let frame = Frame::of(d.event);
                self.write(d.conn, Down::Frame { frame });
            }
            ServerOutput::Heartbeat { conn } => self.write(conn, Down::Heartbeat),
            ServerOutput::CloseStream { conn: id } => {
                // The channel closes; the stream's task sends what is queued, then ends.
                if let Some(conn) = self.process.as_mut().and_then(|p| p.streams.remove(&id)) {
                    self.wake(Local::Stream(conn));
                }
            }
            ServerOutput::Respond { token, response } => {
                if let Some(p) = self.process.as_mut() {
                    p.replies.insert(token, response);
                }
            }
            ServerOutput::CallInterrupt { token, .. } => match self.faults.interrupt() {
                InterruptCall::Crash => self.kill("crash at the interrupt point".into()),
                InterruptCall::Settle { ok } => {
                    let at = self.now + self.net.interrupt_latency_ms;
                    self.queue
                        .push_timer(self.now, at, SERVER, Ev::Settle { token, ok });
                }
            },
            ServerOutput::SetTimer { timer, at } => {
                let key =
                    self.queue
                        .push_timer(self.now, at, SERVER, Ev::ServerTimer(timer.clone()));
                if let Some(p) = self.process.as_mut() {
                    if let Some((_, old)) = p.timers.insert(timer, (at, key)) {
                        self.queue.cancel(Some(old));
                    }
                }
            }
            ServerOutput::Crash { reason } => self.kill(reason),
            _ => {}
        }
    }

    /// Writes a frame to a stream the process has open, or records that nobody took it.
    fn write(&mut self, id: ConnId, down: Down) {
        let Some(p) = self.process.as_mut() else {
            return;
        };
        match p.streams.get(&id) {
            Some(&conn) => {
                p.queued.entry(conn).or_default().push_back(down);
                self.wake(Local::Stream(conn));
            }
            None => self.record(Event::Wire {
                tab: None,
                event: WireEvent::FrameDiscarded { conn: id },
            }),
        }
    }

    /// A stream's task sends what its channel holds (its `select!` is biased that way)
    /// and ends when the channel is closed (the server closed the stream) or a write
    /// fails (the socket was reset: the stream is closed as by the client). Returns
    /// whether it goes on reading.
    fn flush_stream(&mut self, conn: u64) -> bool {
        let Some(ServerEnd::Stream(id)) = self.conns.get(&conn).map(|c| c.server.clone()) else {
            return false;
        };
        loop {
            let Some(c) = self.conns.get(&conn) else {
                return false;
            };
            if c.down_unread >= WINDOW {
                // The send window is full: blocked until the tab reads (nothing else,
                // not even EOF, is looked at meanwhile).
                let queued = self.process.as_ref().and_then(|p| p.queued.get(&conn));
                if queued.is_some_and(|q| !q.is_empty()) {
                    return false;
                }
            }
            let sock = c.srv_sock;
            let Some(down) = self
                .process
                .as_mut()
                .and_then(|p| p.queued.get_mut(&conn))
                .and_then(|q| q.pop_front())
            else {
                break;
            };
            if !sock {
                self.stream_closed(conn, id);
                return false;
            }
            if let Some(c) = self.conns.get_mut(&conn) {
                c.down_unread += 1;
            }
            self.send(conn, false, Msg::Down(down));
        }
        let open = self
            .process
            .as_ref()
            .is_some_and(|p| p.streams.get(&id) == Some(&conn));
        if !open {
            if let Some(p) = self.process.as_mut() {
                p.queued.remove(&conn);
            }
            self.close_server_end(conn);
        }
        open
    }

    /// A tab's read freed room in a blocked stream's send window: its task resumes in the
    /// server's next turn.
    pub(super) fn wake_server_stream(&mut self, conn: u64) {
        if self.woken.insert((3, 0, conn)) {
            self.queue.push(
                self.now + 1,
                SERVER,
                class::WOKEN,
                Ev::Task(Local::Resume(conn)),
            );
        }
    }

    /// The stream's task woke: it sends what is queued, then reads its socket (its
    /// reads are ignored, but EOF or a reset ends the stream).
    pub(super) fn stream_task(&mut self, conn: u64) {
        if !self.flush_stream(conn) {
            return;
        }
        while let Some(msg) = self.conns.get_mut(&conn).and_then(|c| c.srv_rx.pop_front()) {
            if matches!(msg, Msg::Fin | Msg::Rst) {
                if let Some(ServerEnd::Stream(id)) = self.conns.get(&conn).map(|c| c.server.clone())
                {
                    self.stream_closed(conn, id);
                }
                return;
            }
        }
    }

    /// The client closed a stream (EOF or reset): the process forgets it.
    fn stream_closed(&mut self, conn: u64, id: ConnId) {
        if let Some(p) = self.process.as_mut() {
            p.streams.remove(&id);
            p.queued.remove(&conn);
        }
        self.close_server_end(conn);
        self.server_handle(ServerInput::StreamClosed { conn: id });
    }

    /// The timer task: fires every due timer, earliest first (ties in timer order).
    pub(super) fn fire_timers(&mut self) {
        loop {
            let now = self.now;
            let Some(p) = self.process.as_mut() else {
                return;
            };
            let due = p
                .timers
                .iter()
                .filter(|(_, (at, _))| *at <= now)
                .min_by_key(|(_, (at, _))| *at)
                .map(|(t, _)| t.clone());
            let Some(timer) = due else {
                return;
            };
            let (_, key) = p.timers.remove(&timer).expect("listed");
            self.queue.cancel(Some(key));
            self.server_handle(ServerInput::Timer(timer));
        }
    }

    /// The listener takes a SYN: the SYN-ACK is immediate (a connect given up on
    /// meanwhile takes nothing).
    pub(super) fn accept(&mut self, conn: u64) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.server != ServerEnd::Pending || !c.tab_held || c.acked || c.refused {
            return;
        }
        self.accepts += 1;
        c.server = ServerEnd::AwaitFirst;
        c.srv_sock = true;
        c.acked = true;
        c.accepted = self.accepts;
        let rank = super::queue::tab_rank(c.tab);
        self.queue
            .push(self.now, rank, class::ACK, Ev::TabWake { conn });
    }

    /// A connection's task on the server runs: it reads what its socket holds.
    pub(super) fn server_wake(&mut self, conn: u64) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        match c.server.clone() {
            ServerEnd::AwaitFirst => match c.srv_rx.pop_front() {
                Some(Msg::Up(first)) => self.serve(conn, first),
                // EOF or reset before the request: the task ends.
                Some(_) => self.close_server_end(conn),
                None => {}
            },
            ServerEnd::Stream(_) => self.stream_task(conn),
            // A deferred POST reads nothing more (a reset only makes its reply fail).
            _ => {}
        }
    }

    fn injected_record(&mut self, endpoint: String, status: u16) {
        self.record(Event::Wire {
            tab: None,
            event: WireEvent::StatusInjected { endpoint, status },
        });
    }

    /// A connection's first request.
    fn serve(&mut self, conn: u64, first: Up) {
        match first {
            Up::Events => {
                if let Some((status, _)) = self
                    .faults
                    .injected(FaultEndpoint::Events(EventsEndpoint::Events))
                {
                    self.injected_record("events".into(), status);
                    self.send(conn, false, Msg::Down(Down::Refused { status }));
                    self.close_server_end(conn);
                    return;
                }
                self.opening = Some(conn);
                self.server_handle(ServerInput::OpenStream);
                self.opening = None;
                if self.conns.get(&conn).map(|c| &c.server) == Some(&ServerEnd::AwaitFirst) {
                    // No stream came of it (the process is gone).
                    self.close_server_end(conn);
                } else {
                    // serve_stream's loop starts: the welcome goes out at once.
                    self.stream_task(conn);
                }
            }
            Up::Post { request } => {
                let endpoint = request.endpoint;
                if let Some((status, retry_after_s)) =
                    self.faults.injected(FaultEndpoint::Post(endpoint))
                {
                    self.injected_record(endpoint.to_string(), status);
                    let mut response = HttpResponse::new(status, "injected");
                    response.retry_after_s = retry_after_s;
                    self.send(conn, false, Msg::Down(Down::Response { response }));
                    self.close_server_end(conn);
                    return;
                }
                let Some(token) = self.token() else {
                    self.close_server_end(conn);
                    return;
                };
                self.server_handle(ServerInput::Request { token, request });
                self.reply(conn, token, endpoint);
            }
            Up::Beacon {
                connection_id,
                sessions,
            } => {
                // The beacon endpoint names the connection in its body; it answers nobody.
                if let Some(token) = self.token() {
                    let request = HttpRequest::suspend_beacon(connection_id, sessions);
                    self.server_handle(ServerInput::Request { token, request });
                    if let Some(p) = self.process.as_mut() {
                        p.replies.remove(&token);
                    }
                }
                self.close_server_end(conn);
            }
        }
    }

    fn token(&mut self) -> Option<u64> {
        let p = self.process.as_mut()?;
        p.next_token += 1;
        Some(p.next_token)
    }

    /// Sends a request's reply once the machine gave it; until then polls every
    /// millisecond, giving up when the process dies.
    fn reply(&mut self, conn: u64, token: u64, endpoint: Endpoint) {
        let response = self.process.as_mut().and_then(|p| p.replies.remove(&token));
        match response {
            Some(response) => {
                if self.faults.response_lost(endpoint) {
                    self.record(Event::Wire {
                        tab: None,
                        event: WireEvent::ResponseLost {
                            endpoint: endpoint.to_string(),
                        },
                    });
                } else if self.conns.get(&conn).is_some_and(|c| c.srv_sock) {
                    self.send(conn, false, Msg::Down(Down::Response { response }));
                }
                self.close_server_end(conn);
            }
            None if self.server.is_none() => self.close_server_end(conn),
            None => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.server = ServerEnd::Deferred { token, endpoint };
                }
                self.queue
                    .push(self.now + 1, SERVER, class::TIMER, Ev::ReplyPoll { conn });
            }
        }
    }

    /// A deferred request's poll for its reply.
    pub(super) fn reply_poll(&mut self, conn: u64) {
        if let Some(ServerEnd::Deferred { token, endpoint }) =
            self.conns.get(&conn).map(|c| c.server.clone())
        {
            self.reply(conn, token, endpoint);
        }
    }

    /// The process dies now (a crash output, a crash at `interrupt()`, a crash step): the
    /// store goes back on the disk, the inbox and the process's own timers die with it.
    /// Its sockets close when the crash is reaped: at once for a step, at the next
    /// millisecond when the process itself crashed (turmoil reaps after the step).
    pub(super) fn kill(&mut self, reason: String) {
        let Some(server) = self.server.take() else {
            return;
        };
        self.disk = Some(server.into_store());
        self.queue.retain(|k, e| {
            k.rank != SERVER
                || !matches!(
                    e,
                    Ev::ServerInput(_)
                        | Ev::ServerTimer(_)
                        | Ev::Settle { .. }
                        | Ev::ReplyPoll { .. }
                )
        });
        if let Some(p) = self.process.as_mut() {
            p.timers.clear();
        }
        if self.crash_request.is_none() {
            self.crash_request = Some(reason);
            if self.rank != ENGINE {
                self.queue.push(self.now + 1, ENGINE, class::REAP, Ev::Reap);
            }
        }
    }

    /// Completes a crash: every socket of the process closes (a FIN each, from the
    /// engine's loop) and the supervisor's restart is scheduled.
    pub(super) fn reap(&mut self) {
        let Some(reason) = self.crash_request.take() else {
            return;
        };
        self.process = None;
        let mut open: Vec<(u64, u64)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.server.is_open())
            .map(|(id, c)| (c.accepted, *id))
            .collect();
        open.sort_unstable();
        for (_, conn) in open {
            self.close_server_end(conn);
        }
        self.record(Event::ServerDown { reason });
        if let Some(after) = self.net.restart_after_ms {
            let key = self
                .queue
                .push(self.now + after, ENGINE, class::RESTART, Ev::Restart);
            if let Some(old) = self.restart.replace(key) {
                self.queue.cancel(Some(old));
            }
        }
    }

    /// A crash step (or a bounce's first half): the process dies and is reaped at once.
    pub(super) fn crash(&mut self, reason: String) {
        if self.server.is_some() {
            self.kill(reason);
            self.reap();
        }
    }

    /// Starts a server process if none is up: it boots in the server's turn of this
    /// millisecond.
    pub(super) fn restart(&mut self) {
        if let Some(old) = self.restart.take() {
            self.queue.cancel(Some(old));
        }
        if self.server.is_none() && !self.boot_pending {
            self.boot_pending = true;
            self.queue.push(self.now, SERVER, class::TIMER, Ev::Boot);
        }
    }

    /// The store's head for a session, whether a process holds the store or the disk does.
    pub(super) fn head_seq(&self, session: &ssesim_model::SessionId) -> ssesim_model::Seq {
        if let Some(server) = self.server.as_ref() {
            return server.store().head_seq(session);
        }
        self.disk
            .as_ref()
            .map_or(0, |d: &EventStore| d.head_seq(session))
    }

    /// The beacon's body, sent once its connect completes.
    pub(super) fn beacon_body(&mut self, conn: u64) -> Option<Up> {
        match self.conns.get_mut(&conn).map(|c| &mut c.kind) {
            Some(ConnKind::Beacon(body)) => body.take(),
            _ => None,
        }
    }
}
