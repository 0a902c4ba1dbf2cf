//! The server's `ConnectionRegistry` (spec §3): connections, their watch sets and per-session
//! delivery cursors, live broadcast, and the periodic sync that re-sends what a cursor lags.
//!
//! Sans-IO: instead of calling a transport, every send becomes a [`Delivery`] pushed to the
//! caller's buffer. Whether a send "succeeds" is decided by the connection's
//! [`TransportHealth`], which the server (or a fault) sets.
//!
//! With gap repair on (the reference design, [R4]; [`ConnectionRegistry::set_gap_repair`]),
//! a (connection, session) pair whose live send failed is *blocked*: broadcast skips it and
//! leaves its cursor until the periodic sync has re-sent everything up to the session's head
//! (in order, never skipping ahead), then live sends resume. A blocked pair the client
//! unwatches is repaired at once ([`ConnectionRegistry::repair_now`]); if its transport
//! still fails, it stays *owed*: sync still repairs it up to the head the session had when
//! it was unwatched, since those events were stored while it was watched. An unwatched pair
//! owed nothing forgets its cursor, so watching it again starts at the head.

use crate::store::{EventStore, SessionState};
use crate::types::{ConnId, Seq, SessionId};
use crate::wire::ServerEvent;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// How a transport answers a send. mitzo's SSE sends never throw (spec §0.5), so `Open`
/// counts as delivered even when the bytes are lost; `Throwing` models a transport whose
/// send raises, which the registry must survive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportHealth {
    Open,
    Throwing,
    Closed,
}

/// Why a frame was sent: the oracles tell live traffic from replays by this.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// `broadcast` of a freshly appended event.
    Live,
    /// The periodic sync tick.
    Sync,
    /// `/reconnect`'s replay.
    Replay,
    /// A reply to one connection (welcome, watched, boot_context...).
    Direct,
}

/// One frame handed to a connection's transport.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub conn: ConnId,
    pub event: ServerEvent,
    pub origin: Origin,
}

/// Which watched sessions the sync tick visits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SyncFilter {
    /// Early registry [R2]: every watched session.
    All,
    /// Pre-#396 main [R3]/[IX]: the session row's `is_active` flag.
    IsActive,
    /// #396 `shouldSync`: CREATED, STARTING, ACTIVE (and CLOSING from rev4); false for
    /// unknown sessions.
    ShouldSync { include_closing: bool },
    /// The reference design ([R4]): any watched session whose cursor lags the head,
    /// whatever its state; caught-up sessions are skipped.
    Lagging,
}

impl SyncFilter {
    pub fn admits(self, store: &EventStore, session: &SessionId) -> bool {
        match self {
            SyncFilter::All => true,
            SyncFilter::IsActive => store.row(session).is_some_and(|r| r.is_active),
            SyncFilter::ShouldSync { include_closing } => match store.session_state(session) {
                Some(SessionState::Created | SessionState::Starting | SessionState::Active) => true,
                Some(SessionState::Closing) => include_closing,
                _ => false,
            },
            // Lag is per (connection, session); `sync_tick` checks the cursor itself.
            SyncFilter::Lagging => true,
        }
    }
}

/// #396's `MAX_REPLAY_GAP`: when the head is too far ahead of the cursor, sync fetches only
/// the last `max_gap` seqs and silently skips the rest. The comparison and whether the
/// moved cursor is stored are not visible in the sources, hence parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayGapCap {
    pub max_gap: Seq,
    /// `>=` instead of `>` in `head - cursor > max_gap`.
    pub inclusive: bool,
    /// Also write `head - max_gap` into the stored cursor before fetching.
    pub store_moved_cursor: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncParams {
    pub interval_ms: u64,
    pub batch_limit: usize,
    pub filter: SyncFilter,
    pub gap_cap: Option<ReplayGapCap>,
}

impl Default for SyncParams {
    fn default() -> Self {
        SyncParams {
            interval_ms: 5000,
            batch_limit: 50,
            filter: SyncFilter::IsActive,
            gap_cap: None,
        }
    }
}

/// What one sync tick did for one (connection, session): the oracles' evidence for bounded
/// replay and for events skipped by the gap cap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncBatch {
    pub conn: ConnId,
    pub session: SessionId,
    pub cursor: Seq,
    /// `Some((from, to))` when the gap cap skipped seqs in `(from, to]` without telling the client.
    pub skipped: Option<(Seq, Seq)>,
    pub sent: usize,
    /// The batch stopped on a failed send.
    pub stopped_on_failure: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub transport: TransportHealth,
    pub watched: BTreeSet<SessionId>,
    pub active: Option<SessionId>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionRegistry {
    connections: BTreeMap<ConnId, Connection>,
    cursors: BTreeMap<ConnId, BTreeMap<SessionId, Seq>>,
    /// The reference design's head-of-line rule is on (see the module docs).
    #[serde(default)]
    gap_repair: bool,
    /// Pairs that get no live sends until sync repaired their gap (gap repair only).
    #[serde(default)]
    blocked: BTreeSet<(ConnId, SessionId)>,
    /// Blocked pairs no longer watched, each with the session's head when it was unwatched:
    /// sync repairs them up to that seq, then forgets them (gap repair only).
    #[serde(default)]
    owed: BTreeMap<(ConnId, SessionId), Seq>,
}

impl ConnectionRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Turns the reference design's gap repair on or off (off by default).
    pub fn set_gap_repair(&mut self, on: bool) {
        self.gap_repair = on;
        if !on {
            self.blocked.clear();
            self.owed.clear();
        }
    }

    pub fn gap_repair(&self) -> bool {
        self.gap_repair
    }

    /// Whether the pair is blocked from live sends until sync repaired its gap.
    pub fn is_blocked(&self, conn: ConnId, session: &SessionId) -> bool {
        self.blocked.contains(&(conn, session.clone()))
    }

    /// Every blocked pair, in order.
    pub fn blocked(&self) -> impl Iterator<Item = &(ConnId, SessionId)> {
        self.blocked.iter()
    }

    /// Blocks a pair from live sends (gap repair only; a no-op otherwise or for an
    /// unknown connection).
    pub fn block(&mut self, conn: ConnId, session: &SessionId) {
        if self.gap_repair && self.connections.contains_key(&conn) {
            self.blocked.insert((conn, session.clone()));
        }
    }

    /// Lets live sends through to a pair again (and settles what it was owed).
    pub fn unblock(&mut self, conn: ConnId, session: &SessionId) {
        let pair = (conn, session.clone());
        self.blocked.remove(&pair);
        self.owed.remove(&pair);
    }

    /// The seq up to which sync still owes an unwatched, blocked pair its missed events.
    pub fn owed(&self, conn: ConnId, session: &SessionId) -> Option<Seq> {
        self.owed.get(&(conn, session.clone())).copied()
    }

    fn forget_blocks(&mut self, conn: ConnId) {
        self.blocked.retain(|(c, _)| *c != conn);
        self.owed.retain(|(c, _), _| *c != conn);
    }

    /// A (re-)registered id starts with no watches and an empty cursor map.
    pub fn register(&mut self, conn: ConnId) {
        self.forget_blocks(conn);
        self.connections.insert(
            conn,
            Connection {
                transport: TransportHealth::Open,
                watched: BTreeSet::new(),
                active: None,
            },
        );
        self.cursors.insert(conn, BTreeMap::new());
    }

    /// Removes the connection and its cursors with it.
    pub fn remove(&mut self, conn: ConnId) -> Option<Connection> {
        self.forget_blocks(conn);
        self.cursors.remove(&conn);
        self.connections.remove(&conn)
    }

    pub fn get(&self, conn: ConnId) -> Option<&Connection> {
        self.connections.get(&conn)
    }

    pub fn contains(&self, conn: ConnId) -> bool {
        self.connections.contains_key(&conn)
    }

    pub fn len(&self) -> usize {
        self.connections.len()
    }

    pub fn is_empty(&self) -> bool {
        self.connections.is_empty()
    }

    pub fn set_transport(&mut self, conn: ConnId, health: TransportHealth) {
        if let Some(c) = self.connections.get_mut(&conn) {
            c.transport = health;
        }
    }

    /// Idempotent; an unknown id is a no-op. A pair watched again is repaired up to the
    /// head like any blocked watched pair, so it is no longer merely owed.
    pub fn watch(&mut self, conn: ConnId, session: &SessionId) {
        if let Some(c) = self.connections.get_mut(&conn) {
            c.watched.insert(session.clone());
            self.owed.remove(&(conn, session.clone()));
        }
    }

    pub fn unwatch(&mut self, conn: ConnId, session: &SessionId) {
        if let Some(c) = self.connections.get_mut(&conn) {
            c.watched.remove(session);
            if c.active.as_ref() == Some(session) {
                c.active = None;
            }
        }
    }

    /// [`Self::unwatch`], where `head` is the session's head seq now. With gap repair a
    /// pair that is blocked (it missed events while watched) stays owed: sync goes on
    /// repairing it up to `head`, and no further.
    pub fn unwatch_at(&mut self, conn: ConnId, session: &SessionId, head: Seq) {
        let was_watched = self
            .connections
            .get(&conn)
            .is_some_and(|c| c.watched.contains(session));
        self.unwatch(conn, session);
        if was_watched && self.is_blocked(conn, session) {
            self.owed.insert((conn, session.clone()), head);
        } else {
            self.forget_unwatched_cursor(conn, session);
        }
    }

    /// Gap repair: an unwatched pair that is owed nothing forgets its cursor, so a later
    /// watch starts at the head like a new one. A kept cursor would make sync crawl, 50 a
    /// tick, through everything stored while the tab did not watch the session; a client
    /// that holds events of it asks for a replay after its own cursor when it watches it
    /// again, and one that holds none loads the history itself.
    fn forget_unwatched_cursor(&mut self, conn: ConnId, session: &SessionId) {
        let pair = (conn, session.clone());
        let watched = self
            .connections
            .get(&conn)
            .is_some_and(|c| c.watched.contains(session));
        if !self.gap_repair || watched || self.owed.contains_key(&pair) {
            return;
        }
        if let Some(m) = self.cursors.get_mut(&conn) {
            m.remove(session);
        }
    }

    /// Gap repair at an unwatch: a blocked pair is sent everything after its cursor up to
    /// `head` at once, in order, stopping at the first failed send, and unblocked once it
    /// caught up. The `unwatched` frame that follows is the client's proof that it has every
    /// event stored while it watched the session (the stream delivers in order), so the
    /// repair must not wait for a sync tick that comes after that frame. Like the reconnect
    /// replay it is not held to the sync batch limit: it sends only events the tab never
    /// had, once. Returns whether the pair is caught up (or was not blocked).
    pub fn repair_now(
        &mut self,
        conn: ConnId,
        session: &SessionId,
        store: &EventStore,
        head: Seq,
        out: &mut Vec<Delivery>,
    ) -> bool {
        if !self.is_blocked(conn, session) {
            return true;
        }
        let cursor = self.cursor(conn, session);
        for e in store.events_after(session, cursor, None) {
            if e.seq > head {
                break;
            }
            if !self.send_to(conn, ServerEvent::Session(e.clone()), Origin::Sync, out) {
                return false;
            }
            self.advance_cursor(conn, session, e.seq);
        }
        self.unblock(conn, session);
        true
    }

    /// Setting a session active also watches it.
    pub fn set_active(&mut self, conn: ConnId, session: Option<&SessionId>) {
        if let Some(c) = self.connections.get_mut(&conn) {
            if let Some(s) = session {
                c.watched.insert(s.clone());
                self.owed.remove(&(conn, s.clone()));
            }
            c.active = session.cloned();
        }
    }

    /// Connections watching `session`, optionally only those whose transport is open.
    pub fn watching<'a>(
        &'a self,
        session: &'a SessionId,
        open_only: bool,
    ) -> impl Iterator<Item = ConnId> + 'a {
        self.connections
            .iter()
            .filter(move |(_, c)| {
                c.watched.contains(session)
                    && (!open_only || c.transport != TransportHealth::Closed)
            })
            .map(|(id, _)| *id)
    }

    pub fn has_open_watchers(&self, session: &SessionId) -> bool {
        self.watching(session, true).next().is_some()
    }

    /// The cursor for (connection, session); a missing entry reads as 0.
    pub fn cursor(&self, conn: ConnId, session: &SessionId) -> Seq {
        self.cursors
            .get(&conn)
            .and_then(|m| m.get(session))
            .copied()
            .unwrap_or(0)
    }

    /// Whether the pair has a cursor entry at all (a missing one reads as 0).
    pub fn has_cursor(&self, conn: ConnId, session: &SessionId) -> bool {
        self.cursors
            .get(&conn)
            .is_some_and(|m| m.contains_key(session))
    }

    /// Gives a pair with no cursor entry yet the cursor `head` (the reference design starts
    /// a newly watched pair at the session's head, so sync never re-sends history the app
    /// loads by itself). Returns true when it set the cursor; an existing entry or an
    /// unknown id is left alone.
    pub fn start_at(&mut self, conn: ConnId, session: &SessionId, head: Seq) -> bool {
        match self.cursors.get_mut(&conn) {
            Some(m) if !m.contains_key(session) => {
                m.insert(session.clone(), head);
                true
            }
            _ => false,
        }
    }

    /// Sets the cursor to exactly `seq`, backwards included; unknown id is a no-op.
    pub fn reset_cursor(&mut self, conn: ConnId, session: &SessionId, seq: Seq) {
        if let Some(m) = self.cursors.get_mut(&conn) {
            m.insert(session.clone(), seq);
        }
    }

    fn advance_cursor(&mut self, conn: ConnId, session: &SessionId, seq: Seq) {
        if let Some(m) = self.cursors.get_mut(&conn) {
            let c = m.entry(session.clone()).or_insert(0);
            *c = (*c).max(seq);
        }
    }

    /// One send through a connection's transport. Returns false when the send "throws".
    pub fn send_to(
        &self,
        conn: ConnId,
        event: ServerEvent,
        origin: Origin,
        out: &mut Vec<Delivery>,
    ) -> bool {
        match self.connections.get(&conn).map(|c| c.transport) {
            Some(TransportHealth::Open) => {
                out.push(Delivery {
                    conn,
                    event,
                    origin,
                });
                true
            }
            _ => false,
        }
    }

    /// `broadcast(s, data)`: to every open watcher; on success a seq-carrying event moves the
    /// cursor to max(cursor, seq), never backwards; a failed send leaves it.
    ///
    /// With gap repair, a seq-carrying event skips blocked pairs, and a pair whose cursor
    /// is behind the event's `prev_seq` (it missed an earlier event of the session) is
    /// blocked and skipped instead of being sent a gap; a failed send blocks the pair.
    pub fn broadcast(
        &mut self,
        session: &SessionId,
        event: &ServerEvent,
        out: &mut Vec<Delivery>,
    ) -> usize {
        let targets: Vec<ConnId> = self.watching(session, true).collect();
        let seq = event.tracked().map(|(_, q)| q);
        let prev = match event {
            ServerEvent::Session(e) => e.prev_seq,
            _ => 0,
        };
        let mut delivered = 0;
        for conn in targets {
            let ordered = self.gap_repair && seq.is_some();
            if ordered {
                if self.is_blocked(conn, session) {
                    continue;
                }
                if self.cursor(conn, session) < prev {
                    self.block(conn, session);
                    continue;
                }
            }
            if self.send_to(conn, event.clone(), Origin::Live, out) {
                delivered += 1;
                if let Some(q) = seq {
                    self.advance_cursor(conn, session, q);
                }
            } else if ordered {
                self.block(conn, session);
            }
        }
        delivered
    }

    /// A frame that is not a stored event (an `error`, say) to every open watcher of a
    /// session, as a direct send: no cursor moves and no pair is blocked.
    pub fn notify(
        &self,
        session: &SessionId,
        event: &ServerEvent,
        out: &mut Vec<Delivery>,
    ) -> usize {
        self.watching(session, true)
            .filter(|&conn| self.send_to(conn, event.clone(), Origin::Direct, out))
            .count()
    }

    /// `broadcastAll(data)`: every open connection, cursors untouched.
    pub fn broadcast_all(&self, event: &ServerEvent, out: &mut Vec<Delivery>) {
        for (&conn, c) in &self.connections {
            if c.transport != TransportHealth::Closed {
                self.send_to(conn, event.clone(), Origin::Direct, out);
            }
        }
    }

    /// One periodic-sync tick over every open connection and watched session.
    ///
    /// Under [`SyncFilter::Lagging`] a caught-up pair (cursor at or past the head) is skipped
    /// without a batch. With gap repair, a blocked pair is visited whatever the filter says,
    /// the gap cap never applies (sync never skips ahead), and a pair whose cursor reached
    /// the head by the end of its batch is unblocked. An owed pair (unwatched while
    /// blocked) is visited too, up to the head it was unwatched at, and then forgotten.
    pub fn sync_tick(
        &mut self,
        store: &EventStore,
        params: &SyncParams,
        out: &mut Vec<Delivery>,
    ) -> Vec<SyncBatch> {
        let mut batches = Vec::new();
        let open = |c: &Connection| c.transport != TransportHealth::Closed;
        let mut pairs: Vec<(ConnId, SessionId)> = self
            .connections
            .iter()
            .filter(|(_, c)| open(c))
            .flat_map(|(id, c)| c.watched.iter().map(move |s| (*id, s.clone())))
            .collect();
        // Unwatched pairs still owed their missed events (never watched ones: `watch`
        // forgets the debt).
        pairs.extend(
            self.owed
                .keys()
                .filter(|(c, _)| self.connections.get(c).is_some_and(open))
                .cloned(),
        );
        for (conn, session) in pairs {
            let blocked = self.is_blocked(conn, &session);
            if !(blocked || params.filter.admits(store, &session)) {
                continue;
            }
            let cursor = self.cursor(conn, &session);
            let owed = self.owed(conn, &session);
            let head = owed.unwrap_or_else(|| store.head_seq(&session));
            if (params.filter == SyncFilter::Lagging || owed.is_some()) && cursor >= head {
                if blocked {
                    self.unblock(conn, &session);
                    self.forget_unwatched_cursor(conn, &session);
                }
                continue;
            }
            let mut from = cursor;
            let mut skipped = None;
            let cap = params.gap_cap.filter(|_| !self.gap_repair);
            if let Some(cap) = cap {
                let gap = head.saturating_sub(cursor);
                let over = if cap.inclusive {
                    gap >= cap.max_gap
                } else {
                    gap > cap.max_gap
                };
                if over && head > cap.max_gap {
                    from = head - cap.max_gap;
                    if store
                        .events_after(&session, cursor, Some(1))
                        .first()
                        .is_some_and(|e| e.seq <= from)
                    {
                        skipped = Some((cursor, from));
                    }
                    if cap.store_moved_cursor {
                        self.reset_cursor(conn, &session, from);
                    }
                }
            }
            let mut sent = 0;
            let mut stopped_on_failure = false;
            for e in store.events_after(&session, from, Some(params.batch_limit)) {
                if e.seq > head {
                    break;
                }
                if self.send_to(conn, ServerEvent::Session(e.clone()), Origin::Sync, out) {
                    sent += 1;
                    self.advance_cursor(conn, &session, e.seq);
                } else {
                    stopped_on_failure = true;
                    break;
                }
            }
            if blocked && self.cursor(conn, &session) >= head {
                self.unblock(conn, &session);
                self.forget_unwatched_cursor(conn, &session);
            }
            batches.push(SyncBatch {
                conn,
                session,
                cursor,
                skipped,
                sent,
                stopped_on_failure,
            });
        }
        batches
    }

    pub fn connections(&self) -> impl Iterator<Item = (ConnId, &Connection)> {
        self.connections.iter().map(|(id, c)| (*id, c))
    }
}
