//! A tab in the direct engine: the [`Client`] machine and the browser around it: the
//! EventSource (re-opens by itself after a network failure, stays closed after an HTTP
//! error), `fetch` with a timeout, `sendBeacon` and `setTimeout`.
//!
//! Each browser task is a small state machine with a `poll`, run whenever anything wakes
//! it (its timer, its connect, its socket, a fault command) and doing whatever is ready in
//! the order turmoil's `tab_host` code would: a connect or a read that is ready wins over a
//! timeout due in the same millisecond (tokio's `timeout` polls the future first).
//!
//! The EventSource follows `tab_host::event_source`: a connect bounded by the fetch
//! timeout, the `GET`, then a read loop that takes a pending fault command before any
//! frame, restarts its idle timeout after every message (heartbeats included), and ends on
//! EOF, reset, idle timeout or an HTTP refusal. A double welcome behaves as documented
//! there. A task the client closes while it runs (from inside one of its own `feed`s) goes
//! on until its next await, as an aborted tokio task does.

use super::network::{ConnKind, Msg};
use super::queue::{class, tab_rank, Key};
use super::{Ev, Local, World};
use crate::history::{Event, WireEvent};
use crate::net::{Down, Up};
use serde::Serialize;
use ssesim_model::{
    Client, ClientInput, ClientOutput, ClientTimer, EsId, Frame, FrameName, HttpRequest,
    HttpResponse, Millis, PostOutcome, ReqId,
};
use std::collections::{BTreeMap, VecDeque};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(super) struct Tab {
    pub client: Client,
    /// The page is hidden (the heal phase makes it visible).
    pub hidden: bool,
    /// The largest pending-send queue so far (a statistic, not state).
    #[serde(skip)]
    pub max_pending: usize,
    /// Running EventSource tasks.
    /// Boxed: a task leaves the map while it runs and goes back after, every poll.
    streams: BTreeMap<EsId, Box<EsTask>>,
    /// Tasks the client closed while they were idle: dropped when the scheduler next
    /// gets to them (their earliest pending wake-up).
    dropping: BTreeMap<EsId, Box<EsTask>>,
    /// `setTimeout` handles, one per client timer.
    timers: BTreeMap<ClientTimer, Key>,
    /// `fetch`es in progress.
    fetches: BTreeMap<ReqId, Fetch>,
}

impl Tab {
    pub fn new(client: Client) -> Self {
        Tab {
            client,
            hidden: false,
            max_pending: 0,
            streams: BTreeMap::new(),
            dropping: BTreeMap::new(),
            timers: BTreeMap::new(),
            fetches: BTreeMap::new(),
        }
    }
}

/// Where an EventSource task is.
#[derive(Clone, Debug, PartialEq, Serialize)]
enum EsPhase {
    /// Spawned, not polled yet.
    Spawned,
    /// Waiting for its connect, until the fetch timeout.
    Connecting { until: Millis },
    /// Reading the stream, until the idle timeout.
    Reading { until: Millis },
    /// Dispatching a double welcome: the second welcome waits for the gap to pass.
    Gap { frame: Frame, until: Millis },
    /// Waiting out the retry delay after a lost stream.
    Retry { until: Millis },
    /// Closed for good after an HTTP error.
    Done,
}

impl EsPhase {
    fn deadline(&self) -> Option<Millis> {
        match self {
            EsPhase::Connecting { until }
            | EsPhase::Reading { until }
            | EsPhase::Gap { until, .. }
            | EsPhase::Retry { until } => Some(*until),
            EsPhase::Spawned | EsPhase::Done => None,
        }
    }
}

/// A double welcome in progress (see `tab_host::DoubleWelcome`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
struct DoubleWelcome {
    gap_ms: Option<u64>,
    held: Option<Frame>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
struct EsTask {
    conn: Option<u64>,
    phase: EsPhase,
    /// The timer armed for the phase's deadline.
    timer: Option<(Millis, Key)>,
    /// Double-welcome commands not taken yet (their gaps).
    commands: VecDeque<u64>,
    double: DoubleWelcome,
}

impl EsTask {
    fn new() -> Self {
        EsTask {
            conn: None,
            phase: EsPhase::Spawned,
            timer: None,
            commands: VecDeque::new(),
            double: DoubleWelcome::default(),
        }
    }
}

/// How one stream attempt ended.
enum StreamEnd {
    Lost(&'static str),
    Refused(u16),
    Reopen,
}

/// Where a `fetch` is.
#[derive(Clone, Debug, PartialEq, Serialize)]
enum FetchPhase {
    Spawned(HttpRequest),
    Connecting(HttpRequest),
    Awaiting,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
struct Fetch {
    phase: FetchPhase,
    conn: Option<u64>,
    /// The fetch timeout: connect and reply together.
    until: Millis,
    timer: Option<Key>,
}

/// What a connect is waiting for, seen from the tab.
enum Connect {
    Pending,
    Accepted,
    Refused,
}

impl World {
    fn tab(&mut self, tab: u32) -> &mut Tab {
        &mut self.tabs[tab as usize]
    }

    fn wire(&mut self, tab: u32, event: WireEvent) {
        self.record(Event::Wire {
            tab: Some(tab),
            event,
        });
    }

    /// Feeds one input to a tab's client and acts on every output, recording both.
    pub(super) fn feed(&mut self, tab: u32, input: ClientInput) {
        self.record(Event::ClientIn {
            tab,
            input: input.clone(),
        });
        let now = self.now;
        let t = self.tab(tab);
        let before = t.client.pending_len();
        let outputs = t.client.handle(now, input);
        let after = t.client.pending_len();
        t.max_pending = t.max_pending.max(after);
        for output in outputs {
            // The output goes into the history; `act` gets a copy only when it does
            // something with it (not for app notices and returns, most of them).
            let acted = match &output {
                ClientOutput::SendReturned { .. }
                | ClientOutput::Dropped { .. }
                | ClientOutput::App(_) => None,
                other => Some(other.clone()),
            };
            self.record(Event::ClientOut { tab, output });
            if let Some(output) = acted {
                self.act(tab, output);
            }
        }
        if before != after {
            self.record(Event::Queue {
                tab,
                pending: after,
            });
        }
    }

    fn act(&mut self, tab: u32, output: ClientOutput) {
        match output {
            // Spawned tasks run once the running one yields.
            ClientOutput::OpenStream { es } => {
                self.tab(tab).streams.insert(es, Box::new(EsTask::new()));
                self.wake(Local::Es { tab, es });
            }
            ClientOutput::CloseStream { es } => {
                // A closed EventSource never fires again: its task dies here (at its next
                // await when it is the one running; an idle one is dropped when the
                // scheduler gets to it).
                if self.running == Some((tab, es)) {
                    self.aborted = true;
                } else if let Some(task) = self.tab(tab).streams.remove(&es) {
                    self.tab(tab).dropping.insert(es, task);
                    self.wake(Local::EsDrop { tab, es });
                }
            }
            ClientOutput::Post {
                req,
                endpoint,
                connection_id,
                body,
            } => {
                let request = HttpRequest::on(connection_id, endpoint, body);
                let until = self.now + self.net.fetch_timeout_ms;
                self.tab(tab).fetches.insert(
                    req,
                    Fetch {
                        phase: FetchPhase::Spawned(request),
                        conn: None,
                        until,
                        timer: None,
                    },
                );
                self.wake(Local::Fetch { tab, req });
            }
            ClientOutput::Beacon {
                connection_id,
                sessions,
            } => self.wake(Local::Beacon {
                tab,
                body: Up::Beacon {
                    connection_id,
                    sessions,
                },
            }),
            ClientOutput::SetTimer { timer, at } => {
                let key =
                    self.queue
                        .push_timer(self.now, at, tab_rank(tab), Ev::ClientTimer(timer));
                if let Some(old) = self.tab(tab).timers.insert(timer, key) {
                    self.queue.cancel(Some(old));
                }
            }
            ClientOutput::CancelTimer { timer } => {
                let old = self.tab(tab).timers.remove(&timer);
                self.queue.cancel(old);
            }
            ClientOutput::SendReturned { .. }
            | ClientOutput::Dropped { .. }
            | ClientOutput::App(_) => {}
        }
    }

    /// A `setTimeout` fired.
    pub(super) fn client_timer(&mut self, tab: u32, timer: ClientTimer) {
        self.tab(tab).timers.remove(&timer);
        self.feed(tab, ClientInput::Timer(timer));
    }

    /// A tab task whose connection something happened to (its connect, its socket).
    pub(super) fn tab_wake(&mut self, conn: u64) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if !c.tab_held {
            return;
        }
        let tab = c.tab;
        match c.kind.clone() {
            ConnKind::Stream(es) => self.es_poll(tab, es),
            ConnKind::Post(req) => self.fetch_poll(tab, req),
            ConnKind::Beacon(_) => self.beacon_poll(conn),
        }
    }

    /// Where a tab's connect stands.
    fn connect_state(&self, conn: u64) -> Connect {
        match self.conns.get(&conn) {
            Some(c) if c.acked => Connect::Accepted,
            Some(c) if c.refused => Connect::Refused,
            Some(_) => Connect::Pending,
            None => Connect::Refused,
        }
    }

    /// The next packet a tab's socket holds for its task. Reading a data segment frees
    /// room in the server's send window, waking a stream task blocked on it.
    fn read(&mut self, conn: u64) -> Option<Msg> {
        let c = self.conns.get_mut(&conn)?;
        let msg = c.tab_rx.pop_front()?;
        if matches!(msg, Msg::Down(_)) {
            let blocked = c.down_unread >= super::network::WINDOW;
            c.down_unread = c.down_unread.saturating_sub(1);
            if blocked && matches!(c.server, super::network::ServerEnd::Stream(_)) {
                self.wake_server_stream(conn);
            }
        }
        Some(msg)
    }

    // --- the EventSource -------------------------------------------------------------

    /// Polls an EventSource task. A task the client closes meanwhile dies at the end of
    /// the poll: its timer goes and its socket closes.
    pub(super) fn es_poll(&mut self, tab: u32, es: EsId) {
        if let Some(task) = self.tab(tab).dropping.remove(&es) {
            return self.es_drop(task);
        }
        let Some(mut task) = self.tab(tab).streams.remove(&es) else {
            return;
        };
        self.running = Some((tab, es));
        self.aborted = false;
        let alive = self.es_run(tab, es, &mut task);
        self.running = None;
        if self.aborted || !alive {
            self.aborted = false;
            self.es_drop(task);
            return;
        }
        // Arm the timer of the phase's deadline.
        let want = task.phase.deadline();
        if task.timer.map(|(at, _)| at) != want {
            self.queue.cancel(task.timer.take().map(|(_, k)| k));
            if let Some(at) = want {
                let key = self
                    .queue
                    .push(at, tab_rank(tab), class::TIMER, Ev::EsTimer { es });
                task.timer = Some((at, key));
            }
        }
        self.tab(tab).streams.insert(es, task);
    }

    /// A task dies: its timer is cancelled and its socket closes.
    fn es_drop(&mut self, task: Box<EsTask>) {
        self.queue.cancel(task.timer.map(|(_, k)| k));
        if let Some(conn) = task.conn {
            self.close_tab_end(conn);
        }
    }

    /// The task's code from wherever it is up to its next await. Returns whether it
    /// lives on.
    fn es_run(&mut self, tab: u32, es: EsId, task: &mut EsTask) -> bool {
        loop {
            let now = self.now;
            match task.phase.clone() {
                EsPhase::Spawned => return self.es_connect(tab, es, task),
                EsPhase::Retry { until } => {
                    if now < until {
                        return true;
                    }
                    return self.es_connect(tab, es, task);
                }
                EsPhase::Connecting { until } => {
                    let conn = task.conn.expect("a connecting task has a connection");
                    match self.connect_state(conn) {
                        Connect::Accepted => {
                            if let Some(c) = self.conns.get_mut(&conn) {
                                c.established = true;
                            }
                            self.send(conn, true, Msg::Up(Up::Events));
                            task.phase = EsPhase::Reading {
                                until: now + self.net.es_idle_timeout_ms,
                            };
                        }
                        Connect::Refused => {
                            return self.es_end(tab, es, task, StreamEnd::Lost("connect failed"))
                        }
                        Connect::Pending if now >= until => {
                            return self.es_end(tab, es, task, StreamEnd::Lost("connect failed"))
                        }
                        Connect::Pending => return true,
                    }
                }
                EsPhase::Gap { frame, until } => {
                    if now < until {
                        return true;
                    }
                    self.feed(tab, ClientInput::Frame { es, frame });
                    task.phase = EsPhase::Reading {
                        until: now + self.net.es_idle_timeout_ms,
                    };
                }
                EsPhase::Reading { until } => return self.es_read(tab, es, task, until),
                EsPhase::Done => return false,
            }
        }
    }

    /// A connect attempt: the SYN goes out and the task awaits it (a SYN the network
    /// drops fails the attempt at once).
    fn es_connect(&mut self, tab: u32, es: EsId, task: &mut EsTask) -> bool {
        match self.open_conn(tab, ConnKind::Stream(es)) {
            Some(conn) => {
                task.conn = Some(conn);
                task.phase = EsPhase::Connecting {
                    until: self.now + self.net.fetch_timeout_ms,
                };
                true
            }
            None => self.es_end(tab, es, task, StreamEnd::Lost("connect failed")),
        }
    }

    /// The read loop: a pending command first, then whatever the socket holds; the idle
    /// timeout restarts with every message.
    fn es_read(&mut self, tab: u32, es: EsId, task: &mut EsTask, mut until: Millis) -> bool {
        let conn = task.conn.expect("a reading task has a connection");
        loop {
            if let Some(gap) = task.commands.pop_front() {
                task.double.gap_ms = Some(gap);
                task.double.held = None;
                return self.es_end(tab, es, task, StreamEnd::Reopen);
            }
            let Some(msg) = self.read(conn) else {
                break;
            };
            until = self.now + self.net.es_idle_timeout_ms;
            match msg {
                Msg::Down(Down::Frame { frame }) => {
                    let welcome = frame.name == FrameName::Welcome;
                    match (welcome, task.double.gap_ms, task.double.held.take()) {
                        // The first re-open's welcome: queue it and re-open again.
                        (true, Some(_), None) => {
                            task.double.held = Some(frame);
                            return self.es_end(tab, es, task, StreamEnd::Reopen);
                        }
                        // The second one: dispatch both, `gap_ms` apart.
                        (true, Some(gap), Some(first)) => {
                            task.double.gap_ms = None;
                            self.feed(tab, ClientInput::Frame { es, frame: first });
                            self.feed(tab, ClientInput::StreamError { es });
                            task.phase = EsPhase::Gap {
                                frame,
                                until: self.now + gap,
                            };
                            return true;
                        }
                        (_, _, held) => {
                            task.double.held = held;
                            self.feed(tab, ClientInput::Frame { es, frame });
                        }
                    }
                }
                Msg::Down(Down::Refused { status }) => {
                    return self.es_end(tab, es, task, StreamEnd::Refused(status))
                }
                Msg::Fin | Msg::Rst => {
                    return self.es_end(tab, es, task, StreamEnd::Lost("stream closed"))
                }
                Msg::Down(Down::Heartbeat | Down::Response { .. }) | Msg::Up(_) | Msg::Syn => {}
            }
        }
        if self.now >= until {
            return self.es_end(tab, es, task, StreamEnd::Lost("idle timeout"));
        }
        task.phase = EsPhase::Reading { until };
        true
    }

    /// One stream attempt ended. Returns whether the task lives on.
    fn es_end(&mut self, tab: u32, es: EsId, task: &mut EsTask, end: StreamEnd) -> bool {
        if let Some(conn) = task.conn.take() {
            self.close_tab_end(conn);
        }
        if !matches!(end, StreamEnd::Reopen) {
            // The second re-open failed: dispatch what the first one queued, then go on.
            task.double.gap_ms = None;
            if let Some(frame) = task.double.held.take() {
                self.feed(tab, ClientInput::Frame { es, frame });
                self.feed(tab, ClientInput::StreamError { es });
            }
        }
        match end {
            StreamEnd::Refused(status) => {
                self.wire(tab, WireEvent::StreamRefused { es, status });
                self.feed(tab, ClientInput::StreamError { es });
                task.phase = EsPhase::Done;
                false
            }
            StreamEnd::Lost(why) => {
                self.wire(
                    tab,
                    WireEvent::StreamLost {
                        es,
                        why: why.to_string(),
                    },
                );
                self.feed(tab, ClientInput::StreamError { es });
                task.phase = EsPhase::Retry {
                    until: self.now + self.net.es_retry_ms,
                };
                true
            }
            StreamEnd::Reopen => {
                self.wire(tab, WireEvent::StreamReopened { es });
                // With a welcome held, this `error` is dispatched after it.
                if task.double.held.is_none() {
                    self.feed(tab, ClientInput::StreamError { es });
                }
                if self.aborted {
                    return true;
                }
                self.es_connect(tab, es, task)
            }
        }
    }

    /// The double-welcome fault: the current EventSource re-opens twice (see
    /// `tab_host::event_source`); the command waits for the task's next read.
    pub(super) fn double_reopen(&mut self, tab: u32, gap_ms: u64) {
        let Some(es) = self.tab(tab).client.current_stream() else {
            return;
        };
        let Some(task) = self.tab(tab).streams.get_mut(&es) else {
            return;
        };
        task.commands.push_back(gap_ms);
        if matches!(task.phase, EsPhase::Reading { .. }) {
            self.wake(Local::Es { tab, es });
        }
    }

    // --- fetch and beacon --------------------------------------------------------------

    /// Polls a `fetch`: connect, send, await the reply, all bounded by the fetch timeout.
    pub(super) fn fetch_poll(&mut self, tab: u32, req: ReqId) {
        let now = self.now;
        loop {
            let Some(f) = self.tab(tab).fetches.get_mut(&req) else {
                return;
            };
            let until = f.until;
            match std::mem::replace(&mut f.phase, FetchPhase::Awaiting) {
                FetchPhase::Spawned(request) => {
                    let Some(conn) = self.open_conn(tab, ConnKind::Post(req)) else {
                        return self.fetch_done(tab, req, Err("connect failed"));
                    };
                    let timer =
                        self.queue
                            .push(until, tab_rank(tab), class::TIMER, Ev::FetchTimer { req });
                    let f = self.tab(tab).fetches.get_mut(&req).expect("present");
                    f.conn = Some(conn);
                    f.timer = Some(timer);
                    f.phase = FetchPhase::Connecting(request);
                    return;
                }
                FetchPhase::Connecting(request) => {
                    let conn = self.tab(tab).fetches[&req].conn.expect("connecting");
                    match self.connect_state(conn) {
                        Connect::Accepted => {
                            if let Some(c) = self.conns.get_mut(&conn) {
                                c.established = true;
                            }
                            self.send(conn, true, Msg::Up(Up::Post { request }));
                        }
                        Connect::Refused => {
                            return self.fetch_done(tab, req, Err("connect failed"))
                        }
                        Connect::Pending if now >= until => {
                            return self.fetch_done(tab, req, Err("connect failed"))
                        }
                        Connect::Pending => {
                            let f = self.tab(tab).fetches.get_mut(&req).expect("present");
                            f.phase = FetchPhase::Connecting(request);
                            return;
                        }
                    }
                }
                FetchPhase::Awaiting => {
                    let conn = self.tab(tab).fetches[&req].conn.expect("sent");
                    let result = match self.read(conn) {
                        Some(Msg::Down(Down::Response { response })) => Ok(response),
                        Some(Msg::Fin | Msg::Rst) => Err("connection closed without a reply"),
                        Some(_) => Err("unexpected reply"),
                        None if now >= until => Err("timed out"),
                        None => return,
                    };
                    return self.fetch_done(tab, req, result);
                }
            }
        }
    }

    /// `fetch` settles: a reply, or a network error (recorded with its cause).
    fn fetch_done(&mut self, tab: u32, req: ReqId, result: Result<HttpResponse, &'static str>) {
        let Some(fetch) = self.tab(tab).fetches.remove(&req) else {
            return;
        };
        self.queue.cancel(fetch.timer);
        if let Some(conn) = fetch.conn {
            self.close_tab_end(conn);
        }
        let outcome = match result {
            Ok(response) => PostOutcome::Status {
                status: response.status,
                retry_after_s: response.retry_after_s,
            },
            Err(why) => {
                self.wire(
                    tab,
                    WireEvent::PostFailed {
                        req,
                        why: why.to_string(),
                    },
                );
                PostOutcome::NetworkError
            }
        };
        self.feed(tab, ClientInput::PostDone { req, outcome });
    }

    /// `navigator.sendBeacon`'s task: connect, send, done (no timeout: a beacon nobody
    /// accepts just never goes out).
    pub(super) fn beacon_start(&mut self, tab: u32, body: Up) {
        self.open_conn(tab, ConnKind::Beacon(Some(body)));
    }

    fn beacon_poll(&mut self, conn: u64) {
        match self.connect_state(conn) {
            Connect::Pending => {}
            Connect::Refused => self.close_tab_end(conn),
            Connect::Accepted => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.established = true;
                }
                if let Some(body) = self.beacon_body(conn) {
                    self.send(conn, true, Msg::Up(body));
                }
                // Fire and forget: the task ends and drops its socket.
                self.close_tab_end(conn);
            }
        }
    }
}
