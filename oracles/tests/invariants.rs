//! Every invariant against hand-built histories: one where it holds and one where it fires
//! (one per clause where an invariant has several), the coverage probes, and determinism.
//!
//! The histories have the shape the turmoil engine records: a `ClientIn` followed by the
//! `ClientOut`s it produced, then a `Queue` record when the queue length changed; a
//! `ServerIn` request followed by the server's outputs and its `Respond`; welcome frames
//! carrying the connection ids that map connections to tabs; an `End` record last.

use ssesim_model::client::DropReason;
use ssesim_model::registry::SyncBatch;
use ssesim_model::{
    AgentInput, AppNotice, ClientInput, ClientMsg, ClientOutput, ConnId, Delivery, EsId, EventKind,
    Frame, HttpRequest, HttpResponse, Millis, Origin, Params, PostOutcome, ReqId, Seq, ServerEvent,
    ServerInput, ServerOutput, ServerTimer, SessionCursor, SessionEvent, SessionId, SessionState,
};
use ssesim_oracles::{check, probes, Context, Verdicts, Violation, INVARIANTS, PROBES};
use ssesim_scenarios::Network;
use ssesim_sim::history::{EndVerdict, Event, History, Record, WireEvent};
use ssesim_sim::turmoil::DRAIN_MS;

// ---------------------------------------------------------------------------------------
// Context

/// The scenario's end. With the default network the settle bound is 80 s, so a heal phase
/// starting at `HEAL` is long enough for liveness to be judged.
const DURATION: Millis = 100_000;
const HEAL: Millis = 10_000;

fn ctx() -> Context {
    ctx_with(Params::baseline(), Some(HEAL))
}

fn ctx_with(params: Params, heal_at: Option<Millis>) -> Context {
    Context {
        params,
        network: Network::default(),
        heal_at,
        duration_ms: DURATION,
    }
}

fn c(n: u32) -> ConnId {
    ConnId::new(1, n)
}

const C1: u32 = 1;
const C2: u32 = 2;

// ---------------------------------------------------------------------------------------
// Payloads

fn sid(s: &str) -> SessionId {
    SessionId::new(s)
}

fn prompt(session: Option<&str>, id: &str) -> ClientMsg {
    ClientMsg::Send {
        session: session.map(sid),
        client_msg_id: id.into(),
        text: format!("text of {id}"),
    }
}

fn interrupt_msg(session: &str, id: &str) -> ClientMsg {
    ClientMsg::Interrupt {
        session: sid(session),
        client_msg_id: id.into(),
        text: format!("text of {id}"),
    }
}

fn watch_msg(session: &str) -> ClientMsg {
    ClientMsg::Watch {
        session: sid(session),
    }
}

fn reconnect_msg(cursors: &[(&str, Seq)]) -> ClientMsg {
    ClientMsg::Reconnect {
        sessions: cursors
            .iter()
            .map(|(s, q)| SessionCursor {
                session: sid(s),
                last_seq: *q,
            })
            .collect(),
    }
}

/// A stored event. Built through serde so a field the store adds with a default (such as
/// a previous-seq link) keeps its default here.
fn ev(session: &str, seq: Seq, kind: EventKind) -> SessionEvent {
    let mut v = serde_json::to_value(&kind).expect("an event kind serialises");
    v["seq"] = seq.into();
    v["session"] = session.into();
    serde_json::from_value(v).expect("a session event")
}

fn output_ev(session: &str, seq: Seq, n: u32) -> SessionEvent {
    ev(session, seq, EventKind::AgentOutput { n })
}

fn user_ev(session: &str, seq: Seq, id: &str, interrupt: bool) -> SessionEvent {
    ev(
        session,
        seq,
        EventKind::UserMessage {
            client_msg_id: id.into(),
            text: format!("text of {id}"),
            interrupt,
        },
    )
}

fn state_ev(session: &str, seq: Seq, state: SessionState, reason: &str) -> SessionEvent {
    ev(
        session,
        seq,
        EventKind::SessionStateChanged {
            state: state.view(),
            internal: state,
            reason: reason.into(),
        },
    )
}

fn agent_input(session: &str, id: &str, interrupt: bool, new_session: bool) -> AgentInput {
    AgentInput {
        session: sid(session),
        client_msg_id: id.into(),
        text: format!("text of {id}"),
        interrupt,
        new_session,
    }
}

fn welcome(conn: ConnId) -> ServerEvent {
    ServerEvent::Welcome {
        connection_id: conn,
        protocol_version: 2,
    }
}

fn status(code: u16) -> PostOutcome {
    PostOutcome::Status {
        status: code,
        retry_after_s: None,
    }
}

fn post(req: u64, conn: ConnId, body: &ClientMsg) -> ClientOutput {
    ClientOutput::Post {
        req: ReqId(req),
        endpoint: body.endpoint().expect("a message with an endpoint"),
        connection_id: conn,
        body: body.clone(),
    }
}

fn returned(msg: &ClientMsg) -> ClientOutput {
    ClientOutput::SendReturned {
        msg: msg.clone(),
        accepted: true,
    }
}

fn app_event(event: ServerEvent) -> ClientOutput {
    ClientOutput::App(AppNotice::Event { event })
}

// ---------------------------------------------------------------------------------------
// The history builder

/// Builds a history record by record, with composite steps for the usual exchanges. Request
/// tokens are numbered by the builder; the last one is the one `respond` answers.
#[derive(Default)]
struct H {
    records: Vec<Record>,
    token: u64,
}

impl H {
    fn new() -> Self {
        H::default()
    }

    fn push(mut self, at: Millis, event: Event) -> Self {
        self.records.push(Record { at, event });
        self
    }

    fn client_in(self, tab: u32, at: Millis, input: ClientInput) -> Self {
        self.push(at, Event::ClientIn { tab, input })
    }

    fn client_out(self, tab: u32, at: Millis, output: ClientOutput) -> Self {
        self.push(at, Event::ClientOut { tab, output })
    }

    fn queue(self, tab: u32, at: Millis, pending: usize) -> Self {
        self.push(at, Event::Queue { tab, pending })
    }

    fn server_in(self, at: Millis, input: ServerInput) -> Self {
        self.push(at, Event::ServerIn { input })
    }

    fn server_out(self, at: Millis, output: ServerOutput) -> Self {
        self.push(at, Event::ServerOut { output })
    }

    fn wire(self, at: Millis, tab: Option<u32>, event: WireEvent) -> Self {
        self.push(at, Event::Wire { tab, event })
    }

    fn down(self, at: Millis, reason: &str) -> Self {
        self.push(
            at,
            Event::ServerDown {
                reason: reason.into(),
            },
        )
    }

    /// The Heal record at `HEAL` (in time order) and the End record the engine writes a
    /// drain window after the scenario's end.
    fn end(mut self) -> History {
        if !self.records.iter().any(|r| r.event == Event::Heal) {
            let pos = self.records.partition_point(|r| r.at <= HEAL);
            self.records.insert(
                pos,
                Record {
                    at: HEAL,
                    event: Event::Heal,
                },
            );
        }
        let h = self.push(
            DURATION + DRAIN_MS,
            Event::End {
                verdict: EndVerdict::Quiescent,
            },
        );
        for w in h.records.windows(2) {
            assert!(w[0].at <= w[1].at, "records out of time order: {w:?}");
        }
        History { records: h.records }
    }

    fn appended(self, at: Millis, e: SessionEvent) -> Self {
        self.server_out(at, ServerOutput::Appended(e))
    }

    /// A server process boots: `ServerUp`, its recovery appends, then its two timers.
    fn boot(self, at: Millis, boot: u32, recovered: Vec<SessionEvent>) -> Self {
        let mut h = self.push(at, Event::ServerUp { boot });
        for e in recovered {
            h = h.appended(at, e);
        }
        h.server_out(
            at,
            ServerOutput::SetTimer {
                timer: ServerTimer::Sync,
                at: at + 5000,
            },
        )
        .server_out(
            at,
            ServerOutput::SetTimer {
                timer: ServerTimer::Heartbeat,
                at: at + 30_000,
            },
        )
    }

    /// The agent driver starts a session: CREATED, STARTING, ACTIVE at `first`, +1, +2.
    fn start_session(self, at: Millis, s: &str, first: Seq) -> Self {
        self.server_in(at, ServerInput::StartSession { session: sid(s) })
            .appended(at, state_ev(s, first, SessionState::Created, "start"))
            .appended(at, state_ev(s, first + 1, SessionState::Starting, "start"))
            .appended(at, state_ev(s, first + 2, SessionState::Active, "start"))
    }

    /// `connect()`: the tab opens an EventSource (no welcome yet).
    fn open(self, tab: u32, at: Millis, es: u32) -> Self {
        self.client_in(tab, at, ClientInput::Connect).client_out(
            tab,
            at,
            ClientOutput::OpenStream { es: EsId(es) },
        )
    }

    /// The server accepts a stream and greets it.
    fn serve_stream(self, at: Millis, conn: ConnId) -> Self {
        self.server_in(at, ServerInput::OpenStream)
            .server_out(at, ServerOutput::StreamOpened { conn })
            .server_out(
                at,
                ServerOutput::Deliver(Delivery {
                    conn,
                    event: welcome(conn),
                    origin: Origin::Direct,
                }),
            )
    }

    /// The tab takes a welcome frame on `es`, with no outputs of its own yet.
    fn welcome_in(self, tab: u32, at: Millis, es: u32, conn: ConnId) -> Self {
        self.client_in(
            tab,
            at,
            ClientInput::Frame {
                es: EsId(es),
                frame: Frame::of(welcome(conn)),
            },
        )
    }

    /// A first welcome: the server greets, the tab flushes `flushed` and opens.
    fn first_welcome(
        self,
        tab: u32,
        at: Millis,
        es: u32,
        conn: u32,
        flushed: &[(u64, &ClientMsg)],
    ) -> Self {
        let conn = c(conn);
        let mut h = self
            .serve_stream(at, conn)
            .welcome_in(tab, at + 1, es, conn);
        for (req, msg) in flushed {
            h = h.client_out(tab, at + 1, post(*req, conn, msg));
        }
        h = h.client_out(tab, at + 1, ClientOutput::App(AppNotice::Open));
        if flushed.is_empty() {
            h
        } else {
            h.queue(tab, at + 1, 0)
        }
    }

    /// `connect()` and the first welcome.
    fn connect(self, tab: u32, at: Millis, es: u32, conn: u32) -> Self {
        self.open(tab, at, es)
            .first_welcome(tab, at + 2, es, conn, &[])
    }

    /// The server writes a frame to a connection.
    fn server_deliver(self, at: Millis, conn: u32, event: ServerEvent, origin: Origin) -> Self {
        self.server_out(
            at,
            ServerOutput::Deliver(Delivery {
                conn: c(conn),
                event,
                origin,
            }),
        )
    }

    /// The server writes a frame (its last output) and the tab hands it to its app one ms
    /// later.
    fn deliver(
        self,
        tab: u32,
        at: Millis,
        es: u32,
        conn: u32,
        event: ServerEvent,
        origin: Origin,
    ) -> Self {
        self.server_deliver(at, conn, event.clone(), origin)
            .frame_in(tab, at + 1, es, event)
    }

    /// The tab takes a frame on `es` and hands it to the app.
    fn frame_in(self, tab: u32, at: Millis, es: u32, event: ServerEvent) -> Self {
        self.client_in(
            tab,
            at,
            ClientInput::Frame {
                es: EsId(es),
                frame: Frame::of(event.clone()),
            },
        )
        .client_out(tab, at, app_event(event))
    }

    /// `send(msg)` while connected: the POST goes straight out.
    fn call(self, tab: u32, at: Millis, conn: u32, req: u64, msg: &ClientMsg) -> Self {
        self.client_in(tab, at, ClientInput::Send { msg: msg.clone() })
            .client_out(tab, at, post(req, c(conn), msg))
            .client_out(tab, at, returned(msg))
    }

    /// `send(msg)` while not connected yet: the message is queued.
    fn call_queued(self, tab: u32, at: Millis, msg: &ClientMsg, pending: usize) -> Self {
        self.client_in(tab, at, ClientInput::Send { msg: msg.clone() })
            .client_out(tab, at, returned(msg))
            .queue(tab, at, pending)
    }

    /// A POST arrives at the server (a fresh token).
    fn request(mut self, at: Millis, conn: u32, body: &ClientMsg) -> Self {
        self.token += 1;
        let token = self.token;
        let request = HttpRequest {
            endpoint: body.endpoint().expect("a message with an endpoint"),
            connection_id: Some(c(conn)),
            body: body.clone(),
        };
        self.server_in(at, ServerInput::Request { token, request })
    }

    /// The server answers the last request.
    fn respond(self, at: Millis, code: u16) -> Self {
        let token = self.token;
        self.server_out(
            at,
            ServerOutput::Respond {
                token,
                response: HttpResponse::new(code, if code < 300 { "{\"ok\":true}" } else { "no" }),
            },
        )
    }

    fn post_done(self, tab: u32, at: Millis, req: u64, code: u16) -> Self {
        self.client_in(
            tab,
            at,
            ClientInput::PostDone {
                req: ReqId(req),
                outcome: status(code),
            },
        )
    }

    /// A plain POST's non-2xx reply, ignored the baseline way.
    fn post_ignored(self, tab: u32, at: Millis, req: u64, code: u16, msg: &ClientMsg) -> Self {
        self.post_done(tab, at, req, code).client_out(
            tab,
            at,
            ClientOutput::Dropped {
                msg: msg.clone(),
                reason: DropReason::StatusIgnored,
            },
        )
    }

    /// The server handles `/send` for a running session: persist, echo to the sender,
    /// dispatch, 202; the tab applies the echo and takes the reply.
    #[allow(clippy::too_many_arguments)]
    fn serve_send(
        self,
        tab: u32,
        at: Millis,
        es: u32,
        conn: u32,
        req: u64,
        s: &str,
        id: &str,
        seq: Seq,
    ) -> Self {
        let echo = ServerEvent::Session(user_ev(s, seq, id, false));
        self.request(at, conn, &prompt(Some(s), id))
            .appended(at, user_ev(s, seq, id, false))
            .server_deliver(at, conn, echo.clone(), Origin::Live)
            .server_out(
                at,
                ServerOutput::AgentInput(agent_input(s, id, false, false)),
            )
            .respond(at, 202)
            .frame_in(tab, at + 1, es, echo)
            .post_done(tab, at + 1, req, 202)
    }

    /// `send()` of a prompt while connected, served two ms later.
    #[allow(clippy::too_many_arguments)]
    fn send(
        self,
        tab: u32,
        at: Millis,
        es: u32,
        conn: u32,
        req: u64,
        s: &str,
        id: &str,
        seq: Seq,
    ) -> Self {
        self.call(tab, at, conn, req, &prompt(Some(s), id))
            .serve_send(tab, at + 2, es, conn, req, s, id, seq)
    }

    /// `watch(s)` while connected: the server confirms it and the tab gets `watched`.
    fn watch(self, tab: u32, at: Millis, es: u32, conn: u32, req: u64, s: &str) -> Self {
        let msg = watch_msg(s);
        let watched = ServerEvent::Watched { session: sid(s) };
        self.call(tab, at, conn, req, &msg)
            .request(at + 2, conn, &msg)
            .server_deliver(at + 2, conn, watched.clone(), Origin::Direct)
            .respond(at + 2, 200)
            .frame_in(tab, at + 3, es, watched)
            .post_done(tab, at + 4, req, 200)
    }

    /// The agent produces output `n` in `s`; it is stored as `seq` and broadcast live to
    /// each `(tab, es, conn)` watcher.
    fn emit(self, at: Millis, s: &str, seq: Seq, n: u32, to: &[(u32, u32, u32)]) -> Self {
        let e = output_ev(s, seq, n);
        let mut h = self
            .server_in(at, ServerInput::AgentEmit { session: sid(s), n })
            .appended(at, e.clone());
        for &(_, _, conn) in to {
            h = h.server_deliver(at, conn, ServerEvent::Session(e.clone()), Origin::Live);
        }
        for &(tab, es, _) in to {
            h = h.frame_in(tab, at + 1, es, ServerEvent::Session(e.clone()));
        }
        h
    }

    /// The common opening: boot, session s1 (seqs 1-3), tab0 connected on es1/c1.1 and
    /// watching s1 (confirmed at seq 3).
    fn watching() -> Self {
        H::new()
            .boot(0, 1, vec![])
            .start_session(0, "s1", 1)
            .connect(0, 10, 1, C1)
            .watch(0, 100, 1, C1, 1, "s1")
    }
}

/// A run where nothing goes wrong: agent output #4 and prompt m1 as #5 reach the tab
/// (`H::end` adds the heal and end records).
fn healthy() -> H {
    H::watching()
        .emit(200, "s1", 4, 1, &[(0, 1, C1)])
        .send(0, 300, 1, C1, 2, "s1", "m1", 5)
}

// ---------------------------------------------------------------------------------------
// Assertions

fn of<'a>(v: &'a Verdicts, id: &str) -> Vec<&'a Violation> {
    v.violations.iter().filter(|x| x.invariant == id).collect()
}

/// The invariant fired; returns its first violation.
fn fired<'a>(v: &'a Verdicts, id: &str) -> &'a Violation {
    assert!(
        v.failed_ids().contains(&id),
        "{id} should have fired; verdicts: {v:#?}"
    );
    of(v, id)[0]
}

fn holds(v: &Verdicts, id: &str) {
    assert!(
        !v.failed_ids().contains(&id),
        "{id} should hold; violations: {:#?}",
        of(v, id)
    );
}

fn assert_names(v: &Violation, parts: &[&str]) {
    for p in parts {
        assert!(
            v.detail.contains(p),
            "detail {:?} should name {p:?}",
            v.detail
        );
    }
}

fn run(h: H) -> Verdicts {
    check(&ctx(), &h.end())
}

// ---------------------------------------------------------------------------------------
// The baseline of all tests

#[test]
fn healthy_run_passes_every_invariant() {
    let v = run(healthy());
    assert_eq!(v.violations, Vec::<Violation>::new());
    assert!(v.unjudged.is_empty(), "{:?}", v.unjudged);
}

#[test]
fn every_invariant_has_a_firing_history_here() {
    let firing = firing_runs();
    let ids: Vec<&str> = firing.iter().map(|(id, _)| *id).collect();
    let all: Vec<&str> = INVARIANTS.iter().map(|i| i.id).collect();
    assert_eq!(ids, all);
    for (id, v) in &firing {
        fired(v, id);
    }
}

/// One firing history per invariant, in report order, with its verdicts.
fn firing_runs() -> Vec<(&'static str, Verdicts)> {
    vec![
        ("send_order", run(send_order_broken())),
        ("no_silent_send_loss", run(send_lost())),
        ("no_duplicate_dispatch", run(duplicate_dispatch())),
        ("event_order", run(events_reordered())),
        ("no_silent_event_loss", run(event_lost())),
        ("no_duplicate_apply", run(event_applied_twice())),
        ("bounded_replay", run(sync_tick_too_big())),
        (
            "bounded_queue",
            check(
                &ctx_with(small_queue(), Some(HEAL)),
                &queue_over_cap().end(),
            ),
        ),
        ("server_survives", run(interrupt_crash())),
        ("restart_consistency", run(restart_left_active())),
        ("liveness", run(tab_never_reconnects())),
        ("connection_hygiene", run(stale_404_ignored())),
    ]
}

// ---------------------------------------------------------------------------------------
// send_order

fn send_order_broken() -> H {
    let m1 = prompt(Some("s1"), "m1");
    let m2 = prompt(Some("s1"), "m2");
    // Both sends are queued before the welcome; the flush fires them together and the
    // network lands m2 first.
    H::new()
        .boot(0, 1, vec![])
        .start_session(0, "s1", 1)
        .open(0, 10, 1)
        .call_queued(0, 20, &m1, 1)
        .call_queued(0, 21, &m2, 2)
        .first_welcome(0, 30, 1, C1, &[(1, &m1), (2, &m2)])
        .serve_send(0, 33, 1, C1, 2, "s1", "m2", 4)
        .serve_send(0, 35, 1, C1, 1, "s1", "m1", 5)
}

#[test]
fn send_order_holds_when_sends_reach_the_agent_in_send_order() {
    let m1 = prompt(Some("s1"), "m1");
    let m2 = prompt(Some("s1"), "m2");
    let h = H::new()
        .boot(0, 1, vec![])
        .start_session(0, "s1", 1)
        .open(0, 10, 1)
        .call_queued(0, 20, &m1, 1)
        .call_queued(0, 21, &m2, 2)
        .first_welcome(0, 30, 1, C1, &[(1, &m1), (2, &m2)])
        .serve_send(0, 33, 1, C1, 1, "s1", "m1", 4)
        .serve_send(0, 35, 1, C1, 2, "s1", "m2", 5);
    let v = run(h);
    holds(&v, "send_order");
    assert!(v.violations.is_empty(), "{v:#?}");
}

#[test]
fn send_order_fires_when_a_later_send_overtakes_an_earlier_one() {
    let v = run(send_order_broken());
    let x = fired(&v, "send_order");
    assert_eq!(of(&v, "send_order").len(), 1);
    // Reported at m2's dispatch, the moment the order broke.
    assert_eq!(x.at_ms, 33);
    assert_names(x, &["tab0", "m2", "before m1", "s1"]);
    assert_eq!(v.failed_ids(), vec!["send_order"]);
}

#[test]
fn send_order_ignores_sends_to_different_sessions() {
    let h = H::watching()
        .start_session(150, "s2", 4)
        .call(0, 200, C1, 2, &prompt(Some("s1"), "a"))
        .call(0, 201, C1, 3, &prompt(Some("s2"), "b"))
        .serve_send(0, 204, 1, C1, 3, "s2", "b", 7)
        .serve_send(0, 206, 1, C1, 2, "s1", "a", 8);
    holds(&run(h), "send_order");
}

// ---------------------------------------------------------------------------------------
// no_silent_send_loss

/// m1 is posted with a connection the server forgot (a silent drop); the 404 is ignored.
fn send_lost() -> H {
    let m1 = prompt(Some("s1"), "m1");
    H::watching()
        .server_in(
            150,
            ServerInput::DropConnection {
                conn: c(C1),
                close_stream: false,
            },
        )
        .call(0, 300, C1, 2, &m1)
        .request(302, C1, &m1)
        .respond(302, 404)
        .post_ignored(0, 303, 2, 404, &m1)
}

#[test]
fn no_silent_send_loss_holds_when_every_send_is_dispatched() {
    holds(&run(healthy()), "no_silent_send_loss");
}

#[test]
fn no_silent_send_loss_holds_when_the_failure_is_reported_to_the_app() {
    let m1 = prompt(Some("s1"), "m1");
    let h = send_lost().client_out(0, 303, ClientOutput::App(AppNotice::SendFailed { msg: m1 }));
    holds(&run(h), "no_silent_send_loss");
}

#[test]
fn no_silent_send_loss_fires_for_a_send_never_dispatched_nor_reported() {
    let v = run(send_lost());
    let x = fired(&v, "no_silent_send_loss");
    assert_eq!(x.at_ms, 300);
    assert_names(x, &["tab0", "m1", "s1", "300 ms"]);
}

#[test]
fn no_silent_send_loss_names_a_lost_first_message() {
    let first = prompt(None, "first");
    let h = H::watching()
        .call(0, 400, C1, 2, &first)
        .request(402, C1, &first)
        .respond(402, 500)
        .post_ignored(0, 403, 2, 500, &first);
    let v = run(h);
    let x = fired(&v, "no_silent_send_loss");
    assert_eq!(x.at_ms, 400);
    assert_names(x, &["first", "a new session"]);
}

#[test]
fn no_silent_send_loss_does_not_judge_a_send_too_close_to_the_end() {
    // Accepted after the heal phase began, with less than the settle bound left.
    let m9 = prompt(Some("s1"), "m9");
    let late = DURATION - 1000;
    let h = H::watching()
        .client_in(0, 50_000, ClientInput::StreamError { es: EsId(1) })
        .client_out(0, 50_000, ClientOutput::App(AppNotice::Close))
        .call_queued(0, late, &m9, 1);
    let v = run(h);
    holds(&v, "no_silent_send_loss");
    // The same send early enough is judged.
    let h = H::watching()
        .client_in(0, 500, ClientInput::StreamError { es: EsId(1) })
        .client_out(0, 500, ClientOutput::App(AppNotice::Close))
        .call_queued(0, 600, &m9, 1);
    assert_eq!(fired(&run(h), "no_silent_send_loss").at_ms, 600);
}

// ---------------------------------------------------------------------------------------
// no_duplicate_dispatch

/// The first message of a new session is posted twice (its reply was lost and the app
/// retried it); each post starts a session.
fn duplicate_dispatch() -> H {
    let first = prompt(None, "first");
    H::new()
        .boot(0, 1, vec![])
        .connect(0, 10, 1, C1)
        .call(0, 100, C1, 1, &first)
        .start_new_session(102, "new-1.1", 1, "first")
        .wire(
            102,
            None,
            WireEvent::ResponseLost {
                endpoint: "send".into(),
            },
        )
        .call(0, 2000, C1, 2, &first)
        .start_new_session(2002, "new-1.2", 5, "first")
        .post_done(0, 2003, 2, 202)
}

impl H {
    /// The server handles a `/send` with no session: a new session (seqs `first`..+3)
    /// and its first prompt, dispatched.
    fn start_new_session(self, at: Millis, s: &str, first: Seq, id: &str) -> Self {
        self.request(at, C1, &prompt(None, id))
            .appended(at, state_ev(s, first, SessionState::Created, "start"))
            .appended(at, state_ev(s, first + 1, SessionState::Starting, "start"))
            .appended(at, state_ev(s, first + 2, SessionState::Active, "start"))
            .appended(at, user_ev(s, first + 3, id, false))
            .server_out(
                at,
                ServerOutput::AgentInput(agent_input(s, id, false, true)),
            )
            .respond(at, 202)
    }
}

#[test]
fn no_duplicate_dispatch_holds_when_a_retry_is_deduplicated() {
    let m1 = prompt(Some("s1"), "m1");
    // The second post of m1 finds it stored and returns without dispatching.
    let h = healthy()
        .call(0, 400, C1, 3, &m1)
        .request(402, C1, &m1)
        .respond(402, 202)
        .post_done(0, 403, 3, 202);
    let v = run(h);
    holds(&v, "no_duplicate_dispatch");
}

#[test]
fn no_duplicate_dispatch_fires_when_a_first_message_starts_two_sessions() {
    let v = run(duplicate_dispatch());
    let x = fired(&v, "no_duplicate_dispatch");
    assert_eq!(of(&v, "no_duplicate_dispatch").len(), 1);
    assert_eq!(x.at_ms, 2002);
    assert_names(
        x,
        &[
            "first",
            "new-1.2",
            "first at 102 ms",
            "starting another session",
        ],
    );
}

// ---------------------------------------------------------------------------------------
// event_order

/// #6 is delivered live, then #5 arrives through a late sync: an unseen older event.
fn events_reordered() -> H {
    H::watching()
        .server_in(
            200,
            ServerInput::AgentEmit {
                session: sid("s1"),
                n: 1,
            },
        )
        .appended(200, output_ev("s1", 4, 1))
        .deliver(
            0,
            200,
            1,
            C1,
            ServerEvent::Session(output_ev("s1", 4, 1)),
            Origin::Live,
        )
        .server_in(
            300,
            ServerInput::AgentEmit {
                session: sid("s1"),
                n: 2,
            },
        )
        .appended(300, output_ev("s1", 5, 2))
        .emit(400, "s1", 6, 3, &[(0, 1, C1)])
        .deliver(
            0,
            5000,
            1,
            C1,
            ServerEvent::Session(output_ev("s1", 5, 2)),
            Origin::Sync,
        )
}

#[test]
fn event_order_holds_for_increasing_seqs_across_sessions_and_for_duplicates() {
    // s2's #5 after s1's #6 is fine (order is per session), and a re-sent #4 is a
    // duplicate, not a reorder.
    let h = H::watching()
        .start_session(150, "s2", 4)
        .watch(0, 160, 1, C1, 2, "s2")
        .emit(200, "s1", 7, 1, &[(0, 1, C1)])
        .emit(300, "s2", 8, 1, &[(0, 1, C1)])
        .emit(400, "s1", 9, 2, &[(0, 1, C1)])
        .deliver(
            0,
            5000,
            1,
            C1,
            ServerEvent::Session(output_ev("s1", 7, 1)),
            Origin::Sync,
        );
    let v = run(h);
    holds(&v, "event_order");
    fired(&v, "no_duplicate_apply");
}

#[test]
fn event_order_fires_when_an_unseen_older_event_follows_a_newer_one() {
    let v = run(events_reordered());
    let x = fired(&v, "event_order");
    assert_eq!(x.at_ms, 5001);
    assert_names(x, &["tab0", "s1#5 after s1#6"]);
}

// ---------------------------------------------------------------------------------------
// no_silent_event_loss

/// The server forgets tab0's connection without closing its stream; #4 is stored and goes
/// nowhere.
fn event_lost() -> H {
    H::watching()
        .server_in(
            150,
            ServerInput::DropConnection {
                conn: c(C1),
                close_stream: false,
            },
        )
        .server_in(
            200,
            ServerInput::AgentEmit {
                session: sid("s1"),
                n: 1,
            },
        )
        .appended(200, output_ev("s1", 4, 1))
}

#[test]
fn no_silent_event_loss_holds_when_every_watched_event_arrives() {
    holds(&run(healthy()), "no_silent_event_loss");
}

#[test]
fn no_silent_event_loss_does_not_ask_for_events_stored_before_the_watch() {
    // #4 is stored before the watch is confirmed and never delivered.
    let h = H::new()
        .boot(0, 1, vec![])
        .start_session(0, "s1", 1)
        .server_in(
            5,
            ServerInput::AgentEmit {
                session: sid("s1"),
                n: 1,
            },
        )
        .appended(5, output_ev("s1", 4, 1))
        .connect(0, 10, 1, C1)
        .watch(0, 100, 1, C1, 1, "s1")
        .emit(200, "s1", 5, 2, &[(0, 1, C1)]);
    holds(&run(h), "no_silent_event_loss");
}

#[test]
fn no_silent_event_loss_does_not_ask_for_events_after_an_unwatch() {
    let msg = ClientMsg::Unwatch { session: sid("s1") };
    let unwatched = ServerEvent::Unwatched { session: sid("s1") };
    let h = H::watching()
        .call(0, 150, C1, 2, &msg)
        .request(152, C1, &msg)
        .server_deliver(152, C1, unwatched.clone(), Origin::Direct)
        .respond(152, 200)
        .frame_in(0, 153, 1, unwatched)
        .post_done(0, 154, 2, 200)
        .server_in(
            200,
            ServerInput::AgentEmit {
                session: sid("s1"),
                n: 1,
            },
        )
        .appended(200, output_ev("s1", 4, 1));
    holds(&run(h), "no_silent_event_loss");
}

#[test]
fn no_silent_event_loss_fires_for_a_watched_event_that_never_arrives() {
    let v = run(event_lost());
    let x = fired(&v, "no_silent_event_loss");
    assert_eq!(x.at_ms, 200);
    assert_names(x, &["tab0", "s1#4", "200 ms"]);
}

#[test]
fn no_silent_event_loss_stops_at_the_apps_own_disconnect() {
    // The app calls disconnect() for good; what is stored afterwards is not owed to it.
    let h = H::watching()
        .client_in(0, 150, ClientInput::Disconnect)
        .client_out(0, 150, ClientOutput::CloseStream { es: EsId(1) })
        .server_in(152, ServerInput::StreamClosed { conn: c(C1) })
        .server_in(
            200,
            ServerInput::AgentEmit {
                session: sid("s1"),
                n: 1,
            },
        )
        .appended(200, output_ev("s1", 4, 1));
    let v = run(h);
    holds(&v, "no_silent_event_loss");
    assert!(v.violations.is_empty(), "{v:#?}");
}

#[test]
fn no_silent_event_loss_keeps_a_watch_a_switch_on_a_new_connection_did_not_end() {
    // A send on c1.1 made s1 active there. After a reconnect on c1.2 (which watches s1
    // again but has no active session), switching to s2 unwatches nothing on the server,
    // so s1's events are still owed to the tab.
    let switch = ClientMsg::SwitchSession { session: sid("s2") };
    let rc = reconnect_msg(&[("s1", 7)]);
    let h = H::watching()
        .start_session(150, "s2", 4)
        .send(0, 300, 1, C1, 2, "s1", "m1", 7)
        // The stream drops; the browser re-opens it on its own.
        .server_in(400, ServerInput::StreamClosed { conn: c(C1) })
        .client_in(0, 401, ClientInput::StreamError { es: EsId(1) })
        .client_out(0, 401, ClientOutput::App(AppNotice::Close))
        .serve_stream(3400, c(C2))
        .welcome_in(0, 3401, 1, c(C2))
        .client_out(0, 3401, post(3, c(C2), &rc))
        .request(3403, C2, &rc)
        .respond(3403, 200)
        .post_done(0, 3404, 3, 200)
        .client_out(0, 3404, ClientOutput::App(AppNotice::Open))
        .call(0, 4000, C2, 4, &switch)
        .request(4002, C2, &switch)
        .respond(4002, 200)
        .post_done(0, 4003, 4, 200)
        // s1 goes on; the tab, still watching it on c1.2, never gets #8.
        .server_in(
            5000,
            ServerInput::AgentEmit {
                session: sid("s1"),
                n: 1,
            },
        )
        .appended(5000, output_ev("s1", 8, 1));
    let v = run(h);
    let x = fired(&v, "no_silent_event_loss");
    assert_eq!(x.at_ms, 5000);
    assert_names(x, &["tab0", "s1#8"]);
}

// ---------------------------------------------------------------------------------------
// no_duplicate_apply

/// #4 is delivered live and again by a sync tick: applied twice, cursor unmoved.
fn event_applied_twice() -> H {
    H::watching().emit(200, "s1", 4, 1, &[(0, 1, C1)]).deliver(
        0,
        5000,
        1,
        C1,
        ServerEvent::Session(output_ev("s1", 4, 1)),
        Origin::Sync,
    )
}

#[test]
fn no_duplicate_apply_holds_when_each_event_is_applied_once_in_order() {
    holds(&run(healthy()), "no_duplicate_apply");
}

#[test]
fn no_duplicate_apply_fires_for_an_event_applied_twice() {
    let v = run(event_applied_twice());
    let all = of(&v, "no_duplicate_apply");
    assert_eq!(all.len(), 1, "{all:#?}");
    let x = fired(&v, "no_duplicate_apply");
    assert_eq!(x.at_ms, 5001);
    assert_names(x, &["tab0", "s1#4 a second time"]);
}

#[test]
fn no_duplicate_apply_fires_when_the_cursor_moves_backwards() {
    // #5 arrives after #6 for the first time: no duplicate, but the last-write-wins
    // cursor goes from 6 back to 5.
    let v = run(events_reordered());
    let all = of(&v, "no_duplicate_apply");
    assert_eq!(all.len(), 1, "{all:#?}");
    let x = all[0];
    assert_eq!(x.at_ms, 5001);
    assert_names(x, &["tab0", "cursor for s1 moved backwards from 6 to 5"]);
}

// ---------------------------------------------------------------------------------------
// bounded_replay

fn sync_batch(sent: usize) -> ServerOutput {
    ServerOutput::SyncBatch(SyncBatch {
        conn: c(C1),
        session: sid("s1"),
        cursor: 3,
        skipped: None,
        sent,
        stopped_on_failure: false,
    })
}

/// One sync tick sends 51 events of s1 to c1.1 (the limit is 50).
fn sync_tick_too_big() -> H {
    let mut h = H::watching();
    // Stored while c1.1's transport throws, so nothing goes out live.
    for k in 0..51u64 {
        h = h
            .server_in(
                1000 + k,
                ServerInput::AgentEmit {
                    session: sid("s1"),
                    n: k as u32 + 1,
                },
            )
            .appended(1000 + k, output_ev("s1", 4 + k, k as u32 + 1));
    }
    h = h.server_in(5000, ServerInput::Timer(ServerTimer::Sync));
    for k in 0..51u64 {
        let e = ServerEvent::Session(output_ev("s1", 4 + k, k as u32 + 1));
        h = h.server_deliver(5000, C1, e, Origin::Sync);
    }
    h = h.server_out(5000, sync_batch(51));
    for k in 0..51u64 {
        let e = ServerEvent::Session(output_ev("s1", 4 + k, k as u32 + 1));
        h = h.frame_in(0, 5001, 1, e);
    }
    h
}

/// `n` events stored and delivered live from #4 at `at`, then re-sent by sync ticks:
/// `resent` of them, in ticks of at most 50, one tick every `every` ms from `first_tick`.
fn replayed(n: u64, resent: u64, first_tick: Millis, every: Millis) -> H {
    let mut h = H::watching();
    for k in 0..n {
        h = h.emit(200 + k, "s1", 4 + k, k as u32 + 1, &[(0, 1, C1)]);
    }
    let mut tick = first_tick;
    let mut k = 0;
    while k < resent {
        let batch = (resent - k).min(50);
        let events: Vec<ServerEvent> = (k..k + batch)
            .map(|j| {
                let q = 4 + j % n;
                ServerEvent::Session(output_ev("s1", q, (q - 3) as u32))
            })
            .collect();
        h = h.server_in(tick, ServerInput::Timer(ServerTimer::Sync));
        for e in &events {
            h = h.server_deliver(tick, C1, e.clone(), Origin::Sync);
        }
        h = h.server_out(tick, sync_batch(batch as usize));
        for e in events {
            h = h.frame_in(0, tick + 1, 1, e);
        }
        k += batch;
        tick += every;
    }
    h
}

#[test]
fn bounded_replay_holds_at_the_batch_limit_and_the_per_minute_budget() {
    // One tick of exactly 50, and 50 re-sent events in the first minute, 50 in the next.
    let h = replayed(50, 100, 5000, 70_000);
    let v = run(h);
    holds(&v, "bounded_replay");
    fired(&v, "no_duplicate_apply");
}

#[test]
fn bounded_replay_fires_for_a_sync_tick_over_the_batch_limit() {
    let v = run(sync_tick_too_big());
    let x = fired(&v, "bounded_replay");
    assert_eq!(x.at_ms, 5000);
    assert_names(x, &["51 events of s1 to c1.1", "limit 50"]);
}

#[test]
fn bounded_replay_fires_for_a_replay_storm_within_one_minute() {
    // 60 re-sent events within ten seconds of a 100-second run: a storm, even though the
    // run as a whole averages fewer than 50 per minute.
    let h = replayed(30, 60, 5000, 5000);
    let v = run(h);
    let storms: Vec<_> = of(&v, "bounded_replay");
    assert_eq!(storms.len(), 1, "{storms:#?}");
    let x = storms[0];
    // The 51st re-sent event: the first of the second tick, at 10000 (+1 for the tab).
    assert_eq!(x.at_ms, 10_001);
    assert_names(x, &["tab0", "50", "replay storm"]);
}

// ---------------------------------------------------------------------------------------
// bounded_queue

fn small_queue() -> Params {
    let mut p = Params::baseline();
    p.client.max_pending_sends = 2;
    p
}

/// Three sends queued before any welcome against a cap of 2.
fn queue_over_cap() -> H {
    H::new()
        .boot(0, 1, vec![])
        .start_session(0, "s1", 1)
        .open(0, 10, 1)
        .call_queued(0, 20, &prompt(Some("s1"), "q1"), 1)
        .call_queued(0, 21, &prompt(Some("s1"), "q2"), 2)
        .call_queued(0, 22, &prompt(Some("s1"), "q3"), 3)
}

#[test]
fn bounded_queue_holds_when_the_full_queue_evicts() {
    let q1 = prompt(Some("s1"), "q1");
    let q3 = prompt(Some("s1"), "q3");
    let h = H::new()
        .boot(0, 1, vec![])
        .start_session(0, "s1", 1)
        .open(0, 10, 1)
        .call_queued(0, 20, &q1, 1)
        .call_queued(0, 21, &prompt(Some("s1"), "q2"), 2)
        // At the cap: the oldest is evicted, the length stays 2 (no Queue record).
        .client_in(0, 22, ClientInput::Send { msg: q3.clone() })
        .client_out(
            0,
            22,
            ClientOutput::Dropped {
                msg: q1,
                reason: DropReason::Evicted,
            },
        )
        .client_out(0, 22, returned(&q3));
    let v = check(&ctx_with(small_queue(), Some(HEAL)), &h.end());
    holds(&v, "bounded_queue");
}

#[test]
fn bounded_queue_fires_when_the_queue_exceeds_its_cap() {
    let v = check(
        &ctx_with(small_queue(), Some(HEAL)),
        &queue_over_cap().end(),
    );
    let x = fired(&v, "bounded_queue");
    assert_eq!(x.at_ms, 22);
    assert_names(x, &["tab0", "3 items", "cap 2"]);
}

/// m1 posted `times` times, one second apart, each answered 500.
fn posted(times: u64) -> H {
    let m1 = prompt(Some("s1"), "m1");
    let mut h = H::watching();
    for k in 0..times {
        let at = 1000 * (k + 1);
        let req = k + 2;
        if k == 0 {
            h = h.call(0, at, C1, req, &m1);
        } else {
            // A retrying client re-posts from its own timer.
            h = h
                .client_in(
                    0,
                    at,
                    ClientInput::Timer(ssesim_model::ClientTimer::Reconnect),
                )
                .client_out(0, at, post(req, c(C1), &m1));
        }
        h = h
            .request(at + 2, C1, &m1)
            .respond(at + 2, 500)
            .post_done(0, at + 3, req, 500);
    }
    h.client_out(
        0,
        1000 * times + 3,
        ClientOutput::App(AppNotice::SendFailed { msg: m1 }),
    )
}

#[test]
fn bounded_queue_holds_within_the_default_attempt_budget() {
    holds(&run(posted(3)), "bounded_queue");
}

#[test]
fn bounded_queue_fires_past_the_default_attempt_budget() {
    let v = run(posted(4));
    let x = fired(&v, "bounded_queue");
    assert_eq!(x.at_ms, 4000);
    assert_names(x, &["tab0", "m1", "more than 3 times"]);
}

#[test]
fn bounded_queue_uses_the_revisions_attempt_budget() {
    let mut p = Params::baseline();
    p.client.attempt_budget = Some(2);
    let v = check(&ctx_with(p.clone(), Some(HEAL)), &posted(2).end());
    holds(&v, "bounded_queue");
    let v = check(&ctx_with(p, Some(HEAL)), &posted(3).end());
    let x = fired(&v, "bounded_queue");
    assert_eq!(x.at_ms, 3000);
    assert_names(x, &["m1", "more than 2 times"]);
}

// ---------------------------------------------------------------------------------------
// server_survives

/// An interrupt whose `interrupt()` rejects with no guard: the process dies.
fn interrupt_crash() -> H {
    interrupt_called()
        .respond(402, 202)
        .frame_in(
            0,
            403,
            1,
            ServerEvent::Session(user_ev("s1", 4, "stop-now", true)),
        )
        .post_done(0, 403, 2, 202)
        .server_in(
            404,
            ServerInput::InterruptSettled {
                token: 1,
                ok: false,
            },
        )
        .server_out(
            404,
            ServerOutput::Crash {
                reason: "unhandled rejection: interrupt() failed in s1".into(),
            },
        )
        .down(404, "unhandled rejection: interrupt() failed in s1")
}

/// tab0 posts an interrupt; the server persists and echoes it and calls `interrupt()`.
fn interrupt_called() -> H {
    let stop = interrupt_msg("s1", "stop-now");
    H::watching()
        .call(0, 400, C1, 2, &stop)
        .request(402, C1, &stop)
        .appended(402, user_ev("s1", 4, "stop-now", true))
        .server_deliver(
            402,
            C1,
            ServerEvent::Session(user_ev("s1", 4, "stop-now", true)),
            Origin::Live,
        )
        .server_out(
            402,
            ServerOutput::CallInterrupt {
                token: 1,
                session: sid("s1"),
            },
        )
}

/// The process is killed at the interrupt point, before `interrupt()` settles and before
/// the reply goes out; the supervisor reboots it and recovery ends s1.
fn crash_at_interrupt() -> H {
    interrupt_called()
        .down(402, "crash at the interrupt point")
        .client_in(0, 403, ClientInput::StreamError { es: EsId(1) })
        .client_out(0, 403, ClientOutput::App(AppNotice::Close))
        .boot(
            1402,
            2,
            vec![state_ev("s1", 5, SessionState::Ended, "server_restart")],
        )
}

#[test]
fn server_survives_holds_when_the_guard_catches_the_rejection() {
    let h = interrupt_called()
        .respond(402, 202)
        .frame_in(
            0,
            403,
            1,
            ServerEvent::Session(user_ev("s1", 4, "stop-now", true)),
        )
        .post_done(0, 403, 2, 202)
        .server_in(
            404,
            ServerInput::InterruptSettled {
                token: 1,
                ok: false,
            },
        )
        .server_out(
            404,
            ServerOutput::Warning {
                message: "interrupt() failed in s1; continuing".into(),
            },
        )
        .server_out(
            404,
            ServerOutput::AgentInput(agent_input("s1", "stop-now", true, false)),
        );
    let v = run(h);
    holds(&v, "server_survives");
    assert!(v.violations.is_empty(), "{v:#?}");
}

#[test]
fn server_survives_does_not_count_an_injected_crash() {
    // A crash step kills the process from outside: no handler failed.
    let h = healthy().down(20_000, "crash step").boot(
        21_000,
        2,
        vec![state_ev("s1", 6, SessionState::Ended, "server_restart")],
    );
    holds(&run(h), "server_survives");
}

#[test]
fn server_survives_fires_when_a_rejection_kills_the_process() {
    let v = run(interrupt_crash().boot(
        1404,
        2,
        vec![state_ev("s1", 5, SessionState::Ended, "server_restart")],
    ));
    let x = fired(&v, "server_survives");
    assert_eq!(x.at_ms, 404);
    assert_names(x, &["died", "interrupt() failed in s1"]);
}

// ---------------------------------------------------------------------------------------
// restart_consistency

/// A crash step and a reboot whose recovery ends nothing: s1 stays ACTIVE.
fn restart_left_active() -> H {
    healthy().down(20_000, "crash step").boot(21_000, 2, vec![])
}

#[test]
fn restart_consistency_holds_when_recovery_ends_stale_sessions() {
    // s1 was ACTIVE and is ended by recovery; s2 only reached CREATED, which is not stale;
    // m1 was persisted and dispatched before the crash.
    let h = healthy()
        .server_in(6000, ServerInput::StartSession { session: sid("s2") })
        .appended(6000, state_ev("s2", 6, SessionState::Created, "start"))
        .down(20_000, "crash step")
        .boot(
            21_000,
            2,
            vec![state_ev("s1", 7, SessionState::Ended, "server_restart")],
        );
    let v = run(h);
    holds(&v, "restart_consistency");
}

#[test]
fn restart_consistency_fires_for_a_session_left_non_terminal() {
    let v = run(restart_left_active());
    let x = fired(&v, "restart_consistency");
    assert_eq!(of(&v, "restart_consistency").len(), 1);
    assert_eq!(x.at_ms, 21_000);
    assert_names(x, &["21000 ms", "s1", "ACTIVE"]);
}

#[test]
fn restart_consistency_judges_states_as_of_the_end_of_recovery() {
    // s1 is ended only later, by a request after the reboot: too late.
    let h = restart_left_active()
        .server_in(
            21_500,
            ServerInput::AgentState {
                session: sid("s1"),
                to: SessionState::Ended,
            },
        )
        .appended(21_500, state_ev("s1", 6, SessionState::Ended, "agent"));
    let v = run(h);
    let x = fired(&v, "restart_consistency");
    assert_eq!(x.at_ms, 21_000);
}

#[test]
fn restart_consistency_fires_for_a_persisted_message_never_executed() {
    // The interrupt is stored, then the process dies before interrupt() settles; the
    // reboot ends s1 properly, but stop-now is neither executed nor reported failed.
    let v = run(crash_at_interrupt());
    let all = of(&v, "restart_consistency");
    assert_eq!(all.len(), 1, "{all:#?}");
    let x = all[0];
    assert_eq!(x.at_ms, 402);
    assert_names(x, &["stop-now", "s1 as #4", "402 ms"]);
    // No handler failed: the process was killed from outside.
    holds(&v, "server_survives");
}

#[test]
fn restart_consistency_holds_for_a_persisted_message_reported_failed() {
    // A client that gives up on the unanswered POST and tells the app.
    let stop = interrupt_msg("s1", "stop-now");
    let h = crash_at_interrupt()
        .wire(
            20_400,
            Some(0),
            WireEvent::PostFailed {
                req: ReqId(2),
                why: "timeout".into(),
            },
        )
        .client_in(
            0,
            20_400,
            ClientInput::PostDone {
                req: ReqId(2),
                outcome: PostOutcome::NetworkError,
            },
        )
        .client_out(
            0,
            20_400,
            ClientOutput::App(AppNotice::SendFailed { msg: stop }),
        );
    let v = run(h);
    holds(&v, "restart_consistency");
    holds(&v, "no_silent_send_loss");
}

/// 300 agent outputs (#6-#305) stored in s1 from 600 on, 2 ms apart, while the tab
/// watches but its transport fails; the sync then catches it up on the first `got` of them
/// (from 2000 on).
fn burst_partly_delivered(got: u64) -> H {
    let mut h = healthy();
    for seq in 6..306 {
        h = h.emit(600 + 2 * (seq - 6), "s1", seq, 2, &[]);
    }
    for seq in 6..6 + got {
        h = h.frame_in(
            0,
            2000 + seq,
            1,
            ServerEvent::Session(output_ev("s1", seq, 2)),
        );
    }
    h
}

#[test]
fn no_silent_event_loss_gives_a_burst_the_bounded_syncs_pace() {
    // #206-#305 are 200 or more events ahead of what the tab had: at 50 per 5 s tick they
    // cannot all arrive within the run, so they are not judged missing.
    holds(&run(burst_partly_delivered(200)), "no_silent_event_loss");
    // With time enough for that pace, they are.
    let long = Context {
        duration_ms: HEAL + ctx().settle_ms() + 30_000,
        ..ctx()
    };
    let v = check(&long, &burst_partly_delivered(200).end());
    let x = fired(&v, "no_silent_event_loss");
    assert_names(x, &["tab0", "s1#206"]);
    // The head of the burst is owed at once.
    let v = run(burst_partly_delivered(0));
    let x = fired(&v, "no_silent_event_loss");
    assert_names(x, &["tab0", "s1#6"]);
}

/// `burst_partly_delivered(got)`, then tab0 unwatches s1 at 2400 and watches it again at
/// 2500 (both answered 200 by the server), and #306 is stored at 2600 and never arrives.
fn rewatched_with_a_debt(got: u64) -> H {
    let unwatch = ClientMsg::Unwatch { session: sid("s1") };
    burst_partly_delivered(got)
        .call(0, 2400, C1, 3, &unwatch)
        .request(2402, C1, &unwatch)
        .respond(2402, 200)
        .post_done(0, 2404, 3, 200)
        .watch(0, 2500, 1, C1, 4, "s1")
        .emit(2600, "s1", 306, 2, &[])
}

/// How many violations of `id` were found, those folded into "... and N more" included.
fn found(v: &Verdicts, id: &str) -> usize {
    of(v, id)
        .iter()
        .map(|x| {
            x.detail
                .strip_prefix("... and ")
                .and_then(|rest| rest.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(1)
        })
        .sum()
}

#[test]
fn no_silent_event_loss_makes_an_event_after_a_rewatch_wait_for_the_earlier_debt() {
    // The burst was owed under the first watch and never paid; an event stored after the
    // re-watch reaches the tab only behind it, at the sync's pace: past the run's end, so
    // #306 adds no violation to the burst's own.
    let burst = found(&run(burst_partly_delivered(0)), "no_silent_event_loss");
    assert!(burst > 0);
    let v = run(rewatched_with_a_debt(0));
    assert_eq!(found(&v, "no_silent_event_loss"), burst, "{v:#?}");
    // With the debt paid before it was stored, #306 is owed at once.
    let v = run(rewatched_with_a_debt(300));
    let x = fired(&v, "no_silent_event_loss");
    assert_names(x, &["tab0", "s1#306"]);
    assert_eq!(found(&v, "no_silent_event_loss"), 1);
}

/// tab0 connected (no watch) asks for a replay of s1 after #3, which the server answers
/// `status`; #4 is stored at 600 and never reaches the tab.
fn replay_answered(status: u16) -> H {
    let replay = reconnect_msg(&[("s1", 3)]);
    H::new()
        .boot(0, 1, vec![])
        .start_session(0, "s1", 1)
        .connect(0, 10, 1, C1)
        .call(0, 100, C1, 1, &replay)
        .request(102, C1, &replay)
        .respond(102, status)
        .post_done(0, 104, 1, status)
        .emit(600, "s1", 4, 1, &[])
}

#[test]
fn no_silent_event_loss_counts_a_replay_answered_503_as_a_watch() {
    // The reference answers 503 to a replay its failing transport cut short, after it
    // watched the session: what is stored afterwards is owed.
    let v = run(replay_answered(503));
    let x = fired(&v, "no_silent_event_loss");
    assert_names(x, &["tab0", "s1#4"]);
    // Any other refusal watched nothing.
    holds(&run(replay_answered(500)), "no_silent_event_loss");
}

// ---------------------------------------------------------------------------------------
// liveness

/// The stream fails at 500 and the browser never gets it back.
fn tab_never_reconnects() -> H {
    healthy()
        .server_in(499, ServerInput::StreamClosed { conn: c(C1) })
        .client_in(0, 500, ClientInput::StreamError { es: EsId(1) })
        .client_out(0, 500, ClientOutput::App(AppNotice::Close))
        .wire(
            500,
            Some(0),
            WireEvent::StreamRefused {
                es: EsId(1),
                status: 503,
            },
        )
}

#[test]
fn liveness_holds_when_every_tab_recovers() {
    holds(&run(healthy()), "liveness");
}

#[test]
fn liveness_fires_for_a_tab_left_disconnected() {
    let v = run(tab_never_reconnects());
    let x = fired(&v, "liveness");
    assert_eq!(x.at_ms, DURATION + DRAIN_MS);
    assert_names(x, &["tab0", "not connected"]);
}

#[test]
fn liveness_fires_for_a_tab_behind_the_store_head() {
    // #6 is stored in s1 and never reaches the tab.
    let h = healthy()
        .server_in(
            600,
            ServerInput::AgentEmit {
                session: sid("s1"),
                n: 2,
            },
        )
        .appended(600, output_ev("s1", 6, 2));
    let v = run(h);
    let x = fired(&v, "liveness");
    assert_eq!(x.at_ms, DURATION + DRAIN_MS);
    assert_names(x, &["tab0", "at s1#5, store head is 6"]);
}

/// `n` agent outputs stored in s1 at `at` (#6 onwards) that never reach the tab.
fn backlog(n: Seq, at: Millis) -> H {
    let mut h = healthy().server_in(
        at,
        ServerInput::AgentEmit {
            session: sid("s1"),
            n: 2,
        },
    );
    for seq in 6..6 + n {
        h = h.appended(at, output_ev("s1", seq, 2));
    }
    h
}

#[test]
fn liveness_leaves_unjudged_a_backlog_the_bounded_sync_cannot_catch_up_in_time() {
    // 300 events behind at the heal: at 50 per pair per 5 s tick that is 30 s on top of the
    // 80 s settle bound, past the scenario's end.
    let v = run(backlog(300, 600));
    holds(&v, "liveness");
    // Judged again once the run is long enough for that pace.
    let long = Context {
        duration_ms: HEAL + ctx().settle_ms() + 30_000,
        ..ctx()
    };
    let v = check(&long, &backlog(300, 600).end());
    let x = fired(&v, "liveness");
    assert_names(x, &["at s1#5, store head is 305"]);
}

#[test]
fn liveness_fires_for_a_backlog_stored_while_the_session_was_unwatched() {
    // Unwatched at 550, 300 events stored at 600, watched again at 700: those events were
    // not owed, so a transport can start the pair at the head; crawling through them at
    // the sync's pace is no excuse.
    let unwatch = ClientMsg::Unwatch { session: sid("s1") };
    let watch = watch_msg("s1");
    let mut h = healthy()
        .client_in(
            0,
            550,
            ClientInput::Send {
                msg: unwatch.clone(),
            },
        )
        .client_out(0, 550, returned(&unwatch));
    h = h.server_in(
        600,
        ServerInput::AgentEmit {
            session: sid("s1"),
            n: 2,
        },
    );
    for seq in 6..306 {
        h = h.appended(600, output_ev("s1", seq, 2));
    }
    let h = h
        .client_in(0, 700, ClientInput::Send { msg: watch.clone() })
        .client_out(0, 700, returned(&watch));
    let v = run(h);
    let x = fired(&v, "liveness");
    assert_names(x, &["at s1#5, store head is 305"]);
}

#[test]
fn liveness_fires_for_a_backlog_stored_after_the_heal() {
    // The same 300 events stored after the heal were owed live, not by catch-up.
    let v = run(backlog(300, HEAL + 100));
    let x = fired(&v, "liveness");
    assert_names(x, &["at s1#5, store head is 305"]);
}

#[test]
fn liveness_fires_for_queued_sends_and_requests_in_flight() {
    let m2 = prompt(Some("s1"), "m2");
    let m3 = prompt(Some("s1"), "m3");
    let h = healthy()
        .call(0, 600, C1, 3, &m2)
        .client_in(0, 700, ClientInput::CheckAndReconnect { force: true })
        .client_out(0, 700, ClientOutput::CloseStream { es: EsId(1) })
        .client_out(0, 700, ClientOutput::App(AppNotice::Close))
        .client_out(0, 700, ClientOutput::OpenStream { es: EsId(2) })
        .call_queued(0, 800, &m3, 1);
    let v = run(h);
    let x = fired(&v, "liveness");
    assert_eq!(x.at_ms, DURATION + DRAIN_MS);
    assert_names(
        x,
        &[
            "tab0",
            "not connected",
            "1 sends still queued",
            "1 requests still in flight",
        ],
    );
}

#[test]
fn liveness_fires_when_the_server_is_still_down() {
    let h = healthy().down(20_000, "crash step");
    let v = run(h);
    let x = fired(&v, "liveness");
    assert_eq!(x.at_ms, DURATION + DRAIN_MS);
    assert_names(x, &["server was still down"]);
}

#[test]
fn liveness_fires_for_a_reconnect_that_never_completed_after_a_disconnect() {
    // The app disconnects (no _close notice: disconnect() is silent) and connects again;
    // the new stream is refused, so the tab is not connected at the end.
    let h = healthy()
        .client_in(0, 600, ClientInput::Disconnect)
        .client_out(0, 600, ClientOutput::CloseStream { es: EsId(1) })
        .open(0, 700, 2)
        .wire(
            705,
            Some(0),
            WireEvent::StreamRefused {
                es: EsId(2),
                status: 503,
            },
        );
    let v = run(h);
    let x = fired(&v, "liveness");
    assert_eq!(x.at_ms, DURATION + DRAIN_MS);
    assert_names(x, &["tab0", "not connected"]);
}

#[test]
fn liveness_ignores_a_tab_the_app_disconnected() {
    let h = healthy()
        .client_in(0, 600, ClientInput::Disconnect)
        .client_out(0, 600, ClientOutput::CloseStream { es: EsId(1) });
    holds(&run(h), "liveness");
}

#[test]
fn liveness_is_unjudged_when_the_heal_phase_is_shorter_than_the_settle_bound() {
    let late = ctx_with(Params::baseline(), Some(DURATION - 1000));
    assert!(late.heal_at.unwrap() + late.settle_ms() > late.duration_ms);
    let v = check(&late, &tab_never_reconnects().end());
    holds(&v, "liveness");
    assert_eq!(v.unjudged, vec!["liveness".to_string()]);
    // No heal phase at all: unjudged too.
    let none = ctx_with(Params::baseline(), None);
    let v = check(&none, &tab_never_reconnects().end());
    assert_eq!(v.unjudged, vec!["liveness".to_string()]);
    // Exactly long enough: judged.
    let exact = ctx_with(Params::baseline(), Some(DURATION - ctx().settle_ms()));
    let v = check(&exact, &tab_never_reconnects().end());
    assert!(v.unjudged.is_empty());
    fired(&v, "liveness");
}

/// tab0 starts a session with a first message (the server names it `new-1.1`), gets its
/// events, then switches to s1: the server's `/switch` unwatches the session the first
/// message made active. The session goes on without the tab.
fn switched_away_from_a_first_message_session(switch: bool) -> H {
    let first = prompt(None, "m1");
    let echo = ServerEvent::Session(user_ev("new-1.1", 7, "m1", false));
    let switch_msg = ClientMsg::SwitchSession { session: sid("s1") };
    let mut h = H::watching()
        .call(0, 300, C1, 2, &first)
        .request(302, C1, &first)
        .appended(302, state_ev("new-1.1", 4, SessionState::Created, "start"))
        .appended(302, state_ev("new-1.1", 5, SessionState::Starting, "start"))
        .appended(302, state_ev("new-1.1", 6, SessionState::Active, "start"))
        .appended(302, user_ev("new-1.1", 7, "m1", false))
        .server_deliver(302, C1, echo.clone(), Origin::Live)
        .server_out(
            302,
            ServerOutput::AgentInput(agent_input("new-1.1", "m1", false, true)),
        )
        .respond(302, 202)
        .frame_in(0, 303, 1, echo)
        .post_done(0, 303, 2, 202);
    if switch {
        h = h
            .call(0, 400, C1, 3, &switch_msg)
            .request(402, C1, &switch_msg)
            .respond(402, 200)
            .post_done(0, 403, 3, 200);
    }
    h.server_in(
        500,
        ServerInput::AgentEmit {
            session: sid("new-1.1"),
            n: 1,
        },
    )
    .appended(500, output_ev("new-1.1", 8, 1))
}

#[test]
fn liveness_stops_following_a_first_message_session_the_tab_switched_away_from() {
    // The first message names no session, but its dispatch does: it made new-1.1 the
    // connection's active session, so the switch ended the follow and #8 is not owed.
    holds(
        &run(switched_away_from_a_first_message_session(true)),
        "liveness",
    );
    // Without the switch the tab still follows new-1.1 and is behind its head.
    let v = run(switched_away_from_a_first_message_session(false));
    let x = fired(&v, "liveness");
    assert_names(x, &["tab0", "at new-1.1#7, store head is 8"]);
}

/// tab0 sends m1 to s2 (making it active there) and switches to s1, which ends the follow
/// of s2; then it sends m2 to s2 again, and the server either rejects the body (400, the
/// app is told) or handles it (202, dispatched, s2 active again). s2 goes on with #9.
fn sent_again_to_a_session_switched_away_from(rejected: bool) -> H {
    let switch_msg = ClientMsg::SwitchSession { session: sid("s1") };
    let m2 = prompt(Some("s2"), "m2");
    let h = H::watching()
        .start_session(150, "s2", 4)
        .send(0, 300, 1, C1, 2, "s2", "m1", 7)
        .call(0, 400, C1, 3, &switch_msg)
        .request(402, C1, &switch_msg)
        .respond(402, 200)
        .post_done(0, 403, 3, 200)
        .call(0, 500, C1, 4, &m2)
        .request(502, C1, &m2);
    let h = if rejected {
        h.respond(502, 400).post_done(0, 503, 4, 400).client_out(
            0,
            503,
            ClientOutput::App(AppNotice::SendFailed { msg: m2 }),
        )
    } else {
        let echo = ServerEvent::Session(user_ev("s2", 8, "m2", false));
        h.appended(502, user_ev("s2", 8, "m2", false))
            .server_deliver(502, C1, echo.clone(), Origin::Live)
            .server_out(
                502,
                ServerOutput::AgentInput(agent_input("s2", "m2", false, false)),
            )
            .respond(502, 202)
            .frame_in(0, 503, 1, echo)
            .post_done(0, 503, 4, 202)
    };
    h.server_in(
        600,
        ServerInput::AgentEmit {
            session: sid("s2"),
            n: 1,
        },
    )
    .appended(600, output_ev("s2", 9, 1))
}

#[test]
fn liveness_does_not_count_a_send_the_server_rejected_as_following_its_session() {
    // The rejected send reached no handler, so the server watches nothing for it: the
    // switch still ended the follow of s2, and #9 is not owed.
    let v = run(sent_again_to_a_session_switched_away_from(true));
    holds(&v, "liveness");
    holds(&v, "no_silent_send_loss");
    // A send the server handled makes s2 active again: #9 is owed.
    let v = run(sent_again_to_a_session_switched_away_from(false));
    let x = fired(&v, "liveness");
    assert_names(x, &["tab0", "at s2#8, store head is 9"]);
}

// ---------------------------------------------------------------------------------------
// connection_hygiene

/// A send posted with a connection the server forgot: 404, ignored as if it succeeded.
fn stale_404_ignored() -> H {
    send_lost()
}

#[test]
fn connection_hygiene_holds_when_a_404_is_acted_on() {
    // A client that reports the failure (or re-queues) has not taken the 404 as success.
    let m1 = prompt(Some("s1"), "m1");
    let h = H::watching()
        .call(0, 300, C1, 2, &m1)
        .request(302, C1, &m1)
        .respond(302, 404)
        .post_done(0, 303, 2, 404)
        .client_out(0, 303, ClientOutput::App(AppNotice::SendFailed { msg: m1 }));
    holds(&run(h), "connection_hygiene");
}

#[test]
fn connection_hygiene_fires_for_a_404_taken_as_success() {
    let v = run(stale_404_ignored());
    let x = fired(&v, "connection_hygiene");
    assert_eq!(x.at_ms, 303);
    assert_names(x, &["tab0", "r2", "send m1", "404", "c1.1"]);
}

/// A replay request (reconnect POST r3 for c1.1) in flight when the stream fails; the 404
/// that answers it changes nothing in the client (`reacts`: it re-queues instead).
fn replay_404_after_stream_failed(stream_fails: bool, reacts: bool) -> H {
    no_payload_404_after_stream_failed(reconnect_msg(&[("s1", 5)]), stream_fails, reacts)
}

/// [`replay_404_after_stream_failed`] for any request carrying nothing of the app's.
fn no_payload_404_after_stream_failed(r: ClientMsg, stream_fails: bool, reacts: bool) -> H {
    let mut h = healthy().client_out(0, 400, post(3, c(C1), &r));
    if stream_fails {
        h = h
            .client_in(0, 500, ClientInput::StreamError { es: EsId(1) })
            .client_out(0, 500, ClientOutput::App(AppNotice::Close));
    }
    h = h
        .request(1502, C1, &r)
        .respond(1502, 404)
        .post_done(0, 1503, 3, 404);
    if reacts {
        h = h.queue(0, 1503, 1);
    }
    h
}

#[test]
fn connection_hygiene_holds_for_a_replay_404_while_the_stream_is_already_down() {
    // The reconnect under way answers it: there is nothing to take as success.
    holds(
        &run(replay_404_after_stream_failed(true, false)),
        "connection_hygiene",
    );
}

#[test]
fn connection_hygiene_treats_a_suspend_404_like_a_replay_404() {
    let suspend = ClientMsg::SessionSuspend {
        sessions: vec![SessionCursor {
            session: sid("s1"),
            last_seq: 5,
        }],
    };
    holds(
        &run(no_payload_404_after_stream_failed(
            suspend.clone(),
            true,
            false,
        )),
        "connection_hygiene",
    );
    let v = run(no_payload_404_after_stream_failed(suspend, false, false));
    let x = fired(&v, "connection_hygiene");
    assert_names(x, &["tab0", "r3", "suspend", "404"]);
}

#[test]
fn connection_hygiene_fires_for_a_replay_404_ignored_on_a_live_stream() {
    let v = run(replay_404_after_stream_failed(false, false));
    let x = fired(&v, "connection_hygiene");
    assert_names(x, &["tab0", "r3", "reconnect", "404", "c1.1"]);
    // Reacting to it is fine either way.
    holds(
        &run(replay_404_after_stream_failed(false, true)),
        "connection_hygiene",
    );
}

/// Two welcomes on es1 in a row; each sends a reconnect POST.
fn double_welcome() -> H {
    let r2 = reconnect_msg(&[("s1", 5)]);
    healthy()
        .wire(500, Some(0), WireEvent::StreamReopened { es: EsId(1) })
        .server_in(501, ServerInput::StreamClosed { conn: c(C1) })
        .serve_stream(501, c(2))
        .server_in(502, ServerInput::StreamClosed { conn: c(2) })
        .serve_stream(502, c(3))
        .welcome_in(0, 503, 1, c(2))
        .client_out(0, 503, post(3, c(2), &r2))
        .welcome_in(0, 504, 1, c(3))
        .client_out(0, 504, post(4, c(3), &r2))
}

#[test]
fn connection_hygiene_holds_for_a_replaced_connections_404_that_the_guard_drops() {
    // r3 (for c1.2) is answered 404 after c1.3's welcome: the staleness guard rightly
    // ignores it, and r4 connects the tab.
    let r = reconnect_msg(&[("s1", 5)]);
    let h = double_welcome()
        .request(506, 3, &r)
        .respond(506, 200)
        .request(507, 2, &r)
        .respond(507, 404)
        .post_done(0, 507, 4, 200)
        .client_out(0, 507, ClientOutput::App(AppNotice::Open))
        .post_done(0, 508, 3, 404);
    let v = run(h);
    holds(&v, "connection_hygiene");
}

#[test]
fn connection_hygiene_holds_for_a_reconnect_404_that_schedules_a_retry() {
    let r = reconnect_msg(&[("s1", 5)]);
    let h = healthy()
        .server_in(
            499,
            ServerInput::DropConnection {
                conn: c(C1),
                close_stream: true,
            },
        )
        .server_out(499, ServerOutput::CloseStream { conn: c(C1) })
        .client_in(0, 500, ClientInput::StreamError { es: EsId(1) })
        .client_out(0, 500, ClientOutput::App(AppNotice::Close))
        .server_in(3500, ServerInput::OpenStream)
        .server_out(3500, ServerOutput::StreamOpened { conn: c(2) })
        .server_out(
            3500,
            ServerOutput::Deliver(Delivery {
                conn: c(2),
                event: welcome(c(2)),
                origin: Origin::Direct,
            }),
        )
        .welcome_in(0, 3501, 1, c(2))
        .client_out(0, 3501, post(3, c(2), &r))
        .wire(
            3502,
            Some(0),
            WireEvent::StatusInjected {
                endpoint: "reconnect".into(),
                status: 404,
            },
        )
        .post_done(0, 3503, 3, 404)
        .client_out(0, 3503, ClientOutput::CloseStream { es: EsId(1) })
        .client_out(
            0,
            3503,
            ClientOutput::SetTimer {
                timer: ssesim_model::ClientTimer::Reconnect,
                at: 4003,
            },
        );
    holds(&run(h), "connection_hygiene");
}

#[test]
fn connection_hygiene_fires_for_a_stale_reconnect_reply_that_opens_the_tab() {
    // Without the guard, r3's 200 for the replaced c1.2 opens the tab.
    let r = reconnect_msg(&[("s1", 5)]);
    let h = double_welcome()
        .request(506, 2, &r)
        .respond(506, 200)
        .post_done(0, 507, 3, 200)
        .client_out(0, 507, ClientOutput::App(AppNotice::Open));
    let v = run(h);
    let x = fired(&v, "connection_hygiene");
    assert_eq!(x.at_ms, 507);
    assert_names(
        x,
        &[
            "tab0",
            "reconnect reply for replaced connection c1.2",
            "opened",
        ],
    );
}

#[test]
fn connection_hygiene_holds_for_the_current_connections_reconnect_reply() {
    let r = reconnect_msg(&[("s1", 5)]);
    let h = double_welcome()
        .request(506, 3, &r)
        .respond(506, 200)
        .post_done(0, 507, 4, 200)
        .client_out(0, 507, ClientOutput::App(AppNotice::Open));
    holds(&run(h), "connection_hygiene");
}

/// The stream fails; the browser re-opens es1 and the welcome for c1.2 sends reconnect
/// POST r3. Before its reply, the page becomes visible and the (not connected) tab
/// replaces es1 with es2.
fn reconnect_then_new_stream() -> H {
    let r = reconnect_msg(&[("s1", 5)]);
    healthy()
        .server_in(499, ServerInput::StreamClosed { conn: c(C1) })
        .client_in(0, 500, ClientInput::StreamError { es: EsId(1) })
        .client_out(0, 500, ClientOutput::App(AppNotice::Close))
        .serve_stream(3500, c(C2))
        .welcome_in(0, 3501, 1, c(C2))
        .client_out(0, 3501, post(3, c(C2), &r))
        .client_in(0, 3600, ClientInput::Page(ssesim_model::PageEvent::Visible))
        .client_out(0, 3600, ClientOutput::CloseStream { es: EsId(1) })
        .client_out(0, 3600, ClientOutput::OpenStream { es: EsId(2) })
        .client_out(0, 3600, ClientOutput::App(AppNotice::Foreground))
}

#[test]
fn connection_hygiene_holds_for_a_404_to_a_reconnect_whose_stream_was_replaced() {
    // c1.2 is gone with es1; r3's 404 is dropped by the guard (its EventSource is no longer
    // the tab's), and es2's own welcome will reconnect.
    let r = reconnect_msg(&[("s1", 5)]);
    let h = reconnect_then_new_stream()
        .server_in(3601, ServerInput::StreamClosed { conn: c(C2) })
        .request(3602, C2, &r)
        .respond(3602, 404)
        .post_done(0, 3603, 3, 404);
    holds(&run(h), "connection_hygiene");
}

#[test]
fn connection_hygiene_fires_for_a_reconnect_reply_that_opens_a_replaced_stream() {
    // r3's 200 arrives after es1 was closed and still opens the tab.
    let r = reconnect_msg(&[("s1", 5)]);
    let h = reconnect_then_new_stream()
        .request(3600, C2, &r)
        .respond(3600, 200)
        .post_done(0, 3650, 3, 200)
        .client_out(0, 3650, ClientOutput::App(AppNotice::Open));
    let v = run(h);
    let x = fired(&v, "connection_hygiene");
    assert_eq!(x.at_ms, 3650);
    assert_names(x, &["tab0", "reconnect reply for replaced connection c1.2"]);
}

/// The app forces a reconnect: es1 is closed and es2 opened.
fn forced_reconnect() -> H {
    healthy()
        .client_in(0, 600, ClientInput::CheckAndReconnect { force: true })
        .client_out(0, 600, ClientOutput::CloseStream { es: EsId(1) })
        .client_out(0, 600, ClientOutput::App(AppNotice::Close))
        .client_out(0, 600, ClientOutput::OpenStream { es: EsId(2) })
}

#[test]
fn connection_hygiene_holds_when_a_closed_streams_callback_changes_nothing() {
    // es1's error after it was closed: the client produces nothing.
    let h = forced_reconnect().client_in(0, 601, ClientInput::StreamError { es: EsId(1) });
    holds(&run(h), "connection_hygiene");
}

#[test]
fn connection_hygiene_fires_when_a_closed_streams_callback_changes_the_client() {
    let h = forced_reconnect().frame_in(0, 601, 1, ServerEvent::Session(output_ev("s1", 6, 2)));
    let v = run(h);
    let x = fired(&v, "connection_hygiene");
    assert_eq!(x.at_ms, 601);
    assert_names(x, &["tab0", "closed stream es1"]);
}

// ---------------------------------------------------------------------------------------
// Probes

fn hits(h: H) -> std::collections::BTreeMap<&'static str, u64> {
    probes(&h.end())
}

/// Small histories that each reach one probe.
fn probe_cases() -> Vec<(&'static str, H)> {
    let m1 = prompt(Some("s1"), "m1");
    let m2 = prompt(Some("s1"), "m2");
    let r = reconnect_msg(&[("s1", 5)]);
    vec![
        ("double_welcome", double_welcome()),
        (
            "welcome_during_reconnect_post",
            // c1.3's welcome lands while r3 (for c1.2) is in flight.
            double_welcome(),
        ),
        ("server_restart", restart_left_active()),
        (
            "queue_eviction",
            H::new()
                .boot(0, 1, vec![])
                .open(0, 10, 1)
                .call_queued(0, 20, &m1, 1)
                .client_in(0, 21, ClientInput::Send { msg: m2.clone() })
                .client_out(
                    0,
                    21,
                    ClientOutput::Dropped {
                        msg: m1.clone(),
                        reason: DropReason::Evicted,
                    },
                )
                .client_out(0, 21, returned(&m2)),
        ),
        ("cursor_rewind", events_reordered()),
        ("stale_connection_404", send_lost()),
        (
            "not_found_during_flush",
            // m1 queued, flushed by the welcome, answered 404.
            H::new()
                .boot(0, 1, vec![])
                .open(0, 10, 1)
                .call_queued(0, 20, &m1, 1)
                .first_welcome(0, 30, 1, C1, &[(1, &m1)])
                .post_ignored(0, 40, 1, 404, &m1),
        ),
        (
            "send_during_flush",
            H::new()
                .boot(0, 1, vec![])
                .open(0, 10, 1)
                .call_queued(0, 20, &m1, 1)
                .first_welcome(0, 30, 1, C1, &[(1, &m1)])
                .call(0, 32, C1, 2, &m2),
        ),
        ("crash_during_interrupt", crash_at_interrupt()),
        ("interrupt_rejected", interrupt_crash()),
        (
            "sync_hit_replay_gap",
            H::watching().server_out(
                5000,
                ServerOutput::SyncBatch(SyncBatch {
                    conn: c(C1),
                    session: sid("s1"),
                    cursor: 3,
                    skipped: Some((3, 300)),
                    sent: 50,
                    stopped_on_failure: false,
                }),
            ),
        ),
        (
            "reconnect_replay",
            H::watching().server_out(
                3000,
                ServerOutput::Deliver(Delivery {
                    conn: c(C1),
                    event: ServerEvent::Session(output_ev("s1", 4, 1)),
                    origin: Origin::Replay,
                }),
            ),
        ),
        (
            "lost_response",
            H::watching().call(0, 400, C1, 2, &r).wire(
                402,
                None,
                WireEvent::ResponseLost {
                    endpoint: "reconnect".into(),
                },
            ),
        ),
        (
            "injected_status",
            H::watching().wire(
                402,
                None,
                WireEvent::StatusInjected {
                    endpoint: "send".into(),
                    status: 503,
                },
            ),
        ),
        ("stream_refused", tab_never_reconnects()),
        (
            "stream_stalled",
            H::watching().wire(
                46_000,
                Some(0),
                WireEvent::StreamLost {
                    es: EsId(1),
                    why: "idle timeout".into(),
                },
            ),
        ),
    ]
}

#[test]
fn probes_are_hit_by_their_situations_and_not_by_a_quiet_run() {
    let quiet = hits(healthy());
    assert_eq!(quiet.len(), PROBES.len());
    for (id, n) in &quiet {
        assert_eq!(*n, 0, "probe {id} hit by a quiet run");
    }
    let cases = probe_cases();
    assert!(cases.len() >= 4);
    for (id, h) in cases {
        assert!(PROBES.iter().any(|(p, _)| *p == id), "unknown probe {id}");
        let got = hits(h);
        assert!(got[id] >= 1, "probe {id} not hit: {got:?}");
    }
}

#[test]
fn probes_cover_every_probe() {
    let covered: std::collections::BTreeSet<&str> =
        probe_cases().iter().map(|(id, _)| *id).collect();
    for (id, _) in PROBES {
        assert!(covered.contains(id), "no test history for probe {id}");
    }
}

#[test]
fn probe_counts_are_exact_for_simple_cases() {
    // One reboot, one restart; a stream lost for another reason is not a stall.
    assert_eq!(hits(restart_left_active())["server_restart"], 1);
    let h = H::watching().wire(
        600,
        Some(0),
        WireEvent::StreamLost {
            es: EsId(1),
            why: "reset".into(),
        },
    );
    assert_eq!(hits(h)["stream_stalled"], 0);
    // A second welcome on the same stream 50 ms after the first is a double welcome;
    // 51 ms after, it is not.
    for (gap, want) in [(50, 1), (51, 0)] {
        let h = H::new()
            .boot(0, 1, vec![])
            .connect(0, 10, 1, C1)
            .serve_stream(13 + gap - 1, c(2))
            .welcome_in(0, 13 + gap, 1, c(2))
            .client_out(0, 13 + gap, ClientOutput::App(AppNotice::Open));
        assert_eq!(hits(h)["double_welcome"], want, "gap {gap}");
    }
    // A 404 on a send() post, not a flush post.
    let got = hits(send_lost());
    assert_eq!(got["stale_connection_404"], 1);
    assert_eq!(got["not_found_during_flush"], 0);
}

// ---------------------------------------------------------------------------------------
// Determinism

#[test]
fn check_is_deterministic() {
    // Every firing history, checked twice, gives equal verdicts.
    let again = firing_runs();
    for ((id, a), (_, b)) in firing_runs().iter().zip(&again) {
        assert_eq!(a, b, "{id}");
    }
    // A history breaking several invariants at once, checked twice and after a JSON round
    // trip.
    let history = crash_at_interrupt()
        .server_in(
            3000,
            ServerInput::AgentEmit {
                session: sid("s1"),
                n: 1,
            },
        )
        .appended(3000, output_ev("s1", 6, 1))
        .frame_in(0, 3001, 1, ServerEvent::Session(output_ev("s1", 6, 1)))
        .frame_in(0, 3002, 1, ServerEvent::Session(output_ev("s1", 4, 1)))
        .frame_in(0, 3003, 1, ServerEvent::Session(output_ev("s1", 4, 1)))
        .end();
    let a = check(&ctx(), &history);
    let b = check(&ctx(), &history);
    assert_eq!(a, b);
    assert!(a.failed_ids().len() >= 3, "{:?}", a.failed_ids());
    let text = history.to_jsonl();
    let records = text
        .lines()
        .map(|l| serde_json::from_str::<Record>(l).expect("a record"))
        .collect();
    let back = History { records };
    assert_eq!(back.hash_hex(), history.hash_hex());
    assert_eq!(check(&ctx(), &back), a);
    assert_eq!(probes(&back), probes(&history));
}
