//! The server process of spec §3.3–§5: the REST status rules, stream lifecycle, send and
//! interrupt handling, crash and restart, reconnect replay, watch/switch, suspend timers.

mod common;

use common::server::*;
use common::sid;
use ssesim_model::server::{AgentControl, PROTOCOL_VERSION};
use ssesim_model::wire::SessionCursor;
use ssesim_model::{
    AgentInput, ClientMsg, ConnId, Delivery, Endpoint, EventKind, EventStore, HttpRequest,
    HttpResponse, Origin, Seq, Server, ServerEvent, ServerInput, ServerOutput, ServerParams,
    ServerTimer, SessionEvent, SessionId, SessionState, SessionView, TransportHealth,
};

fn cursors(entries: &[(&SessionId, Seq)]) -> Vec<SessionCursor> {
    entries
        .iter()
        .map(|(s, q)| SessionCursor {
            session: (*s).clone(),
            last_seq: *q,
        })
        .collect()
}

fn user_messages(server: &Server, s: &SessionId) -> Vec<(String, bool)> {
    server
        .store()
        .session_events(s)
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::UserMessage {
                client_msg_id,
                interrupt,
                ..
            } => Some((client_msg_id.clone(), *interrupt)),
            _ => None,
        })
        .collect()
}

fn last_state_reason(server: &Server, s: &SessionId) -> Option<(SessionState, String)> {
    server
        .store()
        .session_events(s)
        .iter()
        .rev()
        .find_map(|e| match &e.kind {
            EventKind::SessionStateChanged {
                internal, reason, ..
            } => Some((*internal, reason.clone())),
            _ => None,
        })
}

fn valid_body(endpoint: Endpoint, s: &SessionId) -> ClientMsg {
    match endpoint {
        Endpoint::Send => send(Some(s), "m", "text"),
        Endpoint::Interrupt => interrupt(s, "m", "text"),
        Endpoint::Stop => ClientMsg::Stop { session: s.clone() },
        Endpoint::Permission => ClientMsg::PermissionResponse {
            session: s.clone(),
            request_id: "p1".into(),
            allow: true,
        },
        Endpoint::Mode => ClientMsg::SetMode {
            session: s.clone(),
            mode: "plan".into(),
        },
        Endpoint::Watch => ClientMsg::Watch { session: s.clone() },
        Endpoint::Unwatch => ClientMsg::Unwatch { session: s.clone() },
        Endpoint::Switch => ClientMsg::SwitchSession { session: s.clone() },
        Endpoint::Suspend => ClientMsg::SessionSuspend {
            sessions: cursors(&[(s, 0)]),
        },
        Endpoint::Close => ClientMsg::SessionClose { session: s.clone() },
        Endpoint::Reconnect => ClientMsg::Reconnect {
            sessions: cursors(&[(s, 0)]),
        },
    }
}

fn invalid_body(endpoint: Endpoint) -> ClientMsg {
    match endpoint {
        Endpoint::Send => send(Some(&sid("s")), "m", ""),
        Endpoint::Interrupt => interrupt(&sid("s"), "m", ""),
        // A session message without a session id.
        other => valid_body(other, &sid("")),
    }
}

#[test]
fn request_without_connection_header_is_400_on_every_endpoint() {
    let mut server = boot();
    let (_, s) = connected_session(&mut server, 0);
    for endpoint in Endpoint::ALL {
        let (response, out) = post_to(&mut server, 1, endpoint, None, valid_body(endpoint, &s));
        assert_eq!(response.status, 400, "{endpoint}");
        assert!(out.is_empty(), "{endpoint}: nothing handled");
    }
}

#[test]
fn send_with_stale_connection_is_404_before_body_validation() {
    let mut server = boot();
    let stale = ConnId::new(1, 99);
    for endpoint in [Endpoint::Send, Endpoint::Interrupt] {
        let (response, out) = post_to(
            &mut server,
            0,
            endpoint,
            Some(stale),
            invalid_body(endpoint),
        );
        assert_eq!(
            response.status, 404,
            "{endpoint}: stale id wins over a bad body"
        );
        assert!(out.is_empty());
        let (response, _) = post_to(
            &mut server,
            0,
            endpoint,
            Some(stale),
            valid_body(endpoint, &sid("s")),
        );
        assert_eq!(response.status, 404);
    }
    assert_eq!(server.store().last_seq(), 0);
}

#[test]
fn send_with_valid_connection_and_empty_text_is_400_and_dispatches_nothing() {
    let mut server = boot();
    let c = open(&mut server, 0);
    let before = server.store().last_seq();
    let (response, out) = post(&mut server, 1, Some(c), send(None, "m1", ""));
    assert_eq!(response.status, 400);
    assert!(out.is_empty());
    assert_eq!(server.store().last_seq(), before);
    // Missing clientMsgId is invalid too.
    let (response, _) = post(&mut server, 1, Some(c), send(None, "", "text"));
    assert_eq!(response.status, 400);
    // A body posted to another endpoint is invalid there.
    let (response, _) = post_to(
        &mut server,
        1,
        Endpoint::Watch,
        Some(c),
        send(None, "m1", "x"),
    );
    assert_eq!(response.status, 400);
}

#[test]
fn other_endpoints_answer_404_for_unknown_connection_400_for_bad_body_200_on_success() {
    let mut server = boot();
    let c = open(&mut server, 0);
    let s = sid("s");
    server.handle(0, ServerInput::StartSession { session: s.clone() });
    let stale = ConnId::new(1, 99);
    for endpoint in Endpoint::ALL.into_iter().filter(|e| !e.needs_stream()) {
        let (r, _) = post_to(
            &mut server,
            1,
            endpoint,
            Some(stale),
            invalid_body(endpoint),
        );
        assert_eq!(
            r.status, 404,
            "{endpoint} unknown connection before validation"
        );
        let (r, _) = post_to(&mut server, 1, endpoint, Some(c), invalid_body(endpoint));
        assert_eq!(r.status, 400, "{endpoint} invalid body");
        let (r, _) = post_to(&mut server, 1, endpoint, Some(c), valid_body(endpoint, &s));
        assert_eq!(r.status, 200, "{endpoint} success: {}", r.body);
        assert!(r.is_success());
    }
}

#[test]
fn control_endpoints_reach_a_running_agent() {
    let mut server = boot();
    let (c, s) = connected_session(&mut server, 0);
    for (endpoint, control) in [
        (Endpoint::Stop, AgentControl::Stop),
        (Endpoint::Permission, AgentControl::Permission),
        (Endpoint::Mode, AgentControl::Mode),
    ] {
        let out = post_ok(&mut server, 1, c, valid_body(endpoint, &s));
        assert_eq!(
            out,
            vec![ServerOutput::AgentControl {
                session: s.clone(),
                control
            }]
        );
    }
}

#[test]
fn send_succeeds_with_202_and_dispatches_an_agent_input() {
    let mut server = boot();
    let c = open(&mut server, 0);
    let (response, out) = post(&mut server, 1, Some(c), send(None, "m1", "hello"));
    assert_eq!(response.status, 202);
    let inputs = agent_inputs(&out);
    assert_eq!(inputs.len(), 1);
    let s = inputs[0].session.clone();
    assert_eq!(
        inputs[0],
        AgentInput {
            session: s.clone(),
            client_msg_id: "m1".into(),
            text: "hello".into(),
            interrupt: false,
            new_session: true,
        }
    );
    assert!(server.is_running(&s));
    assert_eq!(server.store().session_state(&s), Some(SessionState::Active));
    assert_eq!(user_messages(&server, &s), vec![("m1".to_string(), false)]);
    // The sender now watches the session with it active, and gets the echo live.
    let conn = server.registry().get(c).expect("registered");
    assert_eq!(conn.active, Some(s.clone()));
    let echoed: Vec<(ServerEvent, Origin)> = deliveries(&out, c)
        .into_iter()
        .filter(|(e, _)| {
            matches!(
                e,
                ServerEvent::Session(SessionEvent {
                    kind: EventKind::UserMessage { .. },
                    ..
                })
            )
        })
        .collect();
    assert_eq!(echoed.len(), 1);
    assert_eq!(echoed[0].1, Origin::Live);
    assert_eq!(server.registry().cursor(c, &s), server.store().head_seq(&s));
}

#[test]
fn failing_handler_answers_500_for_the_next_k_requests_then_succeeds() {
    let mut server = boot();
    let (c, s) = connected_session(&mut server, 0);
    server.handle(
        1,
        ServerInput::FailHandlers {
            endpoint: Endpoint::Watch,
            count: 2,
        },
    );
    let watch = ClientMsg::Watch { session: s.clone() };
    let (r, out) = post(&mut server, 2, Some(c), watch.clone());
    assert_eq!(r.status, 500);
    assert!(out.is_empty(), "the handler did not run");
    // Validation comes first and does not consume a failure.
    let (r, _) = post(&mut server, 2, Some(c), invalid_body(Endpoint::Watch));
    assert_eq!(r.status, 400);
    let (r, _) = post(&mut server, 2, Some(c), watch.clone());
    assert_eq!(r.status, 500);
    let (r, out) = post(&mut server, 2, Some(c), watch);
    assert_eq!(r.status, 200);
    assert_eq!(
        deliveries(&out, c),
        vec![(ServerEvent::Watched { session: s.clone() }, Origin::Direct)]
    );

    server.handle(
        3,
        ServerInput::FailHandlers {
            endpoint: Endpoint::Send,
            count: 1,
        },
    );
    let (r, out) = post(&mut server, 4, Some(c), send(Some(&s), "m2", "x"));
    assert_eq!(r.status, 500);
    assert!(agent_inputs(&out).is_empty());
    let (r, out) = post(&mut server, 5, Some(c), send(Some(&s), "m2", "x"));
    assert_eq!(r.status, 202);
    assert_eq!(agent_inputs(&out).len(), 1);
}

#[test]
fn open_stream_yields_stream_opened_then_a_welcome_with_a_fresh_id() {
    let mut server = boot();
    let out = server.handle(0, ServerInput::OpenStream);
    let ServerOutput::StreamOpened { conn: c1 } = out[0] else {
        panic!("expected StreamOpened, got {:?}", out[0]);
    };
    assert_eq!(
        out,
        vec![
            ServerOutput::StreamOpened { conn: c1 },
            ServerOutput::Deliver(Delivery {
                conn: c1,
                event: ServerEvent::Welcome {
                    connection_id: c1,
                    protocol_version: PROTOCOL_VERSION,
                },
                origin: Origin::Direct,
            }),
        ]
    );
    assert_eq!(PROTOCOL_VERSION, 2);
    assert!(server.has_stream(c1));
    assert!(server.registry().contains(c1));
    let c2 = open(&mut server, 0);
    assert_ne!(c1, c2);
    assert_eq!(server.registry().len(), 2);
}

#[test]
fn connection_ids_never_repeat_across_boots() {
    let mut first = boot();
    let a = open(&mut first, 0);
    let b = open(&mut first, 0);
    let (mut second, _) = Server::boot(first.into_store(), ServerParams::default(), 10);
    assert_eq!(second.boot_number(), 2);
    let c = open(&mut second, 10);
    let d = open(&mut second, 10);
    let ids = [a, b, c, d];
    for (i, x) in ids.iter().enumerate() {
        for y in &ids[i + 1..] {
            assert_ne!(x, y);
        }
    }
    assert_eq!(c.boot(), 2);
    assert_eq!(a.boot(), 1);
}

#[test]
fn send_without_session_starts_a_new_session_every_time_even_on_retry() {
    let mut server = boot();
    let c = open(&mut server, 0);
    let (r1, out1) = post(&mut server, 1, Some(c), send(None, "m1", "hello"));
    let (r2, out2) = post(&mut server, 2, Some(c), send(None, "m1", "hello"));
    assert_eq!((r1.status, r2.status), (202, 202));
    let (a, b) = (agent_inputs(&out1), agent_inputs(&out2));
    assert_eq!((a.len(), b.len()), (1, 1));
    assert!(a[0].new_session && b[0].new_session);
    assert_eq!(a[0].client_msg_id, b[0].client_msg_id);
    assert_ne!(
        a[0].session, b[0].session,
        "the retried first message made a second session"
    );
    assert!(server.is_running(&a[0].session) && server.is_running(&b[0].session));
}

#[test]
fn duplicate_client_msg_id_to_a_running_session_dispatches_once() {
    let mut server = boot();
    let (c, s) = connected_session(&mut server, 0);
    // The first message retried with its new session id is already stored.
    let (r, out) = post(&mut server, 1, Some(c), send(Some(&s), "first", "hello"));
    assert_eq!(r.status, 202);
    assert!(agent_inputs(&out).is_empty());
    let (_, out) = post(&mut server, 2, Some(c), send(Some(&s), "m2", "again"));
    assert_eq!(agent_inputs(&out).len(), 1);
    assert!(!agent_inputs(&out)[0].new_session);
    let (r, out) = post(&mut server, 3, Some(c), send(Some(&s), "m2", "again"));
    assert_eq!(r.status, 202, "accepted without dispatch");
    assert!(agent_inputs(&out).is_empty());
    assert!(out.iter().all(|o| !matches!(o, ServerOutput::Appended(_))));
    assert_eq!(
        user_messages(&server, &s),
        vec![("first".to_string(), false), ("m2".to_string(), false)]
    );
    // The same id in another running session is not a duplicate.
    server.handle(
        4,
        ServerInput::StartSession {
            session: sid("other"),
        },
    );
    let (_, out) = post(
        &mut server,
        5,
        Some(c),
        send(Some(&sid("other")), "m2", "again"),
    );
    assert_eq!(agent_inputs(&out).len(), 1);
}

#[test]
fn send_to_a_stopped_session_resumes_it_without_dedup_by_default() {
    let mut server = boot();
    let (c, s) = connected_session(&mut server, 0);
    server.handle(
        1,
        ServerInput::AgentState {
            session: s.clone(),
            to: SessionState::Ended,
        },
    );
    assert!(!server.is_running(&s));
    let (r, out) = post(&mut server, 2, Some(c), send(Some(&s), "first", "hello"));
    assert_eq!(r.status, 202);
    assert_eq!(
        agent_inputs(&out).len(),
        1,
        "resume path is not de-duplicated"
    );
    assert!(server.is_running(&s));
    assert_eq!(server.store().session_state(&s), Some(SessionState::Active));
    assert!(!out
        .iter()
        .any(|o| matches!(o, ServerOutput::IllegalTransition { .. })));

    let mut guarded = boot_with(ServerParams {
        dedup_on_resume: true,
        ..ServerParams::default()
    });
    let (c, s) = connected_session(&mut guarded, 0);
    guarded.handle(
        1,
        ServerInput::AgentState {
            session: s.clone(),
            to: SessionState::Ended,
        },
    );
    let (_, out) = post(&mut guarded, 2, Some(c), send(Some(&s), "first", "hello"));
    assert!(agent_inputs(&out).is_empty());
}

/// A running session `s` started by `c`, watched by a second connection `w`.
fn interrupt_setup(params: ServerParams) -> (Server, ConnId, ConnId, SessionId) {
    let mut server = boot_with(params);
    let (c, w, s) = session_with_watcher(&mut server);
    (server, c, w, s)
}

#[test]
fn interrupt_persists_and_echoes_the_message_then_calls_interrupt_before_the_202() {
    let (mut server, c, w, s) = interrupt_setup(ServerParams::default());
    let mut out = server.handle(
        10,
        ServerInput::Request {
            token: 5,
            request: HttpRequest {
                endpoint: Endpoint::Interrupt,
                connection_id: Some(c),
                body: interrupt(&s, "m2", "stop that"),
            },
        },
    );
    let appended = out
        .iter()
        .position(|o| {
            matches!(
                o,
                ServerOutput::Appended(SessionEvent {
                    kind: EventKind::UserMessage { .. },
                    ..
                })
            )
        })
        .expect("user message appended");
    let called = out
        .iter()
        .position(|o| matches!(o, ServerOutput::CallInterrupt { .. }))
        .expect("interrupt called");
    assert!(appended < called);
    assert_eq!(
        out.pop(),
        Some(ServerOutput::Respond {
            token: 5,
            response: HttpResponse::new(202, "{\"ok\":true}"),
        })
    );
    assert!(
        agent_inputs(&out).is_empty(),
        "nothing reaches the agent before interrupt() settles"
    );
    assert_eq!(
        user_messages(&server, &s).last(),
        Some(&("m2".to_string(), true))
    );
    for conn in [c, w] {
        let echoes: Vec<Origin> = deliveries(&out, conn)
            .into_iter()
            .filter(|(e, _)| {
                matches!(
                    e,
                    ServerEvent::Session(SessionEvent {
                        kind: EventKind::UserMessage {
                            interrupt: true,
                            ..
                        },
                        ..
                    })
                )
            })
            .map(|(_, o)| o)
            .collect();
        assert_eq!(echoes, vec![Origin::Live], "echoed to {conn}");
    }
    assert!(out.iter().any(|o| *o
        == ServerOutput::CallInterrupt {
            token: call_interrupt_token(&out),
            session: s.clone()
        }));
}

#[test]
fn interrupt_settled_ok_pushes_the_message_with_the_interrupt_flag() {
    let (mut server, c, _, s) = interrupt_setup(ServerParams::default());
    let out = post_ok(&mut server, 10, c, interrupt(&s, "m2", "stop that"));
    let token = call_interrupt_token(&out);
    let out = settle_interrupt(&mut server, 11, token, true);
    assert_eq!(
        agent_inputs(&out),
        vec![AgentInput {
            session: s.clone(),
            client_msg_id: "m2".into(),
            text: "stop that".into(),
            interrupt: true,
            new_session: false,
        }]
    );
    // A settlement is consumed once.
    let again = settle_interrupt(&mut server, 12, token, true);
    assert!(again.is_empty());
}

#[test]
fn interrupt_with_a_known_message_id_calls_interrupt_but_does_not_push_again() {
    let (mut server, c, _, s) = interrupt_setup(ServerParams::default());
    let out = post_ok(&mut server, 10, c, interrupt(&s, "first", "hello"));
    assert!(!out.iter().any(|o| matches!(o, ServerOutput::Appended(_))));
    let token = call_interrupt_token(&out);
    let out = settle_interrupt(&mut server, 11, token, true);
    assert!(agent_inputs(&out).is_empty());
}

#[test]
fn interrupt_to_a_session_without_runtime_is_202_and_does_nothing() {
    let mut server = boot();
    let c = open(&mut server, 0);
    let out = post_ok(&mut server, 1, c, interrupt(&sid("idle"), "m", "x"));
    assert!(out.is_empty());
    assert_eq!(server.store().last_seq(), 0);
}

#[test]
fn interrupt_failure_without_guard_crashes_and_every_later_input_is_ignored() {
    let (mut server, c, _, s) = interrupt_setup(ServerParams::default());
    let out = post_ok(&mut server, 10, c, interrupt(&s, "m2", "stop that"));
    let token = call_interrupt_token(&out);
    let out = settle_interrupt(&mut server, 11, token, false);
    assert!(
        matches!(out.as_slice(), [ServerOutput::Crash { .. }]),
        "{out:?}"
    );
    assert!(server.has_crashed());
    let head = server.store().last_seq();
    for input in [
        ServerInput::OpenStream,
        ServerInput::Timer(ServerTimer::Sync),
        ServerInput::AgentEmit {
            session: s.clone(),
            n: 1,
        },
        ServerInput::Request {
            token: 1,
            request: HttpRequest {
                endpoint: Endpoint::Send,
                connection_id: Some(c),
                body: send(Some(&s), "m3", "x"),
            },
        },
    ] {
        assert!(
            server.handle(12, input).is_empty(),
            "a dead process answers nothing"
        );
    }
    assert_eq!(server.store().last_seq(), head);
    // The message was persisted but never reached the agent.
    assert_eq!(
        user_messages(&server, &s).last(),
        Some(&("m2".to_string(), true))
    );
}

#[test]
fn interrupt_failure_with_guard_warns_and_still_pushes_the_message() {
    let (mut server, c, _, s) = interrupt_setup(ServerParams {
        interrupt_guard: true,
        ..ServerParams::default()
    });
    let out = post_ok(&mut server, 10, c, interrupt(&s, "m2", "stop that"));
    let token = call_interrupt_token(&out);
    let out = settle_interrupt(&mut server, 11, token, false);
    assert!(!server.has_crashed());
    assert!(!out.iter().any(|o| matches!(o, ServerOutput::Crash { .. })));
    assert!(out
        .iter()
        .any(|o| matches!(o, ServerOutput::Warning { .. })));
    let inputs = agent_inputs(&out);
    assert_eq!(inputs.len(), 1);
    assert!(inputs[0].interrupt);
    assert_eq!(inputs[0].client_msg_id, "m2");
    // The process keeps serving.
    let (_, out) = post(&mut server, 12, Some(c), send(Some(&s), "m3", "more"));
    assert_eq!(agent_inputs(&out).len(), 1);
}

#[test]
fn restart_after_crash_ends_stale_sessions_keeps_events_and_forgets_connections() {
    let mut server = boot();
    let (c, active) = connected_session(&mut server, 0);
    let (c2, suspended) = connected_session(&mut server, 0);
    post_ok(
        &mut server,
        1,
        c2,
        ClientMsg::SessionSuspend {
            sessions: cursors(&[(&suspended, 0)]),
        },
    );
    let detached = sid("detached");
    server.handle(
        1,
        ServerInput::StartSession {
            session: detached.clone(),
        },
    );
    server.handle(
        1,
        ServerInput::AgentState {
            session: detached.clone(),
            to: SessionState::Detached,
        },
    );
    let created = sid("created");
    server.handle(
        1,
        ServerInput::AgentState {
            session: created.clone(),
            to: SessionState::Created,
        },
    );
    let ended = sid("ended");
    server.handle(
        1,
        ServerInput::StartSession {
            session: ended.clone(),
        },
    );
    server.handle(
        1,
        ServerInput::AgentState {
            session: ended.clone(),
            to: SessionState::Ended,
        },
    );
    assert_eq!(
        server.store().session_state(&suspended),
        Some(SessionState::Suspended)
    );
    assert_eq!(
        server.store().session_state(&detached),
        Some(SessionState::Detached)
    );
    assert_eq!(
        server.store().session_state(&created),
        Some(SessionState::Created)
    );

    let out = post_ok(&mut server, 2, c, interrupt(&active, "m2", "stop"));
    let token = call_interrupt_token(&out);
    settle_interrupt(&mut server, 3, token, false);
    assert!(server.has_crashed());
    let disk = server.into_store();
    let before = disk.clone();

    let (mut server, out) = Server::boot(disk, ServerParams::default(), 1000);
    assert_eq!(server.boot_number(), 2);
    // Restart consistency: nothing left in a live state.
    for (s, row) in server.store().sessions() {
        assert!(
            matches!(row.state, SessionState::Ended | SessionState::Created),
            "{s} left in {}",
            row.state
        );
    }
    assert_eq!(
        server.store().session_state(&created),
        Some(SessionState::Created)
    );
    for s in [&active, &suspended, &detached] {
        assert_eq!(
            last_state_reason(&server, s),
            Some((SessionState::Ended, "server_restart".to_string()))
        );
        // Events persist: the old log is a prefix of the new one.
        let old = before.session_events(s);
        assert_eq!(&server.store().session_events(s)[..old.len()], old);
        assert!(!server.is_running(s));
    }
    assert_eq!(
        server.store().session_events(&ended),
        before.session_events(&ended)
    );
    let appended = out
        .iter()
        .filter(|o| matches!(o, ServerOutput::Appended(_)))
        .count();
    assert_eq!(appended, 3);
    assert_eq!(server.store().last_seq(), before.last_seq() + 3);
    // The interrupt's message is on disk though it never ran.
    assert_eq!(
        user_messages(&server, &active).last(),
        Some(&("m2".to_string(), true))
    );
    assert!(out.contains(&ServerOutput::SetTimer {
        timer: ServerTimer::Sync,
        at: 6000
    }));
    assert!(out.contains(&ServerOutput::SetTimer {
        timer: ServerTimer::Heartbeat,
        at: 31_000
    }));
    // Process memory is gone: old ids are stale everywhere.
    assert!(server.registry().is_empty());
    assert!(!server.has_stream(c));
    let (r, _) = post(&mut server, 1001, Some(c), send(Some(&active), "m3", "x"));
    assert_eq!(r.status, 404);
    let (r, _) = post(
        &mut server,
        1001,
        Some(c2),
        ClientMsg::Watch {
            session: active.clone(),
        },
    );
    assert_eq!(r.status, 404);
}

#[test]
fn reconnect_replays_every_event_after_last_seq_then_moves_the_cursor_and_reports() {
    let mut server = boot();
    let s = sid("s");
    server.handle(0, ServerInput::StartSession { session: s.clone() });
    for n in 0..120 {
        emit(&mut server, 1, &s, n);
    }
    let head = server.store().head_seq(&s);
    let last_seq = 13;
    let c = open(&mut server, 2);
    let out = post_ok(
        &mut server,
        3,
        c,
        ClientMsg::Reconnect {
            sessions: cursors(&[(&s, last_seq)]),
        },
    );
    let got = deliveries(&out, c);
    let expected: Vec<Seq> = (last_seq + 1..=head).collect();
    assert!(
        expected.len() > 100,
        "more than a sync batch: replay has no limit"
    );
    let replayed: Vec<Seq> = got
        .iter()
        .take_while(|(_, o)| *o == Origin::Replay)
        .filter_map(|(e, _)| e.tracked().map(|(_, q)| q))
        .collect();
    assert_eq!(replayed, expected);
    assert_eq!(
        &got[expected.len()..],
        &[
            (
                ServerEvent::BootContext { session: s.clone() },
                Origin::Direct
            ),
            (
                ServerEvent::Reconnected {
                    sessions: vec![(s.clone(), expected.len() as u32)]
                },
                Origin::Direct
            ),
        ]
    );
    assert_eq!(server.registry().cursor(c, &s), head);
    assert!(server
        .registry()
        .get(c)
        .is_some_and(|k| k.watched.contains(&s)));

    // Nothing newer: the cursor is set to the client's lastSeq as given.
    let c2 = open(&mut server, 4);
    let out = post_ok(
        &mut server,
        5,
        c2,
        ClientMsg::Reconnect {
            sessions: cursors(&[(&s, head + 50)]),
        },
    );
    assert!(deliveries(&out, c2)
        .iter()
        .all(|(_, o)| *o == Origin::Direct));
    assert!(deliveries(&out, c2).contains(&(
        ServerEvent::Reconnected {
            sessions: vec![(s.clone(), 0)]
        },
        Origin::Direct
    )));
    assert_eq!(server.registry().cursor(c2, &s), head + 50);
}

#[test]
fn reconnect_resumes_a_suspended_session_and_reports_the_replay() {
    let mut server = boot();
    let (c, s) = connected_session(&mut server, 0);
    let seen = server.store().head_seq(&s);
    post_ok(
        &mut server,
        1,
        c,
        ClientMsg::SessionSuspend {
            sessions: cursors(&[(&s, seen)]),
        },
    );
    let out = emit(&mut server, 2, &s, 1);
    assert!(out.iter().any(|o| matches!(o, ServerOutput::Appended(_))));
    assert!(
        deliveries(&out, c).is_empty(),
        "live events are held while suspended"
    );

    let c2 = open(&mut server, 3);
    let out = post_ok(
        &mut server,
        4,
        c2,
        ClientMsg::Reconnect {
            sessions: cursors(&[(&s, seen)]),
        },
    );
    assert_eq!(server.store().session_state(&s), Some(SessionState::Active));
    let replayed = deliveries(&out, c2)
        .iter()
        .filter(|(_, o)| *o == Origin::Replay)
        .count() as u32;
    assert_eq!(replayed, 2, "the SUSPENDED state event and the held output");
    assert!(deliveries(&out, c2).contains(&(
        ServerEvent::SessionResumed {
            session: s.clone(),
            replayed
        },
        Origin::Direct
    )));
    // Live again, towards the new connection.
    let out = emit(&mut server, 5, &s, 2);
    assert_eq!(deliveries(&out, c2).len(), 1);
}

#[test]
fn watch_replies_watched_and_leaves_the_cursor_at_zero_for_sync_to_crawl() {
    let mut server = boot();
    let s = sid("s");
    server.handle(0, ServerInput::StartSession { session: s.clone() });
    for n in 0..60 {
        emit(&mut server, 0, &s, n);
    }
    let c = open(&mut server, 1);
    let out = post_ok(&mut server, 1, c, ClientMsg::Watch { session: s.clone() });
    assert_eq!(
        deliveries(&out, c),
        vec![(ServerEvent::Watched { session: s.clone() }, Origin::Direct)]
    );
    assert_eq!(server.registry().cursor(c, &s), 0);
    assert!(server
        .registry()
        .get(c)
        .is_some_and(|k| k.watched.contains(&s)));
    // The periodic sync then re-sends the history from seq 1.
    let out = tick(&mut server, 5000);
    let synced = seqs(&out, c, Origin::Sync);
    assert_eq!(synced, (1..=50).collect::<Vec<_>>());
    assert!(out
        .iter()
        .any(|o| matches!(o, ServerOutput::SyncBatch(b) if b.sent == 50 && b.conn == c)));
    // Unwatch replies and stops it.
    let out = post_ok(
        &mut server,
        5001,
        c,
        ClientMsg::Unwatch { session: s.clone() },
    );
    assert_eq!(
        deliveries(&out, c),
        vec![(
            ServerEvent::Unwatched { session: s.clone() },
            Origin::Direct
        )]
    );
    let out = tick(&mut server, 10_000);
    assert!(deliveries(&out, c).is_empty());
}

#[test]
fn switch_unwatches_the_previous_session_and_sends_switched_status_and_boot_context() {
    let mut server = boot();
    let (a, b) = (sid("a"), sid("b"));
    server.handle(0, ServerInput::StartSession { session: a.clone() });
    server.handle(0, ServerInput::StartSession { session: b.clone() });
    server.handle(
        0,
        ServerInput::AgentState {
            session: b.clone(),
            to: SessionState::Detached,
        },
    );
    let c = open(&mut server, 1);
    post_ok(
        &mut server,
        1,
        c,
        ClientMsg::SwitchSession { session: a.clone() },
    );
    let out = post_ok(
        &mut server,
        2,
        c,
        ClientMsg::SwitchSession { session: b.clone() },
    );
    assert_eq!(
        deliveries(&out, c),
        vec![
            (
                ServerEvent::SessionSwitched { session: b.clone() },
                Origin::Direct
            ),
            (
                ServerEvent::SessionStatus {
                    session: b.clone(),
                    state: SessionView::Idle
                },
                Origin::Direct
            ),
            (
                ServerEvent::BootContext { session: b.clone() },
                Origin::Direct
            ),
        ]
    );
    let k = server.registry().get(c).expect("registered");
    assert_eq!(k.active, Some(b.clone()));
    assert!(k.watched.contains(&b));
    assert!(!k.watched.contains(&a), "previous active session unwatched");
    assert_eq!(
        server.registry().cursor(c, &b),
        0,
        "switch does not touch the cursor"
    );
    // Live events of the old session no longer reach it.
    let out = emit(&mut server, 3, &a, 1);
    assert!(deliveries(&out, c).is_empty());
}

#[test]
fn stream_close_removes_the_connection_and_detaches_its_sessions() {
    let mut server = boot();
    let (c1, s1) = connected_session(&mut server, 0);
    let (c2, s2) = connected_session(&mut server, 0);
    post_ok(
        &mut server,
        1,
        c1,
        ClientMsg::Watch {
            session: s2.clone(),
        },
    );
    let out = server.handle(2, ServerInput::StreamClosed { conn: c1 });
    assert!(!server.registry().contains(c1));
    assert!(!server.has_stream(c1));
    assert_eq!(server.registry().cursor(c1, &s1), 0);
    assert_eq!(
        server.store().session_state(&s1),
        Some(SessionState::Detached)
    );
    assert_eq!(
        last_state_reason(&server, &s1),
        Some((SessionState::Detached, "transport_close".to_string()))
    );
    assert!(server.is_running(&s1), "detach keeps the agent running");
    assert!(!out
        .iter()
        .any(|o| matches!(o, ServerOutput::IllegalTransition { .. })));
    assert_eq!(
        server.store().session_state(&s2),
        Some(SessionState::Active)
    );
    assert!(server.registry().contains(c2));
    let (r, _) = post(
        &mut server,
        3,
        Some(c1),
        ClientMsg::Watch {
            session: s1.clone(),
        },
    );
    assert_eq!(r.status, 404);
    // Closing twice is harmless.
    assert!(server
        .handle(4, ServerInput::StreamClosed { conn: c1 })
        .is_empty());
}

#[test]
fn stream_close_leaves_a_suspended_session_suspended() {
    let mut server = boot();
    let (c, s) = connected_session(&mut server, 0);
    post_ok(
        &mut server,
        1,
        c,
        ClientMsg::SessionSuspend {
            sessions: cursors(&[(&s, 0)]),
        },
    );
    server.handle(2, ServerInput::StreamClosed { conn: c });
    assert_eq!(
        server.store().session_state(&s),
        Some(SessionState::Suspended)
    );
}

#[test]
fn dropping_a_connection_silently_makes_its_id_stale_without_closing_the_stream() {
    let mut server = boot();
    let (c, s) = connected_session(&mut server, 0);
    let out = server.handle(
        1,
        ServerInput::DropConnection {
            conn: c,
            close_stream: false,
        },
    );
    assert!(!out
        .iter()
        .any(|o| matches!(o, ServerOutput::CloseStream { .. })));
    assert!(!server.registry().contains(c));
    let (r, out) = post(&mut server, 2, Some(c), send(Some(&s), "m2", "x"));
    assert_eq!(r.status, 404);
    assert!(agent_inputs(&out).is_empty());
    let (r, _) = post(
        &mut server,
        2,
        Some(c),
        ClientMsg::Watch { session: s.clone() },
    );
    assert_eq!(r.status, 404);

    let c2 = open(&mut server, 3);
    let out = server.handle(
        4,
        ServerInput::DropConnection {
            conn: c2,
            close_stream: true,
        },
    );
    assert_eq!(out.first(), Some(&ServerOutput::CloseStream { conn: c2 }));
    assert!(!server.has_stream(c2));
}

#[test]
fn suspend_marks_owned_sessions_suspended_and_arms_the_grace_timer() {
    let mut server = boot();
    let (c, s) = connected_session(&mut server, 0);
    let other = open(&mut server, 0);
    // A connection that does not own the session cannot suspend it.
    let out = post_ok(
        &mut server,
        500,
        other,
        ClientMsg::SessionSuspend {
            sessions: cursors(&[(&s, 0)]),
        },
    );
    assert!(out.is_empty());
    assert_eq!(server.store().session_state(&s), Some(SessionState::Active));

    let out = post_ok(
        &mut server,
        1000,
        c,
        ClientMsg::SessionSuspend {
            sessions: cursors(&[(&s, 0)]),
        },
    );
    assert_eq!(
        server.store().session_state(&s),
        Some(SessionState::Suspended)
    );
    assert_eq!(
        last_state_reason(&server, &s),
        Some((SessionState::Suspended, "ios_background".to_string()))
    );
    assert!(out.contains(&ServerOutput::SetTimer {
        timer: ServerTimer::SuspendExpiry(s.clone()),
        at: 121_000,
    }));
    // Suspending again does nothing.
    let out = post_ok(
        &mut server,
        2000,
        c,
        ClientMsg::SessionSuspend {
            sessions: cursors(&[(&s, 0)]),
        },
    );
    assert!(out.is_empty());
}

#[test]
fn suspend_expiry_detaches_the_session() {
    let mut server = boot();
    let (c, s) = connected_session(&mut server, 0);
    post_ok(
        &mut server,
        1000,
        c,
        ClientMsg::SessionSuspend {
            sessions: cursors(&[(&s, 0)]),
        },
    );
    let out = server.handle(
        121_000,
        ServerInput::Timer(ServerTimer::SuspendExpiry(s.clone())),
    );
    assert_eq!(
        server.store().session_state(&s),
        Some(SessionState::Detached)
    );
    assert_eq!(
        last_state_reason(&server, &s),
        Some((SessionState::Detached, "suspend_timeout".to_string()))
    );
    // SUSPENDED -> DETACHED is not in the spec §4 table: warn-only, flagged and applied.
    assert!(out.contains(&ServerOutput::IllegalTransition {
        session: s.clone(),
        from: SessionState::Suspended,
        to: SessionState::Detached,
    }));
    assert!(server.is_running(&s));
    // Detached: live events reach watchers again, and closing the stream changes nothing.
    let out = emit(&mut server, 121_001, &s, 1);
    assert_eq!(deliveries(&out, c).len(), 1);
    let before = server.store().last_seq();
    server.handle(121_002, ServerInput::StreamClosed { conn: c });
    assert_eq!(server.store().last_seq(), before);
}

#[test]
fn stale_suspend_expiry_timer_does_not_cut_short_a_later_suspension() {
    let mut server = boot();
    let (c, s) = connected_session(&mut server, 0);
    let suspend = ClientMsg::SessionSuspend {
        sessions: cursors(&[(&s, 0)]),
    };
    post_ok(&mut server, 1000, c, suspend.clone());
    // The client comes back, then hides again a minute later.
    post_ok(
        &mut server,
        2000,
        c,
        ClientMsg::Reconnect {
            sessions: cursors(&[(&s, 0)]),
        },
    );
    assert_eq!(server.store().session_state(&s), Some(SessionState::Active));
    let out = post_ok(&mut server, 60_000, c, suspend);
    assert!(out.contains(&ServerOutput::SetTimer {
        timer: ServerTimer::SuspendExpiry(s.clone()),
        at: 180_000,
    }));
    // The first suspension's timer fires: the second suspension is only 61 s old.
    let out = server.handle(
        121_000,
        ServerInput::Timer(ServerTimer::SuspendExpiry(s.clone())),
    );
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(
        server.store().session_state(&s),
        Some(SessionState::Suspended)
    );
    server.handle(
        180_000,
        ServerInput::Timer(ServerTimer::SuspendExpiry(s.clone())),
    );
    assert_eq!(
        server.store().session_state(&s),
        Some(SessionState::Detached)
    );
}

#[test]
fn sync_timer_rearms_itself_at_now_plus_interval_and_heartbeat_pings_every_stream() {
    let (mut server, out) = Server::boot(EventStore::new(), ServerParams::default(), 0);
    assert!(out.contains(&ServerOutput::SetTimer {
        timer: ServerTimer::Sync,
        at: 5000
    }));
    assert!(out.contains(&ServerOutput::SetTimer {
        timer: ServerTimer::Heartbeat,
        at: 30_000
    }));
    let out = tick(&mut server, 7000);
    assert_eq!(
        out,
        vec![ServerOutput::SetTimer {
            timer: ServerTimer::Sync,
            at: 12_000
        }]
    );
    let a = open(&mut server, 8000);
    let b = open(&mut server, 8000);
    let out = server.handle(30_000, ServerInput::Timer(ServerTimer::Heartbeat));
    assert_eq!(
        out,
        vec![
            ServerOutput::Heartbeat { conn: a },
            ServerOutput::Heartbeat { conn: b },
            ServerOutput::SetTimer {
                timer: ServerTimer::Heartbeat,
                at: 60_000
            },
        ]
    );
}

#[test]
fn throwing_transport_misses_live_events_and_sync_repairs_them_once_healed() {
    let mut server = boot();
    let (c, s) = connected_session(&mut server, 0);
    let cursor = server.registry().cursor(c, &s);
    set_transport(&mut server, 1, c, TransportHealth::Throwing);
    let out = emit(&mut server, 2, &s, 1);
    assert!(deliveries(&out, c).is_empty());
    assert_eq!(server.registry().cursor(c, &s), cursor);
    let out = tick(&mut server, 5000);
    assert!(out
        .iter()
        .any(|o| matches!(o, ServerOutput::SyncBatch(b) if b.stopped_on_failure)));
    set_transport(&mut server, 5001, c, TransportHealth::Open);
    let out = tick(&mut server, 10_000);
    let synced: Vec<Seq> = deliveries(&out, c)
        .iter()
        .filter_map(|(e, _)| e.tracked().map(|(_, q)| q))
        .collect();
    assert_eq!(synced, vec![server.store().head_seq(&s)]);
    assert_eq!(server.registry().cursor(c, &s), server.store().head_seq(&s));
}
