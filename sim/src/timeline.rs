//! A history as a human reads it: one line per meaningful record, with time and actor.
//!
//! Used by the command line and by reports. It skips bookkeeping records (timers armed,
//! inputs whose effect the next line already shows) so a timeline stays short.

use crate::history::{EndVerdict, Event, Record, WireEvent};
use ssesim_model::{
    AppNotice, ClientInput, ClientMsg, ClientOutput, ClientTimer, EventKind, PostOutcome,
    ServerEvent, ServerInput, ServerOutput,
};
use std::fmt::Write;

/// Who did something, for the timeline's actor column and diagram lanes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Actor {
    Tab(u32),
    Server,
    Agent,
    Engine,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Tab(i) => write!(f, "tab{i}"),
            Actor::Server => f.write_str("server"),
            Actor::Agent => f.write_str("agent"),
            Actor::Engine => f.write_str("fault"),
        }
    }
}

fn msg_brief(m: &ClientMsg) -> String {
    match m {
        ClientMsg::Send {
            session,
            client_msg_id,
            ..
        } => match session {
            Some(s) => format!("send {client_msg_id} to {s}"),
            None => format!("send {client_msg_id} (new session)"),
        },
        ClientMsg::Interrupt {
            session,
            client_msg_id,
            ..
        } => format!("interrupt {client_msg_id} in {session}"),
        ClientMsg::Reconnect { sessions } => {
            let cursors: Vec<String> = sessions
                .iter()
                .map(|c| format!("{}@{}", c.session, c.last_seq))
                .collect();
            format!("reconnect [{}]", cursors.join(", "))
        }
        ClientMsg::SessionSuspend { sessions } => format!("suspend {} session(s)", sessions.len()),
        other => match other.session() {
            Some(s) => format!(
                "{} {s}",
                other.endpoint().map_or("?".to_string(), |e| e.to_string())
            ),
            None => "unknown message".to_string(),
        },
    }
}

fn event_brief(e: &ServerEvent) -> String {
    match e {
        ServerEvent::Welcome { connection_id, .. } => format!("welcome {connection_id}"),
        ServerEvent::Session(ev) => {
            let what = match &ev.kind {
                EventKind::MessageFailed {
                    client_msg_id,
                    reason,
                } => format!("{client_msg_id} marked failed ({reason})"),
                EventKind::UserMessage {
                    client_msg_id,
                    interrupt,
                    ..
                } => {
                    format!(
                        "{} {client_msg_id}",
                        if *interrupt {
                            "interrupt"
                        } else {
                            "user_message"
                        }
                    )
                }
                EventKind::AgentOutput { n } => format!("agent output #{n}"),
                EventKind::SessionStateChanged { internal, .. } => format!("state {internal}"),
            };
            format!("{}#{} {what}", ev.session, ev.seq)
        }
        ServerEvent::Watched { session } => format!("watched {session}"),
        ServerEvent::Unwatched { session } => format!("unwatched {session}"),
        ServerEvent::SessionSwitched { session } => format!("switched to {session}"),
        ServerEvent::SessionStatus { session, state } => format!("{session} is {state:?}"),
        ServerEvent::BootContext { session } => format!("boot_context {session}"),
        ServerEvent::SessionResumed { session, replayed } => {
            format!("{session} resumed ({replayed} replayed)")
        }
        ServerEvent::Reconnected { sessions } => {
            format!("reconnected ({} sessions)", sessions.len())
        }
        ServerEvent::Error { message, .. } => format!("error: {message}"),
    }
}

/// The actor and text of a record, or `None` for records a reader does not need.
pub fn describe(record: &Record) -> Option<(Actor, String)> {
    let line = match &record.event {
        Event::Step { action, .. } if action.is_fault() => {
            (Actor::Engine, serde_json::to_string(action).ok()?)
        }
        Event::Step { .. } | Event::Queue { .. } => return None,
        Event::ClientIn { tab, input } => {
            let text = match input {
                ClientInput::Connect => "connect()".to_string(),
                ClientInput::Disconnect => "disconnect()".to_string(),
                ClientInput::CheckAndReconnect { force } => format!("checkAndReconnect({force})"),
                ClientInput::TrackSeq { session, seq } => format!("trackSeq({session}, {seq})"),
                ClientInput::StreamError { es } => format!("{es} error"),
                ClientInput::PostDone { req, outcome } => match outcome {
                    PostOutcome::Status { status, .. } => format!("{req} -> {status}"),
                    PostOutcome::NetworkError => format!("{req} -> network error"),
                },
                ClientInput::Page(p) => format!("page {p:?}"),
                ClientInput::Send { .. } | ClientInput::Frame { .. } | ClientInput::Timer(_) => {
                    return None
                }
            };
            (Actor::Tab(*tab), text)
        }
        Event::ClientOut { tab, output } => {
            let text = match output {
                ClientOutput::OpenStream { es } => format!("open EventSource {es}"),
                ClientOutput::CloseStream { es } => format!("close {es}"),
                ClientOutput::Post {
                    req,
                    connection_id,
                    body,
                    ..
                } => {
                    format!("POST {req} {} as {connection_id}", msg_brief(body))
                }
                ClientOutput::Beacon { connection_id, .. } => {
                    format!("beacon suspend as {connection_id}")
                }
                ClientOutput::SendReturned { msg, accepted } => {
                    format!("send() = {accepted}: {}", msg_brief(msg))
                }
                ClientOutput::Dropped { msg, reason } => {
                    format!("silently dropped ({reason:?}): {}", msg_brief(msg))
                }
                ClientOutput::App(AppNotice::Event { event }) => {
                    format!("app <- {}", event_brief(event))
                }
                ClientOutput::App(AppNotice::SendFailed { msg }) => {
                    format!("app <- send failed: {}", msg_brief(msg))
                }
                ClientOutput::App(n) => format!("app <- _{n:?}").to_lowercase(),
                ClientOutput::SetTimer { timer, at } => {
                    let what = match timer {
                        ClientTimer::Reconnect => "reconnect timer",
                        ClientTimer::Outbox => "outbox retry timer",
                        ClientTimer::Flush => "queue retry timer",
                        ClientTimer::Watchdog => "stream watchdog",
                        ClientTimer::Repair => "replay retry timer",
                    };
                    format!("{what} for {at} ms")
                }
                ClientOutput::CancelTimer { .. } => return None,
            };
            (Actor::Tab(*tab), text)
        }
        Event::ServerIn { input } => match input {
            ServerInput::AgentEmit { session, n } => {
                (Actor::Agent, format!("emits #{n} in {session}"))
            }
            ServerInput::AgentState { session, to } => {
                (Actor::Agent, format!("moves {session} to {to}"))
            }
            ServerInput::InterruptSettled { ok, .. } => (
                Actor::Server,
                format!("interrupt() {}", if *ok { "resolved" } else { "rejected" }),
            ),
            ServerInput::Request { request, .. } => (
                Actor::Server,
                format!(
                    "got {} from {}",
                    msg_brief(&request.body),
                    request
                        .connection_id
                        .map_or("no id".to_string(), |c| c.to_string())
                ),
            ),
            ServerInput::StreamClosed { conn } => (Actor::Server, format!("stream {conn} closed")),
            ServerInput::DropConnection { conn, .. } => (Actor::Server, format!("drops {conn}")),
            _ => return None,
        },
        Event::ServerOut { output } => match output {
            ServerOutput::Deliver(d) => (
                Actor::Server,
                format!("-> {} {} ({:?})", d.conn, event_brief(&d.event), d.origin)
                    .replace("(Live)", "")
                    .trim_end()
                    .to_string(),
            ),
            ServerOutput::Respond { response, .. } => {
                (Actor::Server, format!("replies {}", response.status))
            }
            ServerOutput::AgentInput(a) => (
                Actor::Agent,
                format!(
                    "input {} in {}{}",
                    a.client_msg_id,
                    a.session,
                    if a.interrupt { " (interrupt)" } else { "" }
                ),
            ),
            ServerOutput::Crash { reason } => (Actor::Server, format!("CRASH: {reason}")),
            ServerOutput::IllegalTransition { session, from, to } => (
                Actor::Server,
                format!("illegal transition {session}: {from} -> {to} (applied)"),
            ),
            ServerOutput::SyncBatch(b) => {
                let mut t = format!(
                    "sync {} {}: {} sent from {}",
                    b.conn, b.session, b.sent, b.cursor
                );
                if let Some((from, to)) = b.skipped {
                    let _ = write!(t, ", skipped ({from}, {to}]");
                }
                (Actor::Server, t)
            }
            _ => return None,
        },
        Event::Wire { tab, event } => {
            let actor = tab.map_or(Actor::Engine, Actor::Tab);
            let text = match event {
                WireEvent::StreamLost { es, why } => format!("{es} lost: {why}"),
                WireEvent::StreamRefused { es, status } => {
                    format!("{es} refused with {status}, closed for good")
                }
                WireEvent::StreamReopened { es } => format!("browser re-opens {es}"),
                WireEvent::PostFailed { req, why } => format!("{req} failed: {why}"),
                WireEvent::StatusInjected { endpoint, status } => {
                    format!("injected {status} on /{endpoint}")
                }
                WireEvent::ResponseLost { endpoint } => format!("reply to /{endpoint} lost"),
                WireEvent::FrameDiscarded { .. } => return None,
            };
            (actor, text)
        }
        Event::ServerDown { reason } => (Actor::Server, format!("DOWN ({reason})")),
        Event::ServerUp { boot } => (Actor::Server, format!("UP (boot {boot})")),
        Event::Heal => (Actor::Engine, "heal: faults cleared".to_string()),
        Event::End { verdict } => (
            Actor::Engine,
            match verdict {
                EndVerdict::Quiescent => "end: quiescent".to_string(),
                EndVerdict::NotQuiescent { detail } => format!("end: not quiescent ({detail})"),
                EndVerdict::EngineError { detail } => format!("end: engine error ({detail})"),
            },
        ),
    };
    Some(line)
}

/// The whole timeline as text: `time  actor  what`, one line each.
pub fn render(records: &[Record]) -> String {
    let mut out = String::new();
    for r in records {
        if let Some((actor, text)) = describe(r) {
            let _ = writeln!(out, "{:>8} ms  {:<7} {}", r.at, actor.to_string(), text);
        }
    }
    out
}
