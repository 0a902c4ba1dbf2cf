//! The browser client `SseConnection` as of commit 040fc27, the baseline before PR #396
//! (spec §2), and every client-side revision of #396 as [`ClientParams`] select them
//! (spec §2.3, §6).
//!
//! Sans-IO: the EventSource, `fetch`, `setTimeout` and the app listener are all outputs
//! ([`ClientOutput`]); their results come back as inputs ([`ClientInput`]). The browser's
//! own EventSource re-open behaviour lives in the engine, which delivers a new welcome on
//! the same [`EsId`] when the browser reconnects by itself.
//!
//! The revisions' `async` code is modelled as explicit state: a running
//! `flushPendingSends` is a `Flush` holding the items it captured, the one POST it is
//! awaiting and the continuations of whoever awaits the flush itself (the welcome
//! handlers' `.then(_open)` / `await flush; _connected = true; _open`). A `PostDone` for
//! the awaited POST first runs `doPost`'s failure handling, then advances the flush, the
//! way the microtasks after an `await fetch` run in one go in the browser.

use crate::applied::{AppliedDelivery, Decision};
use crate::outbox::{Outbox, OutboxEvent};
use crate::params::{ClientParams, FlushGuard, FlushMode, OpenTiming, Requeue};
use crate::types::{ConnId, EsId, Millis, ReqId, Seq, SessionId};
use crate::wire::{
    ClientMsg, Endpoint, Frame, FrameName, ServerEvent, SessionCursor, SessionEvent,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientTimer {
    /// `scheduleReconnect`'s timer.
    Reconnect,
    /// The reference outbox's backoff before its next attempt.
    Outbox,
    /// The reference design's retry of re-queued control messages while the stream stays
    /// up (the revisions wait for a welcome that may never come: B3).
    Flush,
    /// The reference design's stream watchdog: a stream error not followed by a welcome
    /// within [`STREAM_WATCHDOG_MS`] (the browser gave up on the EventSource after an HTTP
    /// error, or keeps failing) makes the client open a new EventSource itself.
    Watchdog,
    /// The reference design's retry of a failed replay request.
    Repair,
}

/// How long after a stream error the reference client waits for a welcome before it
/// replaces the EventSource itself (longer than a browser's own retry delay, 3 s).
pub const STREAM_WATCHDOG_MS: Millis = 5_000;

/// Page lifecycle events the client listens to after `connect()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "page")]
pub enum PageEvent {
    Visible,
    Hidden,
    PageShow { persisted: bool },
    PageHide,
}

/// How a POST ended, as `fetch` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum PostOutcome {
    Status {
        status: u16,
        retry_after_s: Option<u32>,
    },
    /// The request failed or its reply was lost; the server may or may not have applied it.
    NetworkError,
}

impl PostOutcome {
    pub fn is_success(&self) -> bool {
        matches!(self, PostOutcome::Status { status, .. } if (200..300).contains(status))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "input")]
pub enum ClientInput {
    /// The app calls `connect()`.
    Connect,
    /// The app calls `disconnect()`.
    Disconnect,
    /// The app calls `send(msg)`; the return value comes back as `SendReturned`.
    Send {
        msg: ClientMsg,
    },
    /// The app calls `trackSeq(session, seq)`: it loaded the session's history up to `seq`
    /// itself (mitzo's REST history fetch) and seeds the reconnect cursor with it.
    TrackSeq {
        session: SessionId,
        seq: Seq,
    },
    /// The app calls `checkAndReconnect(force)`.
    CheckAndReconnect {
        force: bool,
    },
    /// A frame arrived on an EventSource.
    Frame {
        es: EsId,
        frame: Frame,
    },
    /// The EventSource fired `error`.
    StreamError {
        es: EsId,
    },
    PostDone {
        req: ReqId,
        outcome: PostOutcome,
    },
    Timer(ClientTimer),
    Page(PageEvent),
}

/// What the application listener receives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "notice")]
pub enum AppNotice {
    Open,
    Close,
    Foreground,
    Event {
        event: ServerEvent,
    },
    /// A send the client gave up on, told to the app (later revisions only).
    SendFailed {
        msg: ClientMsg,
    },
}

/// Why a queued or posted message left the client without reaching the app's attention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// The queue was full and the oldest item was evicted.
    Evicted,
    /// A POST's non-2xx reply or network error was ignored (baseline `doPost`).
    StatusIgnored,
    /// A revision with retries saw a failure it does not retry (endpoint not retryable,
    /// or a status outside its retry set): dropped silently, the app is not told.
    NotRetried,
    /// The message had used its whole attempt budget (rev4+ `MAX_SEND_RETRIES` /
    /// `MAX_SEND_ATTEMPTS`): dropped with a console warning only, the app is not told.
    BudgetExhausted,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "output")]
pub enum ClientOutput {
    /// `new EventSource(baseUrl + '/api/chat/events')`.
    OpenStream {
        es: EsId,
    },
    /// `es.close()`.
    CloseStream {
        es: EsId,
    },
    Post {
        req: ReqId,
        endpoint: Endpoint,
        connection_id: ConnId,
        body: ClientMsg,
    },
    /// `navigator.sendBeacon(suspendUrl, ...)`: fire and forget.
    Beacon {
        connection_id: ConnId,
        sessions: Vec<SessionCursor>,
    },
    SetTimer {
        timer: ClientTimer,
        at: Millis,
    },
    CancelTimer {
        timer: ClientTimer,
    },
    /// `send()` returned.
    SendReturned {
        msg: ClientMsg,
        accepted: bool,
    },
    /// A message left the client without the app being told (trace only; the app sees nothing).
    Dropped {
        msg: ClientMsg,
        reason: DropReason,
    },
    App(AppNotice),
}

/// A queued (or posted) message with the POST attempts it has had so far: 0 from
/// `send()`, +1 per `doPost` (rev4+ keep this as `retries`, the number of failed attempts,
/// which equals it whenever the item is back in the queue).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct PendingSend {
    endpoint: Endpoint,
    body: ClientMsg,
    attempts: u32,
}

/// What an awaiter of a flush runs once the flush settles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum AfterFlush {
    /// rev6+ first-connect path with `_connected` already set: `.then(() => _open)`.
    Open,
    /// rev6+ reconnect path (and a first-connect path that connects after the flush):
    /// `await flush; _connected = true; _open`. No staleness re-check after the await:
    /// the sources show none between the flush and `_connected = true`.
    ConnectAndOpen,
}

/// One running `flushPendingSends` of the sequential modes (rev5+). Parallel flushes
/// settle at once and are never held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Flush {
    /// Items captured by the swap and not posted yet.
    batch: VecDeque<PendingSend>,
    /// The `doPost` this flush is awaiting.
    awaiting: Option<ReqId>,
    /// Continuations of the callers awaiting this flush, in the order they began to wait.
    then: Vec<AfterFlush>,
    /// The (EventSource, connectionId) each continuation in `then` was registered under:
    /// the reference design skips a continuation whose stream was replaced meanwhile.
    #[serde(default)]
    then_at: Vec<(Option<EsId>, Option<ConnId>)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum InFlight {
    Plain(PendingSend),
    /// A POST of the reference outbox's head item.
    Outbox,
    /// A reference-design replay request for sessions with a gap, or tracked again with
    /// a cursor the server cannot know (`sessions`); it changes no connection state,
    /// whatever its outcome.
    Repair {
        conn: ConnId,
        sessions: Vec<SessionId>,
    },
    /// `doReconnectPost`, with the (connectionId, EventSource) pair captured at welcome
    /// and the sessions its body declared.
    Reconnect {
        conn: ConnId,
        es: Option<EsId>,
        #[serde(default)]
        sessions: Vec<SessionId>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    params: ClientParams,
    es: Option<EsId>,
    next_es: u32,
    connection_id: Option<ConnId>,
    connected: bool,
    is_reconnect: bool,
    seq_by_session: BTreeMap<SessionId, Seq>,
    pending: VecDeque<PendingSend>,
    reconnect_timer: Option<Millis>,
    listening: bool,
    next_req: u64,
    in_flight: BTreeMap<ReqId, InFlight>,
    /// Running flushes by start order: at most one unless `flush_guard` is `None` (B7).
    flushes: BTreeMap<u64, Flush>,
    next_flush: u64,
    /// The reference design's prompt outbox (`params.outbox`).
    outbox: Option<Outbox>,
    /// The reference design's in-order application (`params.applied_delivery`).
    applied: Option<AppliedDelivery>,
    /// Pending wake-ups of the reference design's own timers.
    timers: BTreeMap<ClientTimer, Millis>,
    repair_in_flight: bool,
    /// Reference: sessions the app unwatched (and has not followed again since) that the
    /// client still tracks, so a reconnect meanwhile replays what the tab missed while it
    /// watched them. They stay tracked until the server's `unwatched` frame arrives on
    /// the current stream with nothing else pending that could watch them again (see
    /// [`Self::on_unwatched`]).
    #[serde(default)]
    unwatching: BTreeSet<SessionId>,
    /// Reference: sessions in `unwatching` whose `unwatched` frame arrived while an unwatch
    /// of them was still queued or awaiting its reply; that reply then ends the tracking.
    #[serde(default)]
    unwatch_seen: BTreeSet<SessionId>,
    /// Reference: sessions the app followed again while their unwatch still waited for
    /// its reply, so that reply asks for a replay even if the client holds no event of
    /// them ([`Self::unwatch_confirmed`]).
    #[serde(default)]
    refollowed: BTreeSet<SessionId>,
    /// Reference: sessions tracked again (or newly, through `trackSeq`) whose replay after
    /// the cursor the client holds has not been served yet.
    #[serde(default)]
    to_replay: BTreeMap<SessionId, Seq>,
    /// Replay requests that failed in a row (the backoff of their retry).
    #[serde(default)]
    repair_failures: u32,
    #[serde(skip)]
    out: Vec<ClientOutput>,
}

impl Client {
    pub fn new(params: ClientParams) -> Self {
        Client {
            params: params.clone(),
            es: None,
            next_es: 0,
            connection_id: None,
            connected: false,
            is_reconnect: false,
            seq_by_session: BTreeMap::new(),
            pending: VecDeque::new(),
            reconnect_timer: None,
            listening: false,
            next_req: 0,
            in_flight: BTreeMap::new(),
            flushes: BTreeMap::new(),
            next_flush: 0,
            outbox: params
                .outbox
                .clone()
                .map(|o| Outbox::new(o, params.attempt_budget)),
            applied: params.applied_delivery.then(AppliedDelivery::default),
            timers: BTreeMap::new(),
            repair_in_flight: false,
            unwatching: BTreeSet::new(),
            unwatch_seen: BTreeSet::new(),
            refollowed: BTreeSet::new(),
            to_replay: BTreeMap::new(),
            repair_failures: 0,
            out: Vec::new(),
        }
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    pub fn connection_id(&self) -> Option<ConnId> {
        self.connection_id
    }

    pub fn current_stream(&self) -> Option<EsId> {
        self.es
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    pub fn in_flight_len(&self) -> usize {
        self.in_flight.len()
    }

    /// The queued messages in order, each with the POST attempts it has had so far.
    pub fn pending(&self) -> impl Iterator<Item = (&ClientMsg, u32)> {
        self.pending.iter().map(|p| (&p.body, p.attempts))
    }

    /// Sequential flushes still running (awaiting a POST); parallel flushes never are.
    pub fn flushes_running(&self) -> usize {
        self.flushes.len()
    }

    /// Items captured by running flushes and not posted yet, over all running flushes.
    pub fn flush_backlog(&self) -> usize {
        self.flushes.values().map(|f| f.batch.len()).sum()
    }

    /// `getLastSeq(s)`: 0 when unknown.
    pub fn last_seq(&self, session: &SessionId) -> Seq {
        self.seq_by_session.get(session).copied().unwrap_or(0)
    }

    /// `getTrackedSessions()`.
    pub fn tracked_sessions(&self) -> impl Iterator<Item = &SessionId> {
        self.seq_by_session.keys()
    }

    /// `trackSeq(s, seq)`: the app may seed a cursor (e.g. from a history fetch).
    pub fn track_seq(&mut self, session: SessionId, seq: Seq) {
        self.seq_by_session.insert(session, seq);
    }

    pub fn reconnect_pending(&self) -> bool {
        self.reconnect_timer.is_some()
    }

    pub fn handle(&mut self, now: Millis, input: ClientInput) -> Vec<ClientOutput> {
        match input {
            ClientInput::Connect => {
                self.listening = true;
                self.do_connect();
            }
            ClientInput::Disconnect => self.disconnect(),
            ClientInput::Send { msg } => {
                let accepted = self.send(msg.clone());
                self.out.push(ClientOutput::SendReturned { msg, accepted });
            }
            ClientInput::CheckAndReconnect { force } => self.check_and_reconnect(force),
            ClientInput::TrackSeq { session, seq } => self.on_track(session, seq),
            ClientInput::Frame { es, frame } => self.on_frame(es, frame),
            ClientInput::StreamError { es } => self.on_error(now, es),
            ClientInput::PostDone { req, outcome } => self.on_post_done(now, req, outcome),
            ClientInput::Timer(ClientTimer::Reconnect) => {
                if self.reconnect_timer.take().is_some() {
                    self.do_connect();
                }
            }
            ClientInput::Timer(t @ (ClientTimer::Outbox | ClientTimer::Flush)) => {
                if self.timers.remove(&t).is_some() && t == ClientTimer::Flush && self.connected {
                    self.flush_pending(None);
                }
            }
            ClientInput::Timer(ClientTimer::Repair) => {
                if self.timers.remove(&ClientTimer::Repair).is_some() {
                    self.request_repair();
                }
            }
            ClientInput::Timer(ClientTimer::Watchdog) => {
                if self.timers.remove(&ClientTimer::Watchdog).is_some() {
                    self.on_watchdog(now);
                }
            }
            ClientInput::Page(page) => self.on_page(page),
        }
        self.pump_outbox(now);
        std::mem::take(&mut self.out)
    }

    fn notify(&mut self, notice: AppNotice) {
        self.out.push(ClientOutput::App(notice));
    }

    fn close_stream(&mut self) {
        if let Some(es) = self.es.take() {
            self.out.push(ClientOutput::CloseStream { es });
        }
    }

    fn cancel_timer(&mut self) {
        if self.reconnect_timer.take().is_some() {
            self.out.push(ClientOutput::CancelTimer {
                timer: ClientTimer::Reconnect,
            });
        }
    }

    /// `doConnect`: a no-op while an EventSource exists, even one the browser gave up on.
    fn do_connect(&mut self) {
        if self.es.is_some() {
            return;
        }
        self.cancel_timer();
        self.next_es += 1;
        let es = EsId(self.next_es);
        self.es = Some(es);
        self.out.push(ClientOutput::OpenStream { es });
    }

    fn disconnect(&mut self) {
        self.listening = false;
        self.cancel_timer();
        self.close_stream();
        self.connected = false;
    }

    fn on_page(&mut self, page: PageEvent) {
        if !self.listening {
            return;
        }
        match page {
            PageEvent::Visible => {
                self.check_and_reconnect(false);
                self.notify(AppNotice::Foreground);
            }
            PageEvent::PageShow { persisted: true } => self.check_and_reconnect(false),
            PageEvent::PageShow { persisted: false } => {}
            PageEvent::Hidden | PageEvent::PageHide => self.send_suspend(),
        }
    }

    fn on_frame(&mut self, es: EsId, frame: Frame) {
        // Reference: a replaced EventSource's late callbacks change nothing.
        if self.params.strict_hygiene && self.es != Some(es) {
            return;
        }
        match (frame.name, frame.data) {
            (FrameName::Welcome, ServerEvent::Welcome { connection_id, .. }) => {
                self.on_welcome(connection_id)
            }
            // A welcome-named frame without a welcome payload is unparsable: ignored.
            (FrameName::Welcome, _) => {}
            (FrameName::Message, event) => self.on_message(event),
        }
    }

    /// The welcome handler. Baseline captures `this.es` rather than the EventSource that
    /// fired, and never checks which one did.
    fn on_welcome(&mut self, conn: ConnId) {
        self.connection_id = Some(conn);
        // What the old stream showed says nothing about the new connection's watches.
        self.unwatch_seen.clear();
        if self.timers.remove(&ClientTimer::Watchdog).is_some() {
            self.out.push(ClientOutput::CancelTimer {
                timer: ClientTimer::Watchdog,
            });
        }
        let es = self.es;
        let reconnect = self.is_reconnect || self.params.strict_hygiene;
        if reconnect && !self.seq_by_session.is_empty() {
            self.do_reconnect_post(conn, es);
        } else {
            match self.params.open_timing {
                OpenTiming::BeforeFlush => {
                    self.connected = true;
                    self.flush_pending(None);
                    self.notify(AppNotice::Open);
                }
                // rev6+: `_open` once the flush settles (rev8+ also when one is running,
                // `|| this._flushPromise`, which the guard handling below covers).
                OpenTiming::AfterFlush if self.params.connect_before_flush => {
                    self.connected = true;
                    self.flush_pending(Some(AfterFlush::Open));
                }
                OpenTiming::AfterFlush => self.flush_pending(Some(AfterFlush::ConnectAndOpen)),
            }
        }
        self.is_reconnect = true;
    }

    /// Last write wins: a replayed old event moves the cursor backwards (spec §0.4).
    fn on_message(&mut self, event: ServerEvent) {
        if self.applied.is_some() {
            if let ServerEvent::Session(e) = event {
                self.apply_in_order(e);
                return;
            }
        }
        if let Some((session, seq)) = event.tracked() {
            self.seq_by_session.insert(session.clone(), seq);
        }
        if let (true, ServerEvent::Unwatched { session }) = (self.params.strict_hygiene, &event) {
            self.on_unwatched(session.clone());
        }
        self.notify(AppNotice::Event { event });
    }

    fn on_error(&mut self, now: Millis, es: EsId) {
        // Reference: a replaced EventSource's late callbacks change nothing.
        if self.params.strict_hygiene && self.es != Some(es) {
            return;
        }
        if self.connected {
            self.connected = false;
            self.notify(AppNotice::Close);
        }
        // Reference: the browser may have given up on this EventSource for good (an HTTP
        // error); if no welcome follows, the watchdog replaces it.
        if self.params.strict_hygiene {
            self.arm(ClientTimer::Watchdog, now + STREAM_WATCHDOG_MS);
        }
    }

    /// No welcome since a stream error: open a new EventSource (unless a reconnect is
    /// already scheduled), and keep watching until a welcome arrives.
    fn on_watchdog(&mut self, now: Millis) {
        if !self.listening {
            return;
        }
        if self.reconnect_timer.is_none() {
            self.close_stream();
            self.do_connect();
        }
        self.arm(ClientTimer::Watchdog, now + STREAM_WATCHDOG_MS);
    }

    fn cursors(&self) -> Vec<SessionCursor> {
        self.seq_by_session
            .iter()
            .map(|(s, &q)| SessionCursor {
                session: s.clone(),
                last_seq: q,
            })
            .collect()
    }

    fn next_req(&mut self) -> ReqId {
        self.next_req += 1;
        ReqId(self.next_req)
    }

    fn do_reconnect_post(&mut self, conn: ConnId, es: Option<EsId>) {
        let req = self.next_req();
        let sessions = self.cursors();
        if let Some(applied) = self.applied.as_mut() {
            // The cursor declared here is the one the replay starts after: a session with no
            // cursor yet gets it now, so an event arriving live ahead of the replay waits for
            // the replay instead of being applied as the session's first and hiding the hole.
            for c in &sessions {
                if applied.cursor(&c.session).is_none() {
                    let released = applied.track(&c.session, c.last_seq);
                    debug_assert!(released.is_empty(), "a new lane holds nothing");
                }
            }
        }
        let declared = sessions.iter().map(|c| c.session.clone()).collect();
        let body = ClientMsg::Reconnect { sessions };
        self.in_flight.insert(
            req,
            InFlight::Reconnect {
                conn,
                es,
                sessions: declared,
            },
        );
        self.out.push(ClientOutput::Post {
            req,
            endpoint: Endpoint::Reconnect,
            connection_id: conn,
            body,
        });
    }

    fn on_post_done(&mut self, now: Millis, req: ReqId, outcome: PostOutcome) {
        match self.in_flight.remove(&req) {
            Some(InFlight::Reconnect { conn, es, sessions }) => {
                // The staleness guard: a newer welcome or a replaced EventSource wins.
                if self.es.is_none() || self.es != es || self.connection_id != Some(conn) {
                    return;
                }
                if !outcome.is_success() {
                    self.schedule_reconnect(now);
                    return;
                }
                // Reference: the replay covered every session it declared. It also watched
                // them all on the new connection, those the app unwatched included.
                self.to_replay.retain(|s, _| !sessions.contains(s));
                for s in &sessions {
                    self.reassert_unwatch(s);
                }
                match self.params.open_timing {
                    OpenTiming::BeforeFlush => {
                        self.connected = true;
                        self.flush_pending(None);
                        self.notify(AppNotice::Open);
                    }
                    // rev6+: `await flushPendingSends(); _connected = true; _open`. The
                    // catch that would schedule a reconnect on a flush error is unreachable
                    // here: `doPost` catches everything, so a flush never rejects.
                    OpenTiming::AfterFlush => {
                        self.flush_pending(Some(AfterFlush::ConnectAndOpen));
                    }
                }
            }
            Some(InFlight::Outbox) => self.on_outbox_reply(now, &outcome),
            Some(InFlight::Repair { conn, sessions }) => {
                self.repair_in_flight = false;
                if self.connection_id != Some(conn) {
                    // Made for a replaced connection: what it replayed went to a dead
                    // stream, and its failure says nothing about the current one.
                    self.request_repair();
                } else if outcome.is_success() {
                    self.repair_failures = 0;
                    self.to_replay.retain(|s, _| !sessions.contains(s));
                    for s in &sessions {
                        self.reassert_unwatch(s);
                    }
                    self.request_repair();
                } else if matches!(outcome, PostOutcome::Status { status: 404, .. }) {
                    // A stale connectionId: the reconnect replays every tracked session.
                    self.check_and_reconnect(true);
                } else {
                    // Retried with backoff: a replay the client asked for must come.
                    self.repair_failures += 1;
                    let backoff = self.backoff_ms(self.repair_failures);
                    self.arm(ClientTimer::Repair, now + backoff);
                }
            }
            Some(InFlight::Plain(item)) => {
                let mut requeued = false;
                if !outcome.is_success() {
                    requeued = self.post_failed(now, item, &outcome);
                } else if let ClientMsg::Unwatch { session } = &item.body {
                    if self.params.strict_hygiene {
                        self.unwatch_confirmed(session.clone());
                    }
                }
                // `doPost` has returned: the flush awaiting it (if any) moves on.
                let awaiting = self
                    .flushes
                    .iter()
                    .find(|(_, f)| f.awaiting == Some(req))
                    .map(|(&id, _)| id);
                if let Some(id) = awaiting {
                    if let Some(flush) = self.flushes.get_mut(&id) {
                        flush.awaiting = None;
                    }
                    if requeued && self.params.strict_hygiene {
                        let stale = matches!(outcome, PostOutcome::Status { status: 404, .. });
                        self.halt_flush(id, !stale);
                    } else {
                        self.advance_flush(id);
                    }
                }
            }
            None => {}
        }
    }

    /// `doPost`'s failure handling: the baseline ignores the outcome; a revision with a
    /// retry policy re-queues what it retries and drops the rest, never telling the app.
    ///
    /// Returns whether the item went back into the queue. The reference design puts it
    /// back at the head: control messages keep their order across retries.
    fn post_failed(&mut self, now: Millis, item: PendingSend, outcome: &PostOutcome) -> bool {
        let Some(retry) = &self.params.retry else {
            self.out.push(ClientOutput::Dropped {
                msg: item.body,
                reason: DropReason::StatusIgnored,
            });
            return false;
        };
        let status = match outcome {
            PostOutcome::Status { status, .. } => Some(*status),
            PostOutcome::NetworkError => None,
        };
        if self.params.strict_hygiene && item.endpoint == Endpoint::Suspend {
            // Reference: a suspend is a hint for this moment. Retried later it could
            // suspend a page that is visible again; a page that stays away is closed by the
            // server's grace timer anyway. A 404 still says the connectionId is stale.
            if status == Some(404) {
                self.check_and_reconnect(true);
            }
            return false;
        }
        if !retry.endpoints.contains(&item.endpoint) || !retry.on.retries(status) {
            self.give_up(item.body, DropReason::NotRetried);
            return false;
        }
        // rev4+ `enqueuePending(endpoint, body, retries + 1)` drops at the budget first.
        if let Some(budget) = self.params.attempt_budget {
            if item.attempts >= budget {
                self.give_up(item.body, DropReason::BudgetExhausted);
                return false;
            }
        }
        let attempts = item.attempts;
        match self.params.requeue {
            // rev1: `this.pendingSends.push(...)`, no cap (B1).
            Requeue::Uncapped => self.pending.push_back(item),
            Requeue::Capped if self.params.strict_hygiene => {
                if self.pending.len() >= self.params.max_pending_sends {
                    if let Some(last) = self.pending.pop_back() {
                        self.give_up(last.body, DropReason::Evicted);
                    }
                }
                self.pending.push_front(item);
            }
            Requeue::Capped => self.enqueue_pending(item),
        }
        if self.params.strict_hygiene {
            // A 404 means the connectionId is stale: reconnect rather than trust it.
            if status == Some(404) {
                self.check_and_reconnect(true);
            }
            // Retry with backoff instead of waiting for a welcome that may never come.
            let backoff = self.backoff_ms(attempts);
            self.arm(ClientTimer::Flush, now + backoff);
        }
        true
    }

    /// Reference: a flush whose post failed and went back to the head of the queue stops
    /// there, its remaining items back in the queue behind it, in order; the retry (after
    /// the backoff, or the flush after the next reconnect) resumes from the head.
    /// `settle` runs the awaiting callers' continuations; not after a 404, whose forced
    /// reconnect will connect and open again.
    fn halt_flush(&mut self, id: u64, settle: bool) {
        let Some(mut done) = self.flushes.remove(&id) else {
            return;
        };
        let head = self.pending.pop_front();
        for item in std::mem::take(&mut done.batch).into_iter().rev() {
            self.pending.push_front(item);
        }
        if let Some(head) = head {
            self.pending.push_front(head);
        }
        // The batch came back on top of what was queued meanwhile: the cap holds all the
        // same, the newest going first, and the app is told.
        while self.pending.len() > self.params.max_pending_sends {
            if let Some(last) = self.pending.pop_back() {
                self.give_up(last.body, DropReason::Evicted);
            }
        }
        if settle {
            self.run_continuations(done);
        }
    }

    /// Runs a settled flush's continuations in order. The reference design skips one whose
    /// stream was replaced since it began to wait: the new stream's welcome connects and
    /// opens by itself, and a stale continuation would open the tab on a dead connection.
    fn run_continuations(&mut self, done: Flush) {
        let strict = self.params.strict_hygiene;
        for (i, then) in done.then.into_iter().enumerate() {
            let at = done.then_at.get(i).copied();
            if strict && at.is_some_and(|at| at != (self.es, self.connection_id)) {
                continue;
            }
            self.after_flush(then);
        }
    }

    /// The revisions drop silently; the reference design tells the app.
    fn give_up(&mut self, msg: ClientMsg, reason: DropReason) {
        if let ClientMsg::Unwatch { session } = &msg {
            // Never confirmed: the server may still watch it, so it stays tracked.
            self.unwatching.remove(session);
            self.unwatch_seen.remove(session);
        }
        if self.params.strict_hygiene {
            self.notify(AppNotice::SendFailed { msg });
        } else {
            self.out.push(ClientOutput::Dropped { msg, reason });
        }
    }

    fn backoff_ms(&self, attempts: u32) -> u64 {
        match &self.outbox {
            Some(o) => o.backoff_ms(attempts.saturating_sub(1)),
            None => self.params.reconnect_delay_ms,
        }
    }

    /// Arms one of the reference design's timers, unless it is already due sooner.
    fn arm(&mut self, timer: ClientTimer, at: Millis) {
        if self.timers.get(&timer).is_some_and(|&t| t <= at) {
            return;
        }
        self.timers.insert(timer, at);
        self.out.push(ClientOutput::SetTimer { timer, at });
    }

    /// Posts the outbox's head when nothing is in flight and no backoff is pending.
    fn pump_outbox(&mut self, now: Millis) {
        let Some(conn) = self.connection_id else {
            return;
        };
        let Some(outbox) = self.outbox.as_mut() else {
            return;
        };
        if let Some(msg) = outbox.poll(now) {
            let endpoint = msg.endpoint().unwrap_or(Endpoint::Send);
            let req = self.next_req();
            self.in_flight.insert(req, InFlight::Outbox);
            self.out.push(ClientOutput::Post {
                req,
                endpoint,
                connection_id: conn,
                body: msg,
            });
        } else if let Some(at) = outbox.next_wakeup() {
            self.arm(ClientTimer::Outbox, at);
        }
    }

    fn on_outbox_reply(&mut self, now: Millis, outcome: &PostOutcome) {
        let Some(outbox) = self.outbox.as_mut() else {
            return;
        };
        let settled = outbox.on_reply(now, outcome);
        if let OutboxEvent::Accepted { msg, .. } | OutboxEvent::Failed { msg, .. } = &settled {
            // The server may have handled the prompt after an unwatch the app made later
            // (the outbox and the control queue do not wait for each other), and a prompt
            // watches its session.
            if let Some(session) = msg.session() {
                let session = session.clone();
                self.reassert_unwatch(&session);
            }
        }
        match settled {
            OutboxEvent::Failed { msg, .. } => self.notify(AppNotice::SendFailed { msg }),
            OutboxEvent::Retrying {
                status: Some(404), ..
            } => self.check_and_reconnect(true),
            OutboxEvent::Retrying { .. } | OutboxEvent::Accepted { .. } | OutboxEvent::Ignored => {}
        }
    }

    /// Reference: a session the app watches stays tracked, so every reconnect re-watches
    /// it even before its first event arrived (the baseline forgets such sessions). An
    /// unwatched session stays tracked until the server confirms the unwatch on the stream
    /// ([`Self::on_unwatched`]): events stored while it was watched and lost with a broken
    /// stream are still replayed by a reconnect that comes first.
    ///
    /// Returns a session the app follows again after an unwatch, with the cursor a replay
    /// resumes after ([`Self::resume_cursor`]), when the server has handled that unwatch:
    /// it starts the new watch at the head (it forgot the pair's cursor, or dropped what
    /// sync still owed it), so whatever the tab lacks must be asked for, events lost while
    /// it watched included. An unwatch still waiting for its reply asks for them when it
    /// comes ([`Self::unwatch_confirmed`]).
    fn remember_watch(&mut self, msg: &ClientMsg) -> Option<(SessionId, Seq)> {
        match msg {
            ClientMsg::Unwatch { session } => {
                if self.seq_by_session.contains_key(session) {
                    self.unwatching.insert(session.clone());
                    self.unwatch_seen.remove(session);
                }
                None
            }
            other => {
                let watched = match other {
                    ClientMsg::Watch { session } | ClientMsg::SwitchSession { session } => {
                        Some(session)
                    }
                    ClientMsg::Send { session, .. } => session.as_ref(),
                    ClientMsg::Interrupt { session, .. } => Some(session),
                    _ => None,
                }?;
                let was_unwatching = self.unwatching.remove(watched);
                self.unwatch_seen.remove(watched);
                if let Some(cursor) = self.resume_cursor(watched) {
                    if was_unwatching && self.unwatch_pending(watched) {
                        self.refollowed.insert(watched.clone());
                        return None;
                    }
                    return was_unwatching.then(|| (watched.clone(), cursor));
                }
                let kept = self.applied.as_ref().and_then(|a| a.cursor(watched));
                self.seq_by_session
                    .insert(watched.clone(), kept.unwrap_or(0));
                kept.map(|c| (watched.clone(), c))
            }
        }
    }

    /// Reference: the server's `unwatched` frame for `session` arrived on the current
    /// stream. The stream delivers in order, so every live event the server sent the tab
    /// for the session before the unwatch has arrived by now; the 2xx of the unwatch proves
    /// nothing of the kind (the stream may have lost them, and a reconnect that does not
    /// declare the session would never replay them). The client stops tracking it here,
    /// unless something still pending could make the server watch it again, or the
    /// unwatch itself still waits for its reply (which then ends the tracking).
    fn on_unwatched(&mut self, session: SessionId) {
        if !self.unwatching.contains(&session) || self.rewatch_pending(&session) {
            return;
        }
        if self.unwatch_pending(&session) {
            self.unwatch_seen.insert(session);
        } else {
            self.untrack(&session);
        }
    }

    /// Reference: a 2xx answered an unwatch of `session`.
    ///
    /// If the app followed the session again since, the server forgot the pair's cursor
    /// at the unwatch: a watch or switch queued behind it starts at the head, and a prompt
    /// or an interrupt (which go through the outbox, not the control queue) may even have
    /// been handled first, leaving the session unwatched. The client asks for a replay
    /// after its resume cursor, which watches the session again too. Otherwise, if the
    /// unwatch's frame already came, tracking ends.
    fn unwatch_confirmed(&mut self, session: SessionId) {
        if !self.unwatching.contains(&session) {
            let refollowed = self.refollowed.remove(&session);
            let held = self.applied.as_ref().and_then(|a| a.cursor(&session));
            if let Some(cursor) = self.resume_cursor(&session) {
                if refollowed || held.is_some() {
                    self.replay_from(session, cursor);
                }
            }
            return;
        }
        if self.unwatch_seen.contains(&session)
            && !self.rewatch_pending(&session)
            && !self.unwatch_pending(&session)
        {
            self.untrack(&session);
        }
    }

    /// Reference: a request that watches `session` (a prompt, a replay request, a
    /// reconnect) was answered while the app wants the session unwatched. The server may
    /// have handled it after the unwatch, so the unwatch goes out again (unless one is
    /// still waiting to go), and only its frame can end the tracking.
    fn reassert_unwatch(&mut self, session: &SessionId) {
        if !self.unwatching.contains(session) {
            return;
        }
        self.unwatch_seen.remove(session);
        // One already posted may have reached the server before the request that watched
        // the session again, or gone to a replaced connection: only a queued one will do.
        let waiting = self
            .control_queued()
            .any(|m| matches!(m, ClientMsg::Unwatch { session: s } if s == session));
        if waiting {
            return;
        }
        let msg = ClientMsg::Unwatch {
            session: session.clone(),
        };
        self.send_now(msg);
    }

    /// Reference: where a replay for a tracked session resumes: after the last event of it
    /// applied in order, or, with none held, after the seq declared for it (0 unless a
    /// history load seeded it). `None` for a session not tracked.
    fn resume_cursor(&self, session: &SessionId) -> Option<Seq> {
        let declared = *self.seq_by_session.get(session)?;
        let kept = self.applied.as_ref().and_then(|a| a.cursor(session));
        Some(kept.unwrap_or(declared))
    }

    fn untrack(&mut self, session: &SessionId) {
        self.refollowed.remove(session);
        self.unwatching.remove(session);
        self.unwatch_seen.remove(session);
        self.seq_by_session.remove(session);
    }

    /// Control messages queued or captured by a flush, not posted yet.
    fn control_queued(&self) -> impl Iterator<Item = &ClientMsg> {
        let queued = self.pending.iter().map(|p| &p.body);
        let captured = self
            .flushes
            .values()
            .flat_map(|f| f.batch.iter().map(|p| &p.body));
        queued.chain(captured)
    }

    /// Control messages queued, captured by a flush, or awaiting their reply.
    fn control_pending(&self) -> impl Iterator<Item = &ClientMsg> {
        let posted = self.in_flight.values().filter_map(|f| match f {
            InFlight::Plain(p) => Some(&p.body),
            _ => None,
        });
        self.control_queued().chain(posted)
    }

    /// Whether an unwatch of `session` is queued or awaiting its reply.
    fn unwatch_pending(&self, session: &SessionId) -> bool {
        self.control_pending()
            .any(|m| matches!(m, ClientMsg::Unwatch { session: s } if s == session))
    }

    /// Whether a watch or switch to `session` is queued or awaiting its reply.
    fn watch_queued(&self, session: &SessionId) -> bool {
        self.control_pending().any(|m| {
            matches!(m, ClientMsg::Watch { session: s } | ClientMsg::SwitchSession { session: s } if s == session)
        })
    }

    /// Whether anything not answered yet may make the server watch `session`: a watch or
    /// switch in the control queue, a prompt in the outbox, a replay request or a
    /// reconnect naming it on the current connection.
    fn rewatch_pending(&self, session: &SessionId) -> bool {
        let control = self.watch_queued(session);
        let prompt = self
            .outbox
            .as_ref()
            .is_some_and(|o| o.iter().any(|item| item.msg.session() == Some(session)));
        // One made for a replaced connection watches nothing on the current one.
        let replay = self.in_flight.values().any(|f| match f {
            InFlight::Repair { conn, sessions } | InFlight::Reconnect { conn, sessions, .. } => {
                Some(*conn) == self.connection_id && sessions.contains(session)
            }
            _ => false,
        });
        control || prompt || replay
    }

    /// Reference: asks the server to watch `session` and replay what it stored after
    /// `cursor`, through the replay requests (a reconnect POST for the sessions that need
    /// one, retried until served; a reconnect that declares the session serves it too).
    fn replay_from(&mut self, session: SessionId, cursor: Seq) {
        let at = self.to_replay.entry(session).or_insert(cursor);
        *at = (*at).min(cursor);
        self.request_repair();
    }

    /// `trackSeq`: the baseline overwrites; in-order delivery never moves a cursor back and
    /// releases buffered events the loaded history now connects to.
    ///
    /// Reference: tracking a session the client did not track yet also watches it from
    /// the loaded seq (a reconnect POST for that one session: the server watches it and
    /// replays whatever was stored after the history load), so the server follows what
    /// the client tracks without waiting for the next reconnect.
    ///
    /// A session tracked only by a watch (or switch) call, with no event of it held yet,
    /// counts as new too: that watch may have been refused for good (a 409 is not
    /// retried), so the server need not watch it, and the loaded seq is the first cursor
    /// the client has for it.
    fn on_track(&mut self, session: SessionId, seq: Seq) {
        let held = self.applied.as_ref().and_then(|a| a.cursor(&session));
        let newly = !self.seq_by_session.contains_key(&session) || held.is_none();
        self.unwatching.remove(&session);
        self.unwatch_seen.remove(&session);
        let Some(applied) = self.applied.as_mut() else {
            self.track_seq(session, seq);
            return;
        };
        let released = applied.track(&session, seq);
        let cursor = applied.cursor(&session).unwrap_or(seq);
        self.seq_by_session.insert(session.clone(), cursor);
        for e in released {
            self.notify(AppNotice::Event {
                event: ServerEvent::Session(e),
            });
        }
        // A load that moved a held session's cursor forward shows the stream lagging
        // behind the store. The server's cursor for the pair may sit far back (a blocked
        // pair repaired by sync), and sync would crawl through what the load already
        // gave, a batch a tick, before reaching what the tab still lacks: a replay after
        // the loaded seq rewinds it there and sends the rest at once.
        let moved = held.is_some_and(|h| cursor > h);
        if (newly || moved) && self.params.strict_hygiene {
            self.replay_from(session, cursor);
        }
    }

    /// Applies an event only in per-session order: duplicates are dropped, a gap is held
    /// and repaired by asking the server to replay after the cursor.
    fn apply_in_order(&mut self, event: SessionEvent) {
        let Some(applied) = self.applied.as_mut() else {
            return;
        };
        let session = event.session.clone();
        match applied.on_session_event(event) {
            Decision::Applied { events, cursor } => {
                self.seq_by_session.insert(session, cursor);
                for e in events {
                    self.notify(AppNotice::Event {
                        event: ServerEvent::Session(e),
                    });
                }
            }
            Decision::Duplicate { .. } => {}
            Decision::Buffered { .. } | Decision::Resync { .. } => self.request_repair(),
        }
    }

    /// One replay request at a time, for every session with a gap, after its cursor.
    ///
    /// Sessions tracked again ([`Self::replay_from`]) join in once connected; while not,
    /// the next reconnect declares them anyway.
    fn request_repair(&mut self) {
        if self.repair_in_flight {
            return;
        }
        let Some(applied) = self.applied.as_ref() else {
            return;
        };
        let mut wanted: BTreeMap<SessionId, Seq> = applied.gaps().into_iter().collect();
        if self.connected {
            for (s, &c) in &self.to_replay {
                let at = wanted.entry(s.clone()).or_insert(c);
                *at = (*at).min(c);
            }
        }
        let Some(conn) = self.connection_id else {
            return;
        };
        if wanted.is_empty() {
            return;
        }
        let names = wanted.keys().cloned().collect();
        let sessions: Vec<SessionCursor> = wanted
            .into_iter()
            .map(|(session, last_seq)| SessionCursor { session, last_seq })
            .collect();
        let req = self.next_req();
        self.repair_in_flight = true;
        self.in_flight.insert(
            req,
            InFlight::Repair {
                conn,
                sessions: names,
            },
        );
        self.out.push(ClientOutput::Post {
            req,
            endpoint: Endpoint::Reconnect,
            connection_id: conn,
            body: ClientMsg::Reconnect { sessions },
        });
    }

    /// Runs what an awaiter of a flush does once the flush settled.
    fn after_flush(&mut self, then: AfterFlush) {
        if then == AfterFlush::ConnectAndOpen {
            self.connected = true;
            if !self.to_replay.is_empty() {
                self.request_repair();
            }
        }
        self.notify(AppNotice::Open);
    }

    fn schedule_reconnect(&mut self, now: Millis) {
        if self.reconnect_timer.is_some() {
            return;
        }
        self.close_stream();
        let at = now + self.params.reconnect_delay_ms;
        self.reconnect_timer = Some(at);
        self.out.push(ClientOutput::SetTimer {
            timer: ClientTimer::Reconnect,
            at,
        });
    }

    fn check_and_reconnect(&mut self, force: bool) {
        if !force && self.connected {
            return;
        }
        if self.reconnect_timer.is_some() {
            return;
        }
        self.close_stream();
        let was_connected = self.connected;
        self.connected = false;
        if was_connected {
            self.notify(AppNotice::Close);
        }
        self.do_connect();
    }

    fn send(&mut self, msg: ClientMsg) -> bool {
        if msg.endpoint().is_none() {
            return false;
        }
        let again = if self.params.strict_hygiene {
            self.remember_watch(&msg)
        } else {
            None
        };
        let accepted = self.send_now(msg);
        if let (true, Some((session, cursor))) = (accepted, again) {
            self.replay_from(session, cursor);
        }
        accepted
    }

    /// `send()` proper, once the reference design noted what the message watches.
    fn send_now(&mut self, msg: ClientMsg) -> bool {
        let Some(endpoint) = msg.endpoint() else {
            return false;
        };
        if msg.client_msg_id().is_some() {
            if let Some(outbox) = self.outbox.as_mut() {
                // Prompts never depend on SSE readiness; a full outbox refuses.
                return outbox.offer(msg);
            }
        }
        let item = PendingSend {
            endpoint,
            body: msg,
            attempts: 0,
        };
        if self.connected && self.connection_id.is_some() {
            if self.params.strict_hygiene {
                // Reference: control messages go out one at a time, in send() order, so
                // the server applies watch, unwatch and switch in the order the app made
                // them (two concurrent POSTs may arrive the other way round).
                self.enqueue_pending(item);
                self.flush_pending(None);
            } else {
                self.do_post(item);
            }
            true
        } else if self.reconnect_timer.is_some() || self.es.is_some() {
            // Baseline's inline cap and rev2+ `enqueuePending` behave alike for a new item
            // (0 attempts is never over a budget).
            self.enqueue_pending(item);
            true
        } else {
            false
        }
    }

    /// `enqueuePending` without its budget check (see `post_failed`): at the cap the oldest
    /// item is evicted, silently to the app.
    fn enqueue_pending(&mut self, item: PendingSend) {
        if self.pending.len() >= self.params.max_pending_sends {
            if let Some(old) = self.pending.pop_front() {
                self.out.push(ClientOutput::Dropped {
                    msg: old.body,
                    reason: DropReason::Evicted,
                });
            }
        }
        self.pending.push_back(item);
    }

    /// `doPost`: the one place a queued or sent item is posted, with the connectionId
    /// current at call time. `None` when there is no connectionId: `doPost` returns at
    /// once and the item is gone (unreachable after the first welcome).
    fn do_post(&mut self, mut item: PendingSend) -> Option<ReqId> {
        let conn = self.connection_id?;
        let req = self.next_req();
        item.attempts += 1;
        self.out.push(ClientOutput::Post {
            req,
            endpoint: item.endpoint,
            connection_id: conn,
            body: item.body.clone(),
        });
        self.in_flight.insert(req, InFlight::Plain(item));
        Some(req)
    }

    /// `flushPendingSends`, with `then` the continuation of the caller that awaits it
    /// (`None` when the caller does not await, as base-rev5 welcome handlers do).
    ///
    /// The guard is checked before the empty queue, so a rev8 caller joins a running flush
    /// even when nothing is queued (`if (this._flushPromise) return this._flushPromise`).
    fn flush_pending(&mut self, then: Option<AfterFlush>) {
        if let Some(running) = self.flushes.keys().next_back().copied() {
            match self.params.flush_guard {
                // base-rev6: a second flush runs alongside (B7).
                FlushGuard::None => {}
                // rev7 `_flushing`: returns at once, as if done (B8a).
                FlushGuard::Skip => {
                    self.settle(then);
                    return;
                }
                // rev8+ `_flushPromise`: wait for the running one.
                FlushGuard::Join => {
                    let at = (self.es, self.connection_id);
                    if let Some(flush) = self.flushes.get_mut(&running) {
                        flush.then_at.extend(then.iter().map(|_| at));
                        flush.then.extend(then);
                    }
                    return;
                }
            }
        }
        if self.pending.is_empty() {
            self.settle(then);
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        match self.params.flush {
            // Fire every item at once, not awaited; arrival order is the network's.
            FlushMode::Parallel => {
                for item in batch {
                    self.do_post(item);
                }
                self.settle(then);
            }
            FlushMode::Sequential | FlushMode::LoopUntilEmpty => {
                self.next_flush += 1;
                let id = self.next_flush;
                self.flushes.insert(
                    id,
                    Flush {
                        batch,
                        awaiting: None,
                        then_at: then.iter().map(|_| (self.es, self.connection_id)).collect(),
                        then: then.into_iter().collect(),
                    },
                );
                self.advance_flush(id);
            }
        }
    }

    /// A flush that settled at once: its caller's continuation runs now.
    fn settle(&mut self, then: Option<AfterFlush>) {
        if let Some(then) = then {
            self.after_flush(then);
        }
    }

    /// Posts the flush's next captured item and awaits it; when the batch is done, rev9
    /// captures the queue again while it is non-empty; otherwise the flush settles and its
    /// awaiters' continuations run in order.
    fn advance_flush(&mut self, id: u64) {
        loop {
            let Some(flush) = self.flushes.get_mut(&id) else {
                return;
            };
            let Some(item) = flush.batch.pop_front() else {
                if self.params.flush == FlushMode::LoopUntilEmpty && !self.pending.is_empty() {
                    flush.batch = std::mem::take(&mut self.pending);
                    continue;
                }
                if let Some(done) = self.flushes.remove(&id) {
                    self.run_continuations(done);
                }
                return;
            };
            if let Some(req) = self.do_post(item) {
                if let Some(flush) = self.flushes.get_mut(&id) {
                    flush.awaiting = Some(req);
                }
                return;
            }
        }
    }

    fn send_suspend(&mut self) {
        if self.seq_by_session.is_empty() {
            return;
        }
        let sessions = self.cursors();
        if self.connected {
            self.do_post(PendingSend {
                endpoint: Endpoint::Suspend,
                body: ClientMsg::SessionSuspend { sessions },
                attempts: 0,
            });
        } else if self.params.suspend_beacon {
            if let Some(connection_id) = self.connection_id {
                self.out.push(ClientOutput::Beacon {
                    connection_id,
                    sessions,
                });
            }
        }
    }
}
