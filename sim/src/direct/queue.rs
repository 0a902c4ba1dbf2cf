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
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

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
    /// The slab slot holding the event (never decides the order: `seq` is unique); not
    /// part of the state either.
    slot: u32,
}

/// A key serialises without its insertion counter: two runs that reach the same state
/// by different paths hold the same events in the same order, but not the same counters.
impl Serialize for Key {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.at, self.rank, self.class, self.lane, self.sub).serialize(s)
    }
}

/// The slot of an event held in [`Queue::ahead`] rather than the slab.
const AHEAD: u32 = u32::MAX;
/// The slot of an event held in [`Queue::current`] rather than the slab.
const CURRENT: u32 = u32::MAX - 1;

/// The pending events, in three places, taken earliest first whichever holds them:
///
/// - `current`: those due in the millisecond being run, pushed while it runs (tasks
///   woken, packets taken, inputs queued: about half of all events), in a small sorted
///   list;
/// - `ahead`: those pushed ahead of time in key order (the scenario's commands), taken
///   from the front;
/// - the rest: a binary heap of keys (earliest on top) over a slab of events.
///
/// A cancelled event leaves the slab at once; its key stays in the heap until it comes up
/// and is skipped there (its slot is empty or holds a later event, with another `seq`).
/// The heap's top is always a live event, so [`Queue::next_at`] is exact. Keys are unique
/// (by `seq`), so the order events come out in is the keys' total order, whatever the
/// heap's shape and whichever place holds an event.
#[derive(Clone, Debug, Default)]
pub(super) struct Queue {
    heap: BinaryHeap<Reverse<Key>>,
    /// Events pushed in key order ([`Queue::push_ahead`]): sorted, earliest first. Kept
    /// out of the heap, which they would make deep: a run pushes its whole schedule at
    /// the start.
    ahead: VecDeque<(Key, Ev)>,
    /// Events due at `current_at`, pushed since an event of that millisecond was taken:
    /// sorted, latest first (taken from the end).
    current: Vec<(Key, Ev)>,
    /// The time of the last event taken.
    current_at: Millis,
    /// Each slot: the `seq` of the event it holds, and the event.
    slots: Vec<Option<(u64, Ev)>>,
    /// Empty slots, reused last freed first.
    free: Vec<u32>,
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
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut key = Key {
            at,
            rank,
            class,
            lane,
            sub,
            seq,
            slot: CURRENT,
        };
        if at == self.current_at {
            let i = self.current.partition_point(|(k, _)| *k > key);
            self.current.insert(i, (key, ev));
            return key;
        }
        key.slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some((seq, ev));
                slot
            }
            None => {
                self.slots.push(Some((seq, ev)));
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 pending events")
            }
        };
        self.heap.push(Reverse(key));
        key
    }

    /// [`push`](Self::push) for an event pushed ahead of time, usually in key order (the
    /// scenario's commands, at the start of a run): kept out of the heap when it sorts
    /// after every event already pushed that way.
    pub fn push_ahead(&mut self, at: Millis, rank: u32, class: u8, ev: Ev) -> Key {
        let key = Key {
            at,
            rank,
            class,
            lane: 0,
            sub: 0,
            seq: self.next_seq,
            slot: AHEAD,
        };
        if self.ahead.back().is_some_and(|(last, _)| *last > key) {
            return self.push(at, rank, class, ev);
        }
        self.next_seq += 1;
        self.ahead.push_back((key, ev));
        key
    }

    /// Makes room for `n` more events pushed ahead.
    pub fn reserve_ahead(&mut self, n: usize) {
        self.ahead.reserve(n);
    }

    /// Whether `key`'s event is still pending in the slab.
    fn live(&self, key: &Key) -> bool {
        matches!(self.slots.get(key.slot as usize), Some(Some((seq, _))) if *seq == key.seq)
    }

    /// Takes `key`'s event out of its slot (it must be live).
    fn take(&mut self, key: &Key) -> Ev {
        let (_, ev) = self.slots[key.slot as usize].take().expect("a live event");
        self.free.push(key.slot);
        ev
    }

    /// Drops keys of cancelled events off the top of the heap.
    fn settle(&mut self) {
        while let Some(Reverse(top)) = self.heap.peek() {
            if self.live(top) {
                return;
            }
            self.heap.pop();
        }
    }

    /// Removes a pending event (a cancelled timer, a packet that will not arrive).
    pub fn cancel(&mut self, key: Option<Key>) {
        let Some(k) = key else {
            return;
        };
        match k.slot {
            AHEAD => {
                if let Ok(i) = self.ahead.binary_search_by(|(a, _)| a.cmp(&k)) {
                    self.ahead.remove(i);
                }
            }
            CURRENT => {
                if let Ok(i) = self.current.binary_search_by(|(c, _)| k.cmp(c)) {
                    self.current.remove(i);
                }
            }
            _ => {
                if self.live(&k) {
                    self.take(&k);
                    self.settle();
                }
            }
        }
    }

    /// The earliest event's key.
    #[inline]
    fn first(&self) -> Option<&Key> {
        let heap = self.heap.peek().map(|Reverse(k)| k);
        let ahead = self.ahead.front().map(|(k, _)| k);
        let current = self.current.last().map(|(k, _)| k);
        earlier(earlier(current, heap), ahead)
    }

    /// The earliest event, if `pred` accepts its key.
    fn pop_if(&mut self, pred: impl FnOnce(&Key) -> bool) -> Option<(Key, Ev)> {
        let first = self.first()?;
        if !pred(first) {
            return None;
        }
        let (key, ev) = match first.slot {
            AHEAD => self.ahead.pop_front().expect("peeked"),
            CURRENT => self.current.pop().expect("peeked"),
            _ => {
                let Reverse(key) = self.heap.pop().expect("peeked");
                let ev = self.take(&key);
                self.settle();
                (key, ev)
            }
        };
        self.current_at = key.at;
        Some((key, ev))
    }

    /// The earliest event, if it is due at or before `limit`.
    pub fn pop_until(&mut self, limit: Millis) -> Option<(Key, Ev)> {
        self.pop_if(|k| k.at <= limit)
    }

    /// The earliest event, if it is the engine's own at exactly `at`.
    pub fn pop_engine_at(&mut self, at: Millis) -> Option<(Key, Ev)> {
        self.pop_if(|k| k.at == at && k.rank == ENGINE)
    }

    /// The earliest event, if it is of this host and class at this time: the rest of a
    /// batch one task takes in one run.
    pub fn pop_same(&mut self, at: Millis, rank: u32, class: u8) -> Option<Ev> {
        self.pop_if(|k| k.at == at && k.rank == rank && k.class == class)
            .map(|(_, ev)| ev)
    }

    /// Keeps only the pending events `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&Key, &Ev) -> bool) {
        let dropped: Vec<Key> = self
            .heap
            .iter()
            .map(|Reverse(k)| *k)
            .filter(|k| {
                matches!(&self.slots[k.slot as usize], Some((seq, ev)) if *seq == k.seq && !keep(k, ev))
            })
            .collect();
        for k in &dropped {
            self.take(k);
        }
        self.settle();
        self.ahead.retain(|(k, ev)| keep(k, ev));
        self.current.retain(|(k, ev)| keep(k, ev));
    }

    /// The time of the earliest pending event.
    pub fn next_at(&self) -> Option<Millis> {
        self.first().map(|k| k.at)
    }
}

/// The earlier of two keys, if any.
#[inline]
fn earlier<'a>(a: Option<&'a Key>, b: Option<&'a Key>) -> Option<&'a Key> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y < x { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}

/// The pending events in key order, as `(key, event)` pairs.
impl Serialize for Queue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut live: Vec<(&Key, &Ev)> = self
            .heap
            .iter()
            .filter_map(|Reverse(k)| match &self.slots[k.slot as usize] {
                Some((seq, ev)) if *seq == k.seq => Some((k, ev)),
                _ => None,
            })
            .chain(self.ahead.iter().map(|(k, ev)| (k, ev)))
            .chain(self.current.iter().map(|(k, ev)| (k, ev)))
            .collect();
        live.sort_unstable_by_key(|(k, _)| **k);
        s.collect_seq(live)
    }
}
