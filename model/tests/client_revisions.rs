//! The browser client under the PR #396 revisions (spec §2.3, §6).
//!
//! One test per documented client bug (B1-B9 and the budget drop), each showing it on the
//! revision(s) the spec attributes it to and its absence on the revision that fixed it,
//! then the flush modes, flush guards and open timings on their own. Revisions are the
//! presets of `ssesim_model::revisions`; a test that needs a reading the presets leave
//! open changes one field and says so.

mod common;

use common::client::*;
use common::sid;
use ssesim_model::client::{
    AppNotice, Client, ClientInput, ClientOutput, ClientTimer, DropReason, PageEvent, PostOutcome,
};
use ssesim_model::params::ClientParams;
use ssesim_model::types::{ConnId, EsId, ReqId};
use ssesim_model::wire::{ClientMsg, Endpoint};

fn revs(names: &[&'static str]) -> Vec<(&'static str, ClientParams)> {
    names.iter().map(|n| (*n, rev(n))).collect()
}

const ALL_REVS: &[&str] = &["r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9"];

fn permission(id: &str) -> ClientMsg {
    ClientMsg::PermissionResponse {
        session: sid("s1"),
        request_id: id.to_string(),
        allow: true,
    }
}

fn posts_of(out: &[ClientOutput], msg: &ClientMsg) -> Vec<Posted> {
    posts(out).into_iter().filter(|p| p.body == *msg).collect()
}

fn opens(out: &[ClientOutput]) -> usize {
    notices(out)
        .iter()
        .filter(|n| **n == AppNotice::Open)
        .count()
}

fn told_app_of_failure(out: &[ClientOutput]) -> bool {
    notices(out)
        .iter()
        .any(|n| matches!(n, AppNotice::SendFailed { .. }))
}

// ─── The bench's steps ─────────────────────────────────────────────────────────────────

impl Bench {
    /// Was connected on connection 1 with `s1` tracked; the stream errored, so the next
    /// welcome takes the reconnect path (a `/reconnect` POST first).
    fn reconnecting(params: ClientParams) -> (Bench, EsId) {
        let (mut b, es) = Bench::connected_with(params);
        b.client.track_seq(sid("s1"), 10);
        b.feed(ClientInput::StreamError { es });
        assert!(!b.client.is_connected());
        (b, es)
    }

    /// A welcome on the reconnect path: returns the `/reconnect` POST's request.
    fn welcome_reconnect(&mut self, es: EsId, conn_n: u32) -> ReqId {
        let p = only_post(&self.feed(welcome(es, conn_n)));
        assert_eq!((p.endpoint, p.conn), (Endpoint::Reconnect, conn(conn_n)));
        p.req
    }

    /// `send(msg)` while connected: the request of the direct POST.
    fn send_direct(&mut self, msg: ClientMsg) -> ReqId {
        let out = self.feed(send(msg.clone()));
        let p = only_post(&out);
        assert_eq!(p.body, msg);
        p.req
    }

    /// `send(msg)` while not connected: queued, accepted, nothing posted.
    fn send_queued(&mut self, msg: ClientMsg) {
        let out = self.feed(send(msg));
        assert_eq!(returned(&out), vec![true]);
        assert!(posts(&out).is_empty(), "expected a queued send: {out:?}");
    }

    fn pending(&self) -> Vec<(ClientMsg, u32)> {
        self.client.pending().map(|(m, a)| (m.clone(), a)).collect()
    }

    /// The stream errors and the browser re-opens it as connection `conn_n`; returns the
    /// welcome's outputs. With nothing tracked it takes the first-connect path.
    fn bounce(&mut self, es: EsId, conn_n: u32) -> Vec<ClientOutput> {
        self.feed(ClientInput::StreamError { es });
        self.feed(welcome(es, conn_n))
    }
}

// ─── B1: unbounded re-queue (rev1), fixed in rev2 ──────────────────────────────────────

/// Connected on c1; the server drops c1 unnoticed; 101 sends go out directly and every one
/// comes back 404.
fn hundred_and_one_direct_404s(params: ClientParams) -> Bench {
    let (mut b, _es) = Bench::connected_with(params);
    let reqs: Vec<ReqId> = (0..101)
        .map(|i| b.send_direct(prompt(&format!("m{i}"))))
        .collect();
    for req in reqs {
        let out = b.feed(done(req, status(404)));
        assert!(posts(&out).is_empty(), "a re-queued item is not re-posted");
    }
    b
}

#[test]
fn b1_rev1_requeue_bypasses_the_cap_and_the_queue_grows_past_100() {
    let b = hundred_and_one_direct_404s(rev("r1"));
    assert_eq!(b.client.pending_len(), 101);
    assert!(dropped(&b.log).is_empty(), "nothing evicted");
}

#[test]
fn b1_rev2_requeue_goes_through_the_cap_and_evicts_the_oldest() {
    let b = hundred_and_one_direct_404s(rev("r2"));
    assert_eq!(b.client.pending_len(), 100);
    assert_eq!(dropped(&b.log), vec![(prompt("m0"), DropReason::Evicted)]);
    assert!(!told_app_of_failure(&b.log), "eviction is silent");
}

#[test]
fn b1_a_flushed_full_queue_plus_one_direct_send_exceeds_the_cap_on_rev1_only() {
    for (name, params, expected) in [("r1", rev("r1"), 101), ("r2", rev("r2"), 100)] {
        let mut b = Bench::with(params);
        let es = b.connect();
        for i in 0..100 {
            b.send_queued(prompt(&format!("m{i}")));
        }
        let flushed = posts(&b.feed(welcome(es, 2)));
        assert_eq!(flushed.len(), 100, "{name}: parallel flush");
        let direct = b.send_direct(prompt("m100"));
        for req in flushed.iter().map(|p| p.req).chain([direct]) {
            b.feed(done(req, status(404)));
        }
        assert_eq!(b.client.pending_len(), expected, "{name}");
    }
}

// ─── B2: permanent error retried forever (rev1-2), fixed in rev3 ───────────────────────

#[test]
fn b2_rev1_and_rev2_requeue_a_400_and_repost_it_at_every_welcome() {
    for (name, params) in revs(&["r1", "r2"]) {
        let (mut b, es) = Bench::connected_with(params);
        let m = prompt("bad");
        let req = b.send_direct(m.clone());
        b.feed(done(req, status(400)));
        assert_eq!(b.pending(), vec![(m.clone(), 1)], "{name}");
        for k in 2..=6 {
            let out = b.bounce(es, k);
            let p = only_post(&out);
            assert_eq!((p.body.clone(), p.conn), (m.clone(), conn(k)), "{name}");
            b.feed(done(p.req, status(400)));
            assert_eq!(b.pending(), vec![(m.clone(), k)], "{name}: still queued");
        }
        assert_eq!(posts_of(&b.log, &m).len(), 6, "{name}: no attempt limit");
        assert!(dropped(&b.log).is_empty());
        assert!(!told_app_of_failure(&b.log));
    }
}

#[test]
fn b2_rev3_on_drops_a_permanent_error_silently() {
    for (name, params) in revs(&["r3", "r4", "r5", "r6", "r7", "r8", "r9"]) {
        for code in [400, 401, 403, 409, 422] {
            let (mut b, es) = Bench::connected_with(params.clone());
            let m = prompt("bad");
            let req = b.send_direct(m.clone());
            let out = b.feed(done(req, status(code)));
            assert_eq!(
                dropped(&out),
                vec![(m.clone(), DropReason::NotRetried)],
                "{name} {code}"
            );
            assert_eq!(b.client.pending_len(), 0);
            assert!(posts(&b.bounce(es, 2)).is_empty(), "{name}: not re-posted");
            assert!(!told_app_of_failure(&b.log));
        }
    }
}

// ─── B3: stranded while the stream stays healthy (rev1-9, never fixed) ─────────────────

#[test]
fn b3_a_500_requeued_while_the_stream_stays_up_is_never_retried_and_a_later_send_goes_first() {
    for (name, params) in revs(ALL_REVS) {
        let (mut b, _es) = Bench::connected_with(params);
        let m1 = prompt("m1");
        let req = b.send_direct(m1.clone());
        let out = b.feed(done(req, status(500)));
        assert!(out.is_empty(), "{name}: re-queued, nothing else: {out:?}");
        assert_eq!(b.pending(), vec![(m1.clone(), 1)], "{name}");
        assert!(b.client.is_connected(), "{name}: the stream is fine");

        // Time passes and the page comes to the front: nothing retries m1.
        b.now += 60_000;
        let out = b.feed(ClientInput::Page(PageEvent::Visible));
        assert_eq!(
            out,
            vec![ClientOutput::App(AppNotice::Foreground)],
            "{name}"
        );
        assert!(!b.client.reconnect_pending());

        // A later send goes straight out, ahead of m1.
        let m2 = prompt("m2");
        let req2 = b.send_direct(m2.clone());
        assert!(b.feed(done(req2, ok())).is_empty());
        assert_eq!(
            b.pending(),
            vec![(m1.clone(), 1)],
            "{name}: m1 still stranded"
        );
        assert_eq!(posts_of(&b.log, &m1).len(), 1, "{name}");
        assert_eq!(
            timers_set(&b.log, None).len(),
            0,
            "{name}: no timer ever retries"
        );
    }
}

#[test]
fn b3_baseline_drops_the_failed_send_instead() {
    let (mut b, _es) = Bench::connected_with(ClientParams::default());
    let req = b.send_direct(prompt("m1"));
    let out = b.feed(done(req, status(500)));
    assert_eq!(
        dropped(&out),
        vec![(prompt("m1"), DropReason::StatusIgnored)]
    );
    assert_eq!(b.client.pending_len(), 0);
}

// ─── B4: endless cycling (rev3), fixed in rev4 ─────────────────────────────────────────

/// A send that fails with 503 directly and then at every one of `cycles` welcomes.
fn persistent_503(params: ClientParams, cycles: u32) -> (Bench, ClientMsg) {
    let (mut b, es) = Bench::connected_with(params);
    let m = prompt("m");
    let req = b.send_direct(m.clone());
    b.feed(done(req, status(503)));
    for k in 0..cycles {
        let out = b.bounce(es, k + 2);
        for p in posts_of(&out, &m) {
            b.feed(done(p.req, status(503)));
        }
    }
    (b, m)
}

#[test]
fn b4_rev3_attempts_grow_without_bound_across_welcomes() {
    let (b, m) = persistent_503(rev("r3"), 10);
    assert_eq!(posts_of(&b.log, &m).len(), 11);
    assert_eq!(b.pending(), vec![(m, 11)]);
    assert!(dropped(&b.log).is_empty());
}

#[test]
fn b4_rev4_stops_at_three_attempts() {
    let (b, m) = persistent_503(rev("r4"), 10);
    let attempts = posts_of(&b.log, &m);
    assert_eq!(attempts.len(), 3);
    assert_eq!(
        attempts.iter().map(|p| p.conn).collect::<Vec<_>>(),
        vec![conn(1), conn(2), conn(3)],
        "spread over the welcomes"
    );
    assert_eq!(dropped(&b.log), vec![(m, DropReason::BudgetExhausted)]);
    assert_eq!(b.client.pending_len(), 0);
}

// ─── Budget drop (rev4-9): silent loss by design ───────────────────────────────────────

#[test]
fn budget_rev4_to_rev9_third_failure_is_dropped_and_the_app_is_not_told() {
    for (name, params) in revs(&["r4", "r5", "r6", "r7", "r8", "r9"]) {
        let (mut b, es) = Bench::connected_with(params);
        let m = prompt("m");
        let mut outstanding = vec![b.send_direct(m.clone())];
        let mut next_conn = 2;
        for _ in 0..10 {
            if let Some(req) = outstanding.pop() {
                let out = b.feed(done(req, status(503)));
                outstanding.extend(posts_of(&out, &m).iter().map(|p| p.req));
            } else if b.client.pending_len() > 0 {
                let out = b.bounce(es, next_conn);
                next_conn += 1;
                outstanding.extend(posts_of(&out, &m).iter().map(|p| p.req));
            } else {
                break;
            }
        }
        assert_eq!(
            posts_of(&b.log, &m).len(),
            3,
            "{name}: three attempts in all"
        );
        assert_eq!(
            dropped(&b.log),
            vec![(m.clone(), DropReason::BudgetExhausted)],
            "{name}"
        );
        assert!(!told_app_of_failure(&b.log), "{name}: console warning only");
        assert_eq!(b.client.pending_len(), 0);
        assert_eq!(b.client.in_flight_len(), 0);
    }
}

#[test]
fn attempts_are_counted_per_item_and_a_fresh_send_starts_at_zero() {
    let (mut b, es) = Bench::connected_with(rev("r4"));
    let req = b.send_direct(prompt("m1"));
    b.feed(done(req, PostOutcome::NetworkError));
    b.feed(ClientInput::StreamError { es });
    b.send_queued(prompt("m2"));
    assert_eq!(b.pending(), vec![(prompt("m1"), 1), (prompt("m2"), 0)]);
    let out = b.feed(welcome(es, 2));
    let flushed = posts(&out);
    assert_eq!(flushed.len(), 2, "rev4 flushes in parallel");
    for p in &flushed {
        b.feed(done(p.req, status(502)));
    }
    assert_eq!(b.pending(), vec![(prompt("m1"), 2), (prompt("m2"), 1)]);
}

// ─── B5: 429 dropped (rev3-4), fixed in rev5 ───────────────────────────────────────────

#[test]
fn b5_rev3_and_rev4_drop_a_429_silently() {
    for (name, params) in revs(&["r3", "r4"]) {
        let (mut b, _es) = Bench::connected_with(params);
        let req = b.send_direct(prompt("m"));
        let out = b.feed(done(req, status(429)));
        assert_eq!(
            dropped(&out),
            vec![(prompt("m"), DropReason::NotRetried)],
            "{name}"
        );
        assert!(
            notices(&out).is_empty(),
            "{name}: neither re-queued nor reported"
        );
        assert_eq!(b.client.pending_len(), 0);
    }
}

#[test]
fn b5_rev5_on_requeue_a_429() {
    for (name, params) in revs(&["r1", "r2", "r5", "r6", "r7", "r8", "r9"]) {
        let (mut b, _es) = Bench::connected_with(params);
        let req = b.send_direct(prompt("m"));
        let out = b.feed(done(req, status(429)));
        assert!(dropped(&out).is_empty(), "{name}");
        assert_eq!(b.pending(), vec![(prompt("m"), 1)], "{name}");
    }
}

// ─── B6: ordering race on the first-connect path (rev5-6, maybe later) ─────────────────

#[test]
fn b6_rev5_and_rev6_a_direct_send_overtakes_the_flush_first_post() {
    for (name, params, open_at_welcome) in [("r5", rev("r5"), true), ("r6", rev("r6"), false)] {
        let mut b = Bench::with(params);
        let es = b.connect();
        let (m1, m2) = (prompt("m1"), prompt("m2"));
        b.send_queued(m1.clone());
        let out = b.feed(welcome(es, 2));
        let p1 = only_post(&out);
        assert_eq!((p1.body.clone(), p1.conn), (m1.clone(), conn(2)));
        assert_eq!(opens(&out) == 1, open_at_welcome, "{name}");
        assert!(
            b.client.is_connected(),
            "{name}: connected before the flush"
        );

        // m1 is still in flight: m2 bypasses the queue and races it.
        let p2 = b.send_direct(m2.clone());
        assert_eq!(b.client.in_flight_len(), 2, "{name}");
        // The network delivers m2 first; the flush is still waiting for m1.
        assert!(b.feed(done(p2, ok())).is_empty());
        let out = b.feed(done(p1.req, ok()));
        assert_eq!(opens(&out), usize::from(!open_at_welcome), "{name}");
        assert_eq!(b.client.flushes_running(), 0);
    }
}

#[test]
fn b6_absent_when_the_first_connect_path_connects_after_the_flush() {
    // Not a preset: rev9 with `connect_before_flush = false`, the reading the spec leaves
    // open for rev7-9. A send during the flush is queued, and the loop posts it after m1.
    let mut params = rev("r9");
    params.connect_before_flush = false;
    let mut b = Bench::with(params);
    let es = b.connect();
    b.send_queued(prompt("m1"));
    let p1 = only_post(&b.feed(welcome(es, 2)));
    assert!(!b.client.is_connected());
    b.send_queued(prompt("m2"));
    let out = b.feed(done(p1.req, ok()));
    let p2 = only_post(&out);
    assert_eq!((p2.body, p2.conn), (prompt("m2"), conn(2)));
    assert_eq!(opens(&out), 0, "the flush is not done yet");
    let out = b.feed(done(p2.req, ok()));
    assert_eq!(notices(&out), vec![AppNotice::Open]);
    assert!(b.client.is_connected());
    assert_eq!(b.client.pending_len(), 0);
}

// ─── B7: concurrent flushes (rev6), fixed by the guards of rev7/8 ──────────────────────

/// Queue [m1, m2] → welcome(c2): F1 posts m1 → m1's reply is lost (ambiguous network
/// error: the server had it) → m1 re-queued while F1 posts m2 → es_error, welcome(c3).
/// Returns the bench, m2's request and the outputs of welcome(c3).
fn b7_sequence(params: ClientParams) -> (Bench, ReqId, Vec<ClientOutput>) {
    let mut b = Bench::with(params);
    let es = b.connect();
    b.send_queued(prompt("m1"));
    b.send_queued(prompt("m2"));
    let p1 = only_post(&b.feed(welcome(es, 2)));
    assert_eq!((p1.body, p1.conn), (prompt("m1"), conn(2)));
    let out = b.feed(done(p1.req, PostOutcome::NetworkError));
    let p2 = only_post(&out);
    assert_eq!((p2.body, p2.conn), (prompt("m2"), conn(2)));
    assert_eq!(b.pending(), vec![(prompt("m1"), 1)]);
    let out = b.bounce(es, 3);
    (b, p2.req, out)
}

#[test]
fn b7_rev6_two_concurrent_flushes_post_the_same_message_under_two_connection_ids() {
    let (mut b, m2_req, out) = b7_sequence(rev("r6"));
    let again = only_post(&out);
    assert_eq!((again.body.clone(), again.conn), (prompt("m1"), conn(3)));
    assert_eq!(b.client.flushes_running(), 2, "F1 (awaiting m2) and F2");
    assert_eq!(b.client.in_flight_len(), 2, "m2 and m1' in flight together");
    let m1_posts: Vec<ConnId> = posts_of(&b.log, &prompt("m1"))
        .iter()
        .map(|p| p.conn)
        .collect();
    assert_eq!(m1_posts, vec![conn(2), conn(3)], "dispatched twice");

    // Each flush's `.then(_open)` fires when it settles.
    assert_eq!(opens(&b.feed(done(again.req, ok()))), 1);
    assert_eq!(opens(&b.feed(done(m2_req, ok()))), 1);
    assert_eq!(b.client.flushes_running(), 0);
}

#[test]
fn b7_rev7_and_rev8_never_run_two_flushes() {
    for (name, params, open_at_welcome) in [("r7", rev("r7"), 1), ("r8", rev("r8"), 0)] {
        let (mut b, m2_req, out) = b7_sequence(params);
        assert!(posts(&out).is_empty(), "{name}: m1 not posted again");
        assert_eq!(opens(&out), open_at_welcome, "{name}");
        assert_eq!(b.client.flushes_running(), 1, "{name}");
        assert_eq!(b.client.in_flight_len(), 1, "{name}: only m2");
        let out = b.feed(done(m2_req, ok()));
        assert!(posts(&out).is_empty(), "{name}");
        // rev7: F1's awaiter opens; rev8: F1's awaiter and the joined welcome both do.
        assert_eq!(opens(&out), 2 - open_at_welcome, "{name}");
        assert_eq!(posts_of(&b.log, &prompt("m1")).len(), 1, "{name}");
        // m1 is left for a later welcome (B8).
        assert_eq!(b.pending(), vec![(prompt("m1"), 1)], "{name}");
    }
}

// ─── B8a: skipped flush (rev7), fixed in rev8 ──────────────────────────────────────────

/// Reconnect path: queue [m1] → welcome(c2) → /reconnect ok ⇒ F1 posts m1 → send(m2)
/// (queued) → a second welcome(c3) on the same stream → its /reconnect ok.
/// Returns the bench, m1's request and the outputs of the second /reconnect reply.
fn b8a_sequence(params: ClientParams) -> (Bench, ReqId, Vec<ClientOutput>) {
    let (mut b, es) = Bench::reconnecting(params);
    b.send_queued(prompt("m1"));
    let rc2 = b.welcome_reconnect(es, 2);
    let out = b.feed(done(rc2, ok()));
    let p1 = only_post(&out);
    assert_eq!((p1.body, p1.conn), (prompt("m1"), conn(2)));
    assert_eq!(opens(&out), 0);
    assert!(
        !b.client.is_connected(),
        "the reconnect path awaits the flush"
    );
    b.send_queued(prompt("m2"));
    let rc3 = b.welcome_reconnect(es, 3);
    let out = b.feed(done(rc3, ok()));
    (b, p1.req, out)
}

#[test]
fn b8a_rev7_second_welcome_skips_the_flush_and_opens_while_m1_is_in_flight() {
    let (mut b, m1_req, out) = b8a_sequence(rev("r7"));
    assert_eq!(notices(&out), vec![AppNotice::Open], "_open at once");
    assert!(posts(&out).is_empty(), "m2 is not flushed");
    assert!(b.client.is_connected());
    assert_eq!(b.client.flushes_running(), 1, "F1 still awaits m1");
    assert_eq!(b.client.in_flight_len(), 1);
    assert_eq!(b.pending(), vec![(prompt("m2"), 0)]);

    // Connected now: m3 goes straight out under c3 while m1 is still in flight.
    let m3 = b.send_direct(prompt("m3"));
    assert_eq!(only_post(&b.log[b.log.len() - 2..]).conn, conn(3));
    b.feed(done(m3, ok()));

    // F1 settles: its awaiter opens again; m2 was left behind.
    let out = b.feed(done(m1_req, ok()));
    assert_eq!(notices(&out), vec![AppNotice::Open]);
    assert_eq!(b.pending(), vec![(prompt("m2"), 0)]);
    assert!(posts_of(&b.log, &prompt("m2")).is_empty());
}

#[test]
fn b8a_rev8_second_welcome_joins_and_opens_only_when_m1_settles() {
    let (mut b, m1_req, out) = b8a_sequence(rev("r8"));
    assert!(out.is_empty(), "joined the running flush: {out:?}");
    assert!(!b.client.is_connected());
    b.send_queued(prompt("m3"));
    let out = b.feed(done(m1_req, ok()));
    assert_eq!(
        notices(&out),
        vec![AppNotice::Open, AppNotice::Open],
        "both awaiting handlers resume"
    );
    assert!(b.client.is_connected());
    assert_eq!(b.client.flushes_running(), 0);
}

// ─── B8b: mid-flush stranding (rev8), fixed in rev9 ────────────────────────────────────

/// Reconnect path: queue [m1] → welcome(c2) → /reconnect ok ⇒ F1 captures [m1] →
/// send(m2) is queued (not connected) → m1 ok. Returns the bench and m1's reply outputs.
fn b8b_sequence(params: ClientParams) -> (Bench, Vec<ClientOutput>) {
    let (mut b, es) = Bench::reconnecting(params);
    b.send_queued(prompt("m1"));
    let rc = b.welcome_reconnect(es, 2);
    let p1 = only_post(&b.feed(done(rc, ok())));
    b.send_queued(prompt("m2"));
    let out = b.feed(done(p1.req, ok()));
    (b, out)
}

#[test]
fn b8b_rev8_item_queued_mid_flush_is_stranded_after_open() {
    let (mut b, out) = b8b_sequence(rev("r8"));
    assert_eq!(notices(&out), vec![AppNotice::Open]);
    assert!(posts(&out).is_empty());
    assert!(b.client.is_connected());
    assert_eq!(b.pending(), vec![(prompt("m2"), 0)]);
    // A later send goes direct, ahead of m2.
    b.send_direct(prompt("m3"));
    assert_eq!(b.pending(), vec![(prompt("m2"), 0)]);
}

#[test]
fn b8b_rev9_loop_posts_the_mid_flush_item_before_open() {
    let (mut b, out) = b8b_sequence(rev("r9"));
    let p2 = only_post(&out);
    assert_eq!((p2.body, p2.conn), (prompt("m2"), conn(2)));
    assert_eq!(opens(&out), 0);
    assert!(!b.client.is_connected());
    let out = b.feed(done(p2.req, ok()));
    assert_eq!(notices(&out), vec![AppNotice::Open]);
    assert!(b.client.is_connected());
    assert_eq!(b.client.pending_len(), 0);
}

// ─── B9: attempt burn inside one flush (rev9, never fixed) ─────────────────────────────

/// Queue [m1] → welcome(c2) → the server drops c2 before the POST lands → every reply
/// is `code` until the flush settles. Returns the bench and the stream.
fn b9_sequence(params: ClientParams, code: u16) -> (Bench, EsId) {
    let mut b = Bench::with(params);
    let es = b.connect();
    b.send_queued(prompt("m1"));
    let mut out = b.feed(welcome(es, 2));
    while let Some(p) = posts_of(&out, &prompt("m1")).pop() {
        out = b.feed(done(p.req, status(code)));
    }
    (b, es)
}

#[test]
fn b9_rev9_loop_burns_all_attempts_in_one_flush_on_the_same_stale_connection_id() {
    let (mut b, es) = b9_sequence(rev("r9"), 404);
    let attempts = posts_of(&b.log, &prompt("m1"));
    assert_eq!(attempts.len(), 3);
    assert!(attempts.iter().all(|p| p.conn == conn(2)), "same stale c2");
    assert_eq!(
        dropped(&b.log),
        vec![(prompt("m1"), DropReason::BudgetExhausted)]
    );
    // `_open` waited for the flush, so it comes only after m1 was given up.
    let drop_at = b
        .log
        .iter()
        .position(|o| matches!(o, ClientOutput::Dropped { .. }));
    let open_at = b
        .log
        .iter()
        .position(|o| *o == ClientOutput::App(AppNotice::Open));
    assert_eq!(opens(&b.log), 1);
    assert!(drop_at < open_at, "{:?}", b.log);
    assert!(!told_app_of_failure(&b.log));
    // welcome(c3) would have worked: nothing is left to send.
    assert!(posts(&b.bounce(es, 3)).is_empty());
}

#[test]
fn b9_rev9_retries_a_429_three_times_with_no_backoff() {
    let (b, _es) = b9_sequence(rev("r9"), 429);
    assert_eq!(posts_of(&b.log, &prompt("m1")).len(), 3);
    assert_eq!(
        timers_set(&b.log, None).len(),
        0,
        "no backoff timer, no Retry-After"
    );
    assert_eq!(
        b.now, 1_000,
        "all three within the same instant of the bench"
    );
}

#[test]
fn b9_rev8_keeps_the_item_for_the_next_welcome_where_it_succeeds() {
    let (mut b, es) = b9_sequence(rev("r8"), 404);
    assert_eq!(
        posts_of(&b.log, &prompt("m1")).len(),
        1,
        "one attempt per flush"
    );
    assert_eq!(b.pending(), vec![(prompt("m1"), 1)]);
    let p = only_post(&b.bounce(es, 3));
    assert_eq!((p.body, p.conn), (prompt("m1"), conn(3)));
    b.feed(done(p.req, ok()));
    assert!(dropped(&b.log).is_empty());
}

// ─── Flush modes ───────────────────────────────────────────────────────────────────────

#[test]
fn parallel_flush_posts_everything_at_once_and_holds_no_flush_state() {
    let mut b = Bench::with(rev("r4"));
    let es = b.connect();
    for id in ["m1", "m2", "m3"] {
        b.send_queued(prompt(id));
    }
    let out = b.feed(welcome(es, 1));
    let bodies = bodies(&out);
    assert_eq!(bodies, vec![prompt("m1"), prompt("m2"), prompt("m3")]);
    assert_eq!(opens(&out), 1);
    assert_eq!(b.client.flushes_running(), 0);
    assert_eq!(b.client.in_flight_len(), 3);
}

#[test]
fn sequential_flush_posts_one_at_a_time_with_the_connection_id_current_at_each_start() {
    let mut b = Bench::with(rev("r5"));
    let es = b.connect();
    for id in ["m1", "m2", "m3"] {
        b.send_queued(prompt(id));
    }
    let out = b.feed(welcome(es, 1));
    let p1 = only_post(&out);
    assert_eq!((p1.body, p1.conn), (prompt("m1"), conn(1)));
    assert_eq!(b.client.flushes_running(), 1);
    assert_eq!(b.client.flush_backlog(), 2);

    // A new welcome in between: the next doPost reads c2.
    let out = b.bounce(es, 2);
    assert!(
        posts(&out).is_empty(),
        "queue empty: the second flush returns at once"
    );
    let p2 = only_post(&b.feed(done(p1.req, ok())));
    assert_eq!((p2.body, p2.conn), (prompt("m2"), conn(2)));
    let p3 = only_post(&b.feed(done(p2.req, ok())));
    assert_eq!((p3.body, p3.conn), (prompt("m3"), conn(2)));
    assert!(b.feed(done(p3.req, ok())).is_empty());
    assert_eq!(b.client.flushes_running(), 0);
}

#[test]
fn sequential_flush_requeues_a_failure_and_goes_on_without_reposting_it() {
    let mut b = Bench::with(rev("r5"));
    let es = b.connect();
    b.send_queued(prompt("m1"));
    b.send_queued(prompt("m2"));
    let p1 = only_post(&b.feed(welcome(es, 1)));
    let out = b.feed(done(p1.req, status(503)));
    let p2 = only_post(&out);
    assert_eq!(p2.body, prompt("m2"));
    assert_eq!(b.pending(), vec![(prompt("m1"), 1)]);
    assert!(b.feed(done(p2.req, ok())).is_empty(), "one pass only");
    assert_eq!(b.client.flushes_running(), 0);
    assert_eq!(b.pending(), vec![(prompt("m1"), 1)]);
}

#[test]
fn loop_until_empty_recaptures_the_queue_until_it_is_empty() {
    let mut b = Bench::with(rev("r9"));
    let es = b.connect();
    b.send_queued(prompt("m1"));
    b.send_queued(prompt("m2"));
    let p1 = only_post(&b.feed(welcome(es, 1)));
    let p2 = only_post(&b.feed(done(p1.req, status(503))));
    assert_eq!(p2.body, prompt("m2"));
    let again = only_post(&b.feed(done(p2.req, ok())));
    assert_eq!((again.body, again.conn), (prompt("m1"), conn(1)));
    let out = b.feed(done(again.req, ok()));
    assert_eq!(notices(&out), vec![AppNotice::Open]);
    assert_eq!(b.client.flushes_running(), 0);
    assert_eq!(b.client.pending_len(), 0);
}

// ─── Flush guards ──────────────────────────────────────────────────────────────────────

/// Queue [m1] → welcome(c1) ⇒ F1 posts m1 → es_error → send(m2) queued → welcome(c2)
/// on the first-connect path. Returns the bench, m1's request and welcome(c2)'s outputs.
fn second_flush_requested(params: ClientParams) -> (Bench, ReqId, Vec<ClientOutput>) {
    let mut b = Bench::with(params);
    let es = b.connect();
    b.send_queued(prompt("m1"));
    let p1 = only_post(&b.feed(welcome(es, 1)));
    b.feed(ClientInput::StreamError { es });
    b.send_queued(prompt("m2"));
    let out = b.feed(welcome(es, 2));
    (b, p1.req, out)
}

#[test]
fn guard_none_starts_a_second_flush_alongside_the_running_one() {
    let (b, _m1, out) = second_flush_requested(rev("r6"));
    let p2 = only_post(&out);
    assert_eq!((p2.body, p2.conn), (prompt("m2"), conn(2)));
    assert_eq!(b.client.flushes_running(), 2);
}

#[test]
fn guard_skip_returns_at_once_as_if_the_flush_had_finished() {
    let (mut b, m1, out) = second_flush_requested(rev("r7"));
    assert!(posts(&out).is_empty());
    assert_eq!(
        notices(&out),
        vec![AppNotice::Open],
        "its .then runs at once"
    );
    assert_eq!(b.client.flushes_running(), 1);
    assert_eq!(b.pending(), vec![(prompt("m2"), 0)]);
    let out = b.feed(done(m1, ok()));
    assert_eq!(notices(&out), vec![AppNotice::Open]);
    assert_eq!(
        b.pending(),
        vec![(prompt("m2"), 0)],
        "skipped, not deferred"
    );
}

#[test]
fn guard_join_runs_the_waiting_continuation_when_the_running_flush_settles() {
    let (mut b, m1, out) = second_flush_requested(rev("r8"));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(b.client.flushes_running(), 1);
    let out = b.feed(done(m1, ok()));
    assert_eq!(notices(&out), vec![AppNotice::Open, AppNotice::Open]);
    assert_eq!(
        b.pending(),
        vec![(prompt("m2"), 0)],
        "rev8 does one pass (B8b)"
    );

    // With rev9's loop the joined flush also carries m2, before both _opens.
    let (mut b, m1, _out) = second_flush_requested(rev("r9"));
    let p2 = only_post(&b.feed(done(m1, ok())));
    assert_eq!((p2.body, p2.conn), (prompt("m2"), conn(2)));
    let out = b.feed(done(p2.req, ok()));
    assert_eq!(notices(&out), vec![AppNotice::Open, AppNotice::Open]);
    assert_eq!(b.client.pending_len(), 0);
}

#[test]
fn guard_join_waits_even_when_the_queue_is_empty() {
    // rev8's welcome: `if (pendingSends.length > 0 || this._flushPromise)`.
    let mut b = Bench::with(rev("r8"));
    let es = b.connect();
    b.send_queued(prompt("m1"));
    let p1 = only_post(&b.feed(welcome(es, 1)));
    let out = b.bounce(es, 2);
    assert_eq!(opens(&out), 0, "waits for F1 although nothing is queued");
    assert_eq!(opens(&b.feed(done(p1.req, ok()))), 2);
    // rev7 in the same spot opens at once.
    let mut b = Bench::with(rev("r7"));
    let es = b.connect();
    b.send_queued(prompt("m1"));
    b.feed(welcome(es, 1));
    assert_eq!(opens(&b.bounce(es, 2)), 1);
}

// ─── Open timing ───────────────────────────────────────────────────────────────────────

#[test]
fn before_flush_reconnect_path_connects_posts_and_opens_at_once_with_a_background_flush() {
    let (mut b, es) = Bench::reconnecting(rev("r5"));
    b.send_queued(prompt("m1"));
    b.send_queued(prompt("m2"));
    let rc = b.welcome_reconnect(es, 2);
    let out = b.feed(done(rc, ok()));
    let p1 = only_post(&out);
    assert_eq!(p1.body, prompt("m1"));
    let post_at = out
        .iter()
        .position(|o| matches!(o, ClientOutput::Post { .. }));
    let open_at = out
        .iter()
        .position(|o| *o == ClientOutput::App(AppNotice::Open));
    assert!(post_at < open_at, "{out:?}");
    assert!(b.client.is_connected());
    assert_eq!(
        b.client.flushes_running(),
        1,
        "rev5's flush goes on in the background"
    );
    let p2 = only_post(&b.feed(done(p1.req, ok())));
    assert_eq!(p2.body, prompt("m2"));
}

#[test]
fn after_flush_first_connect_sets_connected_first_and_opens_when_the_flush_settles() {
    let mut b = Bench::with(rev("r6"));
    let es = b.connect();
    b.send_queued(prompt("m1"));
    let out = b.feed(welcome(es, 1));
    assert_eq!(opens(&out), 0);
    assert!(b.client.is_connected());
    let req = only_post(&out).req;
    assert_eq!(notices(&b.feed(done(req, ok()))), vec![AppNotice::Open]);
}

#[test]
fn after_flush_reconnect_path_connects_and_opens_only_after_the_flush() {
    let (mut b, es) = Bench::reconnecting(rev("r6"));
    b.send_queued(prompt("m1"));
    let rc = b.welcome_reconnect(es, 2);
    let p1 = only_post(&b.feed(done(rc, ok())));
    assert!(!b.client.is_connected());
    b.send_queued(prompt("m2"));
    let out = b.feed(done(p1.req, ok()));
    assert_eq!(notices(&out), vec![AppNotice::Open]);
    assert!(b.client.is_connected());
    assert_eq!(b.pending(), vec![(prompt("m2"), 0)], "B8b already on rev6");
}

#[test]
fn after_flush_with_nothing_queued_opens_at_once_on_both_paths() {
    let (mut b, es) = Bench::reconnecting(rev("r6"));
    let rc = b.welcome_reconnect(es, 2);
    let out = b.feed(done(rc, ok()));
    assert_eq!(out, vec![ClientOutput::App(AppNotice::Open)]);
    assert!(b.client.is_connected());
    // The first-connect path is covered by `Bench::connected_with` for every revision.
    for (name, params) in revs(ALL_REVS) {
        let (b, _es) = Bench::connected_with(params);
        assert!(b.client.is_connected(), "{name}");
    }
}

#[test]
fn a_failed_post_inside_an_awaited_flush_does_not_fail_the_flush() {
    // `doPost` catches everything, so the reconnect path's `catch ⇒ scheduleReconnect`
    // never runs: the flush settles and the client connects with the item re-queued.
    let (mut b, es) = Bench::reconnecting(rev("r6"));
    b.send_queued(prompt("m1"));
    let rc = b.welcome_reconnect(es, 2);
    let p1 = only_post(&b.feed(done(rc, ok())));
    let out = b.feed(done(p1.req, PostOutcome::NetworkError));
    assert_eq!(notices(&out), vec![AppNotice::Open]);
    assert_eq!(timers_set(&out, None).len(), 0);
    assert!(b.client.is_connected());
    assert_eq!(b.pending(), vec![(prompt("m1"), 1)]);
}

#[test]
fn an_awaiting_handler_does_not_recheck_staleness_after_the_flush() {
    // Reading of rev6+ `await flushPendingSends(); _connected = true; _open`: no guard
    // between the await and `_connected`, so a disconnect() mid-flush is overridden.
    let (mut b, es) = Bench::reconnecting(rev("r8"));
    b.send_queued(prompt("m1"));
    let rc = b.welcome_reconnect(es, 2);
    let p1 = only_post(&b.feed(done(rc, ok())));
    b.feed(ClientInput::Disconnect);
    assert!(!b.client.is_connected());
    let out = b.feed(done(p1.req, ok()));
    assert_eq!(notices(&out), vec![AppNotice::Open]);
    assert!(b.client.is_connected());
    assert_eq!(b.client.current_stream(), None);
}

// ─── Retry policy details ──────────────────────────────────────────────────────────────

#[test]
fn only_the_retryable_endpoints_are_requeued() {
    for (name, params) in revs(ALL_REVS) {
        let permission_retried = matches!(name, "r6" | "r7" | "r8" | "r9");
        let (mut b, _es) = Bench::connected_with(params);
        let stop = ClientMsg::Stop { session: sid("s1") };
        let req = b.send_direct(stop.clone());
        let out = b.feed(done(req, status(500)));
        assert_eq!(
            dropped(&out),
            vec![(stop, DropReason::NotRetried)],
            "{name}"
        );

        let req = b.send_direct(permission("r1"));
        let out = b.feed(done(req, PostOutcome::NetworkError));
        if permission_retried {
            assert_eq!(b.pending(), vec![(permission("r1"), 1)], "{name}");
        } else {
            assert_eq!(
                dropped(&out),
                vec![(permission("r1"), DropReason::NotRetried)],
                "{name}"
            );
        }

        // A network error on a send is retried in every revision.
        let req = b.send_direct(prompt("m"));
        b.feed(done(req, PostOutcome::NetworkError));
        assert!(b.pending().contains(&(prompt("m"), 1)), "{name}");
        assert!(!told_app_of_failure(&b.log), "{name}");
    }
}

#[test]
fn requeued_items_are_flushed_by_a_welcome_never_by_the_reconnect_timer() {
    let (mut b, es) = Bench::connected_with(rev("r4"));
    b.client.track_seq(sid("s1"), 3);
    let req = b.send_direct(prompt("m1"));
    b.feed(done(req, status(500)));
    b.feed(ClientInput::StreamError { es });
    let rc = b.welcome_reconnect(es, 2);
    let out = b.feed(done(rc, status(503)));
    assert_eq!(timers_set(&out, None).len(), 1, "scheduleReconnect");
    b.now += 500;
    let out = b.feed(ClientInput::Timer(ClientTimer::Reconnect));
    assert!(
        posts(&out).is_empty(),
        "the timer only opens a stream: {out:?}"
    );
    let es2 = match out.as_slice() {
        [ClientOutput::OpenStream { es }] => *es,
        _ => panic!("{out:?}"),
    };
    let rc = b.welcome_reconnect(es2, 3);
    let p = only_post(&b.feed(done(rc, ok())));
    assert_eq!((p.body, p.conn), (prompt("m1"), conn(3)));
}

#[test]
fn capped_requeue_into_a_full_queue_evicts_the_oldest_queued_item() {
    // rev2+: the failed item goes through enqueuePending and lands at the back.
    let (mut b, es) = Bench::connected_with(rev("r4"));
    let req = b.send_direct(prompt("late"));
    b.feed(ClientInput::StreamError { es });
    for i in 0..100 {
        b.send_queued(prompt(&format!("q{i}")));
    }
    let out = b.feed(done(req, status(502)));
    assert_eq!(dropped(&out), vec![(prompt("q0"), DropReason::Evicted)]);
    assert_eq!(b.client.pending_len(), 100);
    assert_eq!(b.pending().last(), Some(&(prompt("late"), 1)));
}

// ─── Determinism ───────────────────────────────────────────────────────────────────────

#[test]
fn identical_inputs_give_identical_outputs_under_every_revision() {
    let es = EsId(1);
    let script = vec![
        (0, ClientInput::Connect),
        (1, send(prompt("a"))),
        (2, send(prompt("b"))),
        (3, welcome(es, 1)),
        (4, done(ReqId(1), PostOutcome::NetworkError)),
        (5, send(prompt("c"))),
        (6, ClientInput::StreamError { es }),
        (7, welcome(es, 2)),
        (8, done(ReqId(2), status(404))),
        (9, done(ReqId(3), status(500))),
        (10, done(ReqId(4), ok())),
        (11, done(ReqId(5), status(429))),
        (12, done(ReqId(6), ok())),
        (13, done(ReqId(7), ok())),
    ];
    for (name, params) in revs(ALL_REVS) {
        let run = || {
            let mut c = Client::new(params.clone());
            let outs: Vec<Vec<ClientOutput>> = script
                .iter()
                .cloned()
                .map(|(now, input)| c.handle(now, input))
                .collect();
            (c, outs)
        };
        let (a, out_a) = run();
        let (b, out_b) = run();
        assert_eq!(out_a, out_b, "{name}");
        assert_eq!(a, b, "{name}");
        assert!(posts(&out_a.concat()).len() >= 3, "{name}: not vacuous");
    }
}
