//! The invariant checkers. Each takes the gathered facts and returns its violations, or
//! `None` when it cannot judge this run.

use crate::facts::{At, Facts, TabFacts, WatchChange};
use crate::{Context, Violation};
use ssesim_model::{
    AppNotice, ClientInput, ClientMsg, ClientOutput, ConnId, EventKind, Millis, PostOutcome, Seq,
    SessionId, SessionState,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Past this many violations of one invariant, the rest are summarised in one line.
const MAX_REPORTED: usize = 10;

/// The span over which re-sent events are counted against SYNC_BATCH_LIMIT.
const REPLAY_WINDOW_MS: Millis = 60_000;

/// When no revision states an attempt budget, the checker holds messages to this many POSTs.
pub const DEFAULT_ATTEMPT_BOUND: u32 = 3;

pub fn run(id: &str, ctx: &Context, f: &Facts) -> Option<Vec<Violation>> {
    let mut out = Found::new(id);
    match id {
        "send_order" => send_order(f, &mut out),
        "no_silent_send_loss" => no_silent_send_loss(ctx, f, &mut out),
        "no_duplicate_dispatch" => no_duplicate_dispatch(f, &mut out),
        "event_order" => event_order(f, &mut out),
        "no_silent_event_loss" => no_silent_event_loss(ctx, f, &mut out),
        "no_duplicate_apply" => no_duplicate_apply(f, &mut out),
        "bounded_replay" => bounded_replay(ctx, f, &mut out),
        "bounded_queue" => bounded_queue(ctx, f, &mut out),
        "server_survives" => server_survives(f, &mut out),
        "restart_consistency" => restart_consistency(f, &mut out),
        "liveness" => {
            let heal = ctx.heal_at?;
            if heal + ctx.settle_ms() > ctx.duration_ms {
                return None;
            }
            liveness(ctx, heal, f, &mut out)
        }
        "connection_hygiene" => connection_hygiene(f, &mut out),
        _ => return None,
    }
    Some(out.finish())
}

/// Collects violations of one invariant, capping how many are spelled out.
struct Found {
    id: &'static str,
    list: Vec<Violation>,
    extra: usize,
}

impl Found {
    fn new(id: &str) -> Self {
        let id = crate::invariant(id).map_or("unknown", |i| i.id);
        Found {
            id,
            list: Vec::new(),
            extra: 0,
        }
    }

    fn add(&mut self, at: At, records: Vec<usize>, detail: String) {
        if self.list.len() < MAX_REPORTED {
            self.list.push(Violation {
                invariant: self.id.to_string(),
                at_ms: at.ms,
                records,
                detail,
            });
        } else {
            self.extra += 1;
        }
    }

    fn finish(mut self) -> Vec<Violation> {
        self.list.sort_by_key(|v| v.at_ms);
        if self.extra > 0 {
            let last = self.list.last().map_or(0, |v| v.at_ms);
            self.list.push(Violation {
                invariant: self.id.to_string(),
                at_ms: last,
                records: Vec::new(),
                detail: format!("... and {} more like these", self.extra),
            });
        }
        self.list
    }
}

/// The first agent input for each clientMsgId.
fn first_dispatch<'a>(f: &Facts<'a>) -> BTreeMap<&'a str, At> {
    let mut first = BTreeMap::new();
    for (at, a) in &f.agent_inputs {
        first.entry(a.client_msg_id.as_str()).or_insert(*at);
    }
    first
}

/// When something that happened at `at` must have settled: after the heal phase starts if
/// it happened during faults, else from when it happened.
fn deadline(ctx: &Context, at: Millis) -> Millis {
    let start = match ctx.heal_at {
        Some(h) if at < h => h,
        _ => at,
    };
    start + ctx.settle_ms()
}

/// How long the bounded sync (`batch_limit` events per pair per tick) takes to deliver
/// `lag` events owed to a tab: a tick per batch.
fn catch_up_ms(ctx: &Context, lag: u64) -> Millis {
    let sync = &ctx.params.server.sync;
    lag.div_ceil(sync.batch_limit.max(1) as u64) * sync.interval_ms
}

/// Per session, the times at which the tab's highest applied seq rose: "what had the tab
/// got by then" (the highest seq applied by a time) in a binary search, so the oracles stay linear in the history's length.
struct HadIndex<'a> {
    steps: BTreeMap<&'a SessionId, Vec<(Millis, Seq)>>,
}

impl<'a> HadIndex<'a> {
    fn of(t: &'a TabFacts) -> Self {
        let mut steps: BTreeMap<&SessionId, Vec<(Millis, Seq)>> = BTreeMap::new();
        for (at, s, q) in &t.applied {
            let list = steps.entry(s).or_default();
            if list.last().is_none_or(|&(_, top)| *q > top) {
                list.push((at.ms, *q));
            }
        }
        HadIndex { steps }
    }

    fn by(&self, session: &SessionId, ms: Millis) -> Seq {
        let Some(list) = self.steps.get(session) else {
            return 0;
        };
        match list.partition_point(|(at, _)| *at <= ms) {
            0 => 0,
            n => list[n - 1].1,
        }
    }
}

fn judged(ctx: &Context, at: Millis) -> bool {
    deadline(ctx, at) <= ctx.duration_ms
}

fn send_order(f: &Facts, out: &mut Found) {
    let dispatched = first_dispatch(f);
    for (tab, t) in &f.tabs {
        let mut latest: BTreeMap<&SessionId, (&str, At)> = BTreeMap::new();
        for send in &t.accepted {
            let Some(session) = &send.session else {
                continue;
            };
            let Some(&d) = dispatched.get(send.id.as_str()) else {
                continue;
            };
            match latest.get(session) {
                Some(&(earlier, de)) if de.idx > d.idx => out.add(
                    d,
                    vec![send.at.idx, d.idx, de.idx],
                    format!(
                        "tab{tab}: {} reached the agent in {session} before {earlier}, though send() accepted it later",
                        send.id
                    ),
                ),
                _ => {
                    latest.insert(session, (send.id.as_str(), d));
                }
            }
        }
    }
}

fn no_silent_send_loss(ctx: &Context, f: &Facts, out: &mut Found) {
    let dispatched = first_dispatch(f);
    for (tab, t) in &f.tabs {
        for send in &t.accepted {
            if !judged(ctx, send.at.ms)
                || dispatched.contains_key(send.id.as_str())
                || t.failed_reported.contains(&send.id)
            {
                continue;
            }
            let target = send
                .session
                .as_ref()
                .map_or("a new session".to_string(), |s| s.to_string());
            out.add(
                send.at,
                vec![send.at.idx],
                format!(
                    "tab{tab}: send() accepted {} for {target} at {} ms; it was never dispatched to the agent nor reported failed",
                    send.id, send.at.ms
                ),
            );
        }
    }
}

fn no_duplicate_dispatch(f: &Facts, out: &mut Found) {
    let mut seen: BTreeMap<&str, At> = BTreeMap::new();
    for (at, a) in &f.agent_inputs {
        if let Some(first) = seen.get(a.client_msg_id.as_str()) {
            out.add(
                *at,
                vec![first.idx, at.idx],
                format!(
                    "{} dispatched again to the agent (in {}, first at {} ms){}",
                    a.client_msg_id,
                    a.session,
                    first.ms,
                    if a.new_session {
                        ", starting another session"
                    } else {
                        ""
                    }
                ),
            );
        } else {
            seen.insert(&a.client_msg_id, *at);
        }
    }
}

fn event_order(f: &Facts, out: &mut Found) {
    for (tab, t) in &f.tabs {
        let mut max: BTreeMap<&SessionId, (Seq, usize)> = BTreeMap::new();
        for (i, (at, s, q)) in t.applied.iter().enumerate() {
            // Only an event's first arrival counts.
            if t.first[i] != i {
                continue;
            }
            match max.get(s) {
                Some(&(m, idx)) if *q < m => out.add(
                    *at,
                    vec![idx, at.idx],
                    format!("tab{tab}: the app got {s}#{q} after {s}#{m}"),
                ),
                _ => {
                    max.insert(s, (*q, at.idx));
                }
            }
        }
    }
}

fn no_duplicate_apply(f: &Facts, out: &mut Found) {
    for (tab, t) in &f.tabs {
        let mut cursor: BTreeMap<&SessionId, (Seq, usize)> = BTreeMap::new();
        for (i, (at, s, q)) in t.applied.iter().enumerate() {
            let first = t.first[i];
            if first != i {
                out.add(
                    *at,
                    vec![t.applied[first].0.idx, at.idx],
                    format!("tab{tab}: the app applied {s}#{q} a second time"),
                );
            }
            if let Some(&(c, idx)) = cursor.get(s) {
                if *q < c {
                    out.add(
                        *at,
                        vec![idx, at.idx],
                        format!("tab{tab}: the cursor for {s} moved backwards from {c} to {q}"),
                    );
                }
            }
            cursor.insert(s, (*q, at.idx));
        }
    }
}

/// A tab's watch intervals per session in seq space, as the server confirmed them. The
/// active session (which `/switch` unwatches) belongs to a connection, as in the registry;
/// the app's own `disconnect()` ends every watch the tab had.
fn watch_intervals(f: &Facts, tab: u32) -> BTreeMap<SessionId, Vec<(Seq, Seq)>> {
    #[derive(Default)]
    struct Watches {
        open: BTreeMap<SessionId, Seq>,
        closed: BTreeMap<SessionId, Vec<(Seq, Seq)>>,
        active: BTreeMap<ConnId, SessionId>,
    }
    impl Watches {
        fn watch(&mut self, s: &SessionId, now: Seq) {
            self.open.entry(s.clone()).or_insert(now);
        }
        fn unwatch(&mut self, s: &SessionId, now: Seq) {
            if let Some(start) = self.open.remove(s) {
                self.closed.entry(s.clone()).or_default().push((start, now));
            }
        }
        fn unwatch_all(&mut self, now: Seq) {
            for (s, start) in std::mem::take(&mut self.open) {
                self.closed.entry(s).or_default().push((start, now));
            }
            self.active.clear();
        }
    }
    // The store's last seq just before a record.
    let last_before = |idx: usize| {
        f.appended
            .iter()
            .take_while(|(a, ..)| a.idx < idx)
            .map(|(_, _, q, _)| *q)
            .max()
            .unwrap_or(0)
    };
    let disconnects: Vec<At> = f.tabs.get(&tab).map_or_else(Vec::new, |t| {
        t.batches
            .iter()
            .filter(|b| matches!(b.input, ClientInput::Disconnect))
            .map(|b| b.at)
            .collect()
    });
    let mut disconnects = disconnects.into_iter().peekable();
    let mut w = Watches::default();
    for (at, conn, change, last) in &f.watch_changes {
        if f.conn_tab.get(conn) != Some(&tab) {
            continue;
        }
        while let Some(d) = disconnects.next_if(|d| d.idx < at.idx) {
            w.unwatch_all(last_before(d.idx));
        }
        match change {
            WatchChange::Watch(s) => w.watch(s, *last),
            WatchChange::Unwatch(s) => {
                w.unwatch(s, *last);
                if w.active.get(conn) == Some(s) {
                    w.active.remove(conn);
                }
            }
            WatchChange::SetActive(s) => {
                w.watch(s, *last);
                w.active.insert(*conn, s.clone());
            }
            WatchChange::Switch(s) => {
                if let Some(prev) = w.active.remove(conn).filter(|p| p != s) {
                    w.unwatch(&prev, *last);
                }
                w.watch(s, *last);
                w.active.insert(*conn, s.clone());
            }
        }
    }
    for d in disconnects {
        w.unwatch_all(last_before(d.idx));
    }
    let mut closed = w.closed;
    for (s, start) in w.open {
        closed.entry(s).or_default().push((start, Seq::MAX));
    }
    closed
}

fn no_silent_event_loss(ctx: &Context, f: &Facts, out: &mut Found) {
    for (&tab, t) in &f.tabs {
        let intervals = watch_intervals(f, tab);
        if intervals.is_empty() {
            continue;
        }
        let had = HadIndex::of(t);
        for (at, s, q, _) in &f.appended {
            if t.seen.find(&t.applied, s, *q).is_some() {
                continue;
            }
            let Some(list) = intervals.get(s) else {
                continue;
            };
            let Some(&(from, _)) = list.iter().find(|(from, to)| q > from && q <= to) else {
                continue;
            };
            // An event this far ahead of what the tab had (or was owed from) when it was
            // stored can only reach it after the batches before it: the bounded sync's pace.
            // Events an earlier watch still owed the tab come first too: a transport
            // delivers in order, so a re-watch cannot jump the debt it has not paid.
            let had_then = had.by(s, at.ms);
            let debt_from = list
                .iter()
                .filter(|&&(f, to)| f < from && to > had_then)
                .map(|&(f, _)| f.max(had_then))
                .min();
            let had = debt_from.unwrap_or(had_then.max(from));
            let behind = q.saturating_sub(had).saturating_sub(1);
            let due = at.ms + catch_up_ms(ctx, behind);
            if judged(ctx, due) {
                out.add(
                    *at,
                    vec![at.idx],
                    format!("tab{tab} watches {s} but never got {s}#{q} (stored at {} ms) nor a gap marker", at.ms),
                );
            }
        }
    }
}

fn bounded_replay(ctx: &Context, f: &Facts, out: &mut Found) {
    let limit = ctx.params.server.sync.batch_limit;
    for (at, b) in &f.sync_batches {
        if b.sent > limit {
            out.add(
                *at,
                vec![at.idx],
                format!(
                    "one sync tick sent {} events of {} to {} (limit {limit})",
                    b.sent, b.session, b.conn
                ),
            );
        }
    }
    // Re-sent events counted over a sliding minute: a storm is a storm even in a long run
    // whose average stays under the bound.
    for (tab, t) in &f.tabs {
        let mut window: VecDeque<Millis> = VecDeque::new();
        let mut storming = false;
        for (i, (at, ..)) in t.applied.iter().enumerate() {
            // Only an event the tab already had counts.
            if t.first[i] == i {
                continue;
            }
            while window
                .front()
                .is_some_and(|&m| m + REPLAY_WINDOW_MS <= at.ms)
            {
                window.pop_front();
            }
            window.push_back(at.ms);
            if window.len() <= limit {
                storming = false;
            } else if !storming {
                storming = true;
                out.add(
                    *at,
                    vec![at.idx],
                    format!(
                        "tab{tab} was re-sent more than {limit} events it already had within one minute (a replay storm)"
                    ),
                );
            }
        }
    }
}

fn bounded_queue(ctx: &Context, f: &Facts, out: &mut Found) {
    let cap = ctx.params.client.max_pending_sends;
    let budget = ctx
        .params
        .client
        .attempt_budget
        .unwrap_or(DEFAULT_ATTEMPT_BOUND) as usize;
    for (tab, t) in &f.tabs {
        if let Some((at, len)) = t.queue.iter().find(|(_, len)| *len > cap) {
            out.add(
                *at,
                vec![at.idx],
                format!("tab{tab}: the pending queue reached {len} items (cap {cap})"),
            );
        }
        let mut attempts: BTreeMap<&str, usize> = BTreeMap::new();
        for post in t.posts.values() {
            let Some(id) = post.body.client_msg_id() else {
                continue;
            };
            let n = attempts.entry(id).or_insert(0);
            *n += 1;
            if *n == budget + 1 {
                out.add(
                    post.at,
                    vec![post.at.idx],
                    format!("tab{tab}: {id} was posted more than {budget} times"),
                );
            }
        }
    }
}

fn server_survives(f: &Facts, out: &mut Found) {
    for (at, reason) in &f.crashes {
        out.add(
            *at,
            vec![at.idx],
            format!("the server process died: {reason}"),
        );
    }
}

fn restart_consistency(f: &Facts, out: &mut Found) {
    // (a) what each restart left behind.
    for (k, boot) in f.boots.iter().enumerate().skip(1) {
        let settled = f.boot_settled.get(k).copied().unwrap_or(usize::MAX);
        let mut state: BTreeMap<&SessionId, SessionState> = BTreeMap::new();
        for (at, s, st) in &f.states {
            if at.idx >= settled {
                break;
            }
            state.insert(s, *st);
        }
        for (s, st) in state {
            if st.is_stale_after_restart() {
                out.add(
                    *boot,
                    vec![boot.idx],
                    format!("after the restart at {} ms, {s} is still {st}", boot.ms),
                );
            }
        }
    }
    // (b) messages persisted before a crash must be executed or reported.
    let Some(last_down) = f.downs.last() else {
        return;
    };
    let dispatched = first_dispatch(f);
    let reported: BTreeSet<&String> = f
        .tabs
        .values()
        .flat_map(|t| t.failed_reported.iter())
        .collect();
    for (at, s, q, kind) in &f.appended {
        let EventKind::UserMessage { client_msg_id, .. } = kind else {
            continue;
        };
        if at.idx > last_down.idx {
            break;
        }
        let crashed_after = f.downs.iter().find(|d| d.idx > at.idx);
        if let Some(down) = crashed_after {
            if !dispatched.contains_key(client_msg_id.as_str())
                && !reported.contains(client_msg_id)
                && !f.marked_failed.contains(client_msg_id)
            {
                out.add(
                    *down,
                    vec![at.idx, down.idx],
                    format!(
                        "{client_msg_id} was persisted in {s} as #{q} before the server went down at {} ms, and was never executed nor reported failed",
                        down.ms
                    ),
                );
            }
        }
    }
}

/// Sessions a tab still follows: those it got events for, minus ones it unwatched last.
fn followed<'a>(f: &'a Facts, t: &'a TabFacts) -> BTreeSet<&'a SessionId> {
    let mut follow: BTreeSet<&SessionId> = t.applied.iter().map(|(_, s, _)| s).collect();
    // The app's watch calls and its sends, in the order it made them; a switch stops
    // following the previously active session, as the server's `/switch` unwatches it.
    let mut calls: Vec<(usize, &ClientMsg)> =
        t.watch_calls.iter().map(|(at, m)| (at.idx, *m)).collect();
    // A send makes its session the connection's active one only when the server handled
    // it, which the dispatch shows; the dispatch also names the session a first message
    // started. A send the server rejected (a 400 body, a stale id) watches nothing.
    let dispatched: BTreeMap<&str, &SessionId> = f
        .agent_inputs
        .iter()
        .rev()
        .map(|(_, a)| (a.client_msg_id.as_str(), &a.session))
        .collect();
    let sends: Vec<(usize, &SessionId)> = t
        .accepted
        .iter()
        .filter_map(|a| dispatched.get(a.id.as_str()).map(|s| (a.at.idx, *s)))
        .collect();
    calls.sort_by_key(|(idx, _)| *idx);
    let mut last_call: BTreeMap<&SessionId, bool> = BTreeMap::new();
    let mut active: Option<&SessionId> = None;
    let mut sends = sends.into_iter().peekable();
    for (idx, msg) in calls {
        while let Some((_, s)) = sends.next_if(|(i, _)| *i < idx) {
            last_call.insert(s, true);
            active = Some(s);
        }
        match msg {
            ClientMsg::Unwatch { session } => {
                last_call.insert(session, false);
                if active == Some(session) {
                    active = None;
                }
            }
            ClientMsg::Watch { session } => {
                last_call.insert(session, true);
            }
            ClientMsg::SwitchSession { session } => {
                if let Some(prev) = active.filter(|p| *p != session) {
                    last_call.insert(prev, false);
                }
                last_call.insert(session, true);
                active = Some(session);
            }
            _ => {}
        }
    }
    for (_, s) in sends {
        last_call.insert(s, true);
    }
    follow.retain(|s| last_call.get(s).copied().unwrap_or(true));
    follow
}

/// When the app last followed `session` again (watch or switch) after unwatching it,
/// before `until`; `None` if it never unwatched it.
fn refollow_ms(t: &TabFacts, session: &SessionId, until: Millis) -> Option<Millis> {
    let mut unwatched = false;
    let mut refollowed = None;
    for (at, msg) in t.watch_calls.iter().filter(|(at, _)| at.ms <= until) {
        match msg {
            ClientMsg::Unwatch { session: s } if s == session => unwatched = true,
            ClientMsg::Watch { session: s } | ClientMsg::SwitchSession { session: s }
                if s == session && unwatched =>
            {
                refollowed = Some(at.ms)
            }
            _ => {}
        }
    }
    refollowed
}

/// A session's lag at the heal can only be caught up at the sync's pace (`batch_limit`
/// events per pair per tick, the bounded replay), so each batch of it adds a tick to the
/// settle bound; a lag the run is too short to catch up at that pace is not judged.
fn liveness(ctx: &Context, heal: Millis, f: &Facts, out: &mut Found) {
    let Some(end) = f.end else {
        return;
    };
    let server_up = f.boots.last().map(|b| b.idx) > f.downs.last().map(|d| d.idx);
    if !server_up {
        out.add(
            end,
            vec![end.idx],
            "the server was still down at the end of the heal phase".into(),
        );
    }
    let scenario_end = f.scenario_end();
    for (tab, t) in &f.tabs {
        if !t.wants_connection {
            continue;
        }
        let mut problems = Vec::new();
        if !t.open {
            problems.push("not connected".to_string());
        }
        if let Some((_, len)) = t.queue.last().filter(|(_, len)| *len > 0) {
            problems.push(format!("{len} sends still queued"));
        }
        let in_flight = t.posts.keys().filter(|r| !t.done.contains_key(r)).count();
        if in_flight > 0 {
            problems.push(format!("{in_flight} requests still in flight"));
        }
        let had = HadIndex::of(t);
        for s in followed(f, t) {
            let have = had.by(s, Millis::MAX);
            let head = f.head_at(s, scenario_end);
            let had_at_heal = had.by(s, heal);
            // Events stored while the app had unwatched the session were not owed: a
            // transport may start a re-followed session at its head.
            let refollowed_at = refollow_ms(t, s, heal);
            let owed_from =
                refollowed_at.map_or(had_at_heal, |ms| had_at_heal.max(f.head_at(s, ms)));
            let lag_at_heal = f.head_at(s, heal).saturating_sub(owed_from);
            let too_short =
                heal + ctx.settle_ms() + catch_up_ms(ctx, lag_at_heal) > ctx.duration_ms;
            if have < head && !too_short {
                problems.push(format!("at {s}#{have}, store head is {head}"));
            }
        }
        if !problems.is_empty() {
            out.add(
                end,
                vec![end.idx],
                format!(
                    "tab{tab} did not recover after the faults healed: {}",
                    problems.join(", ")
                ),
            );
        }
    }
}

fn connection_hygiene(f: &Facts, out: &mut Found) {
    for (tab, t) in &f.tabs {
        let mut latest_welcome = None;
        // Where the tab last closed its EventSource (the index of that batch's input).
        let mut last_close: Option<usize> = None;
        // The stream failed or was closed and no welcome has come since.
        let mut stream_down = false;
        for (i, b) in t.batches.iter().enumerate() {
            // A reconnect POST is stale once a later welcome replaced its connection or the
            // tab closed the stream it was made for (the guard's `es` check).
            let stale = |post: &crate::facts::Post| {
                matches!(post.body, ClientMsg::Reconnect { .. })
                    && (latest_welcome.is_some_and(|w| w != post.conn)
                        || last_close.is_some_and(|c| c > post.at.idx))
            };
            match &b.input {
                ClientInput::Frame { es, frame } => {
                    if let ssesim_model::ServerEvent::Welcome { connection_id, .. } = frame.data {
                        latest_welcome = Some(connection_id);
                        stream_down = false;
                    }
                    stale_callback(*tab, t, i, *es, b, out);
                }
                ClientInput::StreamError { es } => {
                    stream_down = true;
                    stale_callback(*tab, t, i, *es, b, out)
                }
                ClientInput::PostDone { req, outcome } => {
                    let Some(post) = t.posts.get(req) else {
                        continue;
                    };
                    let reacted = b.queue_changed
                        || t.outputs(b)
                            .iter()
                            .any(|o| !matches!(o, ClientOutput::Dropped { .. }));
                    let is_404 = matches!(outcome, PostOutcome::Status { status: 404, .. });
                    // A stale reconnect reply is rightly ignored: that is the staleness
                    // guard doing its job.
                    // A replay request or a suspend (neither carries anything of the
                    // app's) whose stream is already gone is answered by the reconnect
                    // under way: there is nothing to take as success.
                    let replay_on_dead_stream = matches!(
                        post.body,
                        ClientMsg::Reconnect { .. } | ClientMsg::SessionSuspend { .. }
                    ) && stream_down;
                    if is_404 && !reacted && !stale(post) && !replay_on_dead_stream {
                        out.add(
                            b.at,
                            vec![post.at.idx, b.at.idx],
                            format!(
                                "tab{tab}: {req} ({}) got 404 for connection {}, and the tab carried on as if it had succeeded",
                                brief(post.body),
                                post.conn
                            ),
                        );
                    }
                    let opened = t
                        .outputs(b)
                        .iter()
                        .any(|o| matches!(o, ClientOutput::App(AppNotice::Open)));
                    if opened && stale(post) {
                        out.add(
                            b.at,
                            vec![post.at.idx, b.at.idx],
                            format!("tab{tab}: a reconnect reply for replaced connection {} opened the tab", post.conn),
                        );
                    }
                }
                _ => {}
            }
            if t.outputs(b)
                .iter()
                .any(|o| matches!(o, ClientOutput::CloseStream { .. }))
            {
                last_close = Some(b.at.idx);
                stream_down = true;
            }
        }
    }
}

/// A callback from an EventSource the tab had already closed must change nothing.
fn stale_callback(
    tab: u32,
    t: &TabFacts,
    batch: usize,
    es: ssesim_model::EsId,
    b: &crate::facts::Batch,
    out: &mut Found,
) {
    if t.closed_streams
        .get(&es)
        .is_some_and(|&closed| closed < batch)
        && !t.outputs(b).is_empty()
    {
        out.add(
            b.at,
            vec![b.at.idx],
            format!("tab{tab}: a callback of closed stream {es} still changed the client"),
        );
    }
}

fn brief(msg: &ClientMsg) -> String {
    match msg.client_msg_id() {
        Some(id) => format!(
            "{} {id}",
            msg.endpoint().map_or("?".into(), |e| e.to_string())
        ),
        None => msg.endpoint().map_or("?".into(), |e| e.to_string()),
    }
}
