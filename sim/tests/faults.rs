//! Every fault kind, end to end on the baseline, in both engines.
//!
//! Each test runs one `scenarios/catalog/fault-*.json` file, asserts the fault's specific
//! effect on concrete history records, and runs the same scenario with the fault step(s)
//! removed to show the effect is absent there, so no injection is inert. Every such test
//! is a function of the engine, run once per engine (the modules `turmoil` and `direct`
//! at the end of the file).

mod common;

use common::*;
use ssesim_model::{AppNotice, ClientMsg, ClientOutput, ConnId, Endpoint, Origin, PostOutcome};
use ssesim_model::{ClientTimer, ServerInput, ServerOutput, SessionCursor, TransportHealth};
use ssesim_scenarios::{Action, Direction};
use ssesim_sim::history::{EndVerdict, WireEvent};

const TAB: u32 = 0;

/// Every catalog fault file and the test that covers it.
const COVERED: &[&str] = &[
    "fault-bounce",
    "fault-crash",
    "fault-crash-at-interrupt",
    "fault-double-welcome",
    "fault-drop-connection-notify",
    "fault-drop-connection-silent",
    "fault-hold",
    "fault-inject-status-events",
    "fault-inject-status-reconnect",
    "fault-inject-status-send",
    "fault-interrupt-fails",
    "fault-latency",
    "fault-lose-response",
    "fault-partition-both",
    "fault-partition-from-server",
    "fault-partition-to-server",
    "fault-restart",
    "fault-transport-throws",
];

#[test]
fn every_catalog_fault_file_is_covered_here() {
    let mut on_disk: Vec<String> = std::fs::read_dir(catalog_dir())
        .expect("catalog dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".json")?;
            stem.starts_with("fault-").then(|| stem.to_string())
        })
        .collect();
    on_disk.sort();
    let mut covered: Vec<String> = COVERED.iter().map(|s| s.to_string()).collect();
    covered.sort();
    assert_eq!(on_disk, covered, "catalog fault files and tests disagree");
}

#[test]
fn the_catalog_exercises_every_fault_kind() {
    let mut seen = std::collections::BTreeSet::new();
    for name in COVERED {
        for step in catalog(name).steps {
            let a = &step.action;
            if !a.is_fault() {
                continue;
            }
            seen.insert(a.name().to_string());
            match a {
                Action::Partition { direction, .. } | Action::Repair { direction, .. } => {
                    seen.insert(format!("{}:{direction:?}", a.name()));
                }
                Action::DropConnection { notify, .. } => {
                    seen.insert(format!("drop_connection:notify={notify}"));
                }
                Action::InjectStatus {
                    endpoint, status, ..
                } => {
                    let e = serde_json::to_value(endpoint).unwrap();
                    let e = e.as_str().unwrap().to_string();
                    let kind = if e == "events" { "events" } else { "post" };
                    seen.insert(format!("inject_status:{kind}:{status}"));
                }
                _ => {}
            }
        }
    }
    let want = [
        "crash",
        "crash_at_interrupt",
        "restart",
        "bounce",
        "partition:Both",
        "partition:ToServer",
        "partition:FromServer",
        "repair:Both",
        "repair:ToServer",
        "repair:FromServer",
        "hold",
        "release",
        "latency",
        "drop_connection:notify=false",
        "drop_connection:notify=true",
        "inject_status:post:400",
        "inject_status:post:404",
        "inject_status:post:429",
        "inject_status:post:500",
        "inject_status:post:503",
        "inject_status:events:500",
        "lose_response",
        "interrupt_fails",
        "double_welcome",
        "transport_throws",
    ];
    for w in want {
        assert!(seen.contains(w), "no catalog scenario exercises {w}");
    }
}

// --- process faults ----------------------------------------------------------------------

fn crash_takes_the_server_down_for_good_without_a_supervisor(e: EngineKind) {
    let (h, control) = run_both(e, "fault-crash");

    assert_eq!(server_downs(&h), vec![(500, "crash step")]);
    assert_eq!(
        server_ups(&h),
        vec![(0, 1)],
        "no supervisor: nothing reboots"
    );
    let lost = streams_lost(&h, TAB);
    assert_eq!(lost.first(), Some(&(501, "stream closed")), "{lost:?}");
    assert!(
        lost.iter().skip(1).all(|(_, why)| *why == "connect failed"),
        "every re-open fails while the server is down: {lost:?}"
    );
    assert!(notices(&h, TAB, &AppNotice::Close).contains(&501));
    // The send after the crash is queued (EventSource still exists) and never posted.
    assert!(post_of(&h, TAB, "after-crash").is_none());
    assert!(request_for(&h, "after-crash").is_none());
    assert!(
        matches!(h.end_verdict(), Some(EndVerdict::NotQuiescent { detail })
        if detail.contains("server down") && detail.contains("tab0 has 1 queued sends"))
    );

    assert!(server_downs(&control).is_empty());
    assert!(streams_lost(&control, TAB).is_empty());
    assert!(user_message(&control, "after-crash").is_some());
    assert!(quiescent(&control));
}

fn restart_boots_the_server_from_the_surviving_store(e: EngineKind) {
    let s = catalog("fault-restart");
    let h = run(e, &s);
    let no_restart = run(e, &without(&s, |a| matches!(a, Action::Restart)));
    let control = run(e, &without_faults(&s));

    assert_eq!(server_downs(&h), vec![(500, "crash step")]);
    assert_eq!(server_ups(&h), vec![(0, 1), (1500, 2)]);
    // Boot 2 ends the stale session (a stored state change the tab has not seen).
    let (_, ended) = server_outs(&h)
        .into_iter()
        .find_map(|(at, o)| match o {
            ServerOutput::Appended(e) if at == 1500 => Some((at, e)),
            _ => None,
        })
        .expect("recovery appends a state change at boot");
    assert_eq!(ended.seq, 5);
    // The tab's EventSource reconnects to boot 2 and reconnects with its lastSeq (4).
    let w = welcomes(&h, TAB);
    let (at, conn) = *w.last().unwrap();
    assert!(at > 1500 && conn.boot() == 2, "{w:?}");
    let reconnect = posts(&h, TAB)
        .into_iter()
        .find(|p| p.endpoint == Endpoint::Reconnect)
        .expect("reconnect POST");
    assert_eq!(reconnect.conn, conn);
    assert_eq!(
        reconnect.body,
        &ClientMsg::Reconnect {
            sessions: vec![SessionCursor {
                session: "s1".into(),
                last_seq: 4
            }]
        }
    );
    assert!(deliveries_of(&h, 5)
        .iter()
        .any(|(_, c, o)| *c == conn && *o == Origin::Replay));
    assert_eq!(app_got_seq(&h, TAB, 5).map(|t| t > 1500), Some(true));
    assert!(*notices(&h, TAB, &AppNotice::Open).last().unwrap() > 1500);
    assert!(quiescent(&h));

    // Without the restart step the server stays down and the tab never reconnects.
    assert_eq!(server_ups(&no_restart), vec![(0, 1)]);
    assert!(welcomes(&no_restart, TAB)
        .iter()
        .all(|(_, c)| c.boot() == 1));
    // Without any fault there is neither a crash nor a second boot.
    assert!(server_downs(&control).is_empty());
    assert_eq!(server_ups(&control), vec![(0, 1)]);
}

fn bounce_crashes_and_restarts_at_the_same_instant(e: EngineKind) {
    let (h, control) = run_both(e, "fault-bounce");

    assert_eq!(server_downs(&h), vec![(500, "bounce")]);
    assert_eq!(server_ups(&h), vec![(0, 1), (500, 2)]);
    assert_eq!(streams_lost(&h, TAB), vec![(501, "stream closed")]);
    let w = welcomes(&h, TAB);
    assert_eq!(w.len(), 2, "{w:?}");
    let (_, c2) = w[1];
    assert_eq!(c2, ConnId::new(2, 1));
    let reconnect = posts(&h, TAB)
        .into_iter()
        .find(|p| p.endpoint == Endpoint::Reconnect)
        .expect("reconnect POST");
    assert_eq!(reconnect.conn, c2);
    assert!(matches!(
        outcome(&h, TAB, reconnect.req),
        Some((_, PostOutcome::Status { status: 200, .. }))
    ));
    assert_eq!(notices(&h, TAB, &AppNotice::Open).len(), 2);
    assert!(quiescent(&h));

    assert!(server_downs(&control).is_empty());
    assert_eq!(server_ups(&control), vec![(0, 1)]);
    assert_eq!(welcomes(&control, TAB).len(), 1);
    assert!(streams_lost(&control, TAB).is_empty());
}

fn crash_at_interrupt_persists_the_message_but_never_gives_it_to_the_agent(e: EngineKind) {
    let (h, control) = run_both(e, "fault-crash-at-interrupt");

    // The message is stored (and echoed) with interrupt=true...
    let (stored_at, e) = user_message(&h, "stop-now").expect("interrupt message persisted");
    assert!(matches!(
        &e.kind,
        ssesim_model::EventKind::UserMessage {
            interrupt: true,
            ..
        }
    ));
    assert!(deliveries_of(&h, e.seq)
        .iter()
        .any(|(_, _, o)| *o == Origin::Live));
    // ...interrupt() is called, and the process dies there.
    assert!(server_outs(&h)
        .iter()
        .any(|(_, o)| matches!(o, ServerOutput::CallInterrupt { .. })));
    let downs = server_downs(&h);
    assert_eq!(downs.len(), 1, "{downs:?}");
    assert_eq!(downs[0].1, "crash at the interrupt point");
    assert!(downs[0].0 >= stored_at);
    // The agent never receives it, and the tab's POST gets no reply.
    assert!(agent_input(&h, "stop-now").is_none());
    assert!(matches!(
        outcome_of(&h, TAB, "stop-now"),
        Some((_, PostOutcome::NetworkError))
    ));
    // The supervisor restarts the server and the tab reconnects to boot 2.
    assert_eq!(server_ups(&h).last().map(|u| u.1), Some(2));
    assert!(welcomes(&h, TAB).iter().any(|(_, c)| c.boot() == 2));

    // Without the fault the interrupt reaches the agent and nothing crashes.
    let (_, a) = agent_input(&control, "stop-now").expect("agent gets the interrupt");
    assert!(a.interrupt);
    assert!(server_downs(&control).is_empty());
    assert_eq!(status_of(&control, TAB, "stop-now"), Some(202));
}

fn interrupt_failure_is_an_unhandled_rejection_that_kills_the_baseline_server(e: EngineKind) {
    let (h, control) = run_both(e, "fault-interrupt-fails");

    assert!(user_message(&h, "stop-now").is_some());
    // The REST handler answered 202 before interrupt() settled.
    assert_eq!(status_of(&h, TAB, "stop-now"), Some(202));
    let settled: Vec<bool> = server_ins(&h)
        .into_iter()
        .filter_map(|(_, i)| match i {
            ServerInput::InterruptSettled { ok, .. } => Some(*ok),
            _ => None,
        })
        .collect();
    assert_eq!(settled, vec![false]);
    assert!(server_outs(&h).iter().any(|(_, o)| matches!(o,
        ServerOutput::Crash { reason } if reason.starts_with("unhandled rejection"))));
    let downs = server_downs(&h);
    assert_eq!(downs.len(), 1);
    assert!(downs[0].1.starts_with("unhandled rejection"), "{downs:?}");
    assert!(agent_input(&h, "stop-now").is_none());
    assert_eq!(server_ups(&h).last().map(|u| u.1), Some(2));

    let (_, a) = agent_input(&control, "stop-now").expect("agent gets the interrupt");
    assert!(a.interrupt);
    assert!(server_downs(&control).is_empty());
}

// --- network faults ----------------------------------------------------------------------

fn partition_both_ways_loses_the_send_and_the_stream_until_repaired(e: EngineKind) {
    let s = catalog("fault-partition-both");
    let h = run(e, &s);
    let control = run(e, &without(&s, |a| matches!(a, Action::Partition { .. })));
    let no_repair = run(e, &without(&s, |a| matches!(a, Action::Repair { .. })));
    let n2 = agent_output_seq(&h, 2).unwrap();

    // The send during the partition fails and never reaches the server.
    let p = post_of(&h, TAB, "lost-send").unwrap();
    assert!(post_failed(&h, TAB, p.req).is_some());
    assert!(matches!(
        outcome(&h, TAB, p.req),
        Some((_, PostOutcome::NetworkError))
    ));
    assert!(request_for(&h, "lost-send").is_none());
    // The live event goes nowhere; the quiet stream dies by the idle timeout.
    let lost = streams_lost(&h, TAB);
    assert!(
        lost.iter()
            .any(|(at, why)| *why == "idle timeout" && *at < 2000),
        "{lost:?}"
    );
    // After the repair the tab reconnects and the missed event arrives as a replay.
    let w = welcomes(&h, TAB);
    assert!(w.len() >= 2 && w[1].0 > 2000, "{w:?}");
    assert!(deliveries_of(&h, n2)
        .iter()
        .any(|(at, c, o)| *at > 2000 && *c == w[1].1 && *o == Origin::Replay));
    assert!(app_got_seq(&h, TAB, n2).unwrap() > 2000);
    assert!(quiescent(&h));

    // Without the partition: the send is applied and the event arrives live.
    assert_eq!(status_of(&control, TAB, "lost-send"), Some(202));
    assert!(app_got_seq(&control, TAB, n2).unwrap() < 720);
    assert!(streams_lost(&control, TAB).is_empty());
    // Without the repair the tab never gets it back.
    assert!(app_got_seq(&no_repair, TAB, n2).is_none());
    assert_eq!(welcomes(&no_repair, TAB).len(), 1);
    assert!(!quiescent(&no_repair));
}

fn partition_to_server_loses_the_tabs_posts_but_not_the_servers_events(e: EngineKind) {
    let s = catalog("fault-partition-to-server");
    let h = run(e, &s);
    let control = run(e, &without(&s, |a| matches!(a, Action::Partition { .. })));
    let no_repair = run(e, &without(&s, |a| matches!(a, Action::Repair { .. })));
    for step in &s.steps {
        if let Action::Partition { direction, .. } | Action::Repair { direction, .. } = &step.action
        {
            assert_eq!(*direction, Direction::ToServer);
        }
    }
    let n1 = agent_output_seq(&h, 1).unwrap();

    let p = post_of(&h, TAB, "lost-send").unwrap();
    assert!(post_failed(&h, TAB, p.req).is_some());
    assert!(request_for(&h, "lost-send").is_none());
    // The server's live event still reaches the tab during the partition.
    let got = app_got_seq(&h, TAB, n1).unwrap();
    assert!((700..720).contains(&got), "{got}");
    assert!(streams_lost(&h, TAB).is_empty());
    // After the repair a send goes through.
    assert_eq!(status_of(&h, TAB, "after-repair"), Some(202));

    assert_eq!(status_of(&control, TAB, "lost-send"), Some(202));
    assert!(user_message(&control, "lost-send").is_some());
    assert!(request_for(&no_repair, "after-repair").is_none());
}

fn partition_from_server_applies_the_send_but_loses_its_reply_and_the_stream(e: EngineKind) {
    let s = catalog("fault-partition-from-server");
    let h = run(e, &s);
    let control = run(e, &without(&s, |a| matches!(a, Action::Partition { .. })));
    let no_repair = run(e, &without(&s, |a| matches!(a, Action::Repair { .. })));
    let n2 = agent_output_seq(&h, 2).unwrap();

    // The server applies the send (stored and given to the agent)...
    let (_, msg) = user_message(&h, "unanswered").expect("applied");
    assert!(agent_input(&h, "unanswered").is_some());
    let (_, token) = request_for(&h, "unanswered").unwrap();
    assert_eq!(response_to(&h, token), Some(202));
    // ...but the tab never hears back and its fetch times out.
    let p = post_of(&h, TAB, "unanswered").unwrap();
    assert_eq!(post_failed(&h, TAB, p.req).map(|f| f.1), Some("timed out"));
    assert!(matches!(
        outcome(&h, TAB, p.req),
        Some((_, PostOutcome::NetworkError))
    ));
    // The stream goes quiet and dies; after the repair the replay brings both events.
    assert!(streams_lost(&h, TAB)
        .iter()
        .any(|(at, why)| *why == "idle timeout" && *at < 1500));
    for seq in [msg.seq, n2] {
        let got = app_got_seq(&h, TAB, seq).unwrap();
        assert!(got > 1500, "seq {seq} at {got}");
        assert!(deliveries_of(&h, seq)
            .iter()
            .any(|(_, _, o)| *o == Origin::Replay));
    }
    assert!(quiescent(&h));

    assert_eq!(status_of(&control, TAB, "unanswered"), Some(202));
    assert!(app_got_seq(&control, TAB, n2).unwrap() < 720);
    assert!(app_got_seq(&no_repair, TAB, n2).is_none());
}

fn hold_delays_everything_until_release_without_losing_anything(e: EngineKind) {
    let s = catalog("fault-hold");
    let h = run(e, &s);
    let control = run(e, &without_faults(&s));
    let no_release = run(e, &without(&s, |a| matches!(a, Action::Release { .. })));
    let n1 = agent_output_seq(&h, 1).unwrap();

    let (at, _) = request_for(&h, "held-send").unwrap();
    assert!(at >= 1500, "request reached the server at {at}");
    assert!(app_got_seq(&h, TAB, n1).unwrap() >= 1500);
    assert_eq!(status_of(&h, TAB, "held-send"), Some(202));
    assert!(streams_lost(&h, TAB).is_empty());
    assert!(quiescent(&h));

    let (at, _) = request_for(&control, "held-send").unwrap();
    assert!(at < 620, "{at}");
    assert!(app_got_seq(&control, TAB, n1).unwrap() < 720);
    // Never released: the request is still held when the run ends.
    assert!(request_for(&no_release, "held-send").is_none());
    assert!(!quiescent(&no_release));
}

fn latency_slows_the_tabs_link_both_ways(e: EngineKind) {
    let (h, control) = run_both(e, "fault-latency");
    let n1 = agent_output_seq(&h, 1).unwrap();

    // Connect and request each cross the slow link: at least 2 x 300 ms.
    let (at, _) = request_for(&h, "slow-send").unwrap();
    assert!(at >= 500 + 600, "request at {at}");
    let (done, _) = outcome_of(&h, TAB, "slow-send").unwrap();
    assert!(done >= at + 300);
    let got = app_got_seq(&h, TAB, n1).unwrap();
    assert!(got >= 1200 + 300, "event at {got}");

    let (at, _) = request_for(&control, "slow-send").unwrap();
    assert!(at < 520, "{at}");
    assert!(app_got_seq(&control, TAB, n1).unwrap() < 1220);
}

/// A `latency` step that fixes a link (min == max) followed by one with a lower maximum
/// on the same tab. turmoil 0.7 can only set a link's maximum or fix it; the engine used to
/// set just the maximum, below the fixed minimum, and turmoil panicked ("overflow when
/// subtracting durations") at the next packet. The second range now applies whole.
fn latency_can_be_lowered_after_being_fixed(e: EngineKind) {
    let mut s = catalog("fault-latency");
    s.steps.push(ssesim_scenarios::Step {
        at_ms: 400,
        action: Action::Latency {
            client: TAB,
            min_ms: 20,
            max_ms: 40,
        },
    });
    let h = run(e, &s);
    assert!(
        !matches!(h.end_verdict(), Some(EndVerdict::EngineError { .. })),
        "{:?}",
        h.end_verdict()
    );
    // The connect and the request each take 20 to 40 ms now, not 300.
    let (at, _) = request_for(&h, "slow-send").unwrap();
    assert!((540..=580).contains(&at), "request at {at}");
    let n1 = agent_output_seq(&h, 1).unwrap();
    let got = app_got_seq(&h, TAB, n1).unwrap();
    assert!((1220..=1240).contains(&got), "event at {got}");
    assert!(quiescent(&h));
}

// --- connection faults -------------------------------------------------------------------

fn silently_dropped_connection_makes_the_stale_connection_id_get_404(e: EngineKind) {
    let (h, control) = run_both(e, "fault-drop-connection-silent");
    let c1 = ConnId::new(1, 1);
    let n2 = agent_output_seq(&h, 2).unwrap();

    assert!(server_ins(&h).iter().any(|(at, i)| *at == 500
        && **i
            == ServerInput::DropConnection {
                conn: c1,
                close_stream: false
            }));
    // The tab still thinks it is connected and posts with the stale id...
    let p = post_of(&h, TAB, "stale-send").unwrap();
    assert_eq!(p.conn, c1);
    // ...and the server answers 404, which the baseline client ignores.
    let (_, token) = request_for(&h, "stale-send").unwrap();
    assert!(server_outs(&h).iter().any(|(_, o)| matches!(o,
        ServerOutput::Respond { token: t, response } if *t == token && response.status == 404)));
    assert_eq!(status_of(&h, TAB, "stale-send"), Some(404));
    assert!(client_outs(&h, TAB).iter().any(|(_, o)| matches!(o,
        ClientOutput::Dropped { msg, .. } if msg.client_msg_id() == Some("stale-send"))));
    assert!(user_message(&h, "stale-send").is_none());
    // Nothing tells the tab: no stream loss, and later events no longer reach it.
    assert!(streams_lost(&h, TAB).is_empty());
    assert!(notices(&h, TAB, &AppNotice::Close).is_empty());
    assert!(deliveries_of(&h, n2).is_empty());
    assert!(app_got_seq(&h, TAB, n2).is_none());

    assert_eq!(status_of(&control, TAB, "stale-send"), Some(202));
    assert!(app_got_seq(&control, TAB, n2).is_some());
}

fn dropped_connection_with_notice_closes_the_stream_and_the_tab_reconnects(e: EngineKind) {
    let (h, control) = run_both(e, "fault-drop-connection-notify");
    let c1 = ConnId::new(1, 1);

    assert!(server_outs(&h)
        .iter()
        .any(|(at, o)| *at == 500 && **o == ServerOutput::CloseStream { conn: c1 }));
    assert_eq!(
        streams_lost(&h, TAB).first().map(|l| l.1),
        Some("stream closed")
    );
    assert_eq!(notices(&h, TAB, &AppNotice::Close).len(), 1);
    let w = welcomes(&h, TAB);
    assert_eq!(
        w.iter().map(|x| x.1).collect::<Vec<_>>(),
        [c1, ConnId::new(1, 2)]
    );
    let reconnect = posts(&h, TAB)
        .into_iter()
        .find(|p| p.endpoint == Endpoint::Reconnect)
        .expect("reconnect POST");
    assert_eq!(reconnect.conn, ConnId::new(1, 2));
    assert!(matches!(
        outcome(&h, TAB, reconnect.req),
        Some((_, PostOutcome::Status { status: 200, .. }))
    ));
    assert_eq!(notices(&h, TAB, &AppNotice::Open).len(), 2);
    assert!(quiescent(&h));

    assert_eq!(welcomes(&control, TAB).len(), 1);
    assert!(streams_lost(&control, TAB).is_empty());
    assert!(notices(&control, TAB, &AppNotice::Close).is_empty());
}

fn double_welcome_leaves_only_the_latest_reconnect_post_effective(e: EngineKind) {
    let (h, control) = run_both(e, "fault-double-welcome");
    let (c2, c3) = (ConnId::new(1, 2), ConnId::new(1, 3));

    let reopened = wire(&h)
        .into_iter()
        .filter(|(_, t, e)| *t == Some(TAB) && matches!(e, WireEvent::StreamReopened { .. }))
        .count();
    assert_eq!(reopened, 2);
    // Two fresh welcomes, both processed before the first reconnect POST settles.
    let w: Vec<_> = welcomes(&h, TAB)
        .into_iter()
        .filter(|(at, _)| *at >= 500)
        .collect();
    assert_eq!(w.iter().map(|x| x.1).collect::<Vec<_>>(), [c2, c3], "{w:?}");
    let reconnects: Vec<_> = posts(&h, TAB)
        .into_iter()
        .filter(|p| p.endpoint == Endpoint::Reconnect)
        .collect();
    assert_eq!(
        reconnects.iter().map(|p| p.conn).collect::<Vec<_>>(),
        [c2, c3]
    );
    let (first_done, _) = outcome(&h, TAB, reconnects[0].req).expect("first POST settles");
    assert!(
        first_done > w[1].0,
        "the first POST settled before the second welcome"
    );
    let (last_done, last) = outcome(&h, TAB, reconnects[1].req).unwrap();
    assert!(last.is_success());
    // The stale POST did nothing: no scheduleReconnect (no timer, no closed EventSource)...
    assert!(!client_outs(&h, TAB).iter().any(|(_, o)| matches!(
        o,
        ClientOutput::SetTimer {
            timer: ClientTimer::Reconnect,
            ..
        } | ClientOutput::CloseStream { .. }
    )));
    // ...and the client became connected exactly once, on the latest POST's reply.
    let opens: Vec<_> = notices(&h, TAB, &AppNotice::Open)
        .into_iter()
        .filter(|at| *at >= 500)
        .collect();
    assert_eq!(opens, vec![last_done]);
    // Later posts carry the latest connectionId, and the server accepts them.
    assert_eq!(post_of(&h, TAB, "after").unwrap().conn, c3);
    assert_eq!(status_of(&h, TAB, "after"), Some(202));
    assert!(quiescent(&h));

    assert_eq!(welcomes(&control, TAB).len(), 1);
    assert_eq!(
        post_of(&control, TAB, "after").unwrap().conn,
        ConnId::new(1, 1)
    );
    assert!(posts(&control, TAB)
        .iter()
        .all(|p| p.endpoint != Endpoint::Reconnect));
}

fn throwing_transport_drops_live_sends_until_sync_repairs_the_gap(e: EngineKind) {
    let (h, control) = run_both(e, "fault-transport-throws");
    let c1 = ConnId::new(1, 1);
    let n2 = agent_output_seq(&h, 2).unwrap();

    assert!(server_ins(&h).iter().any(|(_, i)| **i
        == ServerInput::SetTransport {
            conn: c1,
            health: TransportHealth::Throwing
        }));
    // The live send of the event emitted meanwhile threw: no live delivery.
    let d = deliveries_of(&h, n2);
    assert!(d.iter().all(|(_, _, o)| *o != Origin::Live), "{d:?}");
    // Sync ticks while throwing stop on the failing send.
    assert!(server_outs(&h).iter().any(|(at, o)| *at < 1200
        && matches!(o, ServerOutput::SyncBatch(b) if b.conn == c1 && b.stopped_on_failure)));
    // Once it works again, the next tick delivers the missed event.
    assert!(
        d.iter()
            .any(|(at, c, o)| *at > 1200 && *c == c1 && *o == Origin::Sync),
        "{d:?}"
    );
    assert!(app_got_seq(&h, TAB, n2).unwrap() > 1200);

    assert!(deliveries_of(&control, n2)
        .iter()
        .any(|(at, _, o)| *at == 400 && *o == Origin::Live));
    assert!(app_got_seq(&control, TAB, n2).unwrap() < 420);
    assert!(!server_outs(&control).iter().any(|(_, o)| matches!(o,
        ServerOutput::SyncBatch(b) if b.stopped_on_failure)));
}

// --- injected replies --------------------------------------------------------------------

/// One send answered with an injected status: the handler never sees it and the
/// baseline client drops it without telling the app.
fn assert_send_got_injected(h: &ssesim_sim::history::History, id: &str, status: u16) {
    let p = post_of(h, TAB, id).unwrap_or_else(|| panic!("{id} not posted"));
    let (_, out) = outcome(h, TAB, p.req).unwrap();
    let PostOutcome::Status {
        status: got,
        retry_after_s,
    } = out
    else {
        panic!("{id}: {out:?}")
    };
    assert_eq!(*got, status, "{id}");
    assert_eq!(*retry_after_s, (status == 429).then_some(2), "{id}");
    assert!(request_for(h, id).is_none(), "{id} reached the handler");
    assert!(user_message(h, id).is_none());
    assert!(client_outs(h, TAB).iter().any(|(_, o)| matches!(o,
        ClientOutput::Dropped { msg, .. } if msg.client_msg_id() == Some(id))));
}

fn injected_statuses_on_send_are_silently_dropped_by_the_baseline_client(e: EngineKind) {
    let (h, control) = run_both(e, "fault-inject-status-send");
    let cases = [
        ("m400", 400),
        ("m404", 404),
        ("m429", 429),
        ("m500", 500),
        ("m503", 503),
    ];

    let inj: Vec<(&str, u16)> = injected(&h).into_iter().map(|(_, e, s)| (e, s)).collect();
    assert_eq!(
        inj,
        cases.iter().map(|(_, s)| ("send", *s)).collect::<Vec<_>>()
    );
    for (id, status) in cases {
        assert_send_got_injected(&h, id, status);
    }
    // The queue of injections is used up: the next send reaches the handler.
    assert_eq!(status_of(&h, TAB, "m-ok"), Some(202));
    assert!(user_message(&h, "m-ok").is_some());

    assert!(injected(&control).is_empty());
    for (id, _) in cases {
        assert_eq!(status_of(&control, TAB, id), Some(202), "{id}");
        assert!(user_message(&control, id).is_some(), "{id}");
    }
}

fn injected_503_on_reconnect_makes_the_client_start_a_new_event_source(e: EngineKind) {
    let (h, control) = run_both(e, "fault-inject-status-reconnect");

    assert_eq!(
        injected(&h)
            .into_iter()
            .map(|(_, e, s)| (e, s))
            .collect::<Vec<_>>(),
        [("reconnect", 503)]
    );
    let reconnects: Vec<_> = posts(&h, TAB)
        .into_iter()
        .filter(|p| p.endpoint == Endpoint::Reconnect)
        .collect();
    assert_eq!(reconnects.len(), 2);
    let (failed_at, first) = outcome(&h, TAB, reconnects[0].req).unwrap();
    assert!(matches!(first, PostOutcome::Status { status: 503, .. }));
    // scheduleReconnect: close es2, and reconnectDelayMs (500) later open es3.
    let outs = client_outs(&h, TAB);
    assert!(outs
        .iter()
        .any(|(at, o)| *at == failed_at
            && matches!(o, ClientOutput::CloseStream { es } if es.0 == 2)));
    let es3 = outs
        .iter()
        .find_map(|(at, o)| match o {
            ClientOutput::OpenStream { es } if es.0 == 3 => Some(*at),
            _ => None,
        })
        .expect("a new EventSource");
    assert_eq!(es3, failed_at + 500);
    assert!(outcome(&h, TAB, reconnects[1].req).unwrap().1.is_success());
    assert!(*notices(&h, TAB, &AppNotice::Open).last().unwrap() > es3);
    assert!(quiescent(&h));

    let reconnects: Vec<_> = posts(&control, TAB)
        .into_iter()
        .filter(|p| p.endpoint == Endpoint::Reconnect)
        .collect();
    assert_eq!(reconnects.len(), 1);
    assert!(outcome(&control, TAB, reconnects[0].req)
        .unwrap()
        .1
        .is_success());
    assert!(!client_outs(&control, TAB)
        .iter()
        .any(|(_, o)| matches!(o, ClientOutput::OpenStream { es } if es.0 == 3)));
}

fn injected_500_on_events_closes_the_event_source_until_the_page_is_visible(e: EngineKind) {
    let (h, control) = run_both(e, "fault-inject-status-events");

    assert_eq!(
        injected(&h)
            .into_iter()
            .map(|(_, e, s)| (e, s))
            .collect::<Vec<_>>(),
        [("events", 500)]
    );
    assert!(wire(&h).iter().any(|(_, t, e)| *t == Some(TAB)
        && matches!(e, WireEvent::StreamRefused { es, status: 500 } if es.0 == 1)));
    // No welcome and no connection until the visibilitychange at 1000.
    assert!(welcomes(&h, TAB).iter().all(|(at, _)| *at > 1000));
    assert!(notices(&h, TAB, &AppNotice::Open)
        .iter()
        .all(|at| *at > 1000));
    // The send waits in the queue and is flushed only then.
    let p = post_of(&h, TAB, "queued-send").unwrap();
    assert!(p.at > 1000, "posted at {}", p.at);
    assert_eq!(status_of(&h, TAB, "queued-send"), Some(202));
    assert!(quiescent(&h));

    assert!(injected(&control).is_empty());
    assert!(notices(&control, TAB, &AppNotice::Open)[0] < 50);
    assert_eq!(post_of(&control, TAB, "queued-send").unwrap().at, 200);
}

fn lost_response_leaves_an_applied_send_looking_failed(e: EngineKind) {
    let (h, control) = run_both(e, "fault-lose-response");

    assert!(wire(&h).iter().any(|(_, _, e)| matches!(e,
        WireEvent::ResponseLost { endpoint } if endpoint == "send")));
    // Applied: stored, handed to the agent, answered 202 by the handler...
    assert!(user_message(&h, "ambiguous").is_some());
    assert!(agent_input(&h, "ambiguous").is_some());
    let (_, token) = request_for(&h, "ambiguous").unwrap();
    assert_eq!(response_to(&h, token), Some(202));
    // ...but the tab sees a network error.
    let p = post_of(&h, TAB, "ambiguous").unwrap();
    assert!(post_failed(&h, TAB, p.req).is_some());
    assert!(matches!(
        outcome(&h, TAB, p.req),
        Some((_, PostOutcome::NetworkError))
    ));
    // Only the one response is lost.
    assert_eq!(status_of(&h, TAB, "answered"), Some(202));

    assert_eq!(status_of(&control, TAB, "ambiguous"), Some(202));
    assert!(!wire(&control)
        .iter()
        .any(|(_, _, e)| matches!(e, WireEvent::ResponseLost { .. })));
}

#[test]
fn every_catalog_fault_scenario_names_a_fault_step() {
    for name in COVERED {
        let s = catalog(name);
        assert_eq!(s.name, *name, "the name field matches the file name");
        assert!(!s.description.is_empty(), "{name} has no description");
        assert!(s.steps.iter().any(|st| st.action.is_fault()), "{name}");
        assert!(s.duration_ms <= 5000, "{name} is not short");
    }
}

/// `inject_status` on a POST endpoint other than `send` and `reconnect`: `watch` is not
/// in the catalog, so this checks the engine routes injections by endpoint.
fn injection_is_per_endpoint(e: EngineKind) {
    let mut s = catalog("fault-inject-status-send");
    for step in &mut s.steps {
        if let Action::InjectStatus { endpoint, .. } = &mut step.action {
            *endpoint = ssesim_scenarios::FaultEndpoint::Post(Endpoint::Watch);
        }
    }
    let h = run(e, &s);
    assert!(
        injected(&h).is_empty(),
        "no watch POST, so nothing injected"
    );
    assert_eq!(status_of(&h, TAB, "m400"), Some(202));
}

fn every_catalog_fault_scenario_is_deterministic(e: EngineKind) {
    for name in COVERED {
        let s = catalog(name);
        let (a, b) = (run(e, &s), run(e, &s));
        assert_eq!(a.first_divergence(&b), None, "{name}");
    }
}

/// Every test above that runs a scenario, once per engine: `turmoil::NAME` and
/// `direct::NAME`.
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod turmoil {
            $(#[test]
            fn $name() {
                super::$name(super::EngineKind::Turmoil)
            })*
        }
        mod direct {
            $(#[test]
            fn $name() {
                super::$name(super::EngineKind::Direct)
            })*
        }
    };
}

on_both_engines!(
    crash_takes_the_server_down_for_good_without_a_supervisor,
    restart_boots_the_server_from_the_surviving_store,
    bounce_crashes_and_restarts_at_the_same_instant,
    crash_at_interrupt_persists_the_message_but_never_gives_it_to_the_agent,
    interrupt_failure_is_an_unhandled_rejection_that_kills_the_baseline_server,
    partition_both_ways_loses_the_send_and_the_stream_until_repaired,
    partition_to_server_loses_the_tabs_posts_but_not_the_servers_events,
    partition_from_server_applies_the_send_but_loses_its_reply_and_the_stream,
    hold_delays_everything_until_release_without_losing_anything,
    latency_slows_the_tabs_link_both_ways,
    latency_can_be_lowered_after_being_fixed,
    silently_dropped_connection_makes_the_stale_connection_id_get_404,
    dropped_connection_with_notice_closes_the_stream_and_the_tab_reconnects,
    double_welcome_leaves_only_the_latest_reconnect_post_effective,
    throwing_transport_drops_live_sends_until_sync_repairs_the_gap,
    injected_statuses_on_send_are_silently_dropped_by_the_baseline_client,
    injected_503_on_reconnect_makes_the_client_start_a_new_event_source,
    injected_500_on_events_closes_the_event_source_until_the_page_is_visible,
    lost_response_leaves_an_applied_send_looking_failed,
    injection_is_per_endpoint,
    every_catalog_fault_scenario_is_deterministic,
);
