//! The direct engine: the model's machines driven by a deterministic discrete-event loop.
//!
//! Where the turmoil engine advances a whole simulated network one millisecond tick at a
//! time, polling tokio runtimes, this one keeps a time-ordered queue ([`queue`]) and jumps
//! from one event to the next. It applies the same schedule ([`crate::schedule`]) and the
//! same faults, and models what turmoil models, the way turmoil does it:
//!
//! - [`network`]: one link per tab; TCP connections with SYNs, data, FINs and RSTs; each
//!   packet's own latency draw; in-order delivery behind holes and held packets; the send
//!   window; partitions, holds, releases and latency changes.
//! - [`process`]: the server process around the [`Server`] machine: streams, deferred
//!   replies, timers, `interrupt()` calls, injected statuses and lost responses, crashes
//!   (the store survives as the disk) and boots.
//! - [`browser`]: the browser around each [`Client`]: EventSource, `fetch`, beacons,
//!   `setTimeout`.
//!
//! Fidelity is exact by construction rather than approximate: latencies are drawn from
//! the very stream the turmoil engine hands turmoil (see [`latency_rng`]), and within a
//! millisecond packets are sent, delivered and acted on in the order turmoil's step and
//! tokio's single-threaded run queue give them ([`queue`]), so wherever both engines
//! send the same packets in the same order they draw the same latencies and record the
//! same history, byte for byte (the catalog on every revision, and generated cases;
//! `tests/engines.rs`). Turmoil's artefacts are kept, not fixed: a connect takes the SYN's
//! one-way trip (the SYN-ACK is a channel outside the network, so a partition from the
//! server does not stop a connect, and a SYN the network drops fails it at once); a crash
//! the server asks for is reaped, its sockets closed and `ServerDown` recorded, one
//! millisecond later; a deferred reply leaves on the handler's next 1 ms poll. What is not
//! modelled (none of it arises in this bench): tokio's cooperative budget (more than 128
//! reads in one poll), the ordering of timers with equal deadlines beyond their arming
//! order, and the remote queue of a `LocalSet` woken from another thread.
//!
//! [`DirectSim`] is the steppable form: run it up to a time, add steps, clone it, hash its
//! state, finish it. [`run`] is the one-shot form with the contract of
//! [`crate::turmoil::run`].

mod browser;
mod digest;
mod network;
mod process;
mod queue;

use crate::faults::ServerFaults;
use crate::history::{Event, History};
use crate::schedule::{Command, Expander, Scheduled};
use crate::{RunReport, DRAIN_MS};
use browser::Tab;
use network::Link;
use process::Process;
use queue::{class, tab_rank, Key, Queue, ENGINE, SERVER};
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Serialize, Serializer};
use ssesim_model::{
    Client, ClientInput, ClientTimer, EsId, EventStore, Millis, PageEvent, Params, ReqId, Server,
    ServerInput, ServerTimer, TransportHealth,
};
use ssesim_scenarios::{Action, Direction, Network, Scenario, Step};
use std::collections::BTreeMap;

/// Runs one scenario to its end on the direct engine. The scenario's `constants` are
/// applied on top of `params` (as [`crate::turmoil::run`] does).
pub fn run(scenario: &Scenario, params: &Params, seed: u64) -> RunReport {
    DirectSim::new(scenario, params, seed).finish()
}

/// One pending thing the engine does.
#[derive(Clone, Debug, PartialEq, Serialize)]
enum Ev {
    // --- the engine's own loop ---
    /// Complete a crash the server asked for.
    Reap,
    Command(Scheduled),
    Heal,
    Restart,
    // --- the server's host ---
    Boot,
    ServerTimer(ServerTimer),
    Settle {
        token: u64,
        ok: bool,
    },
    ReplyPoll {
        conn: u64,
    },
    ServerInput(ServerInput),
    // --- a tab's host (the rank says which) ---
    TabInput(ClientInput),
    DoubleReopen {
        gap_ms: u64,
    },
    ClientTimer(ClientTimer),
    /// An EventSource task's timer (connect timeout, idle timeout, retry, gap).
    EsTimer {
        es: EsId,
    },
    /// A `fetch`'s timeout.
    FetchTimer {
        req: ReqId,
    },
    /// Something happened to a tab task's connection (connect, socket).
    TabWake {
        conn: u64,
    },
    /// Something happened to a server task's connection (its socket).
    ServerWake {
        conn: u64,
    },
    /// A task woken or spawned by another in this millisecond.
    Task(Local),
    // --- either end of a connection ---
    /// Packet `sent` of a connection reaches its host.
    Arrive {
        conn: u64,
        up: bool,
        sent: u64,
    },
}

/// A task woken or spawned by a running one: it runs after the tasks already queued for
/// its host in this millisecond.
#[derive(Clone, Debug, PartialEq, Serialize)]
enum Local {
    /// A stream's task on the server: send what its channel holds, read its socket.
    Stream(u64),
    /// The same, woken by a tab's read (from the tab's turn, so in the server's next).
    Resume(u64),
    /// An EventSource task (just spawned, or woken by a fault command).
    Es {
        tab: u32,
        es: EsId,
    },
    /// An EventSource task the client closed while it was idle.
    EsDrop {
        tab: u32,
        es: EsId,
    },
    Fetch {
        tab: u32,
        req: ReqId,
    },
    Beacon {
        tab: u32,
        body: crate::net::Up,
    },
}

impl Local {
    fn rank(&self) -> u32 {
        match self {
            Local::Stream(_) | Local::Resume(_) => SERVER,
            Local::Es { tab, .. }
            | Local::EsDrop { tab, .. }
            | Local::Fetch { tab, .. }
            | Local::Beacon { tab, .. } => tab_rank(*tab),
        }
    }

    /// Woken twice before it runs, a task runs once: the identity wake-ups share.
    fn id(&self) -> Option<(u8, u32, u64)> {
        match self {
            Local::Stream(conn) => Some((0, 0, *conn)),
            Local::Resume(conn) => Some((3, 0, *conn)),
            Local::Es { tab, es } => Some((1, *tab, u64::from(es.0))),
            Local::Fetch { tab, req } => Some((2, *tab, req.0)),
            Local::EsDrop { .. } | Local::Beacon { .. } => None,
        }
    }
}

/// Everything a run holds. Its serialisation (without the history and the constants)
/// is the state [`DirectSim::state_digest`] hashes.
#[derive(Clone, Debug, Serialize)]
struct World {
    /// The time of the event being handled (or the last handled; the state is where the
    /// run is through, `DirectSim::done_through`).
    #[serde(skip)]
    now: Millis,
    /// The host whose event is being handled.
    #[serde(skip)]
    rank: u32,
    #[serde(skip)]
    history: History,
    #[serde(skip)]
    params: Params,
    #[serde(skip)]
    net: Network,
    queue: Queue,
    #[serde(serialize_with = "rng_state")]
    rng: SmallRng,
    links: Vec<Link>,
    conns: BTreeMap<u64, network::Conn>,
    next_conn: u64,
    /// Connections the server has accepted (their accept order).
    accepts: u64,
    /// Packets sent so far (their send order).
    next_packet: u64,
    /// The live server machine; `None` while it is down.
    server: Option<Server>,
    /// The store while no process holds it: what survives a crash.
    disk: Option<EventStore>,
    /// The server process's sockets and bookkeeping; outlives the machine by the
    /// millisecond until a crash it asked for is reaped.
    process: Option<Process>,
    boot_pending: bool,
    crash_request: Option<String>,
    /// The supervisor's pending restart.
    restart: Option<Key>,
    faults: ServerFaults,
    tabs: Vec<Tab>,
    /// The EventSource task running now, and whether the client closed it meanwhile.
    #[serde(skip)]
    running: Option<(u32, EsId)>,
    #[serde(skip)]
    aborted: bool,
    /// The connection whose `GET` the server is opening a stream for.
    #[serde(skip)]
    opening: Option<u64>,
    /// Tasks woken by others and not run yet (their wake-up is queued).
    woken: Woken,
}

/// A set of task identities, as a sorted list: it holds a handful at a time and fills and
/// empties every millisecond, where a B-tree would allocate a node each time. Serialises
/// as the ordered set it is.
#[derive(Clone, Debug, Default)]
struct Woken(Vec<(u8, u32, u64)>);

impl Woken {
    /// Adds `id`; false if it was there.
    fn insert(&mut self, id: (u8, u32, u64)) -> bool {
        match self.0.binary_search(&id) {
            Ok(_) => false,
            Err(i) => {
                self.0.insert(i, id);
                true
            }
        }
    }

    fn remove(&mut self, id: &(u8, u32, u64)) {
        if let Ok(i) = self.0.binary_search(id) {
            self.0.remove(i);
        }
    }
}

impl Serialize for Woken {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(&self.0)
    }
}

/// The RNG's position, as the next draws it would make (its state is not public; four
/// draws of xoshiro256++ pin its 256 bits down).
fn rng_state<S: Serializer>(rng: &SmallRng, s: S) -> Result<S::Ok, S::Error> {
    let mut probe = rng.clone();
    let next: [u64; 4] = std::array::from_fn(|_| probe.next_u64());
    next.serialize(s)
}

/// The latency stream of a run: exactly the one the turmoil engine hands turmoil (its
/// `SmallRng`, seeded with the first draw of the scenario seed's ChaCha stream, past the
/// 32 bytes turmoil takes for each host it registers), so that wherever the two engines
/// send the same packets in the same order they draw the same latencies.
fn latency_rng(seed: u64, clients: u32) -> SmallRng {
    let mut rng = SmallRng::seed_from_u64(ChaCha8Rng::seed_from_u64(seed).next_u64());
    for _ in 0..=clients {
        let _: [u8; 32] = rng.random();
    }
    rng
}

impl World {
    fn record(&mut self, event: Event) {
        tracing::debug!(target: "ssesim::history", at = self.now, ?event);
        self.history.push(self.now, event);
    }

    /// Queues a task woken (or spawned) by the running one.
    fn wake(&mut self, task: Local) {
        if task.id().is_some_and(|id| !self.woken.insert(id)) {
            return;
        }
        let rank = task.rank();
        self.queue.push(self.now, rank, class::LATE, Ev::Task(task));
    }

    fn run_task(&mut self, task: Local) {
        if let Some(id) = task.id() {
            self.woken.remove(&id);
        }
        match task {
            Local::Stream(conn) | Local::Resume(conn) => self.stream_task(conn),
            Local::Es { tab, es } => self.es_poll(tab, es),
            Local::EsDrop { tab, es } => self.es_poll(tab, es),
            Local::Fetch { tab, req } => self.fetch_poll(tab, req),
            Local::Beacon { tab, body } => self.beacon_start(tab, body),
        }
    }

    fn dispatch(&mut self, key: Key, ev: Ev) {
        tracing::trace!(target: "ssesim::direct", at = key.at, rank = key.rank, class = key.class, ?ev, "event");
        self.now = key.at;
        self.rank = key.rank;
        let tab = key.rank.wrapping_sub(2);
        match ev {
            Ev::Reap => self.reap(),
            Ev::Command(item) => self.command(item),
            Ev::Heal => self.heal(),
            Ev::Restart => {
                self.restart = None;
                self.restart();
            }
            Ev::Boot => self.boot(),
            Ev::ServerTimer(_) => self.fire_timers(),
            Ev::Settle { token, ok } => {
                self.server_handle(ServerInput::InterruptSettled { token, ok })
            }
            Ev::ReplyPoll { conn } => self.reply_poll(conn),
            // The inbox task takes every input queued for it in one run.
            Ev::ServerInput(input) => {
                self.server_handle(input);
                while let Some(Ev::ServerInput(input)) =
                    self.queue.pop_same(key.at, SERVER, class::INBOX)
                {
                    self.server_handle(input);
                }
            }
            // So does a tab's main task.
            ev @ (Ev::TabInput(_) | Ev::DoubleReopen { .. }) => {
                let mut next = Some(ev);
                while let Some(ev) = next {
                    match ev {
                        Ev::TabInput(input) => self.feed(tab, input),
                        Ev::DoubleReopen { gap_ms } => self.double_reopen(tab, gap_ms),
                        _ => {}
                    }
                    next = self.queue.pop_same(key.at, key.rank, class::INBOX);
                }
            }
            Ev::ClientTimer(timer) => self.client_timer(tab, timer),
            Ev::EsTimer { es } => self.es_poll(tab, es),
            Ev::FetchTimer { req } => self.fetch_poll(tab, req),
            Ev::TabWake { conn } => {
                self.woken.remove(&(4, 0, conn));
                self.tab_wake(conn)
            }
            Ev::ServerWake { conn } => {
                self.woken.remove(&(5, 0, conn));
                self.server_wake(conn)
            }
            Ev::Task(task) => self.run_task(task),
            Ev::Arrive { conn, up, sent } => self.arrive(conn, up, sent),
        }
    }

    /// A scheduled command, in the engine's own loop.
    fn command(&mut self, item: Scheduled) {
        match item.command {
            Command::Mark(action) => self.record(Event::Step {
                index: item.step,
                action,
            }),
            Command::Tab { tab, call } => {
                let mut hidden = self.tabs[tab as usize].hidden;
                let input = call.input(&mut hidden, |session| self.head_seq(session));
                self.tabs[tab as usize].hidden = hidden;
                self.push_tab(tab, Ev::TabInput(input));
            }
            Command::Emit { session, n } => self.push_server(ServerInput::AgentEmit { session, n }),
            Command::AgentState { session, to } => {
                self.push_server(ServerInput::AgentState { session, to })
            }
            Command::Fault(action) => self.fault(action),
        }
    }

    fn push_tab(&mut self, tab: u32, ev: Ev) {
        self.queue.push(self.now, tab_rank(tab), class::INBOX, ev);
    }

    fn fault(&mut self, action: Action) {
        let conn_of = |w: &World, c: u32| w.tabs[c as usize].client.connection_id();
        match action {
            Action::Crash => self.crash("crash step".into()),
            // A restart of a running server is a no-op.
            Action::Restart => {
                if self.server.is_none() {
                    self.restart();
                }
            }
            Action::Bounce => {
                self.crash("bounce".into());
                self.restart();
            }
            Action::Partition { client, direction } => self.partition(client, direction),
            Action::Repair { client, direction } => self.repair(client, direction),
            Action::Hold { client } => self.hold(client),
            Action::Release { client } => self.release(client),
            Action::Latency {
                client,
                min_ms,
                max_ms,
            } => self.set_latency(client, min_ms, max_ms),
            Action::DropConnection { client, notify } => {
                if let Some(conn) = conn_of(self, client) {
                    self.push_server(ServerInput::DropConnection {
                        conn,
                        close_stream: notify,
                    });
                }
            }
            Action::DoubleWelcome { client, gap_ms } => {
                self.push_tab(client, Ev::DoubleReopen { gap_ms })
            }
            Action::TransportThrows { client, on } => {
                if let Some(conn) = conn_of(self, client) {
                    let health = if on {
                        TransportHealth::Throwing
                    } else {
                        TransportHealth::Open
                    };
                    self.push_server(ServerInput::SetTransport { conn, health });
                }
            }
            // Server faults (statuses, lost responses, interrupt failures); app and agent
            // actions never reach here (see `schedule::expand`).
            other => {
                self.faults.arm(&other);
            }
        }
    }

    /// The heal phase: every fault cleared, so liveness can be judged.
    fn heal(&mut self) {
        self.record(Event::Heal);
        self.faults = ServerFaults::default();
        for tab in 0..self.tabs.len() as u32 {
            self.repair(tab, Direction::Both);
            self.release(tab);
            if let Some(conn) = self.tabs[tab as usize].client.connection_id() {
                self.push_server(ServerInput::SetTransport {
                    conn,
                    health: TransportHealth::Open,
                });
            }
            if self.tabs[tab as usize].hidden {
                self.tabs[tab as usize].hidden = false;
                self.push_tab(tab, Ev::TabInput(ClientInput::Page(PageEvent::Visible)));
            }
        }
        if self.server.is_none() {
            self.restart();
        }
    }
}

/// A run of the direct engine that can be advanced, extended, cloned and hashed.
///
/// `DirectSim::new(s, p, seed).finish()` is [`run`]. In between, [`run_until`]
/// advances it, [`add_step`] puts further steps on its timeline (and into
/// [`scenario`], so the path can be written as a scenario file that replays to the same
/// history), and [`state_digest`] hashes everything that decides the rest of the run.
///
/// [`run_until`]: DirectSim::run_until
/// [`add_step`]: DirectSim::add_step
/// [`scenario`]: DirectSim::scenario
/// [`state_digest`]: DirectSim::state_digest
#[derive(Clone, Debug)]
pub struct DirectSim {
    scenario: Scenario,
    expander: Expander,
    /// The last millisecond whose events have all run.
    done_through: Option<Millis>,
    world: World,
}

impl DirectSim {
    pub fn new(scenario: &Scenario, params: &Params, seed: u64) -> Self {
        let mut params = params.clone();
        scenario.constants.apply(&mut params);
        let clients = scenario.topology.clients;
        let mut world = World {
            now: 0,
            rank: ENGINE,
            history: History::default(),
            net: scenario.network.clone(),
            queue: Queue::default(),
            rng: latency_rng(seed, clients),
            links: (0..clients).map(|_| Link::new()).collect(),
            conns: BTreeMap::new(),
            next_conn: 0,
            accepts: 0,
            next_packet: 0,
            server: None,
            disk: Some(EventStore::new()),
            process: None,
            boot_pending: true,
            crash_request: None,
            restart: None,
            faults: ServerFaults::default(),
            tabs: (0..clients)
                .map(|_| Tab::new(Client::new(params.client.clone())))
                .collect(),
            running: None,
            aborted: false,
            opening: None,
            woken: Woken::default(),
            params,
        };
        world.queue.push(0, SERVER, class::TIMER, Ev::Boot);
        for s in &scenario.topology.sessions {
            let input = ServerInput::StartSession {
                session: s.as_str().into(),
            };
            world
                .queue
                .push(0, SERVER, class::INBOX, Ev::ServerInput(input));
        }
        let mut expander = Expander::new(scenario);
        let mut schedule = expander.autoconnects(scenario);
        for (index, step) in scenario.steps.iter().enumerate() {
            schedule.extend(expander.step(index, step));
        }
        // As `schedule::expand`: stable, so equal times keep file order.
        schedule.sort_by_key(|s| s.at);
        world.queue.reserve_ahead(schedule.len());
        for item in schedule {
            world
                .queue
                .push_ahead(item.at, ENGINE, class::COMMAND, Ev::Command(item));
        }
        let heal_at = scenario.heal_at();
        if heal_at < scenario.duration_ms {
            world.queue.push(heal_at, ENGINE, class::HEAL, Ev::Heal);
        }
        DirectSim {
            scenario: scenario.clone(),
            expander,
            done_through: None,
            world,
        }
    }

    /// The scenario this run follows: the one it was made from plus every added step.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The last millisecond whose events have all run (`None` before the first).
    pub fn done_through(&self) -> Option<Millis> {
        self.done_through
    }

    /// The first millisecond not yet run: where [`add_step`](Self::add_step) may put a
    /// step at the earliest.
    pub fn next_ms(&self) -> Millis {
        self.done_through.map_or(0, |t| t + 1)
    }

    /// When the run ends: the scenario's duration plus [`DRAIN_MS`].
    pub fn end_ms(&self) -> Millis {
        self.scenario.duration_ms + DRAIN_MS
    }

    /// The time of the next pending event, if any will run before the end.
    pub fn next_event_ms(&self) -> Option<Millis> {
        self.world.queue.next_at().filter(|t| *t < self.end_ms())
    }

    /// Runs every event due at or before `t` (never past the end of the run).
    pub fn run_until(&mut self, t: Millis) {
        let limit = t.min(self.end_ms() - 1);
        if self.done_through.is_some_and(|d| d >= limit) {
            return;
        }
        while let Some((key, ev)) = self.world.queue.pop_until(limit) {
            self.world.dispatch(key, ev);
        }
        self.done_through = Some(limit);
    }

    /// Puts a step on the timeline, as if it had been the scenario file's next step: it
    /// runs at `step.at_ms`, after the steps already there for that millisecond. The
    /// time must not have run yet ([`next_ms`](Self::next_ms) or later) and must be
    /// within the scenario's duration; a `client` must be one of its tabs.
    pub fn add_step(&mut self, step: Step) -> Result<(), String> {
        if step.at_ms < self.next_ms() {
            return Err(format!(
                "step at {} ms: the run is already through {} ms",
                step.at_ms,
                self.next_ms().saturating_sub(1)
            ));
        }
        if step.at_ms > self.scenario.duration_ms {
            return Err(format!(
                "step at {} ms: after the scenario's duration ({} ms)",
                step.at_ms, self.scenario.duration_ms
            ));
        }
        if let Some(c) = step.action.client() {
            if c >= self.scenario.topology.clients {
                return Err(format!(
                    "step at {} ms: no tab {c} (the scenario has {})",
                    step.at_ms, self.scenario.topology.clients
                ));
            }
        }
        if let Action::Latency { min_ms, max_ms, .. } = step.action {
            if min_ms > max_ms {
                return Err(format!(
                    "step at {} ms: latency min_ms {min_ms} exceeds max_ms {max_ms}",
                    step.at_ms
                ));
            }
        }
        let index = self.scenario.steps.len();
        for item in self.expander.step(index, &step) {
            self.world
                .queue
                .push_ahead(item.at, ENGINE, class::COMMAND, Ev::Command(item));
        }
        self.scenario.steps.push(step);
        Ok(())
    }

    /// Applies an action at the current time: as a step at [`next_ms`](Self::next_ms),
    /// the first millisecond not yet run (see [`add_step`](Self::add_step)).
    pub fn add_action(&mut self, action: Action) -> Result<(), String> {
        let at_ms = self.next_ms();
        self.add_step(Step { at_ms, action })
    }

    /// The history recorded so far.
    pub fn history(&self) -> &History {
        &self.world.history
    }

    /// Runs the rest: up to the end of the heal phase and the drain ([`DRAIN_MS`] after
    /// the scenario's duration), then records the end verdict.
    pub fn finish(mut self) -> RunReport {
        let end = self.end_ms();
        self.run_until(end - 1);
        // turmoil's loop still applies its own work at the end time before it stops.
        while let Some((key, ev)) = self.world.queue.pop_engine_at(end) {
            self.world.dispatch(key, ev);
        }
        let w = &mut self.world;
        w.now = end;
        w.rank = ENGINE;
        let verdict = crate::quiescence(w.server.is_some(), w.tabs.iter().map(|t| &t.client));
        w.record(Event::End { verdict });
        let max_pending = w.tabs.iter().map(|t| t.max_pending).max().unwrap_or(0);
        RunReport::new(std::mem::take(&mut w.history), max_pending)
    }

    /// A hash of everything that decides the rest of the run and nothing else: the
    /// machines (server, store or disk, clients), the network (connections, packets in
    /// flight, link states), pending events and timers, armed faults, the RNG's position,
    /// the time and the expansion state of the steps to come. Not the history: two runs
    /// that reach the same state by different paths hash alike. FNV-1a over a compact
    /// serialisation ([`digest`]).
    pub fn state_digest(&self) -> u64 {
        #[derive(Serialize)]
        struct State<'a> {
            done_through: Option<Millis>,
            expander: &'a Expander,
            world: &'a World,
        }
        digest::digest(&State {
            done_through: self.done_through,
            expander: &self.expander,
            world: &self.world,
        })
    }
}
