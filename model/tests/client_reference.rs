//! The reference client (spec §7): in-order applied delivery across a reconnect.

mod common;

use common::client::*;
use common::sid;
use ssesim_model::client::{AppNotice, ClientInput, ClientOutput};
use ssesim_model::types::{EsId, Seq};
use ssesim_model::wire::{ClientMsg, Endpoint, Frame, ServerEvent};

/// The server's `unwatched` frame for `s1`.
fn unwatched(es: EsId) -> ClientInput {
    on(es, Frame::of(ServerEvent::Unwatched { session: sid("s1") }))
}

/// Event `seq` of `s1`, whose previous event in the session is `prev`.
fn event(es: EsId, seq: Seq, prev: Seq) -> ClientInput {
    on(es, stored("s1", seq, prev, seq as u32))
}

fn applied(out: &[ClientOutput]) -> Vec<Seq> {
    out.iter()
        .filter_map(|o| match o {
            ClientOutput::App(AppNotice::Event {
                event: ServerEvent::Session(e),
            }) => Some(e.seq),
            _ => None,
        })
        .collect()
}

/// The app's `trackSeq(s1, seq)` after a history load.
fn track_s1(seq: Seq) -> ClientInput {
    ClientInput::TrackSeq {
        session: sid("s1"),
        seq,
    }
}

fn watch_s1() -> ClientMsg {
    ClientMsg::Watch { session: sid("s1") }
}

fn unwatch_s1() -> ClientMsg {
    ClientMsg::Unwatch { session: sid("s1") }
}

/// A `/reconnect` body declaring `s1` at `last_seq`.
fn reconnect_s1(last_seq: Seq) -> ClientMsg {
    ClientMsg::Reconnect {
        sessions: vec![cursor("s1", last_seq)],
    }
}

/// A reference tab connected on connection 1 (no session tracked yet). Its clock starts
/// at 0 and moves 1 ms before each input.
fn connected() -> (Bench, EsId) {
    let mut tab = Bench {
        now: 0,
        step: 1,
        ..Bench::with(rev("reference"))
    };
    let es = tab.connect();
    let out = tab.feed(welcome(es, 1));
    assert!(tab.client.is_connected(), "{out:?}");
    (tab, es)
}

/// A reference tab that watched s1 (no event of it yet), lost its stream and got a new
/// welcome: its reconnect POST declares s1 at cursor 0.
fn reconnecting() -> (Bench, EsId) {
    let (mut tab, es) = connected();
    let req = only_post(&tab.feed(send(watch_s1()))).req;
    tab.feed(done(req, ok()));
    tab.feed(ClientInput::StreamError { es });
    let out = tab.feed(welcome(es, 2));
    assert_eq!(
        posts(&out)
            .into_iter()
            .map(|p| (p.endpoint, p.body))
            .collect::<Vec<_>>(),
        vec![(Endpoint::Reconnect, reconnect_s1(0))]
    );
    (tab, es)
}

#[test]
fn a_live_event_ahead_of_the_reconnect_replay_waits_for_it() {
    // The tab told the server it holds s1 up to 0. A live event (#8, its session's previous
    // event #7) that overtakes the replay must not be applied as the session's first: the
    // replay after 0 would then be dropped as duplicates and #1-#7 lost to the app.
    let (mut tab, es) = reconnecting();
    let out = tab.feed(event(es, 8, 7));
    assert!(applied(&out).is_empty(), "held for the replay: {out:?}");
    let mut got = Vec::new();
    for seq in 1..=7 {
        got.extend(applied(&tab.feed(event(es, seq, seq - 1))));
    }
    assert_eq!(got, (1..=8).collect::<Vec<Seq>>());
    assert_eq!(tab.client.last_seq(&sid("s1")), 8);
    // The replay's own copy of #8 is a duplicate now.
    assert!(applied(&tab.feed(event(es, 8, 7))).is_empty());
}

#[test]
fn without_a_reconnect_the_first_event_of_a_watched_session_applies_at_once() {
    // The app loads a newly watched session's history itself; the server starts the pair at
    // the head, so the first live event applies whatever its previous seq.
    let (mut tab, es) = connected();
    tab.feed(send(watch_s1()));
    assert_eq!(applied(&tab.feed(event(es, 8, 7))), vec![8]);
}

#[test]
fn tracking_a_new_session_watches_it_from_the_loaded_seq() {
    // The app loaded s1's history up to 3 itself. The client now tracks s1, so it asks the
    // server to watch it from 3 (a reconnect POST for s1 alone: whatever was stored after
    // the load is replayed), instead of waiting for a reconnect that may never come.
    let (mut tab, es) = connected();
    let out = tab.feed(track_s1(3));
    let want = reconnect_s1(3);
    assert_eq!(
        posts(&out)
            .into_iter()
            .map(|p| (p.endpoint, p.body))
            .collect::<Vec<_>>(),
        vec![(Endpoint::Reconnect, want)]
    );
    // The replay of #4 (previous #3) applies; tracking s1 again posts nothing.
    assert_eq!(applied(&tab.feed(event(es, 4, 3))), vec![4]);
    let out = tab.feed(track_s1(4));
    assert!(posts(&out).is_empty(), "{out:?}");
}

#[test]
fn tracking_a_session_whose_watch_was_refused_watches_it_from_the_loaded_seq() {
    // The app watches s1 and the server refuses it for good (a 409 is not retried), so the
    // server does not watch s1 for this tab. The app then loads s1's history up to 6: the
    // client holds no event of s1 (the watch call alone made it track s1), so it asks the
    // server to watch it from 6, as for a session it did not track at all.
    let (mut tab, _es) = connected();
    let req = only_post(&tab.feed(send(watch_s1()))).req;
    let out = tab.feed(done(req, status(409)));
    assert!(posts(&out).is_empty(), "a 409 is not retried: {out:?}");
    let out = tab.feed(track_s1(6));
    assert_eq!(
        posts(&out)
            .into_iter()
            .map(|p| (p.endpoint, p.body))
            .collect::<Vec<_>>(),
        vec![(Endpoint::Reconnect, reconnect_s1(6))]
    );
}

#[test]
fn control_messages_go_out_one_at_a_time_in_send_order() {
    // An unwatch and a switch sent back to back: the switch is posted only once the
    // unwatch is answered, so the server cannot apply them the other way round.
    let (mut tab, _) = connected();
    let unwatch = unwatch_s1();
    let switch = ClientMsg::SwitchSession { session: sid("s1") };
    let out = tab.feed(send(unwatch.clone()));
    let first = posts(&out);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].body, unwatch);
    let out = tab.feed(send(switch.clone()));
    assert!(posts(&out).is_empty(), "waits for the unwatch: {out:?}");
    // A retryable failure puts the unwatch back at the head: it is retried before the
    // switch.
    let out = tab.feed(done(first[0].req, status(503)));
    assert!(posts(&out).is_empty(), "{out:?}");
    tab.now += 10_000;
    let out = tab.feed(ClientInput::Timer(ssesim_model::client::ClientTimer::Flush));
    let retry = posts(&out);
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].body, unwatch);
    let out = tab.feed(done(retry[0].req, ok()));
    let next = posts(&out);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].body, switch);
}

#[test]
fn an_unwatched_session_stays_tracked_until_the_server_confirms() {
    // Unwatched while the stream is down: the next reconnect still declares s1 (it may
    // have missed events while it watched it), and the queued unwatch follows it. Only
    // the `unwatched` frame on the stream ends the tracking (see the next test).
    let (mut tab, es) = reconnecting();
    tab.feed(ClientInput::StreamError { es });
    let out = tab.feed(send(unwatch_s1()));
    assert!(posts(&out).is_empty());
    assert_eq!(tab.client.tracked_sessions().count(), 1);
    let out = tab.feed(welcome(es, 3));
    let Posted { req, body, .. } = posts(&out)[0].clone();
    assert_eq!(body, reconnect_s1(0));
    let out = tab.feed(done(req, ok()));
    let Posted { req, body, .. } = posts(&out)[0].clone();
    assert_eq!(body, unwatch_s1());
    assert_eq!(tab.client.tracked_sessions().count(), 1);
    tab.feed(done(req, ok()));
    assert_eq!(tab.client.tracked_sessions().count(), 1);
    tab.feed(unwatched(es));
    assert_eq!(
        tab.client.tracked_sessions().count(),
        0,
        "confirmed on the stream: untracked"
    );
}

#[test]
fn a_stream_error_with_no_welcome_after_it_makes_the_client_open_a_new_event_source() {
    use ssesim_model::client::{ClientTimer, STREAM_WATCHDOG_MS};
    let (mut tab, es) = connected();
    let out = tab.feed(ClientInput::StreamError { es });
    let armed_at = tab.now + STREAM_WATCHDOG_MS;
    assert!(
        out.contains(&ClientOutput::SetTimer {
            timer: ClientTimer::Watchdog,
            at: armed_at,
        }),
        "{out:?}"
    );
    // The browser gave up on es1 (an HTTP error): no welcome comes.
    tab.now = armed_at;
    let out = tab.feed(ClientInput::Timer(ClientTimer::Watchdog));
    assert!(out.contains(&ClientOutput::CloseStream { es }), "{out:?}");
    assert!(
        out.contains(&ClientOutput::OpenStream { es: EsId(2) }),
        "{out:?}"
    );
    // The new stream's welcome disarms it.
    let out = tab.feed(welcome(EsId(2), 2));
    assert!(
        out.contains(&ClientOutput::CancelTimer {
            timer: ClientTimer::Watchdog
        }),
        "{out:?}"
    );
    // An error of a replaced stream arms nothing.
    let out = tab.feed(ClientInput::StreamError { es });
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn watching_again_a_session_it_stopped_tracking_asks_for_what_it_missed() {
    // s1 applied up to 2, then unwatched (confirmed): the client stops tracking it but its
    // in-order delivery keeps the cursor. Watching it again, the server starts the pair at
    // its head, so the client asks for a replay after 2.
    let (mut tab, es) = connected();
    let out = tab.feed(send(watch_s1()));
    let req = posts(&out)[0].req;
    tab.feed(done(req, ok()));
    for seq in 1..=2 {
        tab.feed(event(es, seq, seq - 1));
    }
    let out = tab.feed(send(unwatch_s1()));
    let req = posts(&out)[0].req;
    tab.feed(unwatched(es));
    tab.feed(done(req, ok()));
    assert_eq!(tab.client.tracked_sessions().count(), 0);
    // The switch and a replay request after 2 go out together (the replay request also
    // watches s1, so their order does not matter).
    let switch = ClientMsg::SwitchSession { session: sid("s1") };
    let out = tab.feed(send(switch.clone()));
    let replay = reconnect_s1(2);
    let sent = bodies(&out);
    assert_eq!(sent, vec![switch, replay.clone()]);
    // A failed replay request is retried after a backoff until it is served.
    let req = posts(&out)[1].req;
    let out = tab.feed(done(req, status(503)));
    assert!(posts(&out).is_empty());
    tab.now += 10_000;
    let out = tab.feed(ClientInput::Timer(
        ssesim_model::client::ClientTimer::Repair,
    ));
    let sent = bodies(&out);
    assert_eq!(sent, vec![replay]);
    assert_eq!(
        tab.client.last_seq(&sid("s1")),
        2,
        "tracked again at its cursor"
    );
}

/// A connected reference tab that watches s1 (confirmed) and applied s1#1.
fn watching_s1() -> (Bench, EsId) {
    let (mut tab, es) = connected();
    let out = tab.feed(send(watch_s1()));
    let req = posts(&out)[0].req;
    tab.feed(done(req, ok()));
    assert_eq!(applied(&tab.feed(event(es, 1, 0))), vec![1]);
    (tab, es)
}

#[test]
fn an_unwatch_answered_over_a_dead_stream_keeps_the_session_for_the_reconnect() {
    // The stream lost s1's later events before the unwatch reached the server; the 200
    // says nothing about them. With no `unwatched` frame the client keeps tracking s1, so
    // the reconnect replays after #1; then it unwatches s1 again on the new connection.
    let (mut tab, es) = watching_s1();
    let out = tab.feed(send(unwatch_s1()));
    let req = posts(&out)[0].req;
    tab.feed(done(req, ok()));
    assert_eq!(tab.client.last_seq(&sid("s1")), 1, "still tracked");
    tab.feed(ClientInput::StreamError { es });
    let out = tab.feed(welcome(es, 2));
    let Posted { req, body, .. } = posts(&out)[0].clone();
    assert_eq!(body, reconnect_s1(1));
    let out = tab.feed(done(req, ok()));
    let sent = posts(&out);
    assert_eq!(sent.len(), 1, "{out:?}");
    assert_eq!(sent[0].body, unwatch_s1());
    // Frame first, reply second: the reply ends the tracking.
    tab.feed(unwatched(es));
    assert_eq!(tab.client.tracked_sessions().count(), 1);
    tab.feed(done(sent[0].req, ok()));
    assert_eq!(tab.client.tracked_sessions().count(), 0);
}

#[test]
fn a_prompt_the_server_handled_before_an_earlier_unwatch_is_watched_again() {
    // unwatch(s1), then a prompt to s1: the prompt goes through the outbox and may reach
    // the server first, leaving s1 unwatched though the app's last call follows it. Once
    // the unwatch is answered the client watches s1 again, replaying after its cursor.
    let (mut tab, _) = watching_s1();
    let out = tab.feed(send(unwatch_s1()));
    let unwatch = posts(&out)[0].req;
    let out = tab.feed(send(prompt("m1")));
    let sent = posts(&out)[0].req;
    let out = tab.feed(done(sent, status(202)));
    assert!(posts(&out).is_empty(), "{out:?}");
    let out = tab.feed(done(unwatch, ok()));
    let bodies = bodies(&out);
    assert_eq!(bodies, vec![reconnect_s1(1)]);
}

#[test]
fn a_prompt_answered_after_a_later_unwatch_makes_the_unwatch_go_again() {
    // A prompt to s1, then unwatch(s1): if the server handled the prompt last it watches
    // s1 again. The `unwatched` frame that arrives while the prompt is pending ends
    // nothing; the prompt's reply sends the unwatch again, whose frame does.
    let (mut tab, es) = watching_s1();
    let out = tab.feed(send(prompt("m1")));
    let sent = posts(&out)[0].req;
    let out = tab.feed(send(unwatch_s1()));
    let unwatch = posts(&out)[0].req;
    tab.feed(unwatched(es));
    tab.feed(done(unwatch, ok()));
    assert_eq!(tab.client.tracked_sessions().count(), 1, "prompt pending");
    let out = tab.feed(done(sent, status(202)));
    let again = posts(&out);
    assert_eq!(again.len(), 1, "{out:?}");
    assert_eq!(again[0].body, unwatch_s1());
    tab.feed(done(again[0].req, ok()));
    assert_eq!(tab.client.tracked_sessions().count(), 1, "no frame yet");
    tab.feed(unwatched(es));
    assert_eq!(tab.client.tracked_sessions().count(), 0);
}

#[test]
fn following_a_session_again_after_its_unwatch_was_handled_asks_for_what_it_missed() {
    // The server forgets an unwatched pair's cursor, so a watch after the unwatch starts
    // at the head: the events stored in between must be asked for, after the cursor the
    // client holds, once the server has handled the unwatch.
    let replay = reconnect_s1(1);
    let watch = watch_s1();
    // The watch queued while the unwatch awaits its reply: the reply asks.
    let (mut tab, es) = watching_s1();
    let out = tab.feed(send(unwatch_s1()));
    let unwatch = posts(&out)[0].req;
    tab.feed(unwatched(es));
    let out = tab.feed(send(watch.clone()));
    assert!(posts(&out).is_empty(), "queued behind the unwatch: {out:?}");
    let out = tab.feed(done(unwatch, ok()));
    // Either order does: the replay request watches s1 too.
    assert_eq!(bodies(&out), vec![replay.clone(), watch.clone()]);
    assert_eq!(tab.client.last_seq(&sid("s1")), 1, "still tracked");
    // The watch made after the reply (its frame still on the way): the watch asks.
    let (mut tab, _) = watching_s1();
    let out = tab.feed(send(unwatch_s1()));
    let unwatch = posts(&out)[0].req;
    let out = tab.feed(done(unwatch, ok()));
    assert!(posts(&out).is_empty(), "{out:?}");
    let out = tab.feed(send(watch.clone()));
    assert_eq!(bodies(&out), vec![watch, replay]);
}

#[test]
fn a_failed_suspend_is_not_retried() {
    // Hidden while watching s1: the suspend goes out; it fails, and is not queued for a
    // later moment when the page may be visible again.
    let (mut tab, _) = connected();
    let out = tab.feed(send(ClientMsg::Watch { session: sid("s1") }));
    tab.feed(done(only_post(&out).req, ok()));
    let out = tab.feed(ClientInput::Page(ssesim_model::PageEvent::Hidden));
    let suspend = only_post(&out);
    assert_eq!(suspend.endpoint, Endpoint::Suspend);
    let out = tab.feed(done(suspend.req, status(503)));
    assert!(posts(&out).is_empty(), "{out:?}");
    assert_eq!(tab.client.pending_len(), 0);
}

/// A connected reference tab that watches s1 (confirmed) and holds no event of it.
fn watching_s1_with_no_event() -> Bench {
    let (mut tab, _es) = connected();
    let req = only_post(&tab.feed(send(watch_s1()))).req;
    tab.feed(done(req, ok()));
    tab
}

#[test]
fn watching_again_a_session_it_holds_no_event_of_asks_for_a_replay_after_its_declared_seq() {
    // s1 watched (tracked at 0, no event of it held: a failing transport lost them all),
    // then unwatched with no `unwatched` frame (the same transport lost it): still tracked.
    // Followed again once the unwatch is answered, the client asks for a replay after the
    // seq it declares for s1, so what the stream lost while it watched comes at once,
    // not from the server's sync a batch a tick.
    let mut tab = watching_s1_with_no_event();
    let req = only_post(&tab.feed(send(unwatch_s1()))).req;
    tab.feed(done(req, ok()));
    assert_eq!(
        tab.client.tracked_sessions().count(),
        1,
        "no frame: tracked"
    );
    let sent = bodies(&tab.feed(send(watch_s1())));
    assert_eq!(sent, vec![watch_s1(), reconnect_s1(0)]);
}

#[test]
fn a_history_load_ahead_of_the_cursor_asks_for_a_replay_after_it() {
    // The tab holds s1 up to #1 and the app loads the history up to 9: the stream lags the
    // store, so the client asks for a replay after 9 (the server may hold the pair's
    // cursor far back). A load that does not move the cursor asks for nothing.
    let (mut tab, _es) = watching_s1();
    let out = tab.feed(track_s1(9));
    let sent = bodies(&out);
    assert_eq!(sent, vec![reconnect_s1(9)]);
    let req = posts(&out)[0].req;
    tab.feed(done(req, ok()));
    let out = tab.feed(track_s1(5));
    assert!(posts(&out).is_empty(), "{out:?}");
    assert_eq!(tab.client.last_seq(&sid("s1")), 9);
}

#[test]
fn following_again_before_the_unwatch_is_answered_asks_for_a_replay_with_its_reply() {
    // The same with the watch made while the unwatch still waits for its reply: the
    // server handles the unwatch first, so the reply asks for the replay, though the
    // client holds no event of s1. An unwatch of a session it never tracked does not.
    let mut tab = watching_s1_with_no_event();
    let req = only_post(&tab.feed(send(unwatch_s1()))).req;
    let out = tab.feed(send(watch_s1()));
    assert!(posts(&out).is_empty(), "queued behind the unwatch: {out:?}");
    let sent = bodies(&tab.feed(done(req, ok())));
    // The replay request also watches s1, so its order against the watch does not matter.
    assert_eq!(sent, vec![reconnect_s1(0), watch_s1()]);

    let (mut tab, _es) = connected();
    let req = only_post(&tab.feed(send(unwatch_s1()))).req;
    tab.feed(send(watch_s1()));
    let sent = bodies(&tab.feed(done(req, ok())));
    assert_eq!(sent, vec![watch_s1()]);
}
