//! The reference design's acknowledged, ordered outbox for prompts (spec §7, [OB]).
//!
//! A pure sub-machine the client owns when `ClientParams::outbox` is set. It holds the
//! prompts (`send` and `interrupt` messages, each carrying a clientMsgId) in FIFO order and
//! posts them one at a time:
//!
//! - [`Outbox::offer`] refuses (returns false) when `capacity` items are held; it never
//!   evicts.
//! - At most one request is in flight; [`Outbox::poll`] hands out the head item only when
//!   nothing is in flight and no backoff is pending. The caller attaches the `ReqId` and the
//!   connection id and posts it.
//! - [`Outbox::on_reply`] settles the in-flight attempt: a 2xx removes the item
//!   ([`OutboxEvent::Accepted`]); 429, >= 500, 404 and network errors keep it at the head
//!   and schedule a retry after min(base * 2^n, max) ms (or the Retry-After, when given and
//!   larger) ([`OutboxEvent::Retrying`]); any other status is definitive, as is running out
//!   of the attempt budget ([`OutboxEvent::Failed`]).
//!
//! Order is preserved by construction: only the head is ever posted, and it leaves the
//! queue only when it is done (accepted or failed). No clock: time comes in as [`Millis`],
//! and [`Outbox::next_wakeup`] tells the owner when to set a timer.

use crate::client::PostOutcome;
use crate::params::OutboxParams;
use crate::types::Millis;
use crate::wire::ClientMsg;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// One queued prompt and the POST attempts it has used so far.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub msg: ClientMsg,
    pub attempts: u32,
}

/// What settling an attempt did to the head item; tell the app about `Accepted` and
/// `Failed` (`_send_accepted`, `_send_failed`), and optionally about `Retrying`
/// (`_send_pending{retrying}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outbox")]
pub enum OutboxEvent {
    /// A 2xx: the item is done and left the queue.
    Accepted { msg: ClientMsg, attempts: u32 },
    /// A retryable failure: the item stays at the head and may be posted again at
    /// `retry_at`. `status` is `None` for a network error.
    Retrying {
        msg: ClientMsg,
        attempts: u32,
        status: Option<u16>,
        retry_at: Millis,
    },
    /// A definitive failure (a non-retryable status, or the attempt budget is used up): the
    /// item left the queue and the app must be told.
    Failed {
        msg: ClientMsg,
        attempts: u32,
        status: Option<u16>,
        reason: String,
    },
    /// No request was in flight: a stray or late reply, which changes nothing.
    Ignored,
}

/// Whether a POST outcome is worth retrying: 429, >= 500, 404 and network errors.
/// 2xx is success, not retryable.
pub fn is_retryable(outcome: &PostOutcome) -> bool {
    match outcome {
        PostOutcome::NetworkError => true,
        PostOutcome::Status { status, .. } => *status == 404 || *status == 429 || *status >= 500,
    }
}

/// The acknowledged ordered outbox. See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbox {
    params: OutboxParams,
    attempt_budget: Option<u32>,
    items: VecDeque<OutboxItem>,
    in_flight: bool,
    /// When the head may be posted again after a retryable failure.
    retry_at: Option<Millis>,
}

impl Outbox {
    /// An empty outbox. `attempt_budget` is `ClientParams::attempt_budget`: POST attempts a
    /// message may get in all, `None` for "retry forever".
    pub fn new(params: OutboxParams, attempt_budget: Option<u32>) -> Self {
        Outbox {
            params,
            attempt_budget,
            items: VecDeque::new(),
            in_flight: false,
            retry_at: None,
        }
    }

    /// Queues a prompt at the tail. Returns false, and holds nothing new, when `capacity`
    /// items are already held; nothing is ever evicted.
    pub fn offer(&mut self, msg: ClientMsg) -> bool {
        if self.items.len() >= self.params.capacity {
            return false;
        }
        self.items.push_back(OutboxItem { msg, attempts: 0 });
        true
    }

    /// The head item to post now, if any: nothing is in flight, the queue is not empty and
    /// no backoff is pending at `now`. Marks it in flight and counts the attempt; the caller
    /// posts it and later reports the outcome with [`Outbox::on_reply`].
    pub fn poll(&mut self, now: Millis) -> Option<ClientMsg> {
        if self.in_flight {
            return None;
        }
        if self.retry_at.is_some_and(|at| now < at) {
            return None;
        }
        let head = self.items.front_mut()?;
        head.attempts += 1;
        self.in_flight = true;
        self.retry_at = None;
        Some(head.msg.clone())
    }

    /// Settles the in-flight attempt with its outcome. A timeout or a malformed / missing
    /// receipt should be reported as [`PostOutcome::NetworkError`].
    pub fn on_reply(&mut self, now: Millis, outcome: &PostOutcome) -> OutboxEvent {
        if !self.in_flight {
            return OutboxEvent::Ignored;
        }
        self.in_flight = false;
        let Some(head) = self.items.front() else {
            return OutboxEvent::Ignored;
        };
        let attempts = head.attempts;
        let status = match outcome {
            PostOutcome::Status { status, .. } => Some(*status),
            PostOutcome::NetworkError => None,
        };
        if outcome.is_success() {
            let item = self.pop_head();
            return OutboxEvent::Accepted {
                msg: item.msg,
                attempts,
            };
        }
        if !is_retryable(outcome) {
            let item = self.pop_head();
            let reason = format!("rejected with status {}", status.unwrap_or_default());
            return OutboxEvent::Failed {
                msg: item.msg,
                attempts,
                status,
                reason,
            };
        }
        if self.attempt_budget.is_some_and(|budget| attempts >= budget) {
            let item = self.pop_head();
            return OutboxEvent::Failed {
                msg: item.msg,
                attempts,
                status,
                reason: format!("gave up after {attempts} attempts"),
            };
        }
        let mut wait = self.backoff_ms(attempts.saturating_sub(1));
        if let PostOutcome::Status {
            retry_after_s: Some(secs),
            ..
        } = outcome
        {
            wait = wait.max(u64::from(*secs) * 1000);
        }
        let retry_at = now.saturating_add(wait);
        self.retry_at = Some(retry_at);
        OutboxEvent::Retrying {
            msg: head.msg.clone(),
            attempts,
            status,
            retry_at,
        }
    }

    /// The backoff before retry `n` (counted from 0): min(base * 2^n, max).
    pub fn backoff_ms(&self, n: u32) -> u64 {
        let factor = 1u64.checked_shl(n).unwrap_or(u64::MAX);
        self.params
            .backoff_base_ms
            .saturating_mul(factor)
            .min(self.params.backoff_max_ms)
    }

    /// When a pending backoff ends and [`Outbox::poll`] would hand out the head again: the
    /// owner's timer. `None` when nothing waits on a backoff (empty, in flight, or ready).
    pub fn next_wakeup(&self) -> Option<Millis> {
        if self.in_flight || self.items.is_empty() {
            return None;
        }
        self.retry_at
    }

    /// Gives up on everything (e.g. auth loss): returns the in-flight item, whose fate is
    /// uncertain (`_send_uncertain`), and the queued ones, which failed (`_send_failed`).
    /// The outbox is empty afterwards; a reply for the abandoned attempt is `Ignored`.
    pub fn abandon(&mut self) -> (Option<OutboxItem>, Vec<OutboxItem>) {
        let uncertain = if self.in_flight {
            self.items.pop_front()
        } else {
            None
        };
        self.in_flight = false;
        self.retry_at = None;
        (uncertain, self.items.drain(..).collect())
    }

    /// Items held, the in-flight one included.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.params.capacity
    }

    /// Whether a request for the head item is outstanding.
    pub fn in_flight(&self) -> bool {
        self.in_flight
    }

    /// Attempts the head item has used (the in-flight one counted), `None` when empty.
    pub fn head_attempts(&self) -> Option<u32> {
        self.items.front().map(|item| item.attempts)
    }

    /// The head item, the next (or current) to be posted.
    pub fn head(&self) -> Option<&OutboxItem> {
        self.items.front()
    }

    /// Whether a message with this clientMsgId is still held.
    pub fn contains(&self, client_msg_id: &str) -> bool {
        self.items
            .iter()
            .any(|item| item.msg.client_msg_id() == Some(client_msg_id))
    }

    /// The held items in posting order.
    pub fn iter(&self) -> impl Iterator<Item = &OutboxItem> {
        self.items.iter()
    }

    fn pop_head(&mut self) -> OutboxItem {
        self.retry_at = None;
        self.items
            .pop_front()
            .expect("pop_head is called only with a head item")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SessionId;

    fn params(capacity: usize) -> OutboxParams {
        OutboxParams {
            capacity,
            backoff_base_ms: 1_000,
            backoff_max_ms: 10_000,
        }
    }

    fn prompt(id: &str) -> ClientMsg {
        ClientMsg::Send {
            session: Some(SessionId::new("s1")),
            client_msg_id: id.to_string(),
            text: format!("text {id}"),
        }
    }

    fn status(s: u16) -> PostOutcome {
        PostOutcome::Status {
            status: s,
            retry_after_s: None,
        }
    }

    fn id_of(msg: &ClientMsg) -> &str {
        msg.client_msg_id().unwrap()
    }

    #[test]
    fn posts_in_fifo_order_one_at_a_time() {
        let mut ob = Outbox::new(params(10), None);
        assert!(ob.offer(prompt("a")));
        assert!(ob.offer(prompt("b")));
        let first = ob.poll(0).unwrap();
        assert_eq!(id_of(&first), "a");
        assert!(ob.in_flight());
        assert_eq!(ob.poll(0), None, "one request in flight at most");
        assert!(matches!(
            ob.on_reply(5, &status(202)),
            OutboxEvent::Accepted { attempts: 1, .. }
        ));
        assert_eq!(id_of(&ob.poll(5).unwrap()), "b");
        assert!(matches!(
            ob.on_reply(6, &status(202)),
            OutboxEvent::Accepted { .. }
        ));
        assert!(ob.is_empty());
        assert_eq!(ob.poll(7), None);
    }

    #[test]
    fn refuses_when_full_and_never_evicts() {
        let mut ob = Outbox::new(params(2), None);
        assert!(ob.offer(prompt("a")));
        assert!(ob.offer(prompt("b")));
        assert!(!ob.offer(prompt("c")));
        assert_eq!(ob.len(), 2);
        assert!(ob.contains("a") && ob.contains("b") && !ob.contains("c"));
        // Room again once the head is done.
        ob.poll(0).unwrap();
        ob.on_reply(1, &status(202));
        assert!(ob.offer(prompt("c")));
    }

    #[test]
    fn zero_capacity_refuses_everything() {
        let mut ob = Outbox::new(params(0), None);
        assert!(!ob.offer(prompt("a")));
        assert_eq!(ob.poll(0), None);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let ob = Outbox::new(params(1), None);
        let waits: Vec<u64> = (0..6).map(|n| ob.backoff_ms(n)).collect();
        assert_eq!(waits, [1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
        assert_eq!(ob.backoff_ms(200), 10_000, "no overflow for large n");
    }

    #[test]
    fn retries_wait_for_backoff_and_keep_order() {
        let mut ob = Outbox::new(params(10), None);
        ob.offer(prompt("a"));
        ob.offer(prompt("b"));
        let mut now = 0;
        let mut expected_waits = vec![1_000, 2_000, 4_000, 8_000, 10_000, 10_000];
        expected_waits.reverse();
        let mut posted = vec![];
        for outcome in [
            status(503),
            PostOutcome::NetworkError,
            status(429),
            status(404),
            status(500),
            status(502),
        ] {
            let msg = ob.poll(now).unwrap();
            posted.push(id_of(&msg).to_string());
            let ev = ob.on_reply(now, &outcome);
            let wait = expected_waits.pop().unwrap();
            match ev {
                OutboxEvent::Retrying { retry_at, msg, .. } => {
                    assert_eq!(retry_at, now + wait);
                    assert_eq!(id_of(&msg), "a");
                }
                other => panic!("expected a retry, got {other:?}"),
            }
            assert_eq!(ob.next_wakeup(), Some(now + wait));
            assert_eq!(ob.poll(now + wait - 1), None, "backoff not over");
            now += wait;
        }
        assert_eq!(ob.head_attempts(), Some(6));
        assert_eq!(id_of(&ob.poll(now).unwrap()), "a");
        assert!(matches!(
            ob.on_reply(now, &status(202)),
            OutboxEvent::Accepted { attempts: 7, .. }
        ));
        assert_eq!(id_of(&ob.poll(now).unwrap()), "b");
        assert!(posted.iter().all(|id| id == "a"), "b never overtook a");
    }

    #[test]
    fn retry_after_is_honoured_when_larger() {
        let mut ob = Outbox::new(params(10), None);
        ob.offer(prompt("a"));
        ob.poll(100).unwrap();
        let ev = ob.on_reply(
            100,
            &PostOutcome::Status {
                status: 429,
                retry_after_s: Some(7),
            },
        );
        assert!(matches!(
            ev,
            OutboxEvent::Retrying {
                retry_at: 7_100,
                status: Some(429),
                ..
            }
        ));
        assert_eq!(ob.poll(7_099), None);
        assert!(ob.poll(7_100).is_some());
    }

    #[test]
    fn retry_after_smaller_than_backoff_is_ignored() {
        let mut ob = Outbox::new(params(10), None);
        ob.offer(prompt("a"));
        for _ in 0..3 {
            let at = ob.next_wakeup().unwrap_or(0);
            ob.poll(at).unwrap();
            ob.on_reply(at, &status(500));
        }
        // Three failures: the next wait is base * 2^3 = 8 s, larger than Retry-After 1 s.
        let at = ob.next_wakeup().unwrap();
        ob.poll(at).unwrap();
        let ev = ob.on_reply(
            at,
            &PostOutcome::Status {
                status: 503,
                retry_after_s: Some(1),
            },
        );
        assert!(matches!(ev, OutboxEvent::Retrying { retry_at, .. } if retry_at == at + 8_000));
    }

    #[test]
    fn definitive_statuses_fail_and_the_queue_moves_on() {
        for s in [400, 401, 403, 409, 422] {
            let mut ob = Outbox::new(params(10), None);
            ob.offer(prompt("a"));
            ob.offer(prompt("b"));
            ob.poll(0).unwrap();
            match ob.on_reply(1, &status(s)) {
                OutboxEvent::Failed {
                    msg,
                    attempts,
                    status,
                    reason,
                } => {
                    assert_eq!(id_of(&msg), "a");
                    assert_eq!(attempts, 1);
                    assert_eq!(status, Some(s));
                    assert!(reason.contains(&s.to_string()));
                }
                other => panic!("{s}: expected a failure, got {other:?}"),
            }
            assert_eq!(ob.next_wakeup(), None);
            assert_eq!(
                id_of(&ob.poll(1).unwrap()),
                "b",
                "no backoff after a failure"
            );
        }
    }

    #[test]
    fn budget_exhaustion_fails_with_reason() {
        let mut ob = Outbox::new(params(10), Some(3));
        ob.offer(prompt("a"));
        ob.offer(prompt("b"));
        let mut now = 0;
        for _ in 0..2 {
            ob.poll(now).unwrap();
            assert!(matches!(
                ob.on_reply(now, &PostOutcome::NetworkError),
                OutboxEvent::Retrying { .. }
            ));
            now = ob.next_wakeup().unwrap();
        }
        ob.poll(now).unwrap();
        match ob.on_reply(now, &PostOutcome::NetworkError) {
            OutboxEvent::Failed {
                msg,
                attempts,
                status,
                reason,
            } => {
                assert_eq!(id_of(&msg), "a");
                assert_eq!(attempts, 3);
                assert_eq!(status, None);
                assert_eq!(reason, "gave up after 3 attempts");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        assert_eq!(ob.head_attempts(), Some(0), "b starts with a fresh budget");
        assert_eq!(id_of(&ob.poll(now).unwrap()), "b");
    }

    #[test]
    fn success_on_the_last_budgeted_attempt_is_accepted() {
        let mut ob = Outbox::new(params(10), Some(2));
        ob.offer(prompt("a"));
        ob.poll(0).unwrap();
        ob.on_reply(0, &status(503));
        ob.poll(1_000).unwrap();
        assert!(matches!(
            ob.on_reply(1_000, &status(202)),
            OutboxEvent::Accepted { attempts: 2, .. }
        ));
    }

    #[test]
    fn stray_reply_is_ignored() {
        let mut ob = Outbox::new(params(10), None);
        assert_eq!(ob.on_reply(0, &status(202)), OutboxEvent::Ignored);
        ob.offer(prompt("a"));
        assert_eq!(ob.on_reply(0, &status(202)), OutboxEvent::Ignored);
        assert_eq!(
            ob.len(),
            1,
            "a reply with nothing in flight settles nothing"
        );
    }

    #[test]
    fn next_wakeup_only_while_waiting() {
        let mut ob = Outbox::new(params(10), None);
        assert_eq!(ob.next_wakeup(), None);
        ob.offer(prompt("a"));
        assert_eq!(ob.next_wakeup(), None, "ready, no backoff");
        ob.poll(0).unwrap();
        assert_eq!(ob.next_wakeup(), None, "in flight");
        ob.on_reply(10, &status(500));
        assert_eq!(ob.next_wakeup(), Some(1_010));
        ob.poll(1_010).unwrap();
        assert_eq!(ob.next_wakeup(), None);
    }

    #[test]
    fn abandon_splits_uncertain_and_failed() {
        let mut ob = Outbox::new(params(10), None);
        ob.offer(prompt("a"));
        ob.offer(prompt("b"));
        ob.offer(prompt("c"));
        ob.poll(0).unwrap();
        let (uncertain, failed) = ob.abandon();
        assert_eq!(id_of(&uncertain.unwrap().msg), "a");
        let ids: Vec<&str> = failed.iter().map(|i| id_of(&i.msg)).collect();
        assert_eq!(ids, ["b", "c"]);
        assert!(ob.is_empty() && !ob.in_flight());
        assert_eq!(ob.on_reply(1, &status(202)), OutboxEvent::Ignored);
    }
}
