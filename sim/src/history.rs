//! The recorded history of one run: the only thing oracles and reports read.
//!
//! Every input a machine took and every output it gave is recorded with the simulated time,
//! plus the engine's own doings (steps applied, streams lost, server down and up). Records
//! serialise as JSON lines; the history hash is FNV-1a over exactly those bytes, so it is
//! stable across runs, processes and platforms.

use serde::{Deserialize, Serialize};
use ssesim_model::{ClientInput, ClientOutput, EsId, Millis, ReqId, ServerInput, ServerOutput};
use ssesim_scenarios::Action;
use std::hash::Hasher;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub at: Millis,
    #[serde(flatten)]
    pub event: Event,
}

/// What the engine itself saw happen on the wire or to a process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "wire", rename_all = "snake_case")]
pub enum WireEvent {
    /// The browser's EventSource lost its stream (EOF, reset, idle timeout, failed connect).
    StreamLost { es: EsId, why: String },
    /// The EventSource got an HTTP error on (re)open and is closed for good.
    StreamRefused { es: EsId, status: u16 },
    /// The browser re-opened the stream on its own (forced by a double-welcome fault).
    StreamReopened { es: EsId },
    /// A POST got no reply in time or its connection failed.
    PostFailed { req: ReqId, why: String },
    /// An injected status answered a request before the handler saw it.
    StatusInjected { endpoint: String, status: u16 },
    /// The server applied a request but its reply was dropped.
    ResponseLost { endpoint: String },
    /// A frame for a connection with no open stream on this server was discarded.
    FrameDiscarded { conn: ssesim_model::ConnId },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Event {
    /// A scenario step took effect (faults included).
    Step {
        index: usize,
        action: Action,
    },
    ClientIn {
        tab: u32,
        input: ClientInput,
    },
    ClientOut {
        tab: u32,
        output: ClientOutput,
    },
    /// A tab's pending-send queue changed length (after the outputs of that input).
    Queue {
        tab: u32,
        pending: usize,
    },
    ServerIn {
        input: ServerInput,
    },
    ServerOut {
        output: ServerOutput,
    },
    Wire {
        tab: Option<u32>,
        event: WireEvent,
    },
    /// The server process stopped (crash output, crash step, bounce).
    ServerDown {
        reason: String,
    },
    /// A server process booted from the surviving store.
    ServerUp {
        boot: u32,
    },
    /// The heal phase began: faults cleared, network repaired, server up.
    Heal,
    /// The run ended.
    End {
        verdict: EndVerdict,
    },
}

/// How a run ended, before any oracle looks at it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "end", rename_all = "snake_case")]
pub enum EndVerdict {
    /// Nothing left in flight: every tab's queue and requests drained, server up.
    Quiescent,
    /// The run reached its time limit with work outstanding.
    NotQuiescent { detail: String },
    /// The engine itself failed (a turmoil error); the history is cut short.
    EngineError { detail: String },
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub records: Vec<Record>,
}

impl History {
    pub fn push(&mut self, at: Millis, event: Event) {
        self.records.push(Record { at, event });
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// One JSON object per line, in record order.
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        for r in &self.records {
            out.push_str(&record_line(r));
            out.push('\n');
        }
        out
    }

    /// FNV-1a over the JSON lines, as 16 hex digits.
    pub fn hash_hex(&self) -> String {
        let mut h = fnv::FnvHasher::default();
        for r in &self.records {
            h.write(record_line(r).as_bytes());
            h.write(b"\n");
        }
        format!("{:016x}", h.finish())
    }

    /// Where two histories first differ: the index and both lines (`None` past an end).
    pub fn first_divergence(
        &self,
        other: &History,
    ) -> Option<(usize, Option<String>, Option<String>)> {
        let n = self.records.len().max(other.records.len());
        (0..n).find_map(|i| {
            let a = self.records.get(i).map(record_line);
            let b = other.records.get(i).map(record_line);
            (a != b).then_some((i, a, b))
        })
    }

    pub fn end_verdict(&self) -> Option<&EndVerdict> {
        self.records.iter().rev().find_map(|r| match &r.event {
            Event::End { verdict } => Some(verdict),
            _ => None,
        })
    }
}

fn record_line(r: &Record) -> String {
    serde_json::to_string(r).expect("history records serialise")
}
