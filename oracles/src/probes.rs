//! Coverage probes: named situations a run can reach. Campaigns count them and report the
//! ones never hit, which is how the bench shows its faults are not inert.

use crate::facts::Facts;
use ssesim_model::{ClientInput, ClientMsg, ClientOutput, FrameName, PostOutcome};
use ssesim_sim::history::{History, WireEvent};
use std::collections::BTreeMap;

/// Every probe, with what it means.
pub const PROBES: &[(&str, &str)] = &[
    (
        "welcome_during_reconnect_post",
        "a welcome arrived while a reconnect POST was in flight",
    ),
    (
        "send_during_flush",
        "send() was called while posts of a flush were in flight",
    ),
    (
        "crash_during_interrupt",
        "the server went down between calling interrupt() and it settling",
    ),
    (
        "not_found_during_flush",
        "a POST issued by a flush was answered 404",
    ),
    (
        "sync_hit_replay_gap",
        "a sync tick skipped events because of the replay-gap cap",
    ),
    (
        "stale_connection_404",
        "a POST was answered 404 (stale connectionId)",
    ),
    (
        "lost_response",
        "the server applied a request whose reply was lost",
    ),
    ("injected_status", "an injected status answered a request"),
    ("server_restart", "the server booted again from its store"),
    (
        "double_welcome",
        "one EventSource got two welcomes within 50 ms",
    ),
    (
        "queue_eviction",
        "the full pending queue evicted its oldest item",
    ),
    (
        "cursor_rewind",
        "a tab's cursor for a session moved backwards",
    ),
    (
        "reconnect_replay",
        "the server replayed stored events on /reconnect",
    ),
    (
        "stream_refused",
        "an EventSource was refused with an HTTP error and closed for good",
    ),
    ("interrupt_rejected", "interrupt() rejected"),
    (
        "stream_stalled",
        "a stream went silent and the browser gave up on it",
    ),
];

pub fn probes(history: &History) -> BTreeMap<&'static str, u64> {
    let f = Facts::gather(history);
    let mut hits: BTreeMap<&'static str, u64> = PROBES.iter().map(|(id, _)| (*id, 0)).collect();
    let mut hit = |id: &'static str| *hits.get_mut(id).expect("known probe") += 1;

    for t in f.tabs.values() {
        let mut last_welcome: BTreeMap<ssesim_model::EsId, u64> = BTreeMap::new();
        let mut reconnect_in_flight = 0usize;
        let mut flush_in_flight: Vec<ssesim_model::ReqId> = Vec::new();
        let mut last_cursor: BTreeMap<&ssesim_model::SessionId, u64> = BTreeMap::new();
        for b in &t.batches {
            match &b.input {
                ClientInput::Frame { es, frame } if frame.name == FrameName::Welcome => {
                    if reconnect_in_flight > 0 {
                        hit("welcome_during_reconnect_post");
                    }
                    if last_welcome.get(es).is_some_and(|&at| b.at.ms - at <= 50) {
                        hit("double_welcome");
                    }
                    last_welcome.insert(*es, b.at.ms);
                }
                ClientInput::Send { .. } if !flush_in_flight.is_empty() => hit("send_during_flush"),
                ClientInput::PostDone { req, outcome } => {
                    let post = t.posts.get(req);
                    if post.is_some_and(|p| matches!(p.body, ClientMsg::Reconnect { .. })) {
                        reconnect_in_flight = reconnect_in_flight.saturating_sub(1);
                    }
                    let was_flush = flush_in_flight.contains(req);
                    flush_in_flight.retain(|r| r != req);
                    if matches!(outcome, PostOutcome::Status { status: 404, .. }) {
                        hit("stale_connection_404");
                        if was_flush {
                            hit("not_found_during_flush");
                        }
                    }
                }
                _ => {}
            }
            for &o in t.outputs(b) {
                match o {
                    ClientOutput::Post { req, body, .. } => {
                        if matches!(body, ClientMsg::Reconnect { .. }) {
                            reconnect_in_flight += 1;
                        } else if t.posts.get(req).is_some_and(|p| p.from_flush) {
                            flush_in_flight.push(*req);
                        }
                    }
                    ClientOutput::Dropped {
                        reason: ssesim_model::client::DropReason::Evicted,
                        ..
                    } => hit("queue_eviction"),
                    _ => {}
                }
            }
        }
        for (_, s, q) in &t.applied {
            if last_cursor.get(s).is_some_and(|c| q < c) {
                hit("cursor_rewind");
            }
            last_cursor.insert(s, *q);
        }
    }
    for (i, call) in f.interrupts_called.iter().enumerate() {
        let settled = f.interrupts_settled.get(i).map(|(at, _)| at.idx);
        if f.downs
            .iter()
            .any(|d| d.idx > call.idx && settled.is_none_or(|s| d.idx < s))
        {
            hit("crash_during_interrupt");
        }
    }
    for (_, ok) in &f.interrupts_settled {
        if !ok {
            hit("interrupt_rejected");
        }
    }
    for (_, b) in &f.sync_batches {
        if b.skipped.is_some() {
            hit("sync_hit_replay_gap");
        }
    }
    for _ in f.boots.iter().skip(1) {
        hit("server_restart");
    }
    if f.deliveries
        .iter()
        .any(|(_, _, o)| *o == ssesim_model::Origin::Replay)
    {
        hit("reconnect_replay");
    }
    for (_, _, w) in &f.wire {
        match w {
            WireEvent::ResponseLost { .. } => hit("lost_response"),
            WireEvent::StatusInjected { .. } => hit("injected_status"),
            WireEvent::StreamRefused { .. } => hit("stream_refused"),
            WireEvent::StreamLost { why, .. } if why == "idle timeout" => hit("stream_stalled"),
            _ => {}
        }
    }
    hits
}
