//! Engines that run the model's machines over a simulated network and record a history.
//!
//! - [`turmoil`]: every machine a host in turmoil's network; bytes over simulated TCP.
//! - [`schedule`]: a scenario's steps expanded into timed commands every engine applies.
//! - [`history`]: the record of a run, the only input of the oracles.

pub mod history;
pub mod net;
pub mod schedule;
pub mod timeline;
pub mod turmoil;

use history::{Event, History};
use serde::{Deserialize, Serialize};
use ssesim_model::{AppNotice, ClientOutput, Origin, ServerOutput};

/// What a run produced: the history and figures drawn from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub history: History,
    pub stats: Stats,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Simulated time of the last record.
    pub sim_ms: u64,
    pub history_records: usize,
    /// POSTs the tabs issued.
    pub posts: usize,
    /// Events handed to the app by the tabs.
    pub events_delivered: usize,
    /// Stored events the server re-sent by replay or periodic sync.
    pub replayed_events: usize,
    /// The largest pending-send queue any tab had.
    pub max_pending: usize,
}

impl RunReport {
    pub(crate) fn new(history: History, max_pending: usize) -> Self {
        let mut stats = Stats {
            sim_ms: history.records.last().map_or(0, |r| r.at),
            history_records: history.len(),
            max_pending,
            ..Stats::default()
        };
        for r in &history.records {
            match &r.event {
                Event::ClientOut {
                    output: ClientOutput::Post { .. },
                    ..
                } => stats.posts += 1,
                Event::ClientOut {
                    output: ClientOutput::App(AppNotice::Event { .. }),
                    ..
                } => stats.events_delivered += 1,
                Event::ServerOut {
                    output: ServerOutput::Deliver(d),
                } if matches!(d.origin, Origin::Replay | Origin::Sync) => {
                    stats.replayed_events += 1
                }
                _ => {}
            }
        }
        RunReport { history, stats }
    }
}
