//! One pass over a history, indexing what the oracles ask about. Every oracle then runs
//! over these indices, so checking stays linear in the history's length.

use ssesim_model::{
    AgentInput, AppNotice, ClientInput, ClientMsg, ClientOutput, ConnId, EsId, EventKind,
    FrameName, Millis, Origin, PostOutcome, ReqId, Seq, ServerEvent, ServerInput, ServerOutput,
    SessionId,
};
use ssesim_sim::history::{Event, History};
use ssesim_sim::turmoil::DRAIN_MS;
use std::collections::{BTreeMap, BTreeSet};

/// A record's position and time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct At {
    pub idx: usize,
    pub ms: Millis,
}

#[derive(Clone, Debug)]
pub struct AcceptedSend {
    pub at: At,
    pub id: String,
    pub session: Option<SessionId>,
}

#[derive(Clone, Debug)]
pub struct Post<'a> {
    pub at: At,
    pub conn: ConnId,
    pub body: &'a ClientMsg,
    /// Issued by a flush (a welcome or a reconnect success), not by `send()` directly.
    pub from_flush: bool,
}

/// What one input to a tab made it do.
#[derive(Clone, Debug)]
pub struct Batch<'a> {
    pub at: At,
    pub input: &'a ClientInput,
    /// Where its outputs are in the tab's `outputs`.
    outputs: std::ops::Range<usize>,
    pub queue_changed: bool,
}

#[derive(Clone, Debug, Default)]
pub struct TabFacts<'a> {
    pub batches: Vec<Batch<'a>>,
    /// Every output of every batch, in order (see [`TabFacts::outputs`]).
    outputs: Vec<&'a ClientOutput>,
    pub accepted: Vec<AcceptedSend>,
    /// (at, session, seq) of every session event the app holds, in the order it got them:
    /// handed over by the client, or loaded by the app itself before a `trackSeq`.
    pub applied: Vec<(At, SessionId, Seq)>,
    /// For each entry of `applied`, the index of the first entry with the same session and
    /// seq (its own index when it is the first).
    pub first: Vec<usize>,
    /// Finds the first entry of `applied` with a given session and seq.
    pub seen: SeenIndex,
    pub failed_reported: BTreeSet<String>,
    /// Accepted watch, unwatch and switch calls, in order.
    pub watch_calls: Vec<(At, &'a ClientMsg)>,
    /// Streams this tab closed, with the batch index that closed them.
    pub closed_streams: BTreeMap<EsId, usize>,
    pub posts: BTreeMap<ReqId, Post<'a>>,
    pub done: BTreeMap<ReqId, (At, PostOutcome)>,
    pub queue: Vec<(At, usize)>,
    /// Connection ids this tab received in welcomes.
    pub conns: BTreeSet<ConnId>,
    /// Whether the app asked to be connected at the end (connect without a later disconnect).
    pub wants_connection: bool,
    /// Whether the tab is connected: set by `_open`, cleared by `_close` and by the app's
    /// own `disconnect()` (which notifies nothing).
    pub open: bool,
}

/// A server-confirmed change to what a connection watches.
#[derive(Clone, Debug)]
pub enum WatchChange {
    Watch(SessionId),
    Unwatch(SessionId),
    /// `/send`: watch and make active.
    SetActive(SessionId),
    /// `/switch`: unwatch the previous active session, then watch and make active.
    Switch(SessionId),
}

/// What the oracles ask about a history, borrowed from it.
#[derive(Clone, Debug, Default)]
pub struct Facts<'a> {
    pub tabs: BTreeMap<u32, TabFacts<'a>>,
    pub conn_tab: BTreeMap<ConnId, u32>,
    /// Every store append, in order: (at, session, seq, kind).
    pub appended: Vec<(At, SessionId, Seq, &'a EventKind)>,
    pub agent_inputs: Vec<(At, &'a AgentInput)>,
    pub crashes: Vec<(At, &'a str)>,
    /// (at, boot) of every boot, first included.
    pub boots: Vec<At>,
    /// For each boot, the index of the first record after its recovery outputs.
    pub boot_settled: Vec<usize>,
    pub downs: Vec<At>,
    pub sync_batches: Vec<(At, &'a ssesim_model::registry::SyncBatch)>,
    /// (at, conn, change, last_seq at that moment) for 2xx-answered watch-like requests.
    pub watch_changes: Vec<(At, ConnId, WatchChange, Seq)>,
    pub deliveries: Vec<(At, ConnId, Origin)>,
    pub interrupts_called: Vec<At>,
    pub interrupts_settled: Vec<(At, bool)>,
    pub heal: Option<At>,
    pub end: Option<At>,
    /// Session states as the store holds them, replayed: (at, session, state).
    pub states: Vec<(At, SessionId, ssesim_model::SessionState)>,
    pub wire: Vec<(At, Option<u32>, &'a ssesim_sim::history::WireEvent)>,
    pub last_seq: Seq,
    /// Prompts the store marked as never to be executed (`message_failed` events).
    pub marked_failed: BTreeSet<String>,
}

impl<'a> Facts<'a> {
    pub fn gather(history: &'a History) -> Facts<'a> {
        let mut f = Facts::default();
        let mut pending_request: Option<(ConnId, &ClientMsg)> = None;
        let mut booting = false;
        for (idx, r) in history.records.iter().enumerate() {
            let at = At { idx, ms: r.at };
            if booting && !matches!(r.event, Event::ServerOut { .. }) {
                booting = false;
                f.boot_settled.push(idx);
            }
            match &r.event {
                Event::ClientIn { tab, input } => {
                    let t = f.tabs.entry(*tab).or_default();
                    match input {
                        ClientInput::Connect => t.wants_connection = true,
                        // disconnect() drops the connection without an `_close` notice:
                        // the tab is no longer connected all the same.
                        ClientInput::Disconnect => {
                            t.wants_connection = false;
                            t.open = false;
                        }
                        ClientInput::Frame {
                            frame:
                                ssesim_model::Frame {
                                    name: FrameName::Welcome,
                                    data: ServerEvent::Welcome { connection_id, .. },
                                    ..
                                },
                            ..
                        } => {
                            t.conns.insert(*connection_id);
                            f.conn_tab.insert(*connection_id, *tab);
                        }
                        ClientInput::PostDone { req, outcome } => {
                            t.done.insert(*req, (at, outcome.clone()));
                        }
                        ClientInput::TrackSeq { session, seq } => {
                            // The app fetched the history up to `seq` itself: it holds
                            // those events as surely as if the stream had brought them.
                            let held = t
                                .applied
                                .iter()
                                .filter(|(_, s, _)| s == session)
                                .map(|(_, _, q)| *q)
                                .max();
                            for (_, s, q, _) in &f.appended {
                                if s == session && *q <= *seq && held.is_none_or(|h| *q > h) {
                                    t.applied.push((at, s.clone(), *q));
                                }
                            }
                        }
                        _ => {}
                    }
                    let start = t.outputs.len();
                    t.batches.push(Batch {
                        at,
                        input,
                        outputs: start..start,
                        queue_changed: false,
                    });
                }
                Event::ClientOut { tab, output } => {
                    let t = f.tabs.entry(*tab).or_default();
                    if let Some(b) = t.batches.last_mut() {
                        t.outputs.push(output);
                        b.outputs.end = t.outputs.len();
                    }
                    match output {
                        ClientOutput::SendReturned {
                            msg,
                            accepted: true,
                        } => match msg {
                            ClientMsg::Send {
                                session,
                                client_msg_id,
                                ..
                            } => t.accepted.push(AcceptedSend {
                                at,
                                id: client_msg_id.clone(),
                                session: session.clone(),
                            }),
                            ClientMsg::Interrupt {
                                session,
                                client_msg_id,
                                ..
                            } => t.accepted.push(AcceptedSend {
                                at,
                                id: client_msg_id.clone(),
                                session: Some(session.clone()),
                            }),
                            ClientMsg::Watch { .. }
                            | ClientMsg::Unwatch { .. }
                            | ClientMsg::SwitchSession { .. } => t.watch_calls.push((at, msg)),
                            _ => {}
                        },
                        ClientOutput::CloseStream { es } => {
                            let batch = t.batches.len().saturating_sub(1);
                            t.closed_streams.entry(*es).or_insert(batch);
                        }
                        ClientOutput::App(AppNotice::Event {
                            event: ServerEvent::Session(e),
                        }) => {
                            t.applied.push((at, e.session.clone(), e.seq));
                            // A failure marker the app sees is a failure reported to it.
                            if let EventKind::MessageFailed { client_msg_id, .. } = &e.kind {
                                t.failed_reported.insert(client_msg_id.clone());
                            }
                        }
                        ClientOutput::App(AppNotice::SendFailed { msg }) => {
                            if let Some(id) = msg.client_msg_id() {
                                t.failed_reported.insert(id.to_string());
                            }
                        }
                        ClientOutput::App(AppNotice::Open) => t.open = true,
                        ClientOutput::App(AppNotice::Close) => t.open = false,
                        ClientOutput::Post {
                            req,
                            connection_id,
                            body,
                            ..
                        } => {
                            let from_flush = t.batches.last().is_some_and(|b| match &b.input {
                                ClientInput::Frame { frame, .. } => {
                                    frame.name == FrameName::Welcome
                                }
                                ClientInput::PostDone { .. } => true,
                                _ => false,
                            }) && !matches!(body, ClientMsg::Reconnect { .. });
                            t.posts.insert(
                                *req,
                                Post {
                                    at,
                                    conn: *connection_id,
                                    body,
                                    from_flush,
                                },
                            );
                        }
                        _ => {}
                    }
                }
                Event::Queue { tab, pending } => {
                    let t = f.tabs.entry(*tab).or_default();
                    t.queue.push((at, *pending));
                    if let Some(b) = t.batches.last_mut() {
                        b.queue_changed = true;
                    }
                }
                Event::ServerIn { input } => match input {
                    ServerInput::Request { request, .. } => {
                        pending_request = request.connection_id.map(|c| (c, &request.body));
                    }
                    ServerInput::InterruptSettled { ok, .. } => {
                        f.interrupts_settled.push((at, *ok))
                    }
                    _ => {}
                },
                Event::ServerOut { output } => match output {
                    ServerOutput::Appended(e) => {
                        f.last_seq = f.last_seq.max(e.seq);
                        if let EventKind::MessageFailed { client_msg_id, .. } = &e.kind {
                            f.marked_failed.insert(client_msg_id.clone());
                        }
                        if let EventKind::SessionStateChanged { internal, .. } = &e.kind {
                            f.states.push((at, e.session.clone(), *internal));
                        }
                        f.appended.push((at, e.session.clone(), e.seq, &e.kind));
                    }
                    ServerOutput::AgentInput(a) => f.agent_inputs.push((at, a)),
                    ServerOutput::Crash { reason } => f.crashes.push((at, reason)),
                    ServerOutput::SyncBatch(b) => f.sync_batches.push((at, b)),
                    ServerOutput::Deliver(d) => f.deliveries.push((at, d.conn, d.origin)),
                    ServerOutput::CallInterrupt { .. } => f.interrupts_called.push(at),
                    ServerOutput::Respond { response, .. } => {
                        if let Some((conn, body)) = pending_request.take() {
                            // A reconnect watches its sessions even when its replay was
                            // cut short (the reference answers that 503 so the client
                            // retries it).
                            let replay_cut = matches!(body, ClientMsg::Reconnect { .. })
                                && response.status == 503;
                            if response.is_success() || replay_cut {
                                for change in watch_changes(body) {
                                    f.watch_changes.push((at, conn, change, f.last_seq));
                                }
                            }
                        }
                    }
                    _ => {}
                },
                Event::ServerUp { .. } => {
                    f.boots.push(at);
                    booting = true;
                }
                Event::ServerDown { .. } => f.downs.push(at),
                Event::Heal => f.heal = Some(at),
                Event::End { .. } => f.end = Some(at),
                Event::Wire { tab, event } => f.wire.push((at, *tab, event)),
                Event::Step { .. } => {}
            }
        }
        if booting {
            f.boot_settled.push(history.records.len());
        }
        for t in f.tabs.values_mut() {
            t.index_applied(f.last_seq);
        }
        f
    }

    /// The store's head seq of a session as of a time (0 when it had none).
    pub fn head_at(&self, session: &SessionId, until: Millis) -> Seq {
        self.appended
            .iter()
            .take_while(|(at, ..)| at.ms <= until)
            .filter(|(_, s, ..)| s == session)
            .map(|(_, _, q, _)| *q)
            .max()
            .unwrap_or(0)
    }

    /// When the scenario proper ended (the End record is a drain window later).
    pub fn scenario_end(&self) -> Millis {
        self.end.map_or(0, |e| e.ms.saturating_sub(DRAIN_MS))
    }
}

/// Where the first entry of a tab's `applied` list with a given (session, seq) is: by
/// seq, which the store numbers globally, so one slot nearly always holds the only session
/// with that seq; a seq another session already holds (or past the store's last seq)
/// goes to `other`.
#[derive(Clone, Debug, Default)]
pub struct SeenIndex {
    /// Per seq up to the store's last one: the first entry with that seq, `NONE` if none.
    by_seq: Vec<u32>,
    /// The first entries whose seq slot was taken by another session, or out of range.
    other: BTreeMap<Seq, Vec<usize>>,
}

impl SeenIndex {
    const NONE: u32 = u32::MAX;

    /// The index of the first entry of `applied` for `(session, seq)`.
    pub fn find(
        &self,
        applied: &[(At, SessionId, Seq)],
        session: &SessionId,
        seq: Seq,
    ) -> Option<usize> {
        let is = |i: usize| applied[i].1 == *session;
        if let Some(&i) = usize::try_from(seq).ok().and_then(|q| self.by_seq.get(q)) {
            if i != Self::NONE && is(i as usize) {
                return Some(i as usize);
            }
        }
        self.other.get(&seq)?.iter().copied().find(|&i| is(i))
    }

    /// Records entry `i` as the first for its (session, seq).
    fn insert(&mut self, seq: Seq, i: usize) {
        let slot = usize::try_from(seq)
            .ok()
            .and_then(|q| self.by_seq.get_mut(q));
        match (slot, u32::try_from(i)) {
            (Some(slot), Ok(i)) if *slot == Self::NONE && i != Self::NONE => *slot = i,
            _ => self.other.entry(seq).or_default().push(i),
        }
    }
}

impl<'a> TabFacts<'a> {
    /// What batch `b` of this tab output, in order.
    pub fn outputs(&self, b: &Batch<'a>) -> &[&'a ClientOutput] {
        &self.outputs[b.outputs.clone()]
    }

    /// Fills `first` and `seen` from `applied` (seqs up to `last_seq` get a slot).
    fn index_applied(&mut self, last_seq: Seq) {
        let slots = usize::try_from(last_seq).map_or(0, |n| n.saturating_add(1));
        self.seen = SeenIndex {
            by_seq: vec![SeenIndex::NONE; slots],
            other: BTreeMap::new(),
        };
        self.first = Vec::with_capacity(self.applied.len());
        for (i, (_, s, q)) in self.applied.iter().enumerate() {
            let first = match self.seen.find(&self.applied, s, *q) {
                Some(j) => j,
                None => {
                    self.seen.insert(*q, i);
                    i
                }
            };
            self.first.push(first);
        }
    }
}

/// What a successful request changes in its connection's watch set ([H1]).
fn watch_changes(body: &ClientMsg) -> Vec<WatchChange> {
    match body {
        ClientMsg::Watch { session } => vec![WatchChange::Watch(session.clone())],
        ClientMsg::Unwatch { session } => vec![WatchChange::Unwatch(session.clone())],
        ClientMsg::SwitchSession { session } => vec![WatchChange::Switch(session.clone())],
        ClientMsg::Send {
            session: Some(session),
            ..
        } => vec![WatchChange::SetActive(session.clone())],
        ClientMsg::Reconnect { sessions } => sessions
            .iter()
            .map(|c| WatchChange::Watch(c.session.clone()))
            .collect(),
        _ => Vec::new(),
    }
}
