//! The time-ordered event queue of the direct engine.
//!
//! An event's [`Key`] orders it by simulated time, then by the host that handles it (the
//! engine's own loop first, then the server, then the tabs in order), then by its
//! [`class`] within that host, then by insertion. That is the order turmoil gives the same
//! things within one millisecond: its loop applies the schedule before a step; a step runs
//! the server's host before the tabs'; a host first takes the packets delivered to it into
//! its sockets, then runs its tasks: those woken by timers at the end of the previous
//! tick, then those the engine woke, then those woken from other hosts (a connect
//! accepted), then those woken by the packets, then those woken by tasks of the turn, in
//! the order they were woken (tokio's run queue for a single-threaded `LocalSet` is one
//! FIFO).

use super::Ev;
use serde::{Serialize, Serializer};
use ssesim_model::Millis;
use std::collections::BTreeMap;

/// The engine's own loop: reaping a crash, scenario commands, the heal, a restart.
pub(super) const ENGINE: u32 = 0;
/// The server's host.
pub(super) const SERVER: u32 = 1;

/// Tab `i`'s host.
pub(super) fn tab_rank(tab: u32) -> u32 {
    2 + tab
}

/// The order of event kinds within one host and one millisecond.
pub(super) mod class {
    /// Engine: a crash a host asked for in the previous millisecond is completed first.
    pub const REAP: u8 = 0;
    /// Engine: the scenario's commands, in file order.
    pub const COMMAND: u8 = 1;
    /// Engine: the heal phase begins (after the commands of its millisecond).
    pub const HEAL: u8 = 2;
    /// Engine: the supervisor restarts a crashed server.
    pub const RESTART: u8 = 3;
    /// Hosts: packets reach the host's sockets (or are answered with an RST).
    pub const DELIVER: u8 = 0;
    /// Hosts: tasks woken by timers (and a booting server's main task).
    pub const TIMER: u8 = 1;
    /// Server: a stream's task woken by a tab's turn of the previous millisecond (a read
    /// that freed room in the stream's send window).
    pub const WOKEN: u8 = 2;
    /// Hosts: tasks the engine woke (app calls, agent output, server-side faults).
    pub const INBOX: u8 = 3;
    /// Tabs: tasks whose connect the server accepted or refused in this millisecond.
    pub const ACK: u8 = 4;
    /// Hosts: tasks woken by the packets delivered.
    pub const NET: u8 = 5;
    /// Hosts: tasks woken (or spawned) by tasks of this turn: tokio's run queue is one
    /// FIFO, so they run after everything already queued.
    pub const LATE: u8 = 6;
}

/// Where an event sits in the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Key {
    pub at: Millis,
    pub rank: u32,
    pub class: u8,
    /// Within a class: the link a packet comes over (the server takes its links' packets
    /// link by link, in tab order); 0 otherwise.
    pub lane: u32,
    /// Within a lane: a packet's place in its link's send order; 0 otherwise.
    pub sub: u64,
    /// Insertion order; not part of the state (see the `Serialize` impl).
    pub seq: u64,
}

/// A key serialises without its insertion counter: two runs that reach the same state
/// by different paths hold the same events in the same order, but not the same counters.
impl Serialize for Key {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.at, self.rank, self.class, self.lane, self.sub).serialize(s)
    }
}

#[derive(Clone, Debug, Default)]
pub(super) struct Queue {
    /// Boxed: an `Ev` can carry a whole input, and the map moves its values around.
    events: BTreeMap<Key, Box<Ev>>,
    next_seq: u64,
}

impl Queue {
    pub fn push(&mut self, at: Millis, rank: u32, class: u8, ev: Ev) -> Key {
        self.push_at(at, rank, class, 0, 0, ev)
    }

    /// A timer (a `setTimeout`, a server timer, a settling call) armed at `now` for `at`:
    /// one already due fires once the running task yields, after the work woken so far.
    pub fn push_timer(&mut self, now: Millis, at: Millis, rank: u32, ev: Ev) -> Key {
        let class = if at > now { class::TIMER } else { class::LATE };
        self.push(at.max(now), rank, class, ev)
    }

    /// [`push`](Self::push) at a place within its class.
    pub fn push_at(
        &mut self,
        at: Millis,
        rank: u32,
        class: u8,
        lane: u32,
        sub: u64,
        ev: Ev,
    ) -> Key {
        let key = Key {
            at,
            rank,
            class,
            lane,
            sub,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        self.events.insert(key, Box::new(ev));
        key
    }

    /// Removes a pending event (a cancelled timer, a packet that will not arrive).
    pub fn cancel(&mut self, key: Option<Key>) {
        if let Some(k) = key {
            self.events.remove(&k);
        }
    }

    /// The earliest event, if it is due at or before `limit`.
    pub fn pop_until(&mut self, limit: Millis) -> Option<(Key, Ev)> {
        let entry = self.events.first_entry()?;
        if entry.key().at > limit {
            return None;
        }
        let (k, ev) = entry.remove_entry();
        Some((k, *ev))
    }

    /// The earliest event, if it is the engine's own at exactly `at`.
    pub fn pop_engine_at(&mut self, at: Millis) -> Option<(Key, Ev)> {
        let entry = self.events.first_entry()?;
        let k = entry.key();
        if k.at != at || k.rank != ENGINE {
            return None;
        }
        let (k, ev) = entry.remove_entry();
        Some((k, *ev))
    }

    /// The earliest event, if it is of this host and class at this time: the rest of a
    /// batch one task takes in one run.
    pub fn pop_same(&mut self, at: Millis, rank: u32, class: u8) -> Option<Ev> {
        let entry = self.events.first_entry()?;
        let k = entry.key();
        if k.at != at || k.rank != rank || k.class != class {
            return None;
        }
        Some(*entry.remove())
    }

    /// Keeps only the pending events `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&Key, &Ev) -> bool) {
        self.events.retain(|k, e| keep(k, e));
    }

    /// The time of the earliest pending event.
    pub fn next_at(&self) -> Option<Millis> {
        self.events.first_key_value().map(|(k, _)| k.at)
    }
}

impl Serialize for Queue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.events.iter())
    }
}
