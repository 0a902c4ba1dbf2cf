//! The EventStore of spec §4: global seq, range reads, session states and their events,
//! restart recovery and the per-session clientMsgId dedup.

use ssesim_model::store::StateChange;
use ssesim_model::{EventKind, EventStore, Seq, SessionId, SessionState, SessionView};

use SessionState::*;

fn sid(s: &str) -> SessionId {
    SessionId::new(s)
}

fn output(n: u32) -> EventKind {
    EventKind::AgentOutput { n }
}

fn user_message(id: &str) -> EventKind {
    EventKind::UserMessage {
        client_msg_id: id.to_string(),
        text: format!("text of {id}"),
        interrupt: false,
    }
}

fn seqs(events: &[ssesim_model::SessionEvent]) -> Vec<Seq> {
    events.iter().map(|e| e.seq).collect()
}

/// s1 gets seqs 1, 3, 5 and s2 gets 2, 4: per-session gaps from the global counter.
fn interleaved() -> EventStore {
    let mut store = EventStore::new();
    for n in 0..5 {
        let s = if n % 2 == 0 { sid("s1") } else { sid("s2") };
        store.append(&s, output(n));
    }
    store
}

/// The transition table of spec §4, written out independently of `can_go`.
fn spec_allows(from: SessionState, to: SessionState) -> bool {
    let legal: &[(SessionState, &[SessionState])] = &[
        (Created, &[Starting, Ended]),
        (Starting, &[Active, Ended]),
        (Active, &[Detached, Suspended, Closing, Ended]),
        (Detached, &[Active, Suspended, Closing, Ended]),
        (Suspended, &[Active, Ended]),
        (Closing, &[Ended]),
        (Ended, &[Created]),
    ];
    legal
        .iter()
        .find(|(f, _)| *f == from)
        .is_some_and(|(_, tos)| tos.contains(&to))
}

/// Drives a fresh session into `state` with forced moves.
fn session_in(store: &mut EventStore, s: &SessionId, state: SessionState) {
    store.set_state(s, state, "setup", 0, true);
}

#[test]
fn seq_is_global_across_sessions() {
    let mut store = EventStore::new();
    let a = store.append(&sid("s1"), output(0));
    let b = store.append(&sid("s2"), output(0));
    let c = store.append(&sid("s1"), output(1));
    assert_eq!((a.seq, b.seq, c.seq), (1, 2, 3));
    assert_eq!(a.session, sid("s1"));
    assert_eq!(b.session, sid("s2"));
    assert_eq!(seqs(store.session_events(&sid("s1"))), vec![1, 3]);
    assert_eq!(seqs(store.session_events(&sid("s2"))), vec![2]);
    assert_eq!(store.last_seq(), 3);
    assert_eq!(store.total_events(), 3);
}

#[test]
fn events_after_returns_the_sessions_later_events_in_order_across_gaps() {
    let store = interleaved();
    let s1 = sid("s1");
    assert_eq!(seqs(store.events_after(&s1, 0, None)), vec![1, 3, 5]);
    assert_eq!(seqs(store.events_after(&s1, 1, None)), vec![3, 5]);
    // seq 2 belongs to s2: reading s1 after it starts at the next s1 event.
    assert_eq!(seqs(store.events_after(&s1, 2, None)), vec![3, 5]);
    assert_eq!(seqs(store.events_after(&s1, 4, None)), vec![5]);
    assert!(store.events_after(&s1, 5, None).is_empty());
    assert!(store.events_after(&s1, 99, None).is_empty());
    assert!(store.events_after(&sid("nobody"), 0, None).is_empty());
    assert!(store
        .events_after(&s1, 0, None)
        .iter()
        .all(|e| e.session == s1));
}

#[test]
fn events_after_with_limit_returns_at_most_limit_oldest_first() {
    let store = interleaved();
    let s1 = sid("s1");
    assert_eq!(seqs(store.events_after(&s1, 0, Some(2))), vec![1, 3]);
    assert_eq!(seqs(store.events_after(&s1, 1, Some(1))), vec![3]);
    assert_eq!(seqs(store.events_after(&s1, 2, Some(10))), vec![3, 5]);
    assert!(store.events_after(&s1, 0, Some(0)).is_empty());
}

#[test]
fn head_seq_is_zero_without_events_and_the_sessions_max_seq_otherwise() {
    let mut store = EventStore::new();
    assert_eq!(store.head_seq(&sid("s1")), 0);
    // A row without events still has head 0.
    store.upsert_session(&sid("s1"), 0);
    assert_eq!(store.head_seq(&sid("s1")), 0);
    let store = interleaved();
    assert_eq!(store.head_seq(&sid("s1")), 5);
    assert_eq!(store.head_seq(&sid("s2")), 4);
    assert_eq!(store.head_seq(&sid("s3")), 0);
}

#[test]
fn fresh_upserted_row_is_ended_yet_active_and_appends_nothing() {
    let mut store = EventStore::new();
    let s = sid("s1");
    assert_eq!(store.session_state(&s), None);
    assert!(store.row(&s).is_none());
    assert!(store.upsert_session(&s, 42));
    let row = store.row(&s).expect("row created");
    assert_eq!(row.state, Ended);
    assert!(
        row.is_active,
        "column defaults disagree: ENDED but is_active"
    );
    assert_eq!(row.last_state_change, 42);
    assert_eq!(store.session_state(&s), Some(Ended));
    assert_eq!(store.last_seq(), 0, "an upsert is not an event");
    // A second upsert leaves the row alone.
    assert!(!store.upsert_session(&s, 99));
    assert_eq!(store.row(&s).map(|r| r.last_state_change), Some(42));
}

#[test]
fn can_go_matches_the_spec_transition_table_for_every_pair() {
    let mut legal_pairs = 0;
    for from in SessionState::ALL {
        for to in SessionState::ALL {
            assert_eq!(from.can_go(to), spec_allows(from, to), "{from} -> {to}");
            legal_pairs += usize::from(spec_allows(from, to));
        }
    }
    assert_eq!(legal_pairs, 16);
    // Spot checks that read as prose in the spec.
    assert!(Suspended.can_go(Active));
    assert!(!Suspended.can_go(Detached));
    assert!(!Suspended.can_go(Closing));
    assert!(!Closing.can_go(Active));
    assert!(!Ended.can_go(Active));
    assert!(!Created.can_go(Active));
}

#[test]
fn set_state_reports_legality_from_the_table_for_every_pair() {
    for from in SessionState::ALL {
        for to in SessionState::ALL {
            let mut store = EventStore::new();
            let s = sid("s");
            session_in(&mut store, &s, from);
            let change = store.set_state(&s, to, "test", 10, false);
            assert_eq!(change.from, from);
            assert_eq!(change.to, to);
            assert_eq!(change.legal, spec_allows(from, to), "{from} -> {to}");
            // Warn-only phase: applied whether legal or not.
            assert_eq!(store.session_state(&s), Some(to), "{from} -> {to}");
        }
    }
}

#[test]
fn illegal_transition_is_applied_anyway_and_flagged() {
    let mut store = EventStore::new();
    let s = sid("s1");
    // A fresh row is ENDED, and ENDED -> ACTIVE is not in the table.
    let change = store.set_state(&s, Active, "resume", 5, false);
    assert!(!change.legal);
    assert_eq!((change.from, change.to), (Ended, Active));
    assert_eq!(store.session_state(&s), Some(Active));
    assert!(store.row(&s).is_some_and(|r| r.is_active));
    assert_eq!(
        store.head_seq(&s),
        change.event.seq,
        "the illegal move still emits its event"
    );
}

#[test]
fn forced_transition_skips_the_check() {
    let mut store = EventStore::new();
    let s = sid("s1");
    session_in(&mut store, &s, Closing);
    let change = store.set_state(&s, Active, "forced", 5, true);
    assert!(change.legal, "force reports the move as legal");
    assert_eq!(store.session_state(&s), Some(Active));
    let unforced = {
        let mut other = EventStore::new();
        session_in(&mut other, &s, Closing);
        other.set_state(&s, Active, "unforced", 5, false)
    };
    assert!(!unforced.legal);
}

#[test]
fn is_active_flag_is_false_exactly_for_ended_and_closing_after_set_state() {
    let mut store = EventStore::new();
    let s = sid("s1");
    // Walk every state twice in an order that flips the flag both ways.
    for to in SessionState::ALL
        .iter()
        .chain(SessionState::ALL.iter().rev())
    {
        store.set_state(&s, *to, "walk", 1, true);
        let row = store.row(&s).expect("row");
        assert_eq!(row.is_active, !matches!(to, Ended | Closing), "after {to}");
        assert_eq!(row.state, *to);
    }
}

#[test]
fn every_set_state_appends_a_state_changed_event_with_the_client_view() {
    let mut store = EventStore::new();
    let s = sid("s1");
    store.append(&sid("other"), output(0));
    for (i, to) in SessionState::ALL.into_iter().enumerate() {
        let before = store.last_seq();
        let now = 100 + i as u64;
        let change: StateChange = store.set_state(&s, to, "why", now, false);
        assert_eq!(change.event.seq, before + 1, "consumes the next global seq");
        assert_eq!(store.last_seq(), before + 1);
        assert_eq!(change.event.session, s);
        let view = if matches!(to, Starting | Active) {
            SessionView::Running
        } else {
            SessionView::Idle
        };
        assert_eq!(to.view(), view);
        assert_eq!(
            change.event.kind,
            EventKind::SessionStateChanged {
                state: view,
                internal: to,
                reason: "why".to_string(),
            }
        );
        assert_eq!(store.session_events(&s).last(), Some(&change.event));
        assert_eq!(store.row(&s).map(|r| r.last_state_change), Some(now));
    }
    assert_eq!(store.session_events(&s).len(), SessionState::ALL.len());
}

#[test]
fn recover_stale_sessions_ends_every_non_terminal_session_except_created() {
    let mut store = EventStore::new();
    for state in SessionState::ALL {
        session_in(&mut store, &sid(&format!("{state}")), state);
    }
    let fresh = sid("fresh-row");
    store.upsert_session(&fresh, 0);
    let before = store.last_seq();

    let changes = store.recover_stale_sessions(500);

    assert_eq!(changes.len(), 5);
    let recovered: Vec<SessionState> = changes.iter().map(|c| c.from).collect();
    for stale in [Active, Starting, Detached, Suspended, Closing] {
        assert!(recovered.contains(&stale), "{stale} recovered");
        assert_eq!(store.session_state(&sid(&format!("{stale}"))), Some(Ended));
    }
    for c in &changes {
        assert_eq!(c.to, Ended);
        assert!(c.legal, "recovery forces the move");
        assert_eq!(
            c.event.kind,
            EventKind::SessionStateChanged {
                state: SessionView::Idle,
                internal: Ended,
                reason: "server_restart".to_string(),
            }
        );
        assert_eq!(store.head_seq(&c.event.session), c.event.seq);
    }
    assert_eq!(store.last_seq(), before + 5);
    assert_eq!(store.session_state(&sid("CREATED")), Some(Created));
    assert_eq!(store.session_state(&sid("ENDED")), Some(Ended));
    assert_eq!(store.session_state(&fresh), Some(Ended));
    assert_eq!(store.head_seq(&fresh), 0, "an ENDED row is left alone");
    assert!(
        store.recover_stale_sessions(600).is_empty(),
        "recovery is idempotent"
    );
}

#[test]
fn has_user_message_dedups_per_session_only() {
    let mut store = EventStore::new();
    let (s1, s2) = (sid("s1"), sid("s2"));
    assert!(!store.has_user_message(&s1, "m1"));
    store.append(&s1, user_message("m1"));
    assert!(store.has_user_message(&s1, "m1"));
    assert!(
        !store.has_user_message(&s2, "m1"),
        "same id in another session is not a duplicate"
    );
    assert!(!store.has_user_message(&s1, "m2"));
    // Other event kinds are not user messages.
    store.append(&s2, output(7));
    assert!(!store.has_user_message(&s2, "m1"));
    store.append(&s2, user_message("m1"));
    assert!(store.has_user_message(&s2, "m1"));
}

#[test]
fn boots_are_counted_on_the_disk() {
    let mut store = EventStore::new();
    assert_eq!(store.boots(), 0);
    assert_eq!(store.record_boot(), 1);
    assert_eq!(store.record_boot(), 2);
    assert_eq!(store.boots(), 2);
}
