//! The direct engine's network: one link per tab to the server, TCP connections over it,
//! and the faults that act on packets (partitions, holds, latency).
//!
//! It is turmoil 0.7's model, message for message, so the two engines agree:
//!
//! - A connection carries sequenced packets each way. Every packet draws its own latency
//!   (`min + range * Exp(5)`, capped at `max`, from the run's latency stream) and the
//!   receiver's socket takes them in order, so a packet never overtakes an earlier one on
//!   its connection: it waits for it. A lost packet leaves a hole nothing later gets past
//!   (no retransmission). An RST is not sequenced.
//! - A host takes the packets due at the start of its turn. One with no socket to go to is
//!   answered with an RST there and then; an RST removes the socket; the rest wait in the
//!   socket until its task reads them. A task that drops its socket with data unread in it
//!   resets the connection instead of closing it with a FIN (RFC 9293, as turmoil does).
//! - A connect is the SYN's one-way trip: the server accepts it on arrival and the tab's
//!   connect completes in that same millisecond, as turmoil's SYN-ACK is a channel outside
//!   the network. So a SYN the network drops fails its connect at once; one reaching a
//!   server that is down waits for the next boot, which refuses it.
//! - A partition drops packets sent while it lasts and those in flight in its direction; a
//!   hold keeps them (in flight included) until a release, which delivers them at once; a
//!   repair lets new packets through but leaves held ones held, as turmoil's does.
//! - A packet sent during a host's turn in millisecond `t` with latency `d` is taken at
//!   `t + d`; one sent by the engine's own loop (a crash closing sockets) at `t + d - 1`,
//!   because turmoil's loop runs before the step that advances the network clock.

use super::queue::{class, tab_rank, Key, ENGINE, SERVER};
use super::{Ev, World};
use crate::net::{Down, Up};
use rand::Rng;
use serde::Serialize;
use ssesim_model::{ConnId, EsId, Millis, ReqId};
use ssesim_scenarios::Direction;
use std::collections::VecDeque;

/// turmoil's default TCP socket capacity: data segments a writer may have unread at the
/// peer (its send window), and segments a socket queues for its task.
pub(super) const WINDOW: u32 = 64;

/// How one direction of a link treats packets sent into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(super) enum Flow {
    Healthy,
    Partitioned,
    Held,
}

/// A tab's link to the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(super) struct Link {
    /// Tab to server.
    pub up: Flow,
    /// Server to tab.
    pub down: Flow,
    /// The link's own latency range, once a `latency` step set it.
    pub latency: Option<(u64, u64)>,
}

impl Link {
    pub fn new() -> Self {
        Link {
            up: Flow::Healthy,
            down: Flow::Healthy,
            latency: None,
        }
    }
}

/// What a packet carries.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(super) enum Msg {
    Syn,
    Up(Up),
    Down(Down),
    Fin,
    Rst,
}

impl Msg {
    fn kind(&self) -> &'static str {
        match self {
            Msg::Syn => "syn",
            Msg::Up(_) | Msg::Down(_) => "data",
            Msg::Fin => "fin",
            Msg::Rst => "rst",
        }
    }

    fn sequenced(&self) -> bool {
        !matches!(self, Msg::Rst)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(super) enum PacketState {
    /// On its way; it reaches the host at this time.
    At(Millis),
    /// Held by a `hold` until a release.
    Held,
    /// Dropped by a partition: a hole no later packet of the pipe gets past (turmoil
    /// never retransmits), though they still reach the host.
    Lost,
    /// Reached a server that was down: waits for the next boot.
    Parked,
    /// Reached its socket out of order: waits there for the packets before it.
    Arrived,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(super) struct Packet {
    pub msg: Msg,
    pub state: PacketState,
    /// Its place in the link's send order (turmoil delivers a link's packets that way).
    pub sent: u64,
    /// Its arrival event while it is on its way.
    pub key: Option<Key>,
}

/// One direction of a connection: the packets its receiver has not taken, in send order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(super) struct Pipe {
    pub packets: VecDeque<Packet>,
}

/// What a connection is for, on the tab's side.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(super) enum ConnKind {
    /// An EventSource's `GET /api/chat/events`.
    Stream(EsId),
    Post(ReqId),
    /// `sendBeacon`, with its body until the connect completes.
    Beacon(Option<Up>),
}

/// The server's end of a connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(super) enum ServerEnd {
    /// No socket: the SYN has not been accepted (or never will be).
    Pending,
    /// Accepted; waiting for the request.
    AwaitFirst,
    /// An open SSE stream of this id.
    Stream(ConnId),
    /// A POST whose handler answers later.
    Deferred {
        token: u64,
        endpoint: ssesim_model::Endpoint,
    },
    Closed,
}

impl ServerEnd {
    pub fn is_open(&self) -> bool {
        !matches!(self, ServerEnd::Pending | ServerEnd::Closed)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(super) struct Conn {
    pub tab: u32,
    pub kind: ConnKind,
    /// The tab's task still holds the connection (or still awaits its connect).
    pub tab_held: bool,
    /// The tab's host has a socket for it (from the SYN until it is dropped or reset).
    pub tab_sock: bool,
    /// The server accepted the SYN (the tab's connect completes).
    pub acked: bool,
    /// The SYN was lost or refused (the tab's connect fails).
    pub refused: bool,
    /// The tab's connect completed and its task went on.
    pub established: bool,
    /// What the tab's socket holds that its task has not read.
    pub tab_rx: VecDeque<Msg>,
    /// The server's task for it.
    pub server: ServerEnd,
    /// The server's host has a socket for it (from the accept until dropped or reset).
    pub srv_sock: bool,
    /// What the server's socket holds that its task has not read.
    pub srv_rx: VecDeque<Msg>,
    /// Data segments the server sent that the tab's task has not read yet: turmoil's
    /// send window (the socket capacity, 64) blocks the server's writes when it is full.
    pub down_unread: u32,
    /// Accept order: a crash closes the process's sockets oldest first.
    pub accepted: u64,
    pub up: Pipe,
    pub down: Pipe,
}

impl World {
    /// A new connection from a tab: sends the SYN. `None` when the network dropped it,
    /// which fails the connect at once.
    pub(super) fn open_conn(&mut self, tab: u32, kind: ConnKind) -> Option<u64> {
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                tab,
                kind,
                tab_held: true,
                tab_sock: true,
                acked: false,
                refused: false,
                established: false,
                tab_rx: VecDeque::new(),
                server: ServerEnd::Pending,
                srv_sock: false,
                srv_rx: VecDeque::new(),
                down_unread: 0,
                accepted: 0,
                up: Pipe::default(),
                down: Pipe::default(),
            },
        );
        if self.send(id, true, Msg::Syn) {
            return Some(id);
        }
        if let Some(c) = self.conns.get_mut(&id) {
            c.tab_held = false;
            c.tab_sock = false;
        }
        self.collect(id);
        None
    }

    /// One latency draw for a tab's link: turmoil's, `min + range * Exp(5)` capped at
    /// `max`, one sample per packet (even when the range is empty).
    fn delay(&mut self, tab: u32) -> u64 {
        let (min, max) = self.links[tab as usize]
            .latency
            .unwrap_or((self.net.min_latency_ms, self.net.max_latency_ms));
        let mult = self
            .rng
            .sample(rand_distr::Exp::new(5.0).expect("a positive rate"));
        let delay = min + ((max.saturating_sub(min)) as f64 * mult) as u64;
        delay.min(max.max(min))
    }

    /// When a packet sent now with latency `d` reaches the host of rank `to`.
    fn arrival(&self, d: u64, to: u32) -> Millis {
        if self.rank == ENGINE {
            self.now + d.saturating_sub(1)
        } else if d > 0 || to > self.rank {
            self.now + d
        } else {
            self.now + 1
        }
    }

    fn arrive_at(&mut self, at: Millis, conn: u64, up: bool, tab: u32, sent: u64) -> Key {
        let to = if up { SERVER } else { tab_rank(tab) };
        let ev = Ev::Arrive { conn, up, sent };
        self.queue.push_at(at, to, class::DELIVER, tab, sent, ev)
    }

    /// Sends a packet on a connection, `up` from the tab or down from the server. A SYN
    /// the network drops fails its connect at once (it carries turmoil's SYN-ACK channel);
    /// the caller learns it from the return value (false).
    pub(super) fn send(&mut self, conn: u64, up: bool, msg: Msg) -> bool {
        let Some(tab) = self.conns.get(&conn).map(|c| c.tab) else {
            return true;
        };
        let link = &self.links[tab as usize];
        let flow = if up { link.up } else { link.down };
        let to = if up { SERVER } else { tab_rank(tab) };
        let sent = self.next_packet;
        self.next_packet += 1;
        let (state, key) = match flow {
            Flow::Partitioned => match msg {
                Msg::Syn => return false,
                Msg::Rst => return true,
                _ => (PacketState::Lost, None),
            },
            Flow::Held => (PacketState::Held, None),
            Flow::Healthy => {
                let d = self.delay(tab);
                let at = self.arrival(d, to);
                (
                    PacketState::At(at),
                    Some(self.arrive_at(at, conn, up, tab, sent)),
                )
            }
        };
        tracing::trace!(target: "ssesim::direct", at = self.now, tab, conn, up, ?state, kind = msg.kind(), "send");
        self.pipe(conn, up).packets.push_back(Packet {
            msg,
            state,
            sent,
            key,
        });
        true
    }

    fn pipe(&mut self, conn: u64, up: bool) -> &mut Pipe {
        let c = self.conns.get_mut(&conn).expect("a live connection");
        if up {
            &mut c.up
        } else {
            &mut c.down
        }
    }

    /// A packet reaches its host, at the start of the host's turn: into its socket
    /// (which hands packets to its task in order, waking it), or, with no socket there,
    /// answered with an RST.
    pub(super) fn arrive(&mut self, conn: u64, up: bool, sent: u64) {
        let server_down = up && self.process.is_none();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let pipe = if up { &mut c.up } else { &mut c.down };
        let Some(i) = pipe.packets.iter().position(|p| p.sent == sent) else {
            return;
        };
        pipe.packets[i].key = None;
        if server_down {
            // A host that is down takes nothing; its next boot gets what waited.
            pipe.packets[i].state = PacketState::Parked;
            return;
        }
        if up && matches!(pipe.packets[i].msg, Msg::Syn) {
            pipe.packets.remove(i);
            self.accept(conn);
            return;
        }
        let sock = if up { c.srv_sock } else { c.tab_sock };
        if !sock {
            let p = pipe.packets.remove(i).expect("found");
            if !matches!(p.msg, Msg::Rst) {
                self.send(conn, !up, Msg::Rst);
            }
            self.collect(conn);
            return;
        }
        if matches!(pipe.packets[i].msg, Msg::Rst) {
            // The socket goes; what its task has not read yet is still read first.
            pipe.packets.remove(i);
            let rx = if up { &mut c.srv_rx } else { &mut c.tab_rx };
            rx.push_back(Msg::Rst);
            if up {
                c.srv_sock = false;
            } else {
                c.tab_sock = false;
            }
            self.discard_arrived(conn, up);
            self.wake_reader(conn, up);
            return;
        }
        pipe.packets[i].state = PacketState::Arrived;
        // In order: the first sequenced packet goes to the task once it is there, while
        // the socket's queue has room (what does not fit waits for the next arrival).
        let rx = if up { &mut c.srv_rx } else { &mut c.tab_rx };
        let mut moved = false;
        while let Some(j) = pipe.packets.iter().position(|p| p.msg.sequenced()) {
            if pipe.packets[j].state != PacketState::Arrived || rx.len() >= WINDOW as usize {
                break;
            }
            let p = pipe.packets.remove(j).expect("found");
            rx.push_back(p.msg);
            moved = true;
        }
        if moved {
            self.wake_reader(conn, up);
        }
    }

    /// The task reading a socket is woken by what reached it.
    fn wake_reader(&mut self, conn: u64, up: bool) {
        if !self.woken.insert((4 + u8::from(up), 0, conn)) {
            return;
        }
        let Some(tab) = self.conns.get(&conn).map(|c| c.tab) else {
            return;
        };
        let (rank, ev) = if up {
            (SERVER, Ev::ServerWake { conn })
        } else {
            (tab_rank(tab), Ev::TabWake { conn })
        };
        self.queue.push(self.now, rank, class::NET, ev);
    }

    /// The packets that waited for a server to boot, in the order turmoil delivers them
    /// (link by link, then in send order).
    pub(super) fn take_parked(&mut self) -> Vec<(u64, Msg)> {
        let mut parked = Vec::new();
        for (&id, c) in self.conns.iter_mut() {
            let mut rest = VecDeque::new();
            for p in c.up.packets.drain(..) {
                if p.state == PacketState::Parked {
                    parked.push((c.tab, p.sent, id, p.msg));
                } else {
                    rest.push_back(p);
                }
            }
            c.up.packets = rest;
        }
        parked.sort_by_key(|(tab, sent, _, _)| (*tab, *sent));
        parked
            .into_iter()
            .map(|(_, _, id, msg)| (id, msg))
            .collect()
    }

    /// Applies `f` to the packets in flight (on their way, or held) in one direction of a
    /// tab's connections.
    fn in_flight(&mut self, tab: u32, up: bool, mut f: impl FnMut(&mut Packet)) {
        let mut cancelled = Vec::new();
        for c in self.conns.values_mut().filter(|c| c.tab == tab) {
            let pipe = if up { &mut c.up } else { &mut c.down };
            for p in pipe.packets.iter_mut() {
                if matches!(p.state, PacketState::At(_) | PacketState::Held) {
                    let old = p.key;
                    f(p);
                    if p.key != old {
                        cancelled.push(old);
                    }
                }
            }
        }
        for k in cancelled {
            self.queue.cancel(k);
        }
    }

    fn directions(direction: Direction) -> &'static [bool] {
        match direction {
            Direction::Both => &[true, false],
            Direction::ToServer => &[true],
            Direction::FromServer => &[false],
        }
    }

    /// Cuts a tab's link one way or both: packets in flight that way are lost (a lost SYN
    /// fails its connect).
    pub(super) fn partition(&mut self, tab: u32, direction: Direction) {
        for &up in Self::directions(direction) {
            let link = &mut self.links[tab as usize];
            if up {
                link.up = Flow::Partitioned;
            } else {
                link.down = Flow::Partitioned;
            }
            self.in_flight(tab, up, |p| {
                p.state = PacketState::Lost;
                p.key = None;
            });
            let mut refused = Vec::new();
            for (&id, c) in self.conns.iter_mut().filter(|(_, c)| c.tab == tab) {
                let pipe = if up { &mut c.up } else { &mut c.down };
                // An RST lost in flight leaves no hole; a lost SYN fails the connect.
                pipe.packets.retain(|p| {
                    let lost = p.state == PacketState::Lost;
                    if lost && matches!(p.msg, Msg::Syn) {
                        refused.push(id);
                    }
                    !(lost && matches!(p.msg, Msg::Rst | Msg::Syn))
                });
            }
            for conn in refused {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.refused = true;
                    if c.tab_held {
                        self.queue
                            .push(self.now, tab_rank(tab), class::ACK, Ev::TabWake { conn });
                    }
                }
                self.collect(conn);
            }
        }
    }

    /// Lets new packets through again; held ones stay held.
    pub(super) fn repair(&mut self, tab: u32, direction: Direction) {
        for &up in Self::directions(direction) {
            let link = &mut self.links[tab as usize];
            if up {
                link.up = Flow::Healthy;
            } else {
                link.down = Flow::Healthy;
            }
        }
    }

    /// Holds every packet between a tab and the server, those in flight included.
    pub(super) fn hold(&mut self, tab: u32) {
        let link = &mut self.links[tab as usize];
        link.up = Flow::Held;
        link.down = Flow::Held;
        for up in [true, false] {
            self.in_flight(tab, up, |p| {
                p.state = PacketState::Held;
                p.key = None;
            });
        }
    }

    /// Ends a hold (and any partition): held packets reach their hosts now.
    pub(super) fn release(&mut self, tab: u32) {
        let link = &mut self.links[tab as usize];
        link.up = Flow::Healthy;
        link.down = Flow::Healthy;
        let now = self.now;
        let mut held = Vec::new();
        for (&id, c) in self.conns.iter().filter(|(_, c)| c.tab == tab) {
            for (up, pipe) in [(true, &c.up), (false, &c.down)] {
                for p in pipe.packets.iter() {
                    if p.state == PacketState::Held {
                        held.push((id, up, p.sent));
                    }
                }
            }
        }
        for (conn, up, sent) in held {
            let key = self.arrive_at(now, conn, up, tab, sent);
            if let Some(p) = self
                .pipe(conn, up)
                .packets
                .iter_mut()
                .find(|p| p.sent == sent)
            {
                p.state = PacketState::At(now);
                p.key = Some(key);
            }
        }
    }

    /// Sets the latency range of a tab's link (both ways), for packets sent from now on.
    pub(super) fn set_latency(&mut self, tab: u32, min_ms: u64, max_ms: u64) {
        self.links[tab as usize].latency = Some((min_ms, max_ms.max(min_ms)));
    }

    /// Whether data the end's task has not read waits in its socket (read or out of order).
    fn unread_data(&self, conn: u64, at_tab: bool) -> bool {
        let Some(c) = self.conns.get(&conn) else {
            return false;
        };
        let (rx, pipe) = if at_tab {
            (&c.tab_rx, &c.down)
        } else {
            (&c.srv_rx, &c.up)
        };
        let data = |m: &Msg| matches!(m, Msg::Up(_) | Msg::Down(_));
        rx.iter().any(data)
            || pipe
                .packets
                .iter()
                .any(|p| p.state == PacketState::Arrived && data(&p.msg))
    }

    /// A socket goes away: what it buffered out of order goes with it. `incoming_up`: the
    /// pipe into it.
    fn discard_arrived(&mut self, conn: u64, incoming_up: bool) {
        if let Some(c) = self.conns.get_mut(&conn) {
            let pipe = if incoming_up { &mut c.up } else { &mut c.down };
            pipe.packets.retain(|p| p.state != PacketState::Arrived);
        }
    }

    /// The tab's task drops the connection: its socket closes with a FIN after what it
    /// sent, or with an RST when data it never read is left in it.
    pub(super) fn close_tab_end(&mut self, conn: u64) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !c.tab_held {
            return;
        }
        c.tab_held = false;
        if c.established && c.tab_sock {
            let rst = self.unread_data(conn, true);
            self.send(conn, true, if rst { Msg::Rst } else { Msg::Fin });
            self.discard_arrived(conn, false);
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.tab_sock = false;
            c.tab_rx.clear();
        }
        self.collect(conn);
    }

    /// The server's task for the connection ends: its socket closes as the tab's does.
    pub(super) fn close_server_end(&mut self, conn: u64) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !c.server.is_open() {
            return;
        }
        c.server = ServerEnd::Closed;
        if c.srv_sock {
            let rst = self.unread_data(conn, false);
            self.send(conn, false, if rst { Msg::Rst } else { Msg::Fin });
            self.discard_arrived(conn, true);
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.srv_sock = false;
            c.srv_rx.clear();
        }
        self.collect(conn);
    }

    /// Forgets a connection once nothing it carries can have an effect: no task holds
    /// either end, no socket is left, nothing is on its way that would be answered.
    pub(super) fn collect(&mut self, conn: u64) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let flying = |p: &Pipe| {
            p.packets.iter().any(|p| {
                !matches!(p.msg, Msg::Syn)
                    && matches!(
                        p.state,
                        PacketState::At(_) | PacketState::Held | PacketState::Parked
                    )
            })
        };
        if c.tab_held
            || c.tab_sock
            || c.server.is_open()
            || c.srv_sock
            || flying(&c.up)
            || flying(&c.down)
        {
            return;
        }
        let c = self.conns.remove(&conn).expect("present");
        for p in c.up.packets.iter().chain(c.down.packets.iter()) {
            self.queue.cancel(p.key);
        }
    }
}
