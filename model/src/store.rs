//! The SQLite `EventStore` (spec §4): the only part of the server that survives a crash.
//!
//! `seq` is one global counter shared by all sessions, exactly as the SQLite
//! `INTEGER PRIMARY KEY AUTOINCREMENT` column is; per session, seqs therefore have gaps.

use crate::types::{Millis, Seq, SessionId};
use crate::wire::{EventKind, SessionEvent};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The seven session states of mitzo's state machine.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionState {
    Created,
    Starting,
    Active,
    Detached,
    Suspended,
    Closing,
    Ended,
}

/// What the client is told about a state: `running` or `idle`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionView {
    Running,
    Idle,
}

impl SessionState {
    pub const ALL: [SessionState; 7] = [
        SessionState::Created,
        SessionState::Starting,
        SessionState::Active,
        SessionState::Detached,
        SessionState::Suspended,
        SessionState::Closing,
        SessionState::Ended,
    ];

    /// The legal-transition table of spec §4.
    pub fn can_go(self, to: SessionState) -> bool {
        use SessionState::*;
        matches!(
            (self, to),
            (Created, Starting | Ended)
                | (Starting, Active | Ended)
                | (Active, Detached | Suspended | Closing | Ended)
                | (Detached, Active | Suspended | Closing | Ended)
                | (Suspended, Active | Ended)
                | (Closing, Ended)
                | (Ended, Created)
        )
    }

    pub fn view(self) -> SessionView {
        match self {
            SessionState::Starting | SessionState::Active => SessionView::Running,
            _ => SessionView::Idle,
        }
    }

    /// `setSessionState` keeps `is_active` as "not ENDED and not CLOSING".
    pub fn keeps_active_flag(self) -> bool {
        !matches!(self, SessionState::Ended | SessionState::Closing)
    }

    /// States `recoverStaleSessions` forces to ENDED at boot.
    pub fn is_stale_after_restart(self) -> bool {
        matches!(
            self,
            SessionState::Active
                | SessionState::Starting
                | SessionState::Detached
                | SessionState::Suspended
                | SessionState::Closing
        )
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            SessionState::Created => "CREATED",
            SessionState::Starting => "STARTING",
            SessionState::Active => "ACTIVE",
            SessionState::Detached => "DETACHED",
            SessionState::Suspended => "SUSPENDED",
            SessionState::Closing => "CLOSING",
            SessionState::Ended => "ENDED",
        };
        f.write_str(s)
    }
}

/// A row of the `sessions` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRow {
    pub state: SessionState,
    /// Kept separately from `state`: a fresh row is ENDED yet active (column defaults), and
    /// the pre-#396 sync filter reads this flag, not the state.
    pub is_active: bool,
    pub last_state_change: Millis,
}

/// The outcome of one `setSessionState`, handed back so the caller can broadcast the
/// appended event and the engine can record the warning.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateChange {
    pub from: SessionState,
    pub to: SessionState,
    /// False when the table forbids the move; it was applied anyway (warn-only phase).
    pub legal: bool,
    pub event: SessionEvent,
}

/// Where a durable receipt stands (the reference design, [SC]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
pub enum ReceiptState {
    /// Persisted before dispatch; the prompt has not reached the agent yet.
    Pending,
    /// Handed to the agent's input queue: a retry answers 202 without dispatching again.
    Dispatched,
    /// Will never be dispatched (the reason is kept); a retry answers 422.
    Failed(String),
}

/// Which request a receipt was made for, so a clientMsgId reused for a different prompt
/// can be told from a retry (409).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReceiptRequest {
    /// `/interrupt` rather than `/send`.
    pub interrupt: bool,
    /// The session the request named; `None` for a send that started a session.
    pub named_session: Option<SessionId>,
    pub text: String,
}

impl ReceiptRequest {
    /// Whether `other` is a retry of this request: same endpoint and text, and the session
    /// it names (if any) is the one the receipt went to.
    pub fn is_retried_by(&self, other: &ReceiptRequest, session: &SessionId) -> bool {
        self.interrupt == other.interrupt
            && self.text == other.text
            && other.named_session.as_ref().is_none_or(|s| s == session)
            && (self.named_session.is_none() || other.named_session.is_some())
    }
}

/// One durable receipt, keyed by clientMsgId in the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptRecord {
    /// The session the prompt went to (for a new session, the one it created).
    pub session: SessionId,
    pub state: ReceiptState,
    pub request: ReceiptRequest,
    /// The store's last seq when the receipt was written: orders receipts by arrival.
    pub written_after: Seq,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventStore {
    last_seq: Seq,
    events: BTreeMap<SessionId, Vec<SessionEvent>>,
    sessions: BTreeMap<SessionId, SessionRow>,
    user_messages: BTreeSet<(SessionId, String)>,
    boots: u32,
    total_events: usize,
    /// Durable receipts by clientMsgId (only written when `ServerParams::receipts` is on).
    #[serde(default)]
    receipts: BTreeMap<String, ReceiptRecord>,
}

impl EventStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts server boots; the disk remembers it so connection ids never repeat.
    pub fn record_boot(&mut self) -> u32 {
        self.boots += 1;
        self.boots
    }

    pub fn boots(&self) -> u32 {
        self.boots
    }

    /// Appends an event under the next global seq, with `prev_seq` the session's previous
    /// head (0 for its first event).
    pub fn append(&mut self, session: &SessionId, kind: EventKind) -> SessionEvent {
        let prev_seq = self.head_seq(session);
        self.last_seq += 1;
        if let EventKind::UserMessage { client_msg_id, .. } = &kind {
            self.user_messages
                .insert((session.clone(), client_msg_id.clone()));
        }
        let event = SessionEvent {
            seq: self.last_seq,
            prev_seq,
            session: session.clone(),
            kind,
        };
        self.events
            .entry(session.clone())
            .or_default()
            .push(event.clone());
        self.total_events += 1;
        event
    }

    /// `getEventsAfter(s, after, limit)`: the session's events with seq > `after`, ascending.
    pub fn events_after(
        &self,
        session: &SessionId,
        after: Seq,
        limit: Option<usize>,
    ) -> &[SessionEvent] {
        let Some(log) = self.events.get(session) else {
            return &[];
        };
        let start = log.partition_point(|e| e.seq <= after);
        let rest = &log[start..];
        match limit {
            Some(n) if n < rest.len() => &rest[..n],
            _ => rest,
        }
    }

    pub fn session_events(&self, session: &SessionId) -> &[SessionEvent] {
        self.events_after(session, 0, None)
    }

    /// `getHeadSeq(s)`: the session's largest seq, 0 when it has none.
    pub fn head_seq(&self, session: &SessionId) -> Seq {
        self.events
            .get(session)
            .and_then(|log| log.last())
            .map_or(0, |e| e.seq)
    }

    /// The largest seq assigned in any session.
    pub fn last_seq(&self) -> Seq {
        self.last_seq
    }

    pub fn total_events(&self) -> usize {
        self.total_events
    }

    /// `hasUserMessage(s, messageId)`: the per-session clientMsgId dedup check.
    pub fn has_user_message(&self, session: &SessionId, client_msg_id: &str) -> bool {
        self.user_messages
            .contains(&(session.clone(), client_msg_id.to_string()))
    }

    /// Creates the row if missing, with the column defaults: ENDED but `is_active`.
    /// Returns true when a row was created.
    pub fn upsert_session(&mut self, session: &SessionId, now: Millis) -> bool {
        if self.sessions.contains_key(session) {
            return false;
        }
        self.sessions.insert(
            session.clone(),
            SessionRow {
                state: SessionState::Ended,
                is_active: true,
                last_state_change: now,
            },
        );
        true
    }

    pub fn row(&self, session: &SessionId) -> Option<&SessionRow> {
        self.sessions.get(session)
    }

    /// `getSessionState`: `None` only for an unknown session.
    pub fn session_state(&self, session: &SessionId) -> Option<SessionState> {
        self.sessions.get(session).map(|r| r.state)
    }

    pub fn sessions(&self) -> impl Iterator<Item = (&SessionId, &SessionRow)> {
        self.sessions.iter()
    }

    /// `setSessionState`: checks the table unless `force`, applies the move either way,
    /// keeps `is_active`, and appends a `session_state_changed` event.
    pub fn set_state(
        &mut self,
        session: &SessionId,
        to: SessionState,
        reason: &str,
        now: Millis,
        force: bool,
    ) -> StateChange {
        self.upsert_session(session, now);
        let row = self
            .sessions
            .get_mut(session)
            .expect("row exists after upsert");
        let from = row.state;
        let legal = force || from.can_go(to);
        row.state = to;
        row.is_active = to.keeps_active_flag();
        row.last_state_change = now;
        let event = self.append(
            session,
            EventKind::SessionStateChanged {
                state: to.view(),
                internal: to,
                reason: reason.to_string(),
            },
        );
        StateChange {
            from,
            to,
            legal,
            event,
        }
    }

    /// `recoverStaleSessions`: at boot, force every non-terminal session (CREATED aside)
    /// to ENDED with reason `server_restart`.
    pub fn recover_stale_sessions(&mut self, now: Millis) -> Vec<StateChange> {
        let stale: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, r)| r.state.is_stale_after_restart())
            .map(|(s, _)| s.clone())
            .collect();
        stale
            .iter()
            .map(|s| self.set_state(s, SessionState::Ended, "server_restart", now, true))
            .collect()
    }

    /// The receipt for a clientMsgId, if one was ever written.
    pub fn receipt(&self, client_msg_id: &str) -> Option<&ReceiptRecord> {
        self.receipts.get(client_msg_id)
    }

    /// Every receipt, by clientMsgId.
    pub fn receipts(&self) -> impl Iterator<Item = (&String, &ReceiptRecord)> {
        self.receipts.iter()
    }

    /// Writes a `Pending` receipt for a new clientMsgId. Returns false (and writes nothing)
    /// when the id already has one.
    pub fn put_receipt(
        &mut self,
        client_msg_id: &str,
        session: &SessionId,
        request: ReceiptRequest,
    ) -> bool {
        if self.receipts.contains_key(client_msg_id) {
            return false;
        }
        self.receipts.insert(
            client_msg_id.to_string(),
            ReceiptRecord {
                session: session.clone(),
                state: ReceiptState::Pending,
                request,
                written_after: self.last_seq,
            },
        );
        true
    }

    /// Moves a receipt to `Dispatched`. Returns false for an unknown id.
    pub fn mark_dispatched(&mut self, client_msg_id: &str) -> bool {
        self.set_receipt_state(client_msg_id, ReceiptState::Dispatched)
    }

    /// Moves a receipt to `Failed(reason)` and appends a `message_failed` event to its
    /// session, which it returns; `None` for an unknown id.
    pub fn fail_receipt(&mut self, client_msg_id: &str, reason: &str) -> Option<SessionEvent> {
        if !self.set_receipt_state(client_msg_id, ReceiptState::Failed(reason.to_string())) {
            return None;
        }
        let session = self.receipts[client_msg_id].session.clone();
        Some(self.append(
            &session,
            EventKind::MessageFailed {
                client_msg_id: client_msg_id.to_string(),
                reason: reason.to_string(),
            },
        ))
    }

    fn set_receipt_state(&mut self, client_msg_id: &str, state: ReceiptState) -> bool {
        match self.receipts.get_mut(client_msg_id) {
            Some(r) => {
                r.state = state;
                true
            }
            None => false,
        }
    }

    /// At boot: every receipt still `Pending` (persisted, never dispatched: the process
    /// died in between) becomes `Failed(reason)` with a `message_failed` event in its
    /// session. Returns the appended events, in the order the receipts were written.
    pub fn fail_pending_receipts(&mut self, reason: &str) -> Vec<SessionEvent> {
        let mut pending: Vec<(Seq, String)> = self
            .receipts
            .iter()
            .filter(|(_, r)| r.state == ReceiptState::Pending)
            .map(|(id, r)| (r.written_after, id.clone()))
            .collect();
        pending.sort();
        pending
            .iter()
            .filter_map(|(_, id)| self.fail_receipt(id, reason))
            .collect()
    }
}
