//! The ConnectionRegistry of spec §3: watches, cursors, live broadcast and the periodic
//! sync with its filters and #396's replay-gap cap.

use ssesim_model::registry::{ReplayGapCap, SyncBatch};
use ssesim_model::{
    ConnId, ConnectionRegistry, Delivery, EventKind, EventStore, Origin, Seq, ServerEvent,
    SessionEvent, SessionId, SessionState, SyncFilter, SyncParams, TransportHealth,
};

fn conn(n: u32) -> ConnId {
    ConnId::new(1, n)
}

fn sid(s: &str) -> SessionId {
    SessionId::new(s)
}

fn live(session: &SessionId, seq: Seq) -> ServerEvent {
    ServerEvent::Session(SessionEvent {
        seq,
        prev_seq: 0,
        session: session.clone(),
        kind: EventKind::AgentOutput { n: seq as u32 },
    })
}

/// A store where `session` has `n` consecutive events, seqs 1..=n.
fn store_with(session: &SessionId, n: u32) -> EventStore {
    let mut store = EventStore::new();
    for i in 0..n {
        store.append(session, EventKind::AgentOutput { n: i });
    }
    store
}

/// A store where `session` owns exactly the given global seqs and a filler session the rest.
fn store_at(session: &SessionId, owned: &[Seq]) -> EventStore {
    let mut store = EventStore::new();
    let last = owned.iter().copied().max().unwrap_or(0);
    for seq in 1..=last {
        let s = if owned.contains(&seq) {
            session.clone()
        } else {
            sid("filler")
        };
        let e = store.append(&s, EventKind::AgentOutput { n: 0 });
        assert_eq!(e.seq, seq);
    }
    store
}

fn params(filter: SyncFilter) -> SyncParams {
    SyncParams {
        filter,
        ..SyncParams::default()
    }
}

fn capped(max_gap: Seq, inclusive: bool, store_moved_cursor: bool) -> SyncParams {
    SyncParams {
        filter: SyncFilter::All,
        gap_cap: Some(ReplayGapCap {
            max_gap,
            inclusive,
            store_moved_cursor,
        }),
        ..SyncParams::default()
    }
}

/// A registry with one connection watching `s`.
fn watching(c: ConnId, s: &SessionId) -> ConnectionRegistry {
    let mut reg = ConnectionRegistry::new();
    reg.register(c);
    reg.watch(c, s);
    reg
}

fn seqs_to(out: &[Delivery], c: ConnId) -> Vec<Seq> {
    out.iter()
        .filter(|d| d.conn == c)
        .filter_map(|d| d.event.tracked().map(|(_, q)| q))
        .collect()
}

fn tick(
    reg: &mut ConnectionRegistry,
    store: &EventStore,
    p: &SyncParams,
) -> (Vec<Delivery>, Vec<SyncBatch>) {
    let mut out = Vec::new();
    let batches = reg.sync_tick(store, p, &mut out);
    (out, batches)
}

#[test]
fn register_starts_with_no_watches_no_active_session_and_zero_cursors() {
    let mut reg = ConnectionRegistry::new();
    assert!(reg.is_empty());
    reg.register(conn(1));
    let c = reg.get(conn(1)).expect("registered");
    assert!(c.watched.is_empty());
    assert_eq!(c.active, None);
    assert_eq!(c.transport, TransportHealth::Open);
    assert_eq!(reg.cursor(conn(1), &sid("s")), 0);
    assert!(reg.contains(conn(1)));
    assert_eq!(reg.len(), 1);
}

#[test]
fn re_registering_an_id_resets_its_watches_and_cursors() {
    let s = sid("s");
    let mut reg = watching(conn(1), &s);
    reg.set_active(conn(1), Some(&s));
    reg.reset_cursor(conn(1), &s, 40);
    reg.register(conn(1));
    let c = reg.get(conn(1)).expect("registered");
    assert!(c.watched.is_empty());
    assert_eq!(c.active, None);
    assert_eq!(reg.cursor(conn(1), &s), 0);
    assert_eq!(reg.len(), 1);
}

#[test]
fn remove_drops_the_connection_and_its_cursors() {
    let s = sid("s");
    let mut reg = watching(conn(1), &s);
    reg.reset_cursor(conn(1), &s, 40);
    let removed = reg.remove(conn(1)).expect("was registered");
    assert!(removed.watched.contains(&s));
    assert!(!reg.contains(conn(1)));
    assert_eq!(reg.cursor(conn(1), &s), 0);
    // With the connection gone the cursor cannot be written either.
    reg.reset_cursor(conn(1), &s, 7);
    assert_eq!(reg.cursor(conn(1), &s), 0);
    assert!(reg.remove(conn(1)).is_none());
    // And it does not come back on re-registration.
    reg.register(conn(1));
    assert_eq!(reg.cursor(conn(1), &s), 0);
}

#[test]
fn watch_on_unknown_connection_is_a_no_op_and_watch_is_idempotent() {
    let s = sid("s");
    let mut reg = ConnectionRegistry::new();
    reg.watch(conn(9), &s);
    assert!(reg.get(conn(9)).is_none());
    assert!(reg.is_empty());
    assert_eq!(reg.watching(&s, false).count(), 0);
    reg.register(conn(1));
    reg.watch(conn(1), &s);
    reg.watch(conn(1), &s);
    assert_eq!(reg.get(conn(1)).map(|c| c.watched.len()), Some(1));
    assert_eq!(reg.watching(&s, true).collect::<Vec<_>>(), vec![conn(1)]);
}

#[test]
fn unwatch_removes_the_watch_and_clears_active_only_for_that_session() {
    let (a, b) = (sid("a"), sid("b"));
    let mut reg = ConnectionRegistry::new();
    reg.register(conn(1));
    reg.watch(conn(1), &b);
    reg.set_active(conn(1), Some(&a));
    reg.unwatch(conn(1), &b);
    let c = reg.get(conn(1)).expect("registered");
    assert!(!c.watched.contains(&b));
    assert_eq!(
        c.active,
        Some(a.clone()),
        "unwatching another session keeps active"
    );
    reg.unwatch(conn(1), &a);
    let c = reg.get(conn(1)).expect("registered");
    assert!(c.watched.is_empty());
    assert_eq!(c.active, None);
}

#[test]
fn set_active_watches_the_session_and_none_keeps_the_watch() {
    let s = sid("s");
    let mut reg = ConnectionRegistry::new();
    reg.register(conn(1));
    reg.set_active(conn(1), Some(&s));
    let c = reg.get(conn(1)).expect("registered");
    assert_eq!(c.active, Some(s.clone()));
    assert!(c.watched.contains(&s));
    reg.set_active(conn(1), None);
    let c = reg.get(conn(1)).expect("registered");
    assert_eq!(c.active, None);
    assert!(c.watched.contains(&s));
    // Unknown connection: nothing is created.
    reg.set_active(conn(2), Some(&s));
    assert!(!reg.contains(conn(2)));
}

#[test]
fn broadcast_reaches_only_watchers_and_advances_cursor_to_max_never_backwards() {
    let s = sid("s");
    let mut reg = watching(conn(1), &s);
    reg.register(conn(2));
    reg.watch(conn(2), &sid("other"));
    let mut out = Vec::new();
    assert_eq!(reg.broadcast(&s, &live(&s, 10), &mut out), 1);
    assert_eq!(reg.cursor(conn(1), &s), 10);
    assert_eq!(reg.broadcast(&s, &live(&s, 5), &mut out), 1);
    assert_eq!(
        reg.cursor(conn(1), &s),
        10,
        "an older seq never moves the cursor back"
    );
    assert_eq!(seqs_to(&out, conn(1)), vec![10, 5], "both were still sent");
    assert!(out.iter().all(|d| d.origin == Origin::Live));
    assert!(seqs_to(&out, conn(2)).is_empty());
    assert_eq!(reg.cursor(conn(2), &s), 0);
}

#[test]
fn broadcast_of_an_event_without_seq_leaves_cursors() {
    let s = sid("s");
    let mut reg = watching(conn(1), &s);
    reg.reset_cursor(conn(1), &s, 3);
    let mut out = Vec::new();
    let delivered = reg.broadcast(
        &s,
        &ServerEvent::BootContext { session: s.clone() },
        &mut out,
    );
    assert_eq!(delivered, 1);
    assert_eq!(out.len(), 1);
    assert_eq!(reg.cursor(conn(1), &s), 3);
}

#[test]
fn throwing_transport_gets_no_delivery_and_keeps_its_cursor() {
    let s = sid("s");
    let mut reg = watching(conn(1), &s);
    reg.register(conn(2));
    reg.watch(conn(2), &s);
    reg.set_transport(conn(1), TransportHealth::Throwing);
    let mut out = Vec::new();
    let delivered = reg.broadcast(&s, &live(&s, 10), &mut out);
    assert_eq!(delivered, 1);
    assert!(seqs_to(&out, conn(1)).is_empty());
    assert_eq!(reg.cursor(conn(1), &s), 0);
    assert_eq!(seqs_to(&out, conn(2)), vec![10]);
    assert_eq!(reg.cursor(conn(2), &s), 10);
    // A throwing transport still counts as open for watcher queries.
    assert!(reg.watching(&s, true).any(|c| c == conn(1)));
}

#[test]
fn closed_transports_are_skipped_by_broadcast_broadcast_all_and_sync() {
    let s = sid("s");
    let store = store_with(&s, 3);
    let mut reg = watching(conn(1), &s);
    reg.set_transport(conn(1), TransportHealth::Closed);
    assert!(!reg.has_open_watchers(&s));
    assert_eq!(reg.watching(&s, false).collect::<Vec<_>>(), vec![conn(1)]);
    let mut out = Vec::new();
    assert_eq!(reg.broadcast(&s, &live(&s, 3), &mut out), 0);
    reg.broadcast_all(&ServerEvent::BootContext { session: s.clone() }, &mut out);
    assert!(out.is_empty());
    let (out, batches) = tick(&mut reg, &store, &params(SyncFilter::All));
    assert!(out.is_empty());
    assert!(
        batches.is_empty(),
        "a closed connection is not even visited"
    );
    assert_eq!(reg.cursor(conn(1), &s), 0);
}

#[test]
fn broadcast_all_reaches_every_open_connection_without_touching_cursors() {
    let s = sid("s");
    let mut reg = watching(conn(1), &s);
    reg.register(conn(2));
    reg.register(conn(3));
    reg.set_transport(conn(3), TransportHealth::Throwing);
    let mut out = Vec::new();
    reg.broadcast_all(&live(&s, 8), &mut out);
    let targets: Vec<ConnId> = out.iter().map(|d| d.conn).collect();
    assert_eq!(targets, vec![conn(1), conn(2)]);
    assert!(out.iter().all(|d| d.origin == Origin::Direct));
    assert_eq!(reg.cursor(conn(1), &s), 0);
}

#[test]
fn reset_cursor_sets_exactly_the_value_even_backwards() {
    let s = sid("s");
    let mut reg = watching(conn(1), &s);
    let mut out = Vec::new();
    reg.broadcast(&s, &live(&s, 50), &mut out);
    reg.reset_cursor(conn(1), &s, 7);
    assert_eq!(reg.cursor(conn(1), &s), 7);
    // A cursor can exist for a session the connection does not watch.
    reg.reset_cursor(conn(1), &sid("unwatched"), 3);
    assert_eq!(reg.cursor(conn(1), &sid("unwatched")), 3);
    reg.reset_cursor(conn(2), &s, 99);
    assert_eq!(reg.cursor(conn(2), &s), 0, "unknown id is a no-op");
}

#[test]
fn sync_tick_sends_at_most_batch_limit_from_the_cursor_and_advances_it() {
    let s = sid("s");
    let store = store_with(&s, 120);
    let mut reg = watching(conn(1), &s);
    reg.reset_cursor(conn(1), &s, 5);
    let p = params(SyncFilter::All);
    assert_eq!(p.batch_limit, 50);

    let (out, batches) = tick(&mut reg, &store, &p);
    assert_eq!(seqs_to(&out, conn(1)), (6..=55).collect::<Vec<_>>());
    assert!(out.iter().all(|d| d.origin == Origin::Sync));
    assert_eq!(reg.cursor(conn(1), &s), 55);
    assert_eq!(batches.len(), 1);
    assert_eq!(
        batches[0],
        SyncBatch {
            conn: conn(1),
            session: s.clone(),
            cursor: 5,
            skipped: None,
            sent: 50,
            stopped_on_failure: false,
        }
    );

    let (out, _) = tick(&mut reg, &store, &p);
    assert_eq!(seqs_to(&out, conn(1)), (56..=105).collect::<Vec<_>>());
    let (out, _) = tick(&mut reg, &store, &p);
    assert_eq!(seqs_to(&out, conn(1)), (106..=120).collect::<Vec<_>>());
    assert_eq!(reg.cursor(conn(1), &s), 120);
    let (out, batches) = tick(&mut reg, &store, &p);
    assert!(out.is_empty());
    assert_eq!(batches[0].sent, 0);
}

#[test]
fn sync_tick_batches_per_connection_and_session() {
    let (a, b) = (sid("a"), sid("b"));
    let mut store = EventStore::new();
    for i in 0..60 {
        store.append(&a, EventKind::AgentOutput { n: i });
        store.append(&b, EventKind::AgentOutput { n: i });
    }
    let mut reg = watching(conn(1), &a);
    reg.watch(conn(1), &b);
    reg.register(conn(2));
    reg.watch(conn(2), &a);
    let (out, batches) = tick(&mut reg, &store, &params(SyncFilter::All));
    assert_eq!(batches.len(), 3);
    assert!(batches.iter().all(|b| b.sent == 50));
    assert_eq!(out.len(), 150);
    assert_eq!(
        reg.cursor(conn(1), &a),
        99,
        "a's 50th event is global seq 99"
    );
    assert_eq!(reg.cursor(conn(1), &b), 100);
    assert_eq!(reg.cursor(conn(2), &a), 99);
}

#[test]
fn sync_tick_stops_the_batch_on_the_first_failed_send() {
    let s = sid("s");
    let store = store_with(&s, 10);
    let mut reg = watching(conn(1), &s);
    reg.register(conn(2));
    reg.watch(conn(2), &s);
    reg.set_transport(conn(1), TransportHealth::Throwing);
    let (out, batches) = tick(&mut reg, &store, &params(SyncFilter::All));
    let failed = batches.iter().find(|b| b.conn == conn(1)).expect("visited");
    assert!(failed.stopped_on_failure);
    assert_eq!(failed.sent, 0);
    assert!(seqs_to(&out, conn(1)).is_empty());
    assert_eq!(reg.cursor(conn(1), &s), 0);
    // The other connection's batch is unaffected.
    let healthy = batches.iter().find(|b| b.conn == conn(2)).expect("visited");
    assert!(!healthy.stopped_on_failure);
    assert_eq!(seqs_to(&out, conn(2)), (1..=10).collect::<Vec<_>>());
    // Once healed, the next tick catches the first connection up from its cursor.
    reg.set_transport(conn(1), TransportHealth::Open);
    let (out, _) = tick(&mut reg, &store, &params(SyncFilter::All));
    assert_eq!(seqs_to(&out, conn(1)), (1..=10).collect::<Vec<_>>());
    assert!(seqs_to(&out, conn(2)).is_empty());
}

/// Sessions named after their state, all watched by conn(1), plus one unknown session and
/// one fresh upserted row (ENDED yet is_active).
fn one_session_per_state() -> (EventStore, ConnectionRegistry) {
    let mut store = EventStore::new();
    let mut reg = ConnectionRegistry::new();
    reg.register(conn(1));
    for state in SessionState::ALL {
        let s = sid(&state.to_string());
        store.set_state(&s, state, "setup", 0, true);
        store.append(&s, EventKind::AgentOutput { n: 0 });
        reg.watch(conn(1), &s);
    }
    store.append(&sid("unknown"), EventKind::AgentOutput { n: 0 });
    reg.watch(conn(1), &sid("unknown"));
    store.upsert_session(&sid("fresh"), 0);
    store.append(&sid("fresh"), EventKind::AgentOutput { n: 0 });
    reg.watch(conn(1), &sid("fresh"));
    (store, reg)
}

fn synced_sessions(filter: SyncFilter) -> Vec<String> {
    let (store, mut reg) = one_session_per_state();
    let (out, batches) = tick(&mut reg, &store, &params(filter));
    let mut names: Vec<String> = batches.iter().map(|b| b.session.to_string()).collect();
    names.sort();
    let mut delivered: Vec<String> = out
        .iter()
        .filter_map(|d| d.event.tracked().map(|(s, _)| s.to_string()))
        .collect();
    delivered.sort();
    delivered.dedup();
    assert_eq!(names, delivered, "every visited session got its events");
    names
}

#[test]
fn is_active_filter_skips_closing_and_ended_and_admits_detached_and_suspended() {
    assert_eq!(
        synced_sessions(SyncFilter::IsActive),
        vec![
            "ACTIVE",
            "CREATED",
            "DETACHED",
            "STARTING",
            "SUSPENDED",
            "fresh"
        ]
    );
    let (store, _) = one_session_per_state();
    assert!(
        SyncFilter::IsActive.admits(&store, &sid("fresh")),
        "ENDED but is_active"
    );
    assert!(!SyncFilter::IsActive.admits(&store, &sid("unknown")));
}

#[test]
fn should_sync_admits_only_created_starting_active_and_closing_when_included() {
    assert_eq!(
        synced_sessions(SyncFilter::ShouldSync {
            include_closing: false
        }),
        vec!["ACTIVE", "CREATED", "STARTING"]
    );
    assert_eq!(
        synced_sessions(SyncFilter::ShouldSync {
            include_closing: true
        }),
        vec!["ACTIVE", "CLOSING", "CREATED", "STARTING"]
    );
    let (store, _) = one_session_per_state();
    for include_closing in [false, true] {
        let f = SyncFilter::ShouldSync { include_closing };
        assert!(
            !f.admits(&store, &sid("unknown")),
            "null state is not synced"
        );
        assert!(!f.admits(&store, &sid("fresh")), "a fresh row reads ENDED");
    }
}

#[test]
fn all_filter_syncs_every_watched_session_even_unknown_ones() {
    let mut expected: Vec<String> = SessionState::ALL.iter().map(|s| s.to_string()).collect();
    expected.push("fresh".into());
    expected.push("unknown".into());
    expected.sort();
    assert_eq!(synced_sessions(SyncFilter::All), expected);
}

#[test]
fn sync_without_gap_cap_crawls_from_the_cursor_however_far_behind() {
    let s = sid("s");
    let store = store_with(&s, 10_000);
    let mut reg = watching(conn(1), &s);
    let (out, batches) = tick(&mut reg, &store, &params(SyncFilter::All));
    assert_eq!(seqs_to(&out, conn(1)), (1..=50).collect::<Vec<_>>());
    assert_eq!(batches[0].skipped, None);
}

#[test]
fn gap_cap_fetches_only_the_last_max_gap_seqs_when_far_behind() {
    let s = sid("s");
    let store = store_with(&s, 10_000);
    let mut reg = watching(conn(1), &s);
    let (out, batches) = tick(&mut reg, &store, &capped(200, false, false));
    assert_eq!(seqs_to(&out, conn(1)), (9801..=9850).collect::<Vec<_>>());
    assert_eq!(batches[0].skipped, Some((0, 9800)));
    assert_eq!(batches[0].cursor, 0);
    assert_eq!(reg.cursor(conn(1), &s), 9850);
    // The skipped range is never sent later.
    let (out, batches) = tick(&mut reg, &store, &capped(200, false, false));
    assert_eq!(seqs_to(&out, conn(1)), (9851..=9900).collect::<Vec<_>>());
    assert_eq!(batches[0].skipped, None);
}

#[test]
fn gap_cap_does_not_fire_when_head_is_within_max_gap() {
    let s = sid("s");
    let store = store_with(&s, 100);
    let mut reg = watching(conn(1), &s);
    let (out, batches) = tick(&mut reg, &store, &capped(200, false, false));
    assert_eq!(seqs_to(&out, conn(1)), (1..=50).collect::<Vec<_>>());
    assert_eq!(batches[0].skipped, None);
}

#[test]
fn gap_cap_comparison_is_unobservable_at_exactly_max_gap() {
    // head 300, cursor 100: gap == 200. `>` does not fire; `>=` fires but fetches after
    // head - 200 = 100, which is the cursor itself. Both deliver 101.. and skip nothing.
    let s = sid("s");
    let store = store_with(&s, 300);
    let mut results = Vec::new();
    for inclusive in [false, true] {
        for store_moved_cursor in [false, true] {
            let mut reg = watching(conn(1), &s);
            reg.reset_cursor(conn(1), &s, 100);
            let (out, batches) = tick(
                &mut reg,
                &store,
                &capped(200, inclusive, store_moved_cursor),
            );
            assert_eq!(seqs_to(&out, conn(1)), (101..=150).collect::<Vec<_>>());
            assert_eq!(batches[0].skipped, None);
            results.push((out, batches, reg.cursor(conn(1), &s)));
        }
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    // One past the boundary both comparisons fire and skip the oldest seq.
    for inclusive in [false, true] {
        let mut reg = watching(conn(1), &s);
        reg.reset_cursor(conn(1), &s, 99);
        let (out, batches) = tick(&mut reg, &store, &capped(200, inclusive, false));
        assert_eq!(batches[0].skipped, Some((99, 100)));
        assert_eq!(seqs_to(&out, conn(1)).first(), Some(&101));
    }
}

#[test]
fn gap_cap_storing_the_moved_cursor_shows_when_the_batch_fails() {
    let s = sid("s");
    let store = store_with(&s, 10_000);
    for store_moved_cursor in [false, true] {
        let p = capped(200, false, store_moved_cursor);
        let mut reg = watching(conn(1), &s);
        reg.set_transport(conn(1), TransportHealth::Throwing);
        let (out, batches) = tick(&mut reg, &store, &p);
        assert!(out.is_empty());
        assert!(batches[0].stopped_on_failure);
        assert_eq!(batches[0].skipped, Some((0, 9800)));
        let expected_cursor = if store_moved_cursor { 9800 } else { 0 };
        assert_eq!(reg.cursor(conn(1), &s), expected_cursor);
        // The next tick reports the skip again only if the cursor was not moved.
        let (_, batches) = tick(&mut reg, &store, &p);
        let expected_skip = if store_moved_cursor {
            None
        } else {
            Some((0, 9800))
        };
        assert_eq!(batches[0].skipped, expected_skip);
    }
}

#[test]
fn global_seq_makes_the_gap_cap_skip_with_only_two_events_missing() {
    // s owns seqs 10 and 250; another session fills the rest.
    let s = sid("s");
    let store = store_at(&s, &[10, 250]);
    assert_eq!(store.session_events(&s).len(), 2);
    let mut reg = watching(conn(1), &s);
    let p = capped(200, false, false);
    let (out, batches) = tick(&mut reg, &store, &p);
    assert_eq!(batches[0].skipped, Some((0, 50)));
    assert_eq!(seqs_to(&out, conn(1)), vec![250], "seq 10 is skipped");
    assert_eq!(reg.cursor(conn(1), &s), 250);
    let (out, _) = tick(&mut reg, &store, &p);
    assert!(out.is_empty(), "and never sent later");
}
