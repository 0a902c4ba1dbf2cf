//! Unit tests for the baseline browser client `SseConnection` at 040fc27 (spec §1, §2).
//!
//! Each test drives [`Client`] through its public inputs with a simulated clock and
//! asserts on the outputs it returns and on its observable state. Many of them mirror
//! mitzo's own tests ([T0], [T2] in the spec).

mod common;

use common::client::*;
use common::sid;
use ssesim_model::client::{
    AppNotice, Client, ClientInput, ClientOutput, ClientTimer, DropReason, PageEvent, PostOutcome,
};
use ssesim_model::params::ClientParams;
use ssesim_model::types::{EsId, Millis, ReqId, Seq};
use ssesim_model::wire::{ClientMsg, Endpoint, Frame, FrameName, ServerEvent};

/// A stored session event with its seq, as broadcast or replayed.
fn event(session: &str, seq: Seq) -> Frame {
    stored(session, seq, 0, 0)
}

impl Bench {
    /// Was connected on connection 1 and saw `s1` at seq 10; the stream errored and the
    /// browser re-opened it as connection 2, whose reconnect POST is now in flight.
    fn awaiting_reconnect() -> (Bench, EsId, ReqId) {
        let (mut b, es) = Bench::connected();
        b.feed(on(es, event("s1", 10)));
        b.feed(ClientInput::StreamError { es });
        let out = b.feed(welcome(es, 2));
        let p = only_post(&out);
        assert_eq!(p.endpoint, Endpoint::Reconnect);
        (b, es, p.req)
    }
}

// ─── connect / welcome ─────────────────────────────────────────────────────────────────

#[test]
fn connect_opens_one_event_source_and_nothing_else() {
    let mut b = Bench::new();
    let out = b.feed(ClientInput::Connect);
    assert_eq!(out, vec![ClientOutput::OpenStream { es: EsId(1) }]);
    assert_eq!(b.client.current_stream(), Some(EsId(1)));
    assert!(!b.client.is_connected());
    assert_eq!(b.client.connection_id(), None);
}

#[test]
fn connect_while_a_stream_exists_opens_nothing_more() {
    let mut b = Bench::new();
    let es = b.connect();
    assert!(b.feed(ClientInput::Connect).is_empty());
    b.feed(welcome(es, 1));
    assert!(b.feed(ClientInput::Connect).is_empty());
    assert_eq!(b.client.current_stream(), Some(es));
}

#[test]
fn first_welcome_connects_and_emits_open() {
    let mut b = Bench::new();
    let es = b.connect();
    let out = b.feed(welcome(es, 1));
    assert_eq!(out, vec![ClientOutput::App(AppNotice::Open)]);
    assert!(b.client.is_connected());
    assert_eq!(b.client.connection_id(), Some(conn(1)));
}

#[test]
fn first_welcome_never_posts_reconnect_even_with_seeded_cursors() {
    // [T2] "does not send reconnect POST on first connection".
    let mut b = Bench::new();
    b.client.track_seq(sid("s1"), 42);
    let es = b.connect();
    let out = b.feed(welcome(es, 1));
    assert!(posts(&out).is_empty());
    assert_eq!(notices(&out), vec![AppNotice::Open]);
    assert!(b.client.is_connected());
    assert_eq!(b.client.in_flight_len(), 0);
}

#[test]
fn welcome_named_frame_without_welcome_payload_is_ignored() {
    let mut b = Bench::new();
    let es = b.connect();
    let bogus = Frame {
        name: FrameName::Welcome,
        id: None,
        data: ServerEvent::Watched { session: sid("s1") },
    };
    assert!(b.feed(on(es, bogus)).is_empty());
    assert!(!b.client.is_connected());
    assert_eq!(b.client.connection_id(), None);
}

#[test]
fn later_welcome_with_tracked_sessions_posts_one_reconnect_and_stays_disconnected() {
    let (mut b, es) = Bench::connected();
    b.feed(on(es, event("s1", 10)));
    b.feed(on(es, event("s2", 11)));
    b.feed(ClientInput::StreamError { es });

    let out = b.feed(welcome(es, 2));
    let p = only_post(&out);
    assert_eq!(p.endpoint, Endpoint::Reconnect);
    assert_eq!(p.conn, conn(2), "header carries the new connection id");
    assert_eq!(
        p.body,
        ClientMsg::Reconnect {
            sessions: vec![cursor("s1", 10), cursor("s2", 11)],
        }
    );
    assert!(
        notices(&out).is_empty(),
        "no _open before the POST succeeds"
    );
    assert!(!b.client.is_connected());
    assert_eq!(b.client.connection_id(), Some(conn(2)));
    assert_eq!(b.client.in_flight_len(), 1);
}

#[test]
fn reconnect_success_connects_flushes_queue_with_new_id_and_emits_open() {
    let (mut b, _es, req) = Bench::awaiting_reconnect();
    let out = b.feed(send(prompt("m1")));
    assert!(
        posts(&out).is_empty(),
        "queued while the reconnect POST is in flight"
    );
    assert_eq!(returned(&out), vec![true]);
    assert_eq!(b.client.pending_len(), 1);

    let out = b.feed(done(req, status(200)));
    let p = only_post(&out);
    assert_eq!(
        (p.endpoint, p.conn, p.body),
        (Endpoint::Send, conn(2), prompt("m1"))
    );
    assert_eq!(notices(&out), vec![AppNotice::Open]);
    let open_at = out
        .iter()
        .position(|o| *o == ClientOutput::App(AppNotice::Open));
    let post_at = out
        .iter()
        .position(|o| matches!(o, ClientOutput::Post { .. }));
    assert!(post_at < open_at, "flush is issued before _open: {out:?}");
    assert!(b.client.is_connected());
    assert_eq!(b.client.pending_len(), 0);
}

#[test]
fn later_welcome_without_tracked_sessions_connects_immediately() {
    // [T2] "connects immediately on reconnect when seqBySession is empty".
    let (mut b, es) = Bench::connected();
    b.feed(ClientInput::StreamError { es });
    b.feed(send(prompt("m1")));
    let out = b.feed(welcome(es, 2));
    let p = only_post(&out);
    assert_eq!((p.endpoint, p.conn), (Endpoint::Send, conn(2)));
    assert_eq!(notices(&out), vec![AppNotice::Open]);
    assert!(b.client.is_connected());
}

#[test]
fn reconnect_body_is_built_from_the_map_at_welcome_time() {
    let (mut b, es) = Bench::connected();
    b.feed(on(es, event("s1", 10)));
    b.feed(ClientInput::StreamError { es });
    // Seeded by the app after the drop, before the browser's re-open.
    b.client.track_seq(sid("s0"), 3);
    let p = only_post(&b.feed(welcome(es, 2)));
    assert_eq!(
        p.body,
        ClientMsg::Reconnect {
            sessions: vec![cursor("s0", 3), cursor("s1", 10)],
        }
    );
}

// ─── staleness guard ───────────────────────────────────────────────────────────────────

#[test]
fn stale_reconnect_failure_after_newer_welcome_on_same_stream_changes_nothing() {
    // [T2] "ignores stale reconnect POST when a newer welcome arrives".
    let (mut b, es, first) = Bench::awaiting_reconnect();
    let second = only_post(&b.feed(welcome(es, 3)));
    assert_eq!(
        (second.endpoint, second.conn),
        (Endpoint::Reconnect, conn(3))
    );

    let out = b.feed(done(second.req, ok()));
    assert_eq!(notices(&out), vec![AppNotice::Open]);
    assert!(b.client.is_connected());

    // The first POST's reply arrives last, as a failure: no scheduleReconnect.
    let out = b.feed(done(first, status(500)));
    assert!(out.is_empty(), "stale reply must change nothing: {out:?}");
    assert!(b.client.is_connected());
    assert!(!b.client.reconnect_pending());
    assert_eq!(b.client.current_stream(), Some(es));
    assert_eq!(b.client.in_flight_len(), 0);
}

#[test]
fn stale_reconnect_success_does_not_connect_before_the_current_one_answers() {
    let (mut b, es, first) = Bench::awaiting_reconnect();
    let second = only_post(&b.feed(welcome(es, 3)));
    b.feed(send(prompt("m1")));

    let out = b.feed(done(first, ok()));
    assert!(
        out.is_empty(),
        "stale success must not connect or flush: {out:?}"
    );
    assert!(!b.client.is_connected());
    assert_eq!(b.client.pending_len(), 1);

    let out = b.feed(done(second.req, ok()));
    let p = only_post(&out);
    assert_eq!((p.body, p.conn), (prompt("m1"), conn(3)));
    assert!(b.client.is_connected());
}

#[test]
fn stale_reconnect_reply_after_forced_reconnect_changes_nothing() {
    // [T2] "stale doReconnectPost does not set _connected when checkAndReconnect fires
    // mid-flight": the connection id is unchanged, only the EventSource differs.
    let (mut b, es, req) = Bench::awaiting_reconnect();
    let out = b.feed(ClientInput::CheckAndReconnect { force: true });
    assert_eq!(closed(&out), vec![es]);
    let es2 = opened(&out)[0];
    assert_ne!(es2, es);
    assert_eq!(b.client.connection_id(), Some(conn(2)));

    assert!(b.feed(done(req, ok())).is_empty());
    assert!(!b.client.is_connected());
    assert!(b.feed(done(req, status(500))).is_empty(), "already settled");
    assert_eq!(b.client.current_stream(), Some(es2));
    assert!(!b.client.reconnect_pending());
}

#[test]
fn reconnect_reply_after_disconnect_changes_nothing() {
    // [T2] disconnect during the reconnect POST.
    let (mut b, _es, req) = Bench::awaiting_reconnect();
    b.feed(ClientInput::Disconnect);
    assert!(b.feed(done(req, ok())).is_empty());
    assert!(!b.client.is_connected());
    assert_eq!(b.client.current_stream(), None);
}

// ─── scheduleReconnect ─────────────────────────────────────────────────────────────────

#[test]
fn reconnect_post_http_failure_closes_stream_and_arms_timer_at_now_plus_500() {
    let (mut b, es, req) = Bench::awaiting_reconnect();
    b.advance(250);
    let out = b.feed(done(req, status(503)));
    assert_eq!(closed(&out), vec![es]);
    assert_eq!(
        timers_set(&out, Some(ClientTimer::Reconnect)),
        vec![b.now + 500]
    );
    assert!(notices(&out).is_empty(), "baseline emits no _close here");
    assert!(opened(&out).is_empty());
    assert_eq!(b.client.current_stream(), None);
    assert!(b.client.reconnect_pending());
    assert!(!b.client.is_connected());
}

#[test]
fn reconnect_post_network_error_schedules_reconnect_with_configured_delay() {
    let mut b = Bench::with(ClientParams {
        reconnect_delay_ms: 1_234,
        ..ClientParams::default()
    });
    let es = b.connect();
    b.feed(welcome(es, 1));
    b.feed(on(es, event("s1", 4)));
    b.feed(ClientInput::StreamError { es });
    let req = only_post(&b.feed(welcome(es, 2))).req;
    let out = b.feed(done(req, PostOutcome::NetworkError));
    assert_eq!(closed(&out), vec![es]);
    assert_eq!(
        timers_set(&out, Some(ClientTimer::Reconnect)),
        vec![b.now + 1_234]
    );
}

#[test]
fn reconnect_timer_firing_opens_a_new_event_source_that_reconnects() {
    let (mut b, es, req) = Bench::awaiting_reconnect();
    b.feed(done(req, status(500)));
    b.advance(500);
    let out = b.feed(ClientInput::Timer(ClientTimer::Reconnect));
    let new_es = opened(&out);
    assert_eq!(new_es.len(), 1);
    assert_ne!(new_es[0], es);
    assert!(!b.client.reconnect_pending());
    assert_eq!(b.client.current_stream(), Some(new_es[0]));

    // The new stream's welcome retries the reconnect with the unchanged cursor.
    let p = only_post(&b.feed(welcome(new_es[0], 3)));
    assert_eq!((p.endpoint, p.conn), (Endpoint::Reconnect, conn(3)));
    assert_eq!(
        p.body,
        ClientMsg::Reconnect {
            sessions: vec![cursor("s1", 10)],
        }
    );
}

#[test]
fn no_second_timer_while_one_is_pending() {
    let (mut b, es, first) = Bench::awaiting_reconnect();
    let second = only_post(&b.feed(welcome(es, 3))).req;
    let out = b.feed(done(second, status(500)));
    assert_eq!(timers_set(&out, Some(ClientTimer::Reconnect)).len(), 1);
    // The other failure arrives while the timer is pending: no second timer, no stream.
    let out = b.feed(done(first, PostOutcome::NetworkError));
    assert!(out.is_empty(), "{out:?}");
    // Nor does a reconnect check: it is a no-op while the timer is pending.
    let out = b.feed(ClientInput::CheckAndReconnect { force: true });
    assert!(out.is_empty(), "{out:?}");
    assert!(b.client.reconnect_pending());
    assert_eq!(b.client.current_stream(), None);
}

#[test]
fn connect_during_pending_timer_cancels_it_and_a_late_fire_opens_nothing() {
    let (mut b, _es, req) = Bench::awaiting_reconnect();
    b.feed(done(req, status(500)));
    let out = b.feed(ClientInput::Connect);
    assert_eq!(opened(&out).len(), 1);
    assert!(out.contains(&ClientOutput::CancelTimer {
        timer: ClientTimer::Reconnect
    }));
    assert!(!b.client.reconnect_pending());
    let es = b.client.current_stream();
    assert!(b
        .feed(ClientInput::Timer(ClientTimer::Reconnect))
        .is_empty());
    assert_eq!(b.client.current_stream(), es);
}

// ─── messages ──────────────────────────────────────────────────────────────────────────

#[test]
fn message_seq_overwrites_cursor_last_write_wins() {
    // Spec §0.4: a replayed older event moves the cursor backwards.
    let (mut b, es) = Bench::connected();
    let out = b.feed(on(es, event("s1", 10)));
    assert_eq!(
        notices(&out),
        vec![AppNotice::Event {
            event: event("s1", 10).data
        }]
    );
    assert_eq!(b.client.last_seq(&sid("s1")), 10);
    b.feed(on(es, event("s1", 5)));
    assert_eq!(b.client.last_seq(&sid("s1")), 5);
    assert_eq!(b.client.last_seq(&sid("unknown")), 0);
}

#[test]
fn messages_reach_the_app_while_disconnected_and_during_reconnect_post() {
    let (mut b, es) = Bench::connected();
    b.feed(on(es, event("s1", 10)));
    b.feed(ClientInput::StreamError { es });
    let out = b.feed(on(es, event("s1", 11)));
    assert_eq!(notices(&out).len(), 1);
    assert_eq!(b.client.last_seq(&sid("s1")), 11);

    b.feed(welcome(es, 2));
    // Replayed over the new stream while /reconnect is still in flight ([T2]).
    let out = b.feed(on(es, event("s1", 12)));
    assert_eq!(
        notices(&out),
        vec![AppNotice::Event {
            event: event("s1", 12).data
        }]
    );
    assert_eq!(b.client.last_seq(&sid("s1")), 12);
    assert!(!b.client.is_connected());
}

#[test]
fn events_without_seq_are_forwarded_but_not_tracked() {
    let (mut b, es) = Bench::connected();
    let watched = ServerEvent::Watched { session: sid("s9") };
    let out = b.feed(on(es, Frame::of(watched.clone())));
    assert_eq!(notices(&out), vec![AppNotice::Event { event: watched }]);
    assert_eq!(b.client.tracked_sessions().count(), 0);

    // So a later welcome with nothing tracked connects without a reconnect POST.
    b.feed(ClientInput::StreamError { es });
    let out = b.feed(welcome(es, 2));
    assert!(posts(&out).is_empty());
    assert!(b.client.is_connected());
}

// ─── error ─────────────────────────────────────────────────────────────────────────────

#[test]
fn stream_error_while_connected_emits_close_once_and_keeps_the_stream() {
    let (mut b, es) = Bench::connected();
    let out = b.feed(ClientInput::StreamError { es });
    assert_eq!(out, vec![ClientOutput::App(AppNotice::Close)]);
    assert!(!b.client.is_connected());
    assert_eq!(b.client.current_stream(), Some(es));
    assert!(b.feed(ClientInput::StreamError { es }).is_empty());
}

#[test]
fn stream_error_while_disconnected_emits_nothing() {
    let mut b = Bench::new();
    let es = b.connect();
    assert!(b.feed(ClientInput::StreamError { es }).is_empty());
    assert_eq!(b.client.current_stream(), Some(es));
}

// ─── checkAndReconnect ─────────────────────────────────────────────────────────────────

#[test]
fn unforced_check_while_connected_does_nothing() {
    let (mut b, es) = Bench::connected();
    assert!(b
        .feed(ClientInput::CheckAndReconnect { force: false })
        .is_empty());
    assert!(b.client.is_connected());
    assert_eq!(b.client.current_stream(), Some(es));
}

#[test]
fn forced_check_while_connected_closes_emits_close_and_opens_new_stream() {
    let (mut b, es) = Bench::connected();
    let out = b.feed(ClientInput::CheckAndReconnect { force: true });
    assert_eq!(
        out,
        vec![
            ClientOutput::CloseStream { es },
            ClientOutput::App(AppNotice::Close),
            ClientOutput::OpenStream { es: EsId(2) },
        ]
    );
    assert!(!b.client.is_connected());
    assert_eq!(b.client.current_stream(), Some(EsId(2)));
}

#[test]
fn unforced_check_while_disconnected_replaces_the_stream_without_close() {
    let (mut b, es) = Bench::connected();
    b.feed(ClientInput::StreamError { es });
    let out = b.feed(ClientInput::CheckAndReconnect { force: false });
    assert_eq!(closed(&out), vec![es]);
    assert_eq!(opened(&out).len(), 1);
    assert!(
        notices(&out).is_empty(),
        "_close only when it was connected"
    );
}

#[test]
fn forced_check_keeps_is_reconnect_so_next_welcome_posts_reconnect() {
    let (mut b, es) = Bench::connected();
    b.feed(on(es, event("s1", 7)));
    let out = b.feed(ClientInput::CheckAndReconnect { force: true });
    let es2 = opened(&out)[0];
    let p = only_post(&b.feed(welcome(es2, 2)));
    assert_eq!((p.endpoint, p.conn), (Endpoint::Reconnect, conn(2)));
    assert!(!b.client.is_connected());
}

// ─── send ──────────────────────────────────────────────────────────────────────────────

#[test]
fn send_while_connected_posts_immediately_with_current_id() {
    let (mut b, _es) = Bench::connected();
    let out = b.feed(send(prompt("m1")));
    let p = only_post(&out);
    assert_eq!(
        (p.endpoint, p.conn, p.body.clone()),
        (Endpoint::Send, conn(1), prompt("m1"))
    );
    assert_eq!(returned(&out), vec![true]);
    assert_eq!(b.client.pending_len(), 0);
    assert_eq!(b.client.in_flight_len(), 1);
}

#[test]
fn send_maps_message_types_to_their_endpoints() {
    let (mut b, _es) = Bench::connected();
    let s = sid("s1");
    let cases = [
        (ClientMsg::Stop { session: s.clone() }, Endpoint::Stop),
        (
            ClientMsg::Interrupt {
                session: s.clone(),
                client_msg_id: "i1".into(),
                text: "stop that".into(),
            },
            Endpoint::Interrupt,
        ),
        (
            ClientMsg::PermissionResponse {
                session: s.clone(),
                request_id: "r".into(),
                allow: true,
            },
            Endpoint::Permission,
        ),
        (
            ClientMsg::SetMode {
                session: s.clone(),
                mode: "plan".into(),
            },
            Endpoint::Mode,
        ),
        (ClientMsg::Watch { session: s.clone() }, Endpoint::Watch),
        (ClientMsg::Unwatch { session: s.clone() }, Endpoint::Unwatch),
        (
            ClientMsg::SwitchSession { session: s.clone() },
            Endpoint::Switch,
        ),
        (
            ClientMsg::SessionClose { session: s.clone() },
            Endpoint::Close,
        ),
    ];
    for (msg, endpoint) in cases {
        let p = only_post(&b.feed(send(msg.clone())));
        assert_eq!((p.endpoint, p.body), (endpoint, msg));
    }
}

#[test]
fn send_before_welcome_is_queued_while_the_stream_exists() {
    let mut b = Bench::new();
    b.connect();
    let out = b.feed(send(prompt("m1")));
    assert!(posts(&out).is_empty());
    assert_eq!(returned(&out), vec![true]);
    assert_eq!(b.client.pending_len(), 1);
}

#[test]
fn send_while_only_the_reconnect_timer_is_pending_is_queued() {
    let (mut b, _es, req) = Bench::awaiting_reconnect();
    b.feed(done(req, status(500)));
    assert_eq!(b.client.current_stream(), None);
    let out = b.feed(send(prompt("m1")));
    assert_eq!(returned(&out), vec![true]);
    assert_eq!(b.client.pending_len(), 1);
}

#[test]
fn send_with_neither_stream_nor_timer_is_refused() {
    let mut b = Bench::new();
    let out = b.feed(send(prompt("m1")));
    assert_eq!(returned(&out), vec![false]);
    assert!(posts(&out).is_empty());
    assert_eq!(b.client.pending_len(), 0);

    let (mut b, _es) = Bench::connected();
    b.feed(ClientInput::Disconnect);
    let out = b.feed(send(prompt("m2")));
    assert_eq!(returned(&out), vec![false]);
    assert_eq!(b.client.pending_len(), 0);
}

#[test]
fn unknown_message_type_is_refused_even_when_connected() {
    let (mut b, _es) = Bench::connected();
    let out = b.feed(send(ClientMsg::Unknown {
        type_name: "ping".into(),
    }));
    assert_eq!(returned(&out), vec![false]);
    assert!(posts(&out).is_empty());
    assert_eq!(b.client.in_flight_len(), 0);
}

#[test]
fn hundred_and_first_queued_send_evicts_the_oldest() {
    let mut b = Bench::new();
    b.connect();
    for i in 0..100 {
        let out = b.feed(send(prompt(&format!("m{i}"))));
        assert!(dropped(&out).is_empty());
    }
    assert_eq!(b.client.pending_len(), 100);
    let out = b.feed(send(prompt("m100")));
    assert_eq!(returned(&out), vec![true]);
    assert_eq!(dropped(&out), vec![(prompt("m0"), DropReason::Evicted)]);
    assert!(notices(&out).is_empty(), "eviction is silent to the app");
    assert_eq!(b.client.pending_len(), 100);
}

#[test]
fn welcome_flushes_the_whole_queue_at_once_in_order() {
    let mut b = Bench::new();
    let es = b.connect();
    let ids: Vec<String> = (0..5).map(|i| format!("m{i}")).collect();
    for id in &ids {
        b.feed(send(prompt(id)));
    }
    let out = b.feed(welcome(es, 1));
    let p = posts(&out);
    assert_eq!(
        p.iter().map(|p| p.body.clone()).collect::<Vec<_>>(),
        ids.iter().map(|id| prompt(id)).collect::<Vec<_>>()
    );
    assert!(p
        .iter()
        .all(|p| p.conn == conn(1) && p.endpoint == Endpoint::Send));
    assert_eq!(b.client.pending_len(), 0);
    assert_eq!(b.client.in_flight_len(), 5, "all in flight concurrently");
}

#[test]
fn failed_send_posts_are_dropped_silently_and_never_requeued() {
    let (mut b, _es) = Bench::connected();
    let outcomes = [status(404), status(500), PostOutcome::NetworkError];
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let msg = prompt(&format!("m{i}"));
        let req = only_post(&b.feed(send(msg.clone()))).req;
        let out = b.feed(done(req, outcome));
        assert_eq!(
            out,
            vec![ClientOutput::Dropped {
                msg,
                reason: DropReason::StatusIgnored
            }]
        );
        assert_eq!(b.client.pending_len(), 0);
        assert_eq!(b.client.in_flight_len(), 0);
    }
    // Nothing resurfaces on the next welcome either.
    b.feed(ClientInput::StreamError { es: EsId(1) });
    let out = b.feed(welcome(EsId(1), 2));
    assert!(posts(&out).is_empty());
}

#[test]
fn successful_send_post_settles_without_output() {
    let (mut b, _es) = Bench::connected();
    let req = only_post(&b.feed(send(prompt("m1")))).req;
    assert!(b.feed(done(req, status(202))).is_empty());
    assert_eq!(b.client.in_flight_len(), 0);
}

#[test]
fn send_after_a_new_welcome_goes_with_the_new_connection_id() {
    let (mut b, es) = Bench::connected();
    assert_eq!(only_post(&b.feed(send(prompt("m1")))).conn, conn(1));
    b.feed(ClientInput::StreamError { es });
    b.feed(welcome(es, 2));
    assert_eq!(only_post(&b.feed(send(prompt("m2")))).conn, conn(2));
}

#[test]
fn welcome_without_preceding_error_leaves_client_connected_during_reconnect_post() {
    // Baseline quirk (spec §2.2): the welcome handler never clears `_connected`, so a
    // second welcome with no error before it keeps sends bypassing the queue, already
    // with the new connection id, while /reconnect is still in flight.
    let (mut b, es) = Bench::connected();
    b.feed(on(es, event("s1", 10)));
    let out = b.feed(welcome(es, 2));
    assert_eq!(only_post(&out).endpoint, Endpoint::Reconnect);
    assert!(b.client.is_connected());
    let p = only_post(&b.feed(send(prompt("m1"))));
    assert_eq!((p.endpoint, p.conn), (Endpoint::Send, conn(2)));
}

// ─── disconnect ────────────────────────────────────────────────────────────────────────

#[test]
fn disconnect_cancels_timer_closes_stream_and_keeps_pending_sends() {
    let (mut b, _es, req) = Bench::awaiting_reconnect();
    b.feed(done(req, status(500)));
    b.feed(send(prompt("m1")));
    assert!(b.client.reconnect_pending());

    let out = b.feed(ClientInput::Disconnect);
    assert_eq!(
        out,
        vec![ClientOutput::CancelTimer {
            timer: ClientTimer::Reconnect
        }]
    );
    assert!(!b.client.reconnect_pending());
    assert_eq!(
        b.client.pending_len(),
        1,
        "pending sends survive disconnect"
    );
    assert_eq!(b.client.connection_id(), Some(conn(2)));
}

#[test]
fn disconnect_while_connected_closes_the_stream_silently() {
    let (mut b, es) = Bench::connected();
    let out = b.feed(ClientInput::Disconnect);
    assert_eq!(out, vec![ClientOutput::CloseStream { es }]);
    assert!(!b.client.is_connected());
    assert_eq!(b.client.current_stream(), None);
}

#[test]
fn page_events_after_disconnect_are_ignored() {
    let (mut b, es) = Bench::connected();
    b.feed(on(es, event("s1", 3)));
    b.feed(ClientInput::Disconnect);
    for page in [
        PageEvent::Visible,
        PageEvent::Hidden,
        PageEvent::PageShow { persisted: true },
        PageEvent::PageHide,
    ] {
        assert!(b.feed(ClientInput::Page(page)).is_empty(), "{page:?}");
    }
    assert_eq!(b.client.current_stream(), None);
}

#[test]
fn reconnecting_after_disconnect_posts_reconnect_on_the_next_welcome() {
    let (mut b, es) = Bench::connected();
    b.feed(on(es, event("s1", 3)));
    b.feed(ClientInput::Disconnect);
    let es2 = b.connect();
    let p = only_post(&b.feed(welcome(es2, 2)));
    assert_eq!(p.endpoint, Endpoint::Reconnect);
    assert_eq!(
        p.body,
        ClientMsg::Reconnect {
            sessions: vec![cursor("s1", 3)]
        }
    );
}

// ─── page lifecycle ────────────────────────────────────────────────────────────────────

#[test]
fn hidden_while_connected_posts_suspend_with_cursors() {
    let (mut b, es) = Bench::connected();
    b.feed(on(es, event("s1", 10)));
    b.feed(on(es, event("s2", 12)));
    for page in [PageEvent::Hidden, PageEvent::PageHide] {
        let p = only_post(&b.feed(ClientInput::Page(page)));
        assert_eq!((p.endpoint, p.conn), (Endpoint::Suspend, conn(1)));
        assert_eq!(
            p.body,
            ClientMsg::SessionSuspend {
                sessions: vec![cursor("s1", 10), cursor("s2", 12)],
            }
        );
    }
}

#[test]
fn hidden_while_disconnected_beacons_with_the_last_connection_id() {
    let (mut b, es) = Bench::connected();
    b.feed(on(es, event("s1", 10)));
    b.feed(ClientInput::StreamError { es });
    let out = b.feed(ClientInput::Page(PageEvent::Hidden));
    assert_eq!(
        out,
        vec![ClientOutput::Beacon {
            connection_id: conn(1),
            sessions: vec![cursor("s1", 10)],
        }]
    );
}

#[test]
fn hidden_while_disconnected_without_suspend_url_sends_nothing() {
    let mut b = Bench::with(ClientParams {
        suspend_beacon: false,
        ..ClientParams::default()
    });
    let es = b.connect();
    b.feed(welcome(es, 1));
    b.feed(on(es, event("s1", 10)));
    b.feed(ClientInput::StreamError { es });
    assert!(b.feed(ClientInput::Page(PageEvent::Hidden)).is_empty());
}

#[test]
fn hidden_before_any_welcome_sends_nothing_for_lack_of_a_connection_id() {
    let mut b = Bench::new();
    b.client.track_seq(sid("s1"), 5);
    b.connect();
    assert!(b.feed(ClientInput::Page(PageEvent::Hidden)).is_empty());
}

#[test]
fn hidden_with_no_tracked_sessions_sends_nothing() {
    let (mut b, es) = Bench::connected();
    assert!(b.feed(ClientInput::Page(PageEvent::Hidden)).is_empty());
    b.feed(ClientInput::StreamError { es });
    assert!(b.feed(ClientInput::Page(PageEvent::PageHide)).is_empty());
}

#[test]
fn visible_while_connected_only_emits_foreground() {
    let (mut b, _es) = Bench::connected();
    let out = b.feed(ClientInput::Page(PageEvent::Visible));
    assert_eq!(out, vec![ClientOutput::App(AppNotice::Foreground)]);
}

#[test]
fn visible_while_disconnected_replaces_stream_then_emits_foreground() {
    let (mut b, es) = Bench::connected();
    b.feed(ClientInput::StreamError { es });
    let out = b.feed(ClientInput::Page(PageEvent::Visible));
    assert_eq!(
        out,
        vec![
            ClientOutput::CloseStream { es },
            ClientOutput::OpenStream { es: EsId(2) },
            ClientOutput::App(AppNotice::Foreground),
        ]
    );
}

#[test]
fn pageshow_persisted_reconnects_and_not_persisted_does_nothing() {
    let (mut b, es) = Bench::connected();
    b.feed(ClientInput::StreamError { es });
    assert!(b
        .feed(ClientInput::Page(PageEvent::PageShow { persisted: false }))
        .is_empty());
    let out = b.feed(ClientInput::Page(PageEvent::PageShow { persisted: true }));
    assert_eq!(closed(&out), vec![es]);
    assert_eq!(opened(&out), vec![EsId(2)]);
    assert!(notices(&out).is_empty());
}

// ─── determinism ───────────────────────────────────────────────────────────────────────

fn script() -> Vec<(Millis, ClientInput)> {
    let es1 = EsId(1);
    let es2 = EsId(2);
    vec![
        (0, send(prompt("early"))),
        (1, ClientInput::Connect),
        (2, send(prompt("queued"))),
        (10, welcome(es1, 1)),
        (11, on(es1, event("s1", 1))),
        (12, on(es1, event("s2", 2))),
        (13, send(prompt("live"))),
        (14, done(ReqId(2), status(404))),
        (20, ClientInput::StreamError { es: es1 }),
        (21, send(prompt("while-down"))),
        (22, ClientInput::Page(PageEvent::Hidden)),
        (30, welcome(es1, 2)),
        (31, on(es1, event("s1", 1))),
        (32, done(ReqId(3), PostOutcome::NetworkError)),
        (532, ClientInput::Timer(ClientTimer::Reconnect)),
        (540, welcome(es2, 3)),
        (541, done(ReqId(4), ok())),
        (542, ClientInput::Page(PageEvent::Visible)),
        (550, ClientInput::CheckAndReconnect { force: true }),
        (560, ClientInput::Disconnect),
    ]
}

#[test]
fn identical_inputs_give_identical_outputs() {
    let run = || {
        let mut c = Client::new(ClientParams::default());
        let outs: Vec<Vec<ClientOutput>> = script()
            .into_iter()
            .map(|(now, input)| c.handle(now, input))
            .collect();
        (c, outs)
    };
    let (a, out_a) = run();
    let (b, out_b) = run();
    assert_eq!(out_a, out_b);
    assert_eq!(a, b);
    // The script exercises the interesting paths, so the comparison is not vacuous.
    let all: Vec<ClientOutput> = out_a.into_iter().flatten().collect();
    assert_eq!(timers_set(&all, Some(ClientTimer::Reconnect)), vec![532]);
    assert!(all.iter().any(|o| matches!(o, ClientOutput::Beacon { .. })));
    assert_eq!(
        dropped(&all),
        vec![(prompt("live"), DropReason::StatusIgnored)]
    );
    assert_eq!(opened(&all).len(), 3);
    assert!(posts(&all)
        .iter()
        .any(|p| p.endpoint == Endpoint::Reconnect));
    let opens = notices(&all)
        .into_iter()
        .filter(|n| *n == AppNotice::Open)
        .count();
    assert_eq!(opens, 2);
}
