//! The browser client `SseConnection` as of commit 040fc27, the baseline before PR #396
//! (spec §2).
//!
//! Sans-IO: the EventSource, `fetch`, `setTimeout` and the app listener are all outputs
//! ([`ClientOutput`]); their results come back as inputs ([`ClientInput`]). The browser's
//! own EventSource re-open behaviour lives in the engine, which delivers a new welcome on
//! the same [`EsId`] when the browser reconnects by itself.

use crate::params::ClientParams;
use crate::types::{ConnId, EsId, Millis, ReqId, Seq, SessionId};
use crate::wire::{ClientMsg, Endpoint, Frame, FrameName, ServerEvent, SessionCursor};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientTimer {
    /// `scheduleReconnect`'s timer.
    Reconnect,
}

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
    /// A POST's non-2xx reply or network error was ignored.
    StatusIgnored,
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct PendingSend {
    endpoint: Endpoint,
    body: ClientMsg,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum InFlight {
    Plain(PendingSend),
    /// `doReconnectPost`, with the (connectionId, EventSource) pair captured at welcome.
    Reconnect {
        conn: ConnId,
        es: Option<EsId>,
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
    #[serde(skip)]
    out: Vec<ClientOutput>,
}

impl Client {
    pub fn new(params: ClientParams) -> Self {
        Client {
            params,
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
            ClientInput::TrackSeq { session, seq } => self.track_seq(session, seq),
            ClientInput::Frame { es, frame } => self.on_frame(es, frame),
            ClientInput::StreamError { .. } => self.on_error(),
            ClientInput::PostDone { req, outcome } => self.on_post_done(now, req, outcome),
            ClientInput::Timer(ClientTimer::Reconnect) => {
                if self.reconnect_timer.take().is_some() {
                    self.do_connect();
                }
            }
            ClientInput::Page(page) => self.on_page(page),
        }
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

    fn on_frame(&mut self, _es: EsId, frame: Frame) {
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
        let es = self.es;
        if self.is_reconnect && !self.seq_by_session.is_empty() {
            self.do_reconnect_post(conn, es);
        } else {
            self.connected = true;
            self.flush_pending();
            self.notify(AppNotice::Open);
        }
        self.is_reconnect = true;
    }

    /// Last write wins: a replayed old event moves the cursor backwards (spec §0.4).
    fn on_message(&mut self, event: ServerEvent) {
        if let Some((session, seq)) = event.tracked() {
            self.seq_by_session.insert(session.clone(), seq);
        }
        self.notify(AppNotice::Event { event });
    }

    fn on_error(&mut self) {
        if self.connected {
            self.connected = false;
            self.notify(AppNotice::Close);
        }
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
        let body = ClientMsg::Reconnect {
            sessions: self.cursors(),
        };
        self.in_flight.insert(req, InFlight::Reconnect { conn, es });
        self.out.push(ClientOutput::Post {
            req,
            endpoint: Endpoint::Reconnect,
            connection_id: conn,
            body,
        });
    }

    fn on_post_done(&mut self, now: Millis, req: ReqId, outcome: PostOutcome) {
        match self.in_flight.remove(&req) {
            Some(InFlight::Reconnect { conn, es }) => {
                // The staleness guard: a newer welcome or a replaced EventSource wins.
                if self.es.is_none() || self.es != es || self.connection_id != Some(conn) {
                    return;
                }
                if outcome.is_success() {
                    self.connected = true;
                    self.flush_pending();
                    self.notify(AppNotice::Open);
                } else {
                    self.schedule_reconnect(now);
                }
            }
            // Baseline `doPost` ignores the status and swallows network errors.
            Some(InFlight::Plain(item)) if !outcome.is_success() => {
                self.out.push(ClientOutput::Dropped {
                    msg: item.body,
                    reason: DropReason::StatusIgnored,
                });
            }
            Some(InFlight::Plain(_)) | None => {}
        }
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
        let Some(endpoint) = msg.endpoint() else {
            return false;
        };
        let item = PendingSend {
            endpoint,
            body: msg,
        };
        if self.connected && self.connection_id.is_some() {
            self.do_post(item);
            true
        } else if self.reconnect_timer.is_some() || self.es.is_some() {
            if self.pending.len() >= self.params.max_pending_sends {
                if let Some(old) = self.pending.pop_front() {
                    self.out.push(ClientOutput::Dropped {
                        msg: old.body,
                        reason: DropReason::Evicted,
                    });
                }
            }
            self.pending.push_back(item);
            true
        } else {
            false
        }
    }

    /// Posts with the connectionId current at call time.
    fn do_post(&mut self, item: PendingSend) {
        let Some(conn) = self.connection_id else {
            return;
        };
        let req = self.next_req();
        self.out.push(ClientOutput::Post {
            req,
            endpoint: item.endpoint,
            connection_id: conn,
            body: item.body.clone(),
        });
        self.in_flight.insert(req, InFlight::Plain(item));
    }

    /// Swap the queue out and fire every item at once; arrival order is the network's.
    fn flush_pending(&mut self) {
        let batch = std::mem::take(&mut self.pending);
        for item in batch {
            self.do_post(item);
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
