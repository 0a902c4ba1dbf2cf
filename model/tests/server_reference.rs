//! The reference ("fixed") server design of spec §7: `prev_seq` on every stored event,
//! durable receipts for `/send` and `/interrupt`, surfaced interrupt failures, receipts
//! failed at boot, registry gap repair ([R4]) and the `Lagging` sync filter.

mod common;

use common::server::*;
use common::sid;
use ssesim_model::revisions;
use ssesim_model::store::{ReceiptRequest, ReceiptState};
use ssesim_model::wire::{Receipt, SessionCursor};
use ssesim_model::{
    AgentInput, ClientMsg, ConnId, ConnectionRegistry, Delivery, EventKind, EventStore,
    HttpResponse, Origin, Seq, Server, ServerEvent, ServerInput, ServerOutput, ServerParams,
    SessionEvent, SessionId, SessionState, SyncFilter, SyncParams, TransportHealth,
};

/// The `reference` preset's server half: receipts, gap repair, guard, Lagging.
fn reference() -> ServerParams {
    revisions::preset("reference").expect("preset").server
}

fn receipts_only() -> ServerParams {
    ServerParams {
        receipts: true,
        ..ServerParams::default()
    }
}

fn gap_repair_only() -> ServerParams {
    ServerParams {
        gap_repair: true,
        ..ServerParams::default()
    }
}

fn receipt_state(server: &Server, id: &str) -> Option<ReceiptState> {
    server.store().receipt(id).map(|r| r.state.clone())
}

fn message_failed(server: &Server, s: &SessionId) -> Vec<(String, String)> {
    server
        .store()
        .session_events(s)
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::MessageFailed {
                client_msg_id,
                reason,
            } => Some((client_msg_id.clone(), reason.clone())),
            _ => None,
        })
        .collect()
}

// ---- prev_seq ----------------------------------------------------------------------

#[test]
fn prev_seq_links_each_event_to_the_previous_one_of_its_own_session() {
    let mut store = EventStore::new();
    let (a, b) = (sid("a"), sid("b"));
    let order = [&a, &b, &a, &a, &b, &sid("c"), &a];
    let events: Vec<SessionEvent> = order
        .iter()
        .map(|s| store.append(s, EventKind::AgentOutput { n: 0 }))
        .collect();
    let got: Vec<(Seq, Seq)> = events.iter().map(|e| (e.seq, e.prev_seq)).collect();
    assert_eq!(
        got,
        vec![(1, 0), (2, 0), (3, 1), (4, 3), (5, 2), (6, 0), (7, 4)]
    );
    // The stored copies carry the same link, and state events get one too.
    let change = store.set_state(&b, SessionState::Created, "start", 0, false);
    assert_eq!((change.event.seq, change.event.prev_seq), (8, 5));
    let stored: Vec<Seq> = store
        .session_events(&b)
        .iter()
        .map(|e| e.prev_seq)
        .collect();
    assert_eq!(stored, vec![0, 2, 5]);
}

#[test]
fn receipt_body_round_trips_with_escapes_and_other_bodies_are_not_receipts() {
    let r = Receipt::accepted("m\"1\\x\n", sid("new-1.1"));
    let body = r.to_json();
    assert_eq!(
        Receipt::accepted("m1", sid("s1")).to_json(),
        r#"{"accepted":true,"clientMsgId":"m1","sessionId":"s1"}"#
    );
    assert_eq!(Receipt::parse(&body), Some(r));
    let f = Receipt::failed("m2", sid("s"), "server_restart");
    assert_eq!(Receipt::parse(&f.to_json()), Some(f));
    assert_eq!(
        Receipt::parse(
            r#" { "sessionId" : "s\u00e9", "extra": null, "accepted": true, "clientMsgId": "a\/b" } "#
        ),
        Some(Receipt::accepted("a/b", sid("sé")))
    );
    for not in [
        "{\"ok\":true}",
        "Invalid message",
        "",
        "{}",
        r#"{"accepted":true,"clientMsgId":"m1"}"#,
        r#"{"accepted":"yes","clientMsgId":"m1","sessionId":"s"}"#,
        r#"{"accepted":true,"clientMsgId":"m1","sessionId":"s"} trailing"#,
    ] {
        assert_eq!(Receipt::parse(not), None, "{not}");
    }
}

// ---- durable receipts: /send ---------------------------------------------------------

#[test]
fn duplicate_send_is_dispatched_once_and_both_replies_carry_the_same_receipt() {
    let mut server = boot_with(reference());
    let (c, _w, s) = session_with_watcher(&mut server);
    let (first, out) = post(&mut server, 1, Some(c), send(Some(&s), "m2", "more"));
    assert_eq!(first.status, 202);
    assert_eq!(
        Receipt::parse(&first.body),
        Some(Receipt::accepted("m2", s.clone()))
    );
    assert_eq!(agent_inputs(&out).len(), 1);
    assert_eq!(receipt_state(&server, "m2"), Some(ReceiptState::Dispatched));
    let head = server.store().head_seq(&s);
    // The reply was lost; the outbox retries, even from a different connection.
    let c2 = open(&mut server, 2);
    let (again, out) = post(&mut server, 2, Some(c2), send(Some(&s), "m2", "more"));
    assert_eq!(again, first);
    assert!(agent_inputs(&out).is_empty(), "no second dispatch");
    assert_eq!(server.store().head_seq(&s), head, "nothing appended");
    // The retrying connection now follows the session, as a send makes it active.
    assert_eq!(
        server.registry().get(c2).and_then(|k| k.active.clone()),
        Some(s.clone())
    );
}

#[test]
fn retried_first_message_returns_the_same_new_session_and_starts_only_one() {
    let mut server = boot_with(reference());
    let c = open(&mut server, 0);
    let (first, out) = post(&mut server, 0, Some(c), send(None, "draft-1", "hi"));
    assert_eq!(first.status, 202);
    let inputs = agent_inputs(&out);
    assert_eq!(inputs.len(), 1);
    assert!(inputs[0].new_session);
    let s = inputs[0].session.clone();
    let sessions_before = server.store().sessions().count();
    for (now, conn) in [(1, Some(c)), (2, Some(ConnId::new(1, 99)))] {
        let (again, out) = post(&mut server, now, conn, send(None, "draft-1", "hi"));
        assert_eq!(again.status, 202);
        assert_eq!(
            Receipt::parse(&again.body).map(|r| r.session),
            Some(s.clone())
        );
        assert!(agent_inputs(&out).is_empty());
        assert!(!out.iter().any(|o| matches!(o, ServerOutput::Appended(_))));
    }
    assert_eq!(server.store().sessions().count(), sessions_before);
    // A retry that names the session the receipt created is the same message too.
    let (named, out) = post(&mut server, 3, Some(c), send(Some(&s), "draft-1", "hi"));
    assert_eq!(named.status, 202);
    assert!(agent_inputs(&out).is_empty());
}

#[test]
fn client_msg_id_reused_for_a_different_message_is_409_and_dispatches_nothing() {
    let mut server = boot_with(reference());
    let (c, _w, s) = session_with_watcher(&mut server);
    post(&mut server, 1, Some(c), send(Some(&s), "m2", "one text"));
    let head = server.store().head_seq(&s);
    for body in [
        send(Some(&s), "m2", "another text"),
        send(Some(&sid("elsewhere")), "m2", "one text"),
        send(None, "m2", "one text"),
        interrupt(&s, "m2", "one text"),
    ] {
        let (response, out) = post(&mut server, 2, Some(c), body.clone());
        assert_eq!(response.status, 409, "{body:?}");
        assert!(agent_inputs(&out).is_empty());
    }
    assert_eq!(server.store().head_seq(&s), head);
    assert_eq!(receipt_state(&server, "m2"), Some(ReceiptState::Dispatched));
}

#[test]
fn send_with_an_unknown_connection_is_accepted_under_receipts_but_404_without() {
    let stale = ConnId::new(7, 7);
    let mut plain = boot_with(ServerParams::default());
    for body in [send(None, "m1", "hi"), interrupt(&sid("s"), "m2", "stop")] {
        let (response, out) = post(&mut plain, 0, Some(stale), body);
        assert_eq!(response.status, 404);
        assert!(agent_inputs(&out).is_empty());
    }
    let mut server = boot_with(receipts_only());
    let (response, out) = post(&mut server, 0, Some(stale), send(None, "m1", "hi"));
    assert_eq!(response.status, 202, "{}", response.body);
    let inputs = agent_inputs(&out);
    assert_eq!(inputs.len(), 1);
    let s = inputs[0].session.clone();
    assert!(server.is_running(&s));
    assert!(server.registry().is_empty(), "no connection was registered");
    assert_eq!(receipt_state(&server, "m1"), Some(ReceiptState::Dispatched));
    // A registered connection without an open stream (dropped silently) is fine too.
    let c = open(&mut server, 1);
    server.handle(
        1,
        ServerInput::DropConnection {
            conn: c,
            close_stream: false,
        },
    );
    let (response, out) = post(&mut server, 2, Some(c), send(Some(&s), "m3", "more"));
    assert_eq!(response.status, 202);
    assert_eq!(agent_inputs(&out).len(), 1);
}

#[test]
fn receipts_keep_the_400s_for_a_missing_header_and_a_bad_body() {
    let mut server = boot_with(reference());
    let stale = Some(ConnId::new(3, 3));
    let (response, out) = post(&mut server, 0, None, send(None, "m1", "hi"));
    assert_eq!(response.status, 400);
    assert!(out
        .iter()
        .all(|o| matches!(o, ServerOutput::Respond { .. })));
    for body in [send(None, "m1", ""), interrupt(&sid("s"), "m1", "")] {
        let (response, out) = post(&mut server, 0, stale, body);
        assert_eq!(response.status, 400);
        assert!(agent_inputs(&out).is_empty());
    }
    assert!(server.store().receipt("m1").is_none(), "nothing persisted");
    // Other endpoints keep their 404 for an unknown connection.
    let (response, _) = post(
        &mut server,
        0,
        stale,
        ClientMsg::Watch { session: sid("s") },
    );
    assert_eq!(response.status, 404);
}

#[test]
fn failed_receipt_answers_422_with_the_reason_and_never_dispatches() {
    let mut store = EventStore::new();
    let s = sid("s");
    store.put_receipt(
        "m9",
        &s,
        ReceiptRequest {
            interrupt: false,
            named_session: Some(s.clone()),
            text: "t".into(),
        },
    );
    let marker = store.fail_receipt("m9", "agent_gone").expect("known id");
    assert_eq!(
        marker.kind,
        EventKind::MessageFailed {
            client_msg_id: "m9".into(),
            reason: "agent_gone".into()
        }
    );
    let (mut server, _) = Server::boot(store, reference(), 0);
    let c = open(&mut server, 0);
    let (response, out) = post(&mut server, 1, Some(c), send(Some(&s), "m9", "t"));
    assert_eq!(response.status, 422);
    assert_eq!(
        Receipt::parse(&response.body),
        Some(Receipt::failed("m9", s.clone(), "agent_gone"))
    );
    assert!(agent_inputs(&out).is_empty());
    assert!(!server.is_running(&s));
}

#[test]
fn receipts_survive_into_store_and_boot() {
    let mut server = boot_with(reference());
    let c = open(&mut server, 0);
    let (first, _) = post(&mut server, 0, Some(c), send(None, "m1", "hello"));
    let s = Receipt::parse(&first.body).expect("receipt").session;
    let store = server.into_store();
    assert_eq!(
        store.receipt("m1").map(|r| (&r.session, &r.state)),
        Some((&s, &ReceiptState::Dispatched))
    );
    let (mut server, boot_out) = Server::boot(store, reference(), 10);
    assert_eq!(server.boot_number(), 2);
    // A dispatched receipt is not failed by the boot.
    assert!(message_failed(&server, &s).is_empty());
    assert!(!boot_out.iter().any(|o| matches!(
        o,
        ServerOutput::Appended(SessionEvent {
            kind: EventKind::MessageFailed { .. },
            ..
        })
    )));
    let c2 = open(&mut server, 11);
    let (again, out) = post(&mut server, 11, Some(c2), send(None, "m1", "hello"));
    assert_eq!(again, first);
    assert!(agent_inputs(&out).is_empty());
    assert!(!server.is_running(&s), "no second session, no resume");
}

// ---- durable receipts: /interrupt ----------------------------------------------------

#[test]
fn interrupt_reply_is_deferred_until_interrupt_settles_then_dispatched_and_202() {
    let mut server = boot_with(reference());
    let (c, w, s) = session_with_watcher(&mut server);
    let out = request(
        &mut server,
        5,
        41,
        Some(c),
        interrupt(&s, "i1", "stop that"),
    );
    assert_eq!(reply(&out, 41), None, "no reply before interrupt() settles");
    assert!(agent_inputs(&out).is_empty());
    let call = call_interrupt_token(&out);
    assert_eq!(receipt_state(&server, "i1"), Some(ReceiptState::Pending));
    assert_eq!(server.pending_interrupts(), 1);
    // Persisted and echoed live first.
    for conn in [c, w] {
        assert!(deliveries(&out, conn)
            .iter()
            .any(|(e, o)| *o == Origin::Live
                && matches!(
                    e,
                    ServerEvent::Session(SessionEvent {
                        kind: EventKind::UserMessage {
                            interrupt: true,
                            ..
                        },
                        ..
                    })
                )));
    }
    let out = settle_interrupt(&mut server, 6, call, true);
    assert_eq!(
        agent_inputs(&out),
        vec![AgentInput {
            session: s.clone(),
            client_msg_id: "i1".into(),
            text: "stop that".into(),
            interrupt: true,
            new_session: false,
        }]
    );
    let response = reply(&out, 41).expect("answered at settlement");
    assert_eq!(response.status, 202);
    assert_eq!(
        Receipt::parse(&response.body),
        Some(Receipt::accepted("i1", s.clone()))
    );
    assert_eq!(receipt_state(&server, "i1"), Some(ReceiptState::Dispatched));
    assert_eq!(server.pending_interrupts(), 0);
    // A later retry answers from the receipt without another interrupt() or dispatch.
    let (again, out) = post(&mut server, 7, Some(c), interrupt(&s, "i1", "stop that"));
    assert_eq!(again, response);
    assert!(agent_inputs(&out).is_empty());
    assert!(!out
        .iter()
        .any(|o| matches!(o, ServerOutput::CallInterrupt { .. })));
}

#[test]
fn retried_interrupt_while_pending_joins_the_deferred_reply() {
    let mut server = boot_with(reference());
    let (c, _w, s) = session_with_watcher(&mut server);
    let out = request(&mut server, 5, 1, Some(c), interrupt(&s, "i1", "stop"));
    let call = call_interrupt_token(&out);
    let head = server.store().head_seq(&s);
    let out = request(&mut server, 6, 2, Some(c), interrupt(&s, "i1", "stop"));
    assert!(out.is_empty(), "joined, nothing new: {out:?}");
    assert_eq!(server.store().head_seq(&s), head);
    let out = settle_interrupt(&mut server, 7, call, true);
    assert_eq!(agent_inputs(&out).len(), 1);
    let (r1, r2) = (reply(&out, 1).unwrap(), reply(&out, 2).unwrap());
    assert_eq!(r1.status, 202);
    assert_eq!(r1, r2);
}

#[test]
fn caught_interrupt_failure_is_surfaced_as_an_error_event_and_the_message_still_runs() {
    let mut server = boot_with(reference());
    let (c, w, s) = session_with_watcher(&mut server);
    let out = request(&mut server, 5, 41, Some(c), interrupt(&s, "i1", "stop"));
    let call = call_interrupt_token(&out);
    let out = settle_interrupt(&mut server, 6, call, false);
    assert!(!server.has_crashed());
    assert!(!out.iter().any(|o| matches!(o, ServerOutput::Crash { .. })));
    for conn in [c, w] {
        let errors: Vec<(ServerEvent, Origin)> = deliveries(&out, conn)
            .into_iter()
            .filter(|(e, _)| matches!(e, ServerEvent::Error { .. }))
            .collect();
        assert_eq!(errors.len(), 1, "surfaced to {conn}");
        assert!(matches!(
            &errors[0],
            (ServerEvent::Error { session: Some(x), .. }, Origin::Direct) if *x == s
        ));
    }
    let inputs = agent_inputs(&out);
    assert_eq!(inputs.len(), 1);
    assert!(inputs[0].interrupt);
    assert_eq!(reply(&out, 41).map(|r| r.status), Some(202));
    assert_eq!(receipt_state(&server, "i1"), Some(ReceiptState::Dispatched));
    // The error frame is not a stored event: no cursor moved past the head.
    assert_eq!(server.registry().cursor(w, &s), server.store().head_seq(&s));
}

#[test]
fn crash_before_settle_then_boot_marks_the_receipt_failed_with_a_message_failed_event() {
    // Receipts without the guard: the rejection kills the process before any reply.
    let mut server = boot_with(receipts_only());
    let (c, _w, s) = session_with_watcher(&mut server);
    let out = request(&mut server, 5, 41, Some(c), interrupt(&s, "i1", "stop"));
    let call = call_interrupt_token(&out);
    let out = settle_interrupt(&mut server, 6, call, false);
    assert!(server.has_crashed());
    assert_eq!(reply(&out, 41), None, "the socket dies with the process");
    assert!(agent_inputs(&out).is_empty());
    let store = server.into_store();
    assert_eq!(
        store.receipt("i1").map(|r| r.state.clone()),
        Some(ReceiptState::Pending)
    );
    let before = store.last_seq();
    let (mut server, boot_out) = Server::boot(store, receipts_only(), 100);
    assert_eq!(
        receipt_state(&server, "i1"),
        Some(ReceiptState::Failed("server_restart".into()))
    );
    assert_eq!(
        message_failed(&server, &s),
        vec![("i1".to_string(), "server_restart".to_string())]
    );
    let marker = boot_out
        .iter()
        .find_map(|o| match o {
            ServerOutput::Appended(e) if matches!(e.kind, EventKind::MessageFailed { .. }) => {
                Some(e.clone())
            }
            _ => None,
        })
        .expect("the marker is appended at boot");
    assert!(marker.seq > before);
    assert_eq!(marker.session, s);
    // The stale session was ended at boot too, and the retry is refused with 422.
    assert_eq!(server.store().session_state(&s), Some(SessionState::Ended));
    let c2 = open(&mut server, 101);
    let (response, out) = post(&mut server, 101, Some(c2), interrupt(&s, "i1", "stop"));
    assert_eq!(response.status, 422);
    assert_eq!(
        Receipt::parse(&response.body).and_then(|r| r.error),
        Some("server_restart".into())
    );
    assert!(agent_inputs(&out).is_empty());
    // A receipt failed once is not failed again at the next boot.
    let store = server.into_store();
    let (server, _) = Server::boot(store, receipts_only(), 200);
    assert_eq!(message_failed(&server, &s).len(), 1);
}

#[test]
fn interrupt_for_a_session_without_runtime_resumes_it_under_receipts() {
    let mut server = boot_with(reference());
    let s = sid("old");
    let c = open(&mut server, 0);
    let (response, out) = post(&mut server, 1, Some(c), interrupt(&s, "i1", "wake up"));
    assert_eq!(response.status, 202, "{}", response.body);
    assert!(
        !out.iter()
            .any(|o| matches!(o, ServerOutput::CallInterrupt { .. })),
        "nothing to interrupt in a fresh runtime"
    );
    assert_eq!(
        agent_inputs(&out),
        vec![AgentInput {
            session: s.clone(),
            client_msg_id: "i1".into(),
            text: "wake up".into(),
            interrupt: true,
            new_session: false,
        }]
    );
    assert!(server.is_running(&s));
    assert_eq!(server.store().session_state(&s), Some(SessionState::Active));
    assert_eq!(receipt_state(&server, "i1"), Some(ReceiptState::Dispatched));
    // Without receipts the same request is a silent no-op.
    let mut plain = boot_with(ServerParams::default());
    let c = open(&mut plain, 0);
    let (response, out) = post(&mut plain, 1, Some(c), interrupt(&s, "i1", "wake up"));
    assert_eq!(response.status, 202);
    assert!(agent_inputs(&out).is_empty());
    assert!(!plain.is_running(&s));
}

#[test]
fn interrupt_whose_session_ended_before_settle_fails_its_receipt_with_422() {
    let mut server = boot_with(reference());
    let (c, w, s) = session_with_watcher(&mut server);
    let out = request(&mut server, 5, 41, Some(c), interrupt(&s, "i1", "stop"));
    let call = call_interrupt_token(&out);
    server.handle(
        6,
        ServerInput::AgentState {
            session: s.clone(),
            to: SessionState::Ended,
        },
    );
    let out = settle_interrupt(&mut server, 7, call, true);
    assert!(agent_inputs(&out).is_empty());
    let response = reply(&out, 41).expect("answered");
    assert_eq!(response.status, 422);
    assert_eq!(
        receipt_state(&server, "i1"),
        Some(ReceiptState::Failed("session_ended".into()))
    );
    // The marker is stored and goes out live to the watchers.
    assert_eq!(message_failed(&server, &s).len(), 1);
    assert!(deliveries(&out, w).iter().any(|(e, o)| *o == Origin::Live
        && matches!(
            e,
            ServerEvent::Session(SessionEvent {
                kind: EventKind::MessageFailed { .. },
                ..
            })
        )));
}

#[test]
fn without_receipts_replies_keep_the_ok_body_and_the_interrupt_answers_at_once() {
    let mut server = boot_with(ServerParams::default());
    let c = open(&mut server, 0);
    let (response, out) = post(&mut server, 0, Some(c), send(None, "m1", "hi"));
    assert_eq!(response, HttpResponse::new(202, "{\"ok\":true}"));
    let s = agent_inputs(&out)[0].session.clone();
    let (response, out) = post(&mut server, 1, Some(c), interrupt(&s, "i1", "stop"));
    assert_eq!(response, HttpResponse::new(202, "{\"ok\":true}"));
    assert!(out
        .iter()
        .any(|o| matches!(o, ServerOutput::CallInterrupt { .. })));
    assert_eq!(server.store().receipts().count(), 0, "no receipts written");
}

// ---- gap repair ----------------------------------------------------------------------

#[test]
fn failed_live_send_blocks_the_pair_and_later_live_events_skip_it() {
    let mut server = boot_with(reference());
    let (c, w, s) = session_with_watcher(&mut server);
    let cursor = server.registry().cursor(w, &s);
    assert_eq!(cursor, server.store().head_seq(&s));
    set_transport(&mut server, 1, w, TransportHealth::Throwing);
    let out = emit(&mut server, 2, &s, 1);
    assert!(deliveries(&out, w).is_empty());
    assert!(server.registry().is_blocked(w, &s));
    assert!(!server.registry().is_blocked(c, &s));
    assert_eq!(server.registry().cursor(w, &s), cursor);
    // Healed, but still blocked: later live events would leave a hole.
    set_transport(&mut server, 3, w, TransportHealth::Open);
    for n in 2..5 {
        let out = emit(&mut server, 4, &s, n);
        assert!(
            deliveries(&out, w).is_empty(),
            "no live send to a blocked pair"
        );
        assert_eq!(seqs(&out, c, Origin::Live).len(), 1, "others still get it");
    }
    assert_eq!(server.registry().cursor(w, &s), cursor);
    assert!(server.registry().is_blocked(w, &s));
}

#[test]
fn sync_repairs_a_blocked_pair_in_order_in_batches_of_at_most_50_then_live_resumes() {
    let mut server = boot_with(reference());
    let (_c, w, s) = session_with_watcher(&mut server);
    let start = server.registry().cursor(w, &s);
    set_transport(&mut server, 1, w, TransportHealth::Throwing);
    for n in 0..120 {
        emit(&mut server, 2, &s, n);
    }
    // While it still throws, sync stops on the first failure and nothing moves.
    let out = tick(&mut server, 5000);
    assert!(seqs(&out, w, Origin::Sync).is_empty());
    assert!(out
        .iter()
        .any(|o| matches!(o, ServerOutput::SyncBatch(b) if b.conn == w && b.stopped_on_failure)));
    set_transport(&mut server, 5001, w, TransportHealth::Open);
    let expected: Vec<Seq> = server
        .store()
        .events_after(&s, start, None)
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(expected.len(), 120);
    let mut got = Vec::new();
    let mut now = 10_000;
    while server.registry().is_blocked(w, &s) {
        let out = tick(&mut server, now);
        let batch = seqs(&out, w, Origin::Sync);
        assert!(!batch.is_empty() && batch.len() <= 50, "{}", batch.len());
        got.extend(batch);
        now += 5000;
        assert!(now < 100_000, "sync never finished");
    }
    assert_eq!(
        got, expected,
        "every missed event, in order, nothing skipped"
    );
    assert_eq!(now, 25_000, "50 + 50 + 20: three ticks");
    assert_eq!(server.registry().cursor(w, &s), server.store().head_seq(&s));
    // Live sends resume, and a caught-up pair gets nothing from the next tick.
    let out = emit(&mut server, now, &s, 999);
    assert_eq!(
        seqs(&out, w, Origin::Live),
        vec![server.store().head_seq(&s)]
    );
    let out = tick(&mut server, now + 5000);
    assert!(seqs(&out, w, Origin::Sync).is_empty());
    assert!(!out.iter().any(|o| matches!(o, ServerOutput::SyncBatch(_))));
}

#[test]
fn an_unwatched_blocked_pair_is_still_repaired_up_to_the_head_it_was_unwatched_at() {
    // Events stored while `w` watched were never delivered (its transport threw); the app
    // unwatches before sync repaired them. They were owed when stored, so sync still sends
    // them once the transport works, and nothing stored after the unwatch.
    let mut server = boot_with(reference());
    let (_c, w, s) = session_with_watcher(&mut server);
    let start = server.registry().cursor(w, &s);
    set_transport(&mut server, 1, w, TransportHealth::Throwing);
    for n in 0..3 {
        emit(&mut server, 2, &s, n);
    }
    assert!(server.registry().is_blocked(w, &s));
    let head = server.store().head_seq(&s);
    let (response, _) = post(
        &mut server,
        3,
        Some(w),
        ClientMsg::Unwatch { session: s.clone() },
    );
    assert_eq!(response.status, 200);
    assert_eq!(server.registry().owed(w, &s), Some(head));
    // Stored after the unwatch: not owed.
    emit(&mut server, 4, &s, 3);
    // Still throwing: nothing moves, the debt stays.
    let out = tick(&mut server, 5000);
    assert!(seqs(&out, w, Origin::Sync).is_empty());
    assert_eq!(server.registry().owed(w, &s), Some(head));
    set_transport(&mut server, 5001, w, TransportHealth::Open);
    let out = tick(&mut server, 10_000);
    let want: Vec<Seq> = server
        .store()
        .events_after(&s, start, None)
        .iter()
        .map(|e| e.seq)
        .filter(|&q| q <= head)
        .collect();
    assert_eq!(want.len(), 3);
    assert_eq!(seqs(&out, w, Origin::Sync), want);
    assert_eq!(server.registry().owed(w, &s), None);
    assert!(!server.registry().is_blocked(w, &s));
    // Settled: later ticks send nothing more to the unwatched pair.
    let out = tick(&mut server, 15_000);
    assert!(deliveries(&out, w).is_empty());
    // Watching again forgets a debt: the pair is repaired to the head as a watched one.
    let mut reg = ConnectionRegistry::new();
    reg.set_gap_repair(true);
    let c = ConnId::new(1, 1);
    reg.register(c);
    reg.watch(c, &s);
    reg.block(c, &s);
    reg.unwatch_at(c, &s, 7);
    assert_eq!(reg.owed(c, &s), Some(7));
    reg.watch(c, &s);
    assert_eq!(reg.owed(c, &s), None);
    assert!(reg.is_blocked(c, &s));
    // Without gap repair nothing is blocked, so nothing is owed.
    let mut reg = ConnectionRegistry::new();
    reg.register(c);
    reg.watch(c, &s);
    reg.block(c, &s);
    reg.unwatch_at(c, &s, 7);
    assert_eq!(reg.owed(c, &s), None);
}

#[test]
fn an_unwatch_repairs_a_blocked_pair_before_it_says_unwatched() {
    // The transport threw while s stored three events, then healed before the next sync
    // tick. The client stops tracking s when the `unwatched` frame arrives, so everything it
    // was owed must go out ahead of that frame, not at a later tick that a broken stream may
    // never carry.
    let mut server = boot_with(reference());
    let (_c, w, s) = session_with_watcher(&mut server);
    let start = server.registry().cursor(w, &s);
    set_transport(&mut server, 1, w, TransportHealth::Throwing);
    for n in 0..3 {
        emit(&mut server, 2, &s, n);
    }
    set_transport(&mut server, 3, w, TransportHealth::Open);
    assert!(server.registry().is_blocked(w, &s));
    let (response, out) = post(
        &mut server,
        4,
        Some(w),
        ClientMsg::Unwatch { session: s.clone() },
    );
    assert_eq!(response.status, 200);
    let want: Vec<Seq> = server
        .store()
        .events_after(&s, start, None)
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(want.len(), 3);
    let frames = deliveries(&out, w);
    let repaired: Vec<Seq> = frames
        .iter()
        .filter_map(|(e, _)| e.tracked().map(|(_, q)| q))
        .collect();
    assert_eq!(repaired, want, "every missed event, in order");
    assert_eq!(
        frames.last().map(|(e, _)| e.clone()),
        Some(ServerEvent::Unwatched { session: s.clone() }),
        "the frame comes after them"
    );
    assert!(!server.registry().is_blocked(w, &s));
    assert_eq!(server.registry().owed(w, &s), None, "nothing left owed");
    let out = tick(&mut server, 5000);
    assert!(deliveries(&out, w).is_empty());
}

#[test]
fn under_gap_repair_a_switch_keeps_the_previous_session_watched() {
    // The reference client goes on tracking the session it switched away from (and
    // re-watches it at every reconnect); the server agrees, so the watch set does not depend
    // on whether a prompt to it arrives before or after the switch.
    let (a, b) = (sid("a"), sid("b"));
    let mut server = boot_with(reference());
    let c = open(&mut server, 0);
    post(&mut server, 0, Some(c), send(Some(&a), "m1", "hi"));
    assert_eq!(server.registry().get(c).unwrap().active, Some(a.clone()));
    let (response, _) = post(
        &mut server,
        1,
        Some(c),
        ClientMsg::SwitchSession { session: b.clone() },
    );
    assert_eq!(response.status, 200);
    let k = server.registry().get(c).unwrap();
    assert_eq!(k.active, Some(b.clone()));
    assert!(k.watched.contains(&a) && k.watched.contains(&b));
    let out = emit(&mut server, 2, &a, 1);
    assert_eq!(
        seqs(&out, c, Origin::Live),
        vec![server.store().head_seq(&a)]
    );
    // Without gap repair the previous active session is unwatched, as in mitzo.
    let mut server = boot_with(receipts_only());
    let c = open(&mut server, 0);
    post(&mut server, 0, Some(c), send(Some(&a), "m1", "hi"));
    post(
        &mut server,
        1,
        Some(c),
        ClientMsg::SwitchSession { session: b.clone() },
    );
    assert!(!server.registry().get(c).unwrap().watched.contains(&a));
}

#[test]
fn a_receipted_interrupt_makes_the_session_the_senders_active_one() {
    // The client tracks a session it interrupts; the server watches it for that connection,
    // so the echo and what the agent does next reach the sender.
    let mut server = boot_with(reference());
    let (_c, _w, s) = session_with_watcher(&mut server);
    let k = open(&mut server, 1);
    assert!(!server.registry().get(k).unwrap().watched.contains(&s));
    let out = request(&mut server, 2, 9, Some(k), interrupt(&s, "i1", "stop"));
    let echo = seqs(&out, k, Origin::Live);
    assert_eq!(
        echo,
        vec![server.store().head_seq(&s)],
        "the echo reaches the sender"
    );
    assert_eq!(server.registry().get(k).unwrap().active, Some(s.clone()));
    let token = call_interrupt_token(&out);
    let out = settle_interrupt(&mut server, 3, token, true);
    assert_eq!(reply(&out, 9).map(|r| r.status), Some(202));
    let out = emit(&mut server, 4, &s, 1);
    assert_eq!(
        seqs(&out, k, Origin::Live),
        vec![server.store().head_seq(&s)]
    );
}

#[test]
fn newly_watched_pair_starts_at_the_head_so_sync_resends_no_history() {
    let mut server = boot_with(reference());
    let s = sid("s");
    server.handle(0, ServerInput::StartSession { session: s.clone() });
    for n in 0..60 {
        emit(&mut server, 0, &s, n);
    }
    let head = server.store().head_seq(&s);
    let (cw, cs, cd) = (
        open(&mut server, 1),
        open(&mut server, 1),
        open(&mut server, 1),
    );
    post(
        &mut server,
        1,
        Some(cw),
        ClientMsg::Watch { session: s.clone() },
    );
    post(
        &mut server,
        1,
        Some(cs),
        ClientMsg::SwitchSession { session: s.clone() },
    );
    for conn in [cw, cs] {
        assert_eq!(server.registry().cursor(conn, &s), head, "{conn}");
    }
    // A tick now has nothing to send: no history crawl for the new watchers.
    let out = tick(&mut server, 5000);
    for conn in [cw, cs] {
        assert!(seqs(&out, conn, Origin::Sync).is_empty(), "{conn}");
    }
    // The sender's pair starts at the head too; its echo goes out live on top of it, to
    // every watcher.
    let (_, out) = post(&mut server, 5001, Some(cd), send(Some(&s), "m1", "hi"));
    for conn in [cw, cs, cd] {
        assert_eq!(seqs(&out, conn, Origin::Live), vec![head + 1], "{conn}");
        assert_eq!(server.registry().cursor(conn, &s), head + 1);
    }
    let out = tick(&mut server, 10_000);
    assert!(out
        .iter()
        .all(|o| !matches!(o, ServerOutput::Deliver(_) | ServerOutput::SyncBatch(_))));
}

#[test]
fn watch_keeps_an_existing_cursor_an_unwatch_forgets_it_and_without_gap_repair_starts_at_zero() {
    let s = sid("s");
    let mut server = boot_with(reference());
    server.handle(0, ServerInput::StartSession { session: s.clone() });
    emit(&mut server, 0, &s, 0);
    let c = open(&mut server, 1);
    let reconnect = ClientMsg::Reconnect {
        sessions: vec![SessionCursor {
            session: s.clone(),
            last_seq: 1,
        }],
    };
    post(&mut server, 1, Some(c), reconnect);
    let cursor = server.registry().cursor(c, &s);
    // A watch of a pair that is watched already keeps its cursor.
    set_transport(&mut server, 2, c, TransportHealth::Throwing);
    emit(&mut server, 2, &s, 1);
    set_transport(&mut server, 2, c, TransportHealth::Open);
    post(
        &mut server,
        3,
        Some(c),
        ClientMsg::Watch { session: s.clone() },
    );
    assert_eq!(
        server.registry().cursor(c, &s),
        cursor,
        "kept cursor, not reset to the head"
    );
    // An unwatched pair owed nothing forgets its cursor: watched again, it starts at the
    // head, and sync does not crawl through what was stored while it was not watched.
    post(
        &mut server,
        4,
        Some(c),
        ClientMsg::Unwatch { session: s.clone() },
    );
    assert!(!server.registry().has_cursor(c, &s));
    emit(&mut server, 5, &s, 2);
    post(
        &mut server,
        6,
        Some(c),
        ClientMsg::Watch { session: s.clone() },
    );
    assert_eq!(server.registry().cursor(c, &s), server.store().head_seq(&s));
    let mut plain = boot_with(ServerParams::default());
    plain.handle(0, ServerInput::StartSession { session: s.clone() });
    let c = open(&mut plain, 1);
    post(
        &mut plain,
        1,
        Some(c),
        ClientMsg::Watch { session: s.clone() },
    );
    assert_eq!(plain.registry().cursor(c, &s), 0);
    assert!(!plain.registry().has_cursor(c, &s));
}

#[test]
fn reconnect_still_resets_to_last_seq_and_replays_everything_after_it() {
    let mut server = boot_with(reference());
    let s = sid("s");
    server.handle(0, ServerInput::StartSession { session: s.clone() });
    for n in 0..80 {
        emit(&mut server, 0, &s, n);
    }
    let c = open(&mut server, 1);
    // A fresh watch starts at the head ...
    post(
        &mut server,
        1,
        Some(c),
        ClientMsg::Watch { session: s.clone() },
    );
    let head = server.store().head_seq(&s);
    assert_eq!(server.registry().cursor(c, &s), head);
    // ... but the reconnect rewinds to the client's lastSeq and replays it all, unbounded.
    let (response, out) = post(
        &mut server,
        2,
        Some(c),
        ClientMsg::Reconnect {
            sessions: vec![SessionCursor {
                session: s.clone(),
                last_seq: 5,
            }],
        },
    );
    assert_eq!(response.status, 200);
    let expected: Vec<Seq> = server
        .store()
        .events_after(&s, 5, None)
        .iter()
        .map(|e| e.seq)
        .collect();
    assert!(expected.len() > 50);
    assert_eq!(seqs(&out, c, Origin::Replay), expected);
    assert_eq!(server.registry().cursor(c, &s), head);
    assert!(!server.registry().is_blocked(c, &s));
    // A replay onto a throwing transport stops and leaves the pair to sync, and says so:
    // a 503 the client retries, so the rest comes at once when the transport recovers.
    set_transport(&mut server, 3, c, TransportHealth::Throwing);
    let replay_after_5 = ClientMsg::Reconnect {
        sessions: vec![SessionCursor {
            session: s.clone(),
            last_seq: 5,
        }],
    };
    let (response, _) = post(&mut server, 4, Some(c), replay_after_5.clone());
    assert_eq!(response.status, 503, "{}", response.body);
    assert_eq!(server.registry().cursor(c, &s), 5);
    assert!(server.registry().is_blocked(c, &s));
    set_transport(&mut server, 5, c, TransportHealth::Open);
    let (response, out) = post(&mut server, 6, Some(c), replay_after_5.clone());
    assert_eq!(response.status, 200);
    assert_eq!(seqs(&out, c, Origin::Replay), expected);
    assert!(!server.registry().is_blocked(c, &s));
    // Without gap repair the failed sends go unnoticed, as in mitzo: 200.
    let mut plain = boot_with(ServerParams::default());
    plain.handle(0, ServerInput::StartSession { session: s.clone() });
    emit(&mut plain, 0, &s, 0);
    let c = open(&mut plain, 1);
    set_transport(&mut plain, 2, c, TransportHealth::Throwing);
    let (response, _) = post(&mut plain, 3, Some(c), replay_after_5);
    assert_eq!(response.status, 200);
}

#[test]
fn without_gap_repair_a_failed_live_send_does_not_block() {
    let mut server = boot_with(ServerParams::default());
    let (_c, w, s) = session_with_watcher(&mut server);
    set_transport(&mut server, 1, w, TransportHealth::Throwing);
    emit(&mut server, 2, &s, 0);
    assert!(!server.registry().is_blocked(w, &s));
    set_transport(&mut server, 3, w, TransportHealth::Open);
    let out = emit(&mut server, 4, &s, 1);
    // The baseline sends live again at once, jumping the cursor over the lost event.
    assert_eq!(
        seqs(&out, w, Origin::Live),
        vec![server.store().head_seq(&s)]
    );
    assert_eq!(server.registry().cursor(w, &s), server.store().head_seq(&s));
}

#[test]
fn gap_repair_server_param_alone_blocks_and_repairs() {
    let mut server = boot_with(gap_repair_only());
    assert!(server.registry().gap_repair());
    let (_c, w, s) = session_with_watcher(&mut server);
    set_transport(&mut server, 1, w, TransportHealth::Throwing);
    emit(&mut server, 2, &s, 0);
    set_transport(&mut server, 3, w, TransportHealth::Open);
    // The filter here is IsActive; the blocked pair is repaired all the same.
    let out = tick(&mut server, 5000);
    assert_eq!(
        seqs(&out, w, Origin::Sync),
        vec![server.store().head_seq(&s)]
    );
    assert!(!server.registry().is_blocked(w, &s));
}

// ---- registry: gap repair and the Lagging filter -------------------------------------

fn lagging(batch_limit: usize) -> SyncParams {
    SyncParams {
        filter: SyncFilter::Lagging,
        batch_limit,
        ..SyncParams::default()
    }
}

fn synced(out: &[Delivery], conn: ConnId, s: &SessionId) -> Vec<Seq> {
    out.iter()
        .filter(|d| d.conn == conn && d.origin == Origin::Sync)
        .filter_map(|d| match &d.event {
            ServerEvent::Session(e) if e.session == *s => Some(e.seq),
            _ => None,
        })
        .collect()
}

#[test]
fn lagging_filter_syncs_detached_and_suspended_sessions_that_lag_and_skips_caught_up_ones() {
    let mut store = EventStore::new();
    let (det, sus, act, ended) = (sid("det"), sid("sus"), sid("act"), sid("ended"));
    for (s, state) in [
        (&det, SessionState::Detached),
        (&sus, SessionState::Suspended),
        (&act, SessionState::Active),
        (&ended, SessionState::Ended),
    ] {
        store.set_state(s, state, "test", 0, true);
        for n in 0..70 {
            store.append(s, EventKind::AgentOutput { n });
        }
    }
    let c = ConnId::new(1, 1);
    let mut reg = ConnectionRegistry::new();
    reg.register(c);
    for s in [&det, &sus, &act, &ended] {
        reg.watch(c, s);
    }
    // `act` is caught up; `ended` lags by exactly one event.
    reg.reset_cursor(c, &act, store.head_seq(&act));
    let ended_head = store.head_seq(&ended);
    reg.reset_cursor(c, &ended, ended_head - 1);
    let mut out = Vec::new();
    let batches = reg.sync_tick(&store, &lagging(50), &mut out);
    assert_eq!(synced(&out, c, &det).len(), 50);
    assert_eq!(synced(&out, c, &sus).len(), 50);
    assert_eq!(synced(&out, c, &ended), vec![ended_head]);
    assert!(synced(&out, c, &act).is_empty());
    let visited: Vec<&SessionId> = batches.iter().map(|b| &b.session).collect();
    assert_eq!(
        visited,
        vec![&det, &ended, &sus],
        "no batch for a caught-up pair"
    );
    // The old filters skip the same lagging DETACHED/SUSPENDED sessions.
    let mut reg2 = reg.clone();
    reg2.reset_cursor(c, &det, 0);
    let mut out = Vec::new();
    let should = SyncParams {
        filter: SyncFilter::ShouldSync {
            include_closing: true,
        },
        ..SyncParams::default()
    };
    reg2.sync_tick(&store, &should, &mut out);
    assert!(synced(&out, c, &det).is_empty());
    assert!(synced(&out, c, &sus).is_empty());
    // The next Lagging tick finishes the crawl, and the one after sends nothing at all.
    let mut out = Vec::new();
    reg.sync_tick(&store, &lagging(50), &mut out);
    assert_eq!(
        synced(&out, c, &det).len(),
        21,
        "1 state event + 70 outputs"
    );
    let mut out = Vec::new();
    let batches = reg.sync_tick(&store, &lagging(50), &mut out);
    assert!(out.is_empty());
    assert!(batches.is_empty());
}

#[test]
fn lagging_filter_sends_at_most_batch_limit_per_connection_and_session() {
    let mut store = EventStore::new();
    let (a, b) = (sid("a"), sid("b"));
    for n in 0..30 {
        store.append(&a, EventKind::AgentOutput { n });
        store.append(&b, EventKind::AgentOutput { n });
    }
    let mut reg = ConnectionRegistry::new();
    let conns = [ConnId::new(1, 1), ConnId::new(1, 2)];
    for c in conns {
        reg.register(c);
        reg.watch(c, &a);
        reg.watch(c, &b);
    }
    let mut out = Vec::new();
    let batches = reg.sync_tick(&store, &lagging(7), &mut out);
    assert_eq!(batches.len(), 4);
    for c in conns {
        for s in [&a, &b] {
            let got = synced(&out, c, s);
            let want: Vec<Seq> = store
                .events_after(s, 0, Some(7))
                .iter()
                .map(|e| e.seq)
                .collect();
            assert_eq!(got, want, "{c} {s}");
        }
    }
    assert_eq!(out.len(), 4 * 7);
}

#[test]
fn registry_gap_repair_blocks_a_lagging_pair_instead_of_sending_it_a_hole() {
    let mut store = EventStore::new();
    let s = sid("s");
    let c = ConnId::new(1, 1);
    let mut reg = ConnectionRegistry::new();
    reg.set_gap_repair(true);
    reg.register(c);
    reg.watch(c, &s);
    assert!(reg.start_at(c, &s, 0));
    assert!(!reg.start_at(c, &s, 99), "an existing entry is kept");
    let e1 = store.append(&s, EventKind::AgentOutput { n: 1 });
    let mut out = Vec::new();
    assert_eq!(
        reg.broadcast(&s, &ServerEvent::Session(e1.clone()), &mut out),
        1
    );
    // e2 is never broadcast (lost); e3's prev_seq names it, so c must not get e3 live.
    let _e2 = store.append(&s, EventKind::AgentOutput { n: 2 });
    let e3 = store.append(&s, EventKind::AgentOutput { n: 3 });
    let mut out = Vec::new();
    assert_eq!(reg.broadcast(&s, &ServerEvent::Session(e3), &mut out), 0);
    assert!(out.is_empty());
    assert!(reg.is_blocked(c, &s));
    assert_eq!(reg.cursor(c, &s), e1.seq);
    // Sync fills the hole in order, never skipping ahead even with a gap cap configured.
    let params = SyncParams {
        filter: SyncFilter::All,
        batch_limit: 50,
        gap_cap: Some(ssesim_model::registry::ReplayGapCap {
            max_gap: 1,
            inclusive: false,
            store_moved_cursor: true,
        }),
        ..SyncParams::default()
    };
    let mut out = Vec::new();
    let batches = reg.sync_tick(&store, &params, &mut out);
    assert_eq!(synced(&out, c, &s), vec![2, 3]);
    assert_eq!(batches[0].skipped, None);
    assert!(!reg.is_blocked(c, &s));
    // A non-session frame to watchers moves nothing and blocks nothing.
    reg.set_transport(c, TransportHealth::Throwing);
    let err = ServerEvent::Error {
        session: Some(s.clone()),
        message: "x".into(),
    };
    let mut out = Vec::new();
    assert_eq!(reg.notify(&s, &err, &mut out), 0);
    assert!(!reg.is_blocked(c, &s));
    // Removing the connection forgets its blocks.
    reg.block(c, &s);
    assert!(reg.is_blocked(c, &s));
    reg.remove(c);
    assert_eq!(reg.blocked().count(), 0);
}

#[test]
fn reference_preset_end_to_end_send_crash_boot_and_resend() {
    // A prompt sent through a stale id after a restart lands once, in the same session.
    let mut server = boot_with(reference());
    let c = open(&mut server, 0);
    let (first, _) = post(&mut server, 0, Some(c), send(None, "m1", "hello"));
    let s = Receipt::parse(&first.body).unwrap().session;
    let store = server.into_store();
    let (mut server, _) = Server::boot(store, reference(), 50);
    let (response, out) = post(&mut server, 51, Some(c), send(Some(&s), "m2", "again"));
    assert_eq!(
        response.status, 202,
        "a pre-crash id is no 404 under receipts"
    );
    assert_eq!(agent_inputs(&out).len(), 1);
    assert!(server.is_running(&s));
    let (response, out) = post(&mut server, 52, Some(c), send(Some(&s), "m2", "again"));
    assert_eq!(response.status, 202);
    assert!(agent_inputs(&out).is_empty());
    assert_eq!(
        server
            .store()
            .receipts()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>(),
        vec!["m1", "m2"]
    );
}
