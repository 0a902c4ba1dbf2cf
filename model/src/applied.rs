//! The reference design's applied-delivery rule (spec §7, [AD]): per-session in-order
//! application of session events.
//!
//! Seqs are global, so per session they increase with gaps; every event also carries
//! `prev_seq`, the previous seq of the same session (0 for its first event). With a cursor
//! `c` (the last seq the app applied, or loaded through history) an event `(seq, prev_seq)`
//! is
//!
//! - a **duplicate** when `seq <= c`: dropped, never re-applied (the client may re-ack it);
//! - **next in line** when `prev_seq <= c < seq`: applied, then every buffered event that
//!   now chains on is applied too, in order. Normally `prev_seq == c`; `prev_seq < c` happens
//!   when [`AppliedDelivery::track`] set the cursor to a history load's seq that is not
//!   itself an event of the session, and nothing between `prev_seq` and `seq` is missing;
//! - **early** when `prev_seq > c`: buffered, and the session has a gap (the client asks the
//!   server to replay after `c`).
//!
//! A session with no cursor yet applies its first event whatever its `prev_seq`.
//! The buffer is bounded per session; past the bound it is dropped and the session needs a
//! resync (a replay or snapshot from its cursor). The cursor never moves backwards.
//!
//! Pure: no clock (the spec's 15 s gap timer and 30 s snapshot wait belong to the owner),
//! BTreeMap only. The machine is generic over the event payload `E` it hands back, so it
//! does not depend on the wire type's field names.

use crate::types::{Seq, SessionId};
use crate::wire::SessionEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The reference's bound on out-of-order events held per session.
pub const DEFAULT_BUFFER_LIMIT: usize = 256;

/// What to do with one arriving event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum Decision<E> {
    /// Hand these events to the app, in this order (the arriving one first, then buffered
    /// ones it released). `cursor` is the session's cursor afterwards: the seq to ack.
    Applied { events: Vec<E>, cursor: Seq },
    /// `seq <= cursor`: already applied; drop it (re-ack `cursor` if the protocol wants).
    Duplicate { cursor: Seq },
    /// Early: held until the gap after `cursor` is filled; ask for a replay after `cursor`.
    Buffered { cursor: Seq },
    /// Holding it would pass the buffer bound: the buffer (this event included) was dropped
    /// and the session needs a resync from `cursor`.
    Resync { cursor: Seq },
}

/// One session's delivery state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Lane<E> {
    /// Last seq applied (or loaded through history). Never decreases.
    cursor: Seq,
    /// Early events by seq, each with its `prev_seq`. All seqs are > `cursor`.
    buffer: BTreeMap<Seq, (Seq, E)>,
    /// Highest seq seen for the session, dropped events included: a gap exists while
    /// `cursor < seen`.
    seen: Seq,
    /// The buffer overflowed and was dropped since the session last caught up.
    overflowed: bool,
}

impl<E> Lane<E> {
    fn new(cursor: Seq) -> Self {
        Lane {
            cursor,
            buffer: BTreeMap::new(),
            seen: cursor,
            overflowed: false,
        }
    }

    /// Drops buffered events the cursor has passed, then applies the buffered chain.
    fn drain(&mut self, out: &mut Vec<E>) {
        let cursor = self.cursor;
        self.buffer.retain(|&seq, _| seq > cursor);
        while let Some(entry) = self.buffer.first_entry() {
            let (seq, (prev_seq, _)) = (*entry.key(), entry.get());
            if *prev_seq > self.cursor {
                break;
            }
            let (_, event) = entry.remove();
            self.cursor = seq;
            out.push(event);
        }
        if self.cursor >= self.seen {
            self.overflowed = false;
        }
    }

    fn has_gap(&self) -> bool {
        self.cursor < self.seen
    }
}

/// Per-session in-order application. See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedDelivery<E = SessionEvent> {
    buffer_limit: usize,
    lanes: BTreeMap<SessionId, Lane<E>>,
}

impl<E> Default for AppliedDelivery<E> {
    fn default() -> Self {
        AppliedDelivery::new(DEFAULT_BUFFER_LIMIT)
    }
}

impl<E> AppliedDelivery<E> {
    /// No sessions tracked; at most `buffer_limit` early events held per session.
    pub fn new(buffer_limit: usize) -> Self {
        AppliedDelivery {
            buffer_limit,
            lanes: BTreeMap::new(),
        }
    }

    /// The app loaded the session's history up to `seq` (or a snapshot at `seq` was
    /// applied): move the cursor there unless it is already at or past it. Returns buffered
    /// events that now apply, in order, for the app; usually none.
    #[must_use = "released buffered events must be handed to the app"]
    pub fn track(&mut self, session: &SessionId, seq: Seq) -> Vec<E> {
        let mut out = Vec::new();
        match self.lanes.get_mut(session) {
            None => {
                self.lanes.insert(session.clone(), Lane::new(seq));
            }
            Some(lane) if seq > lane.cursor => {
                lane.cursor = seq;
                lane.seen = lane.seen.max(seq);
                lane.drain(&mut out);
            }
            Some(_) => {}
        }
        out
    }

    /// An event of `session` arrived with its `seq` and `prev_seq`; `event` is the payload
    /// to hand back once it applies.
    pub fn on_event(
        &mut self,
        session: &SessionId,
        seq: Seq,
        prev_seq: Seq,
        event: E,
    ) -> Decision<E> {
        let Some(lane) = self.lanes.get_mut(session) else {
            self.lanes.insert(session.clone(), Lane::new(seq));
            return Decision::Applied {
                events: vec![event],
                cursor: seq,
            };
        };
        if seq <= lane.cursor {
            return Decision::Duplicate {
                cursor: lane.cursor,
            };
        }
        lane.seen = lane.seen.max(seq);
        if prev_seq <= lane.cursor {
            lane.cursor = seq;
            let mut events = vec![event];
            lane.drain(&mut events);
            return Decision::Applied {
                events,
                cursor: lane.cursor,
            };
        }
        if !lane.buffer.contains_key(&seq) && lane.buffer.len() >= self.buffer_limit {
            lane.buffer.clear();
            lane.overflowed = true;
            return Decision::Resync {
                cursor: lane.cursor,
            };
        }
        lane.buffer.insert(seq, (prev_seq, event));
        Decision::Buffered {
            cursor: lane.cursor,
        }
    }

    /// The session's cursor, `None` when it has none yet.
    pub fn cursor(&self, session: &SessionId) -> Option<Seq> {
        self.lanes.get(session).map(|lane| lane.cursor)
    }

    /// Every session's cursor, in session order: the reconnect body.
    pub fn cursors(&self) -> Vec<(SessionId, Seq)> {
        self.lanes
            .iter()
            .map(|(s, lane)| (s.clone(), lane.cursor))
            .collect()
    }

    /// Sessions with a gap (events seen beyond the cursor but not applied), each with the
    /// cursor to replay after.
    pub fn gaps(&self) -> Vec<(SessionId, Seq)> {
        self.lanes
            .iter()
            .filter(|(_, lane)| lane.has_gap())
            .map(|(s, lane)| (s.clone(), lane.cursor))
            .collect()
    }

    /// Sessions whose buffer overflowed and was dropped and that have not caught up since,
    /// each with its cursor: these need a full resync (replay or snapshot).
    pub fn resyncs(&self) -> Vec<(SessionId, Seq)> {
        self.lanes
            .iter()
            .filter(|(_, lane)| lane.overflowed)
            .map(|(s, lane)| (s.clone(), lane.cursor))
            .collect()
    }

    /// Whether the session has a gap.
    pub fn has_gap(&self, session: &SessionId) -> bool {
        self.lanes.get(session).is_some_and(Lane::has_gap)
    }

    /// Early events held for the session.
    pub fn buffered(&self, session: &SessionId) -> usize {
        self.lanes.get(session).map_or(0, |lane| lane.buffer.len())
    }

    pub fn buffer_limit(&self) -> usize {
        self.buffer_limit
    }

    /// Stops tracking a session (closed or unwatched), dropping its cursor and buffer.
    pub fn forget(&mut self, session: &SessionId) {
        self.lanes.remove(session);
    }
}

impl AppliedDelivery<SessionEvent> {
    /// [`AppliedDelivery::on_event`] for a wire event, which carries its own session, seq
    /// and `prev_seq`.
    pub fn on_session_event(&mut self, event: SessionEvent) -> Decision<SessionEvent> {
        let session = event.session.clone();
        let (seq, prev_seq) = (event.seq, event.prev_seq);
        self.on_event(&session, seq, prev_seq, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(s: &str) -> SessionId {
        SessionId::new(s)
    }

    /// Payloads are the seq itself, so tests compare applied seqs.
    fn applied(d: Decision<Seq>) -> Vec<Seq> {
        match d {
            Decision::Applied { events, .. } => events,
            other => panic!("expected Applied, got {other:?}"),
        }
    }

    fn ev(ad: &mut AppliedDelivery<Seq>, s: &str, seq: Seq, prev: Seq) -> Decision<Seq> {
        ad.on_event(&sid(s), seq, prev, seq)
    }

    #[test]
    fn first_event_without_cursor_is_applied() {
        let mut ad = AppliedDelivery::default();
        assert_eq!(applied(ev(&mut ad, "a", 42, 17)), [42]);
        assert_eq!(ad.cursor(&sid("a")), Some(42));
        assert_eq!(ad.cursor(&sid("b")), None);
        assert!(ad.gaps().is_empty());
    }

    #[test]
    fn in_order_chain_applies() {
        let mut ad = AppliedDelivery::default();
        let _ = ad.track(&sid("a"), 3);
        assert_eq!(applied(ev(&mut ad, "a", 5, 3)), [5]);
        assert_eq!(
            ev(&mut ad, "a", 9, 5),
            Decision::Applied {
                events: vec![9],
                cursor: 9
            }
        );
    }

    #[test]
    fn duplicates_are_dropped() {
        let mut ad = AppliedDelivery::default();
        applied(ev(&mut ad, "a", 5, 0));
        applied(ev(&mut ad, "a", 7, 5));
        assert_eq!(ev(&mut ad, "a", 7, 5), Decision::Duplicate { cursor: 7 });
        assert_eq!(ev(&mut ad, "a", 5, 0), Decision::Duplicate { cursor: 7 });
        assert_eq!(ad.cursor(&sid("a")), Some(7));
    }

    #[test]
    fn track_never_moves_the_cursor_backwards() {
        let mut ad = AppliedDelivery::<Seq>::default();
        assert!(ad.track(&sid("a"), 10).is_empty());
        assert!(ad.track(&sid("a"), 4).is_empty());
        assert_eq!(ad.cursor(&sid("a")), Some(10));
        assert!(ad.track(&sid("a"), 12).is_empty());
        assert_eq!(ad.cursor(&sid("a")), Some(12));
        // An event below the cursor is a duplicate, not a rewind.
        assert_eq!(ev(&mut ad, "a", 11, 8), Decision::Duplicate { cursor: 12 });
        assert_eq!(ad.cursor(&sid("a")), Some(12));
    }

    #[test]
    fn tracked_cursor_between_events_still_chains() {
        // History loaded "up to 10", the session's last event being 8.
        let mut ad = AppliedDelivery::default();
        let _ = ad.track(&sid("a"), 10);
        assert_eq!(applied(ev(&mut ad, "a", 14, 8)), [14]);
    }

    #[test]
    fn gap_is_buffered_then_filled_by_replay() {
        let mut ad = AppliedDelivery::default();
        let _ = ad.track(&sid("a"), 2);
        // 4 (prev 2) is lost; 6 and 8 arrive live.
        assert_eq!(ev(&mut ad, "a", 6, 4), Decision::Buffered { cursor: 2 });
        assert_eq!(ev(&mut ad, "a", 8, 6), Decision::Buffered { cursor: 2 });
        assert_eq!(ad.gaps(), [(sid("a"), 2)]);
        assert_eq!(ad.buffered(&sid("a")), 2);
        // The replay after 2 brings 4, 6, 8; 4 releases the buffered pair.
        assert_eq!(
            ev(&mut ad, "a", 4, 2),
            Decision::Applied {
                events: vec![4, 6, 8],
                cursor: 8
            }
        );
        assert_eq!(ev(&mut ad, "a", 6, 4), Decision::Duplicate { cursor: 8 });
        assert_eq!(ev(&mut ad, "a", 8, 6), Decision::Duplicate { cursor: 8 });
        assert!(ad.gaps().is_empty());
        assert_eq!(ad.buffered(&sid("a")), 0);
    }

    #[test]
    fn partial_fill_keeps_the_remaining_gap() {
        let mut ad = AppliedDelivery::default();
        let _ = ad.track(&sid("a"), 1);
        ev(&mut ad, "a", 3, 2);
        ev(&mut ad, "a", 7, 5);
        assert_eq!(applied(ev(&mut ad, "a", 2, 1)), [2, 3]);
        assert_eq!(ad.gaps(), [(sid("a"), 3)]);
        assert_eq!(applied(ev(&mut ad, "a", 5, 3)), [5, 7]);
        assert!(ad.gaps().is_empty());
    }

    #[test]
    fn a_buffered_event_arriving_twice_is_held_once() {
        let mut ad = AppliedDelivery::default();
        let _ = ad.track(&sid("a"), 1);
        ev(&mut ad, "a", 5, 3);
        ev(&mut ad, "a", 5, 3);
        assert_eq!(ad.buffered(&sid("a")), 1);
        assert_eq!(applied(ev(&mut ad, "a", 3, 1)), [3, 5]);
    }

    #[test]
    fn track_past_buffered_events_releases_the_chain() {
        // A snapshot at 6 covers the gap; buffered 8 (prev 6) applies, 5 is dropped.
        let mut ad = AppliedDelivery::default();
        let _ = ad.track(&sid("a"), 1);
        ev(&mut ad, "a", 5, 3);
        ev(&mut ad, "a", 8, 6);
        assert_eq!(ad.track(&sid("a"), 6), [8]);
        assert_eq!(ad.cursor(&sid("a")), Some(8));
        assert!(ad.gaps().is_empty());
    }

    #[test]
    fn buffer_overflow_requires_resync() {
        let mut ad = AppliedDelivery::new(3);
        let _ = ad.track(&sid("a"), 1);
        for seq in [10, 11, 12] {
            assert_eq!(
                ev(&mut ad, "a", seq, seq - 1),
                Decision::Buffered { cursor: 1 }
            );
        }
        assert_eq!(ev(&mut ad, "a", 13, 12), Decision::Resync { cursor: 1 });
        assert_eq!(ad.buffered(&sid("a")), 0);
        assert_eq!(ad.resyncs(), [(sid("a"), 1)]);
        assert_eq!(
            ad.gaps(),
            [(sid("a"), 1)],
            "dropped events still count as a gap"
        );
        // The resync replays 2..=13 in order; the session catches up and the flag clears.
        let mut prev = 1;
        for seq in (2..=9).chain(10..=13) {
            assert_eq!(applied(ev(&mut ad, "a", seq, prev)), [seq]);
            prev = seq;
            if seq < 13 {
                assert_eq!(ad.resyncs().len(), 1);
            }
        }
        assert!(ad.resyncs().is_empty());
        assert!(ad.gaps().is_empty());
    }

    #[test]
    fn default_limit_is_256_per_session() {
        let mut ad = AppliedDelivery::default();
        assert_eq!(ad.buffer_limit(), DEFAULT_BUFFER_LIMIT);
        let _ = ad.track(&sid("a"), 0);
        let _ = ad.track(&sid("b"), 0);
        for i in 0..256 {
            assert!(matches!(
                ev(&mut ad, "a", 10 + i, 9 + i),
                Decision::Buffered { .. }
            ));
        }
        // The bound is per session: b still buffers.
        assert!(matches!(ev(&mut ad, "b", 10, 9), Decision::Buffered { .. }));
        assert!(matches!(
            ev(&mut ad, "a", 1_000, 999),
            Decision::Resync { .. }
        ));
        assert_eq!(ad.buffered(&sid("b")), 1);
    }

    #[test]
    fn interleaved_sessions_chain_per_session_over_global_gaps() {
        // Global seqs 1..=8 split over two sessions; a receives its own chain 1,3,4,7,
        // b receives 2,5,6,8. Nothing is missing although each session's seqs jump.
        let mut ad = AppliedDelivery::default();
        let _ = ad.track(&sid("a"), 0);
        let _ = ad.track(&sid("b"), 0);
        let stream = [
            ("a", 1, 0),
            ("b", 2, 0),
            ("a", 3, 1),
            ("a", 4, 3),
            ("b", 5, 2),
            ("b", 6, 5),
            ("a", 7, 4),
            ("b", 8, 6),
        ];
        for (s, seq, prev) in stream {
            assert_eq!(applied(ev(&mut ad, s, seq, prev)), [seq], "{s}:{seq}");
        }
        assert_eq!(ad.cursors(), [(sid("a"), 7), (sid("b"), 8)]);
        assert!(ad.gaps().is_empty());
    }

    #[test]
    fn a_gap_in_one_session_does_not_block_another() {
        let mut ad = AppliedDelivery::default();
        let _ = ad.track(&sid("a"), 0);
        let _ = ad.track(&sid("b"), 0);
        // a's 3 (prev 1) is lost.
        applied(ev(&mut ad, "a", 1, 0));
        assert_eq!(ev(&mut ad, "a", 5, 3), Decision::Buffered { cursor: 1 });
        assert_eq!(applied(ev(&mut ad, "b", 2, 0)), [2]);
        assert_eq!(applied(ev(&mut ad, "b", 4, 2)), [4]);
        assert_eq!(ad.gaps(), [(sid("a"), 1)]);
        assert!(!ad.has_gap(&sid("b")));
        assert_eq!(applied(ev(&mut ad, "a", 3, 1)), [3, 5]);
    }

    #[test]
    fn forget_drops_cursor_and_buffer() {
        let mut ad = AppliedDelivery::default();
        let _ = ad.track(&sid("a"), 1);
        ev(&mut ad, "a", 5, 3);
        ad.forget(&sid("a"));
        assert_eq!(ad.cursor(&sid("a")), None);
        assert!(ad.gaps().is_empty());
        assert!(ad.cursors().is_empty());
    }

    #[test]
    fn wire_events_use_their_own_session_and_prev_seq() {
        use crate::wire::EventKind;
        let event = |seq, prev_seq| SessionEvent {
            seq,
            prev_seq,
            session: sid("a"),
            kind: EventKind::AgentOutput { n: seq as u32 },
        };
        let mut ad = AppliedDelivery::default();
        let _ = ad.track(&sid("a"), 4);
        assert_eq!(
            ad.on_session_event(event(9, 6)),
            Decision::Buffered { cursor: 4 }
        );
        match ad.on_session_event(event(6, 4)) {
            Decision::Applied { events, cursor } => {
                assert_eq!(cursor, 9);
                assert_eq!(events, [event(6, 4), event(9, 6)]);
            }
            other => panic!("expected Applied, got {other:?}"),
        }
    }
}
