//! Shared helpers for the engine tests: load catalog scenarios, run them on an engine on the
//! baseline, strip fault steps, and find concrete records in a history.

#![allow(dead_code)]

use ssesim_model::{
    AgentInput, AppNotice, ClientInput, ClientMsg, ClientOutput, ConnId, Endpoint, EventKind,
    Frame, Millis, Origin, PostOutcome, ReqId, Seq, ServerEvent, ServerInput, ServerOutput,
    SessionEvent,
};
use ssesim_scenarios::{Action, Scenario};
use ssesim_sim::history::{Event, History, Record, WireEvent};
pub use ssesim_sim::EngineKind;
use std::path::PathBuf;

/// The scenario catalog directory.
pub fn catalog_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/catalog")
}

/// Loads `scenarios/catalog/<name>.json`.
pub fn catalog(name: &str) -> Scenario {
    let path = catalog_dir().join(format!("{name}.json"));
    ssesim_scenarios::load_file(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs a scenario on an engine with the baseline preset and the scenario's own seed.
pub fn run(engine: EngineKind, scenario: &Scenario) -> History {
    let params = ssesim_model::revisions::preset("baseline").expect("baseline preset");
    ssesim_sim::run(engine, scenario, &params, scenario.seed).history
}

/// Two tabs, two sessions, and a fault of most kinds, so that latency draws, reconnects
/// and replays all depend on the seed.
const BUSY: &str = r#"{
  "schema": 1,
  "name": "determinism-busy",
  "topology": { "clients": 2, "sessions": ["s1", "s2"] },
  "network": { "min_latency_ms": 1, "max_latency_ms": 20, "es_retry_ms": 200, "es_idle_timeout_ms": 800, "fetch_timeout_ms": 500, "restart_after_ms": 150 },
  "constants": { "sync_interval_ms": 500, "heartbeat_ms": 300 },
  "duration_ms": 2500,
  "heal_at_ms": 1800,
  "steps": [
    { "at_ms": 20, "do": "watch", "client": 0, "session": "s1" },
    { "at_ms": 20, "do": "switch", "client": 1, "session": "s2" },
    { "at_ms": 50, "do": "emit", "session": "s1", "count": 20, "every_ms": 7 },
    { "at_ms": 60, "do": "emit", "session": "s2", "count": 20, "every_ms": 11 },
    { "at_ms": 100, "do": "send", "client": 0, "session": "s1" },
    { "at_ms": 101, "do": "send", "client": 1, "session": "s2" },
    { "at_ms": 150, "do": "lose_response", "endpoint": "send" },
    { "at_ms": 160, "do": "send", "client": 0, "session": "s1" },
    { "at_ms": 200, "do": "double_welcome", "client": 1, "gap_ms": 2 },
    { "at_ms": 300, "do": "inject_status", "endpoint": "send", "status": 503, "count": 2 },
    { "at_ms": 310, "do": "send", "client": 1, "session": "s2" },
    { "at_ms": 400, "do": "partition", "client": 0 },
    { "at_ms": 450, "do": "send", "client": 0, "session": "s1" },
    { "at_ms": 700, "do": "repair", "client": 0 },
    { "at_ms": 800, "do": "interrupt_fails" },
    { "at_ms": 820, "do": "interrupt", "client": 1, "session": "s2" },
    { "at_ms": 900, "do": "send", "client": 1 },
    { "at_ms": 1000, "do": "drop_connection", "client": 0 },
    { "at_ms": 1050, "do": "send", "client": 0, "session": "s1" },
    { "at_ms": 1200, "do": "hidden", "client": 1 },
    { "at_ms": 1400, "do": "visible", "client": 1 }
  ]
}"#;

pub fn busy() -> Scenario {
    ssesim_scenarios::parse_str(BUSY).expect("the determinism scenario parses")
}

/// The scenario without the steps whose action matches `drop`.
pub fn without(scenario: &Scenario, drop: impl Fn(&Action) -> bool) -> Scenario {
    let mut s = scenario.clone();
    let before = s.steps.len();
    s.steps.retain(|step| !drop(&step.action));
    assert!(
        s.steps.len() < before,
        "{}: no step matched, so the control run would be the same run",
        scenario.name
    );
    s
}

/// The scenario with every fault step removed: the control run.
pub fn without_faults(scenario: &Scenario) -> Scenario {
    without(scenario, Action::is_fault)
}

/// Runs the scenario and its fault-free control.
pub fn run_both(engine: EngineKind, name: &str) -> (History, History) {
    let s = catalog(name);
    (run(engine, &s), run(engine, &without_faults(&s)))
}

/// The first value `f` picks out of the records, in order.
pub fn find<'a, T>(h: &'a History, f: impl FnMut(&'a Record) -> Option<T>) -> Option<T> {
    h.records.iter().find_map(f)
}

/// Every value `f` picks out of the records, in order.
pub fn all<'a, T>(h: &'a History, f: impl FnMut(&'a Record) -> Option<T>) -> Vec<T> {
    h.records.iter().filter_map(f).collect()
}

/// Whether any record satisfies `f`.
pub fn any(h: &History, f: impl FnMut(&Record) -> bool) -> bool {
    h.records.iter().any(f)
}

/// The history as JSON lines, for failure messages.
pub fn dump(h: &History) -> String {
    h.to_jsonl()
}

// --- server side -------------------------------------------------------------------------

/// Every server output with its time.
pub fn server_outs(h: &History) -> Vec<(Millis, &ServerOutput)> {
    all(h, |r| match &r.event {
        Event::ServerOut { output } => Some((r.at, output)),
        _ => None,
    })
}

/// Every server input with its time.
pub fn server_ins(h: &History) -> Vec<(Millis, &ServerInput)> {
    all(h, |r| match &r.event {
        Event::ServerIn { input } => Some((r.at, input)),
        _ => None,
    })
}

/// When the server received the prompt `id` (a `send` or `interrupt` request), and its token.
pub fn request_for(h: &History, id: &str) -> Option<(Millis, u64)> {
    server_ins(h).into_iter().find_map(|(at, i)| match i {
        ServerInput::Request { token, request } if request.body.client_msg_id() == Some(id) => {
            Some((at, *token))
        }
        _ => None,
    })
}

/// The status the server's handler answered request `token` with.
pub fn response_to(h: &History, token: u64) -> Option<u16> {
    server_outs(h).into_iter().find_map(|(_, o)| match o {
        ServerOutput::Respond { token: t, response } if *t == token => Some(response.status),
        _ => None,
    })
}

/// The stored `user_message` with clientMsgId `id`, with the time it was appended.
pub fn user_message<'a>(h: &'a History, id: &str) -> Option<(Millis, &'a SessionEvent)> {
    server_outs(h).into_iter().find_map(|(at, o)| match o {
        ServerOutput::Appended(
            e @ SessionEvent {
                kind: EventKind::UserMessage { client_msg_id, .. },
                ..
            },
        ) if client_msg_id == id => Some((at, e)),
        _ => None,
    })
}

/// The seq the agent's `n`-th output in any session was stored under.
pub fn agent_output_seq(h: &History, n: u32) -> Option<Seq> {
    server_outs(h).into_iter().find_map(|(_, o)| match o {
        ServerOutput::Appended(SessionEvent {
            seq,
            kind: EventKind::AgentOutput { n: m },
            ..
        }) if *m == n => Some(*seq),
        _ => None,
    })
}

/// The prompt `id` as handed to the agent.
pub fn agent_input<'a>(h: &'a History, id: &str) -> Option<(Millis, &'a AgentInput)> {
    server_outs(h).into_iter().find_map(|(at, o)| match o {
        ServerOutput::AgentInput(a) if a.client_msg_id == id => Some((at, a)),
        _ => None,
    })
}

/// Every delivery of the stored event `seq`: (time, connection, origin).
pub fn deliveries_of(h: &History, seq: Seq) -> Vec<(Millis, ConnId, Origin)> {
    server_outs(h)
        .into_iter()
        .filter_map(|(at, o)| match o {
            ServerOutput::Deliver(d) if d.event.tracked().map(|(_, q)| q) == Some(seq) => {
                Some((at, d.conn, d.origin))
            }
            _ => None,
        })
        .collect()
}

/// `ServerDown` records: (time, reason).
pub fn server_downs(h: &History) -> Vec<(Millis, &str)> {
    all(h, |r| match &r.event {
        Event::ServerDown { reason } => Some((r.at, reason.as_str())),
        _ => None,
    })
}

/// `ServerUp` records: (time, boot number).
pub fn server_ups(h: &History) -> Vec<(Millis, u32)> {
    all(h, |r| match &r.event {
        Event::ServerUp { boot } => Some((r.at, *boot)),
        _ => None,
    })
}

// --- wire --------------------------------------------------------------------------------

/// Every engine-level wire event with its time and tab.
pub fn wire(h: &History) -> Vec<(Millis, Option<u32>, &WireEvent)> {
    all(h, |r| match &r.event {
        Event::Wire { tab, event } => Some((r.at, *tab, event)),
        _ => None,
    })
}

/// Times and reasons of the tab's lost streams.
pub fn streams_lost(h: &History, tab: u32) -> Vec<(Millis, &str)> {
    wire(h)
        .into_iter()
        .filter_map(|(at, t, e)| match e {
            WireEvent::StreamLost { why, .. } if t == Some(tab) => Some((at, why.as_str())),
            _ => None,
        })
        .collect()
}

/// Injected statuses: (time, endpoint, status).
pub fn injected(h: &History) -> Vec<(Millis, &str, u16)> {
    wire(h)
        .into_iter()
        .filter_map(|(at, _, e)| match e {
            WireEvent::StatusInjected { endpoint, status } => {
                Some((at, endpoint.as_str(), *status))
            }
            _ => None,
        })
        .collect()
}

// --- client side -------------------------------------------------------------------------

/// Every output of a tab's client with its time.
pub fn client_outs(h: &History, tab: u32) -> Vec<(Millis, &ClientOutput)> {
    all(h, |r| match &r.event {
        Event::ClientOut { tab: t, output } if *t == tab => Some((r.at, output)),
        _ => None,
    })
}

/// Every input of a tab's client with its time.
pub fn client_ins(h: &History, tab: u32) -> Vec<(Millis, &ClientInput)> {
    all(h, |r| match &r.event {
        Event::ClientIn { tab: t, input } if *t == tab => Some((r.at, input)),
        _ => None,
    })
}

/// A POST the tab issued: (time, request id, endpoint, connectionId header, body).
pub struct Post<'a> {
    pub at: Millis,
    pub req: ReqId,
    pub endpoint: Endpoint,
    pub conn: ConnId,
    pub body: &'a ClientMsg,
}

/// Every POST the tab issued, in order.
pub fn posts(h: &History, tab: u32) -> Vec<Post<'_>> {
    client_outs(h, tab)
        .into_iter()
        .filter_map(|(at, o)| match o {
            ClientOutput::Post {
                req,
                endpoint,
                connection_id,
                body,
            } => Some(Post {
                at,
                req: *req,
                endpoint: *endpoint,
                conn: *connection_id,
                body,
            }),
            _ => None,
        })
        .collect()
}

/// The POST that carried prompt `id`.
pub fn post_of<'a>(h: &'a History, tab: u32, id: &str) -> Option<Post<'a>> {
    posts(h, tab)
        .into_iter()
        .find(|p| p.body.client_msg_id() == Some(id))
}

/// How the tab's request `req` ended, and when the client learnt it.
pub fn outcome(h: &History, tab: u32, req: ReqId) -> Option<(Millis, &PostOutcome)> {
    client_ins(h, tab).into_iter().find_map(|(at, i)| match i {
        ClientInput::PostDone { req: r, outcome } if *r == req => Some((at, outcome)),
        _ => None,
    })
}

/// How the POST of prompt `id` ended.
pub fn outcome_of<'a>(h: &'a History, tab: u32, id: &str) -> Option<(Millis, &'a PostOutcome)> {
    let req = post_of(h, tab, id)?.req;
    outcome(h, tab, req)
}

/// The status the tab saw for prompt `id` (`None` for a network error or no reply).
pub fn status_of(h: &History, tab: u32, id: &str) -> Option<u16> {
    match outcome_of(h, tab, id)?.1 {
        PostOutcome::Status { status, .. } => Some(*status),
        PostOutcome::NetworkError => None,
    }
}

/// Whether the tab's request `req` was reported by the browser as a failed POST.
pub fn post_failed(h: &History, tab: u32, req: ReqId) -> Option<(Millis, &str)> {
    wire(h).into_iter().find_map(|(at, t, e)| match e {
        WireEvent::PostFailed { req: r, why } if t == Some(tab) && *r == req => {
            Some((at, why.as_str()))
        }
        _ => None,
    })
}

/// Every welcome a tab's client processed: (time, connectionId).
pub fn welcomes(h: &History, tab: u32) -> Vec<(Millis, ConnId)> {
    client_ins(h, tab)
        .into_iter()
        .filter_map(|(at, i)| match i {
            ClientInput::Frame {
                frame:
                    Frame {
                        data: ServerEvent::Welcome { connection_id, .. },
                        ..
                    },
                ..
            } => Some((at, *connection_id)),
            _ => None,
        })
        .collect()
}

/// When the tab's app was told `notice`.
pub fn notices(h: &History, tab: u32, notice: &AppNotice) -> Vec<Millis> {
    client_outs(h, tab)
        .into_iter()
        .filter_map(|(at, o)| match o {
            ClientOutput::App(n) if n == notice => Some(at),
            _ => None,
        })
        .collect()
}

/// When the tab's app first received the stored event `seq`.
pub fn app_got_seq(h: &History, tab: u32, seq: Seq) -> Option<Millis> {
    client_outs(h, tab).into_iter().find_map(|(at, o)| match o {
        ClientOutput::App(AppNotice::Event { event })
            if event.tracked().map(|(_, q)| q) == Some(seq) =>
        {
            Some(at)
        }
        _ => None,
    })
}

/// The time of the scenario step with this index.
pub fn step_at(h: &History, index: usize) -> Option<Millis> {
    find(h, |r| match &r.event {
        Event::Step { index: i, .. } if *i == index => Some(r.at),
        _ => None,
    })
}

/// Whether the run ended quiescent.
pub fn quiescent(h: &History) -> bool {
    matches!(
        h.end_verdict(),
        Some(ssesim_sim::history::EndVerdict::Quiescent)
    )
}
