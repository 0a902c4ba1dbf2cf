//! The turmoil engine: the model's machines as hosts in turmoil's simulated network.
//!
//! One `server` host wraps [`Server`]; one host per tab (`tab0`, `tab1`, ...) wraps
//! [`Client`] together with the browser around it (EventSource re-opens, `fetch`,
//! `setTimeout`). SSE streams and POSTs are real turmoil TCP connections, so partitions,
//! holds, latency and crashes act on bytes, not on model calls.
//!
//! The engine loop owns time: before each 1 ms turmoil step it applies the scenario's
//! commands that are due, and after it performs any crash a host asked for. Hosts share one
//! [`World`] through `Rc` (turmoil runs every host on this thread), which is also where the
//! history is written, in the order things happen.

mod server_host;
mod tab_host;

use crate::faults::ServerFaults;
use crate::history::{EndVerdict, Event, History};
use crate::schedule::{expand, Command, Scheduled};
use crate::RunReport;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ssesim_model::{
    Client, ClientInput, EventStore, Millis, PageEvent, Params, Server, ServerInput,
    TransportHealth,
};
use ssesim_scenarios::{Action, Direction, Network, Scenario};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::Notify;

pub(crate) const SERVER: &str = "server";

pub(crate) enum TabCommand {
    Input(ClientInput),
    /// The browser re-opens the stream twice in a row and dispatches the two welcomes
    /// `gap_ms` apart (see `tab_host::event_source`).
    DoubleReopen {
        gap_ms: u64,
    },
}

pub(crate) struct Tab {
    pub client: RefCell<Client>,
    pub inbox: RefCell<VecDeque<TabCommand>>,
    pub wake: Notify,
    pub hidden: Cell<bool>,
    pub max_pending: Cell<usize>,
}

/// State shared by the engine loop and every host.
pub(crate) struct World {
    now: Cell<Millis>,
    history: RefCell<History>,
    pub params: Params,
    pub net: Network,
    /// The live server process; `None` while it is down.
    pub server: RefCell<Option<Server>>,
    /// The store while no process holds it: what survives a crash.
    pub disk: RefCell<Option<EventStore>>,
    pub crash_request: RefCell<Option<String>>,
    pub faults: RefCell<ServerFaults>,
    pub server_inbox: RefCell<VecDeque<ServerInput>>,
    pub server_wake: Notify,
    pub tabs: Vec<Tab>,
}

impl World {
    /// The current simulated time: the host's own clock inside a host, else the loop's.
    pub fn now(&self) -> Millis {
        turmoil::sim_elapsed()
            .map(|d| d.as_millis() as Millis)
            .unwrap_or_else(|| self.now.get())
    }

    pub fn record(&self, event: Event) {
        let at = self.now();
        tracing::debug!(target: "ssesim::history", at, ?event);
        self.history.borrow_mut().push(at, event);
    }

    /// Takes the process down at once and puts its store back on the disk; the engine
    /// loop then kills the host's sockets and tasks.
    pub fn kill_server(&self, reason: String) {
        if let Some(server) = self.server.borrow_mut().take() {
            *self.disk.borrow_mut() = Some(server.into_store());
            self.server_inbox.borrow_mut().clear();
            self.crash_request.borrow_mut().get_or_insert(reason);
        }
    }

    /// The store's head for a session, whether a process holds the store or the disk does.
    fn head_seq(&self, session: &ssesim_model::SessionId) -> ssesim_model::Seq {
        if let Some(server) = self.server.borrow().as_ref() {
            return server.store().head_seq(session);
        }
        self.disk
            .borrow()
            .as_ref()
            .map_or(0, |d| d.head_seq(session))
    }

    pub fn server_is_up(&self) -> bool {
        self.server.borrow().is_some()
    }

    fn push_tab(&self, tab: u32, command: TabCommand) {
        let t = &self.tabs[tab as usize];
        t.inbox.borrow_mut().push_back(command);
        t.wake.notify_one();
    }

    fn push_server(&self, input: ServerInput) {
        if self.server_is_up() {
            self.server_inbox.borrow_mut().push_back(input);
            self.server_wake.notify_one();
        }
    }
}

pub(crate) fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

pub use crate::DRAIN_MS;

/// How the turmoil simulation itself is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TurmoilConfig {
    /// turmoil's tick. Every host is polled once a tick whether or not anything happens, so
    /// the cost of a run is (simulated time / tick) x hosts; a longer tick is cheaper but
    /// rounds every latency, timeout and timer up to a whole tick, so races decided by a
    /// millisecond (the catalog's 1 ms links, double-welcome gaps) can go the other way.
    /// `ssesim bench` measures both sides.
    pub tick_ms: u64,
}

impl Default for TurmoilConfig {
    /// 1 ms: the resolution of every scenario time, so nothing is rounded.
    fn default() -> Self {
        TurmoilConfig { tick_ms: 1 }
    }
}

/// Runs one scenario to its end and returns the history. The scenario's `constants`
/// overrides are applied on top of `params` here, so every caller gets them (applying them
/// again beforehand is harmless: they only set values).
pub fn run(scenario: &Scenario, params: &Params, seed: u64) -> RunReport {
    run_with(scenario, params, seed, &TurmoilConfig::default())
}

/// [`run`] with a given simulation setup.
pub fn run_with(
    scenario: &Scenario,
    params: &Params,
    seed: u64,
    config: &TurmoilConfig,
) -> RunReport {
    let mut params = params.clone();
    scenario.constants.apply(&mut params);
    let params = &params;
    let net = scenario.network.clone();
    let tabs = (0..scenario.topology.clients)
        .map(|_| Tab {
            client: RefCell::new(Client::new(params.client.clone())),
            inbox: RefCell::new(VecDeque::new()),
            wake: Notify::new(),
            hidden: Cell::new(false),
            max_pending: Cell::new(0),
        })
        .collect();
    let world = Rc::new(World {
        now: Cell::new(0),
        history: RefCell::new(History::default()),
        params: params.clone(),
        net: net.clone(),
        server: RefCell::new(None),
        disk: RefCell::new(Some(EventStore::new())),
        crash_request: RefCell::new(None),
        faults: RefCell::new(ServerFaults::default()),
        server_inbox: RefCell::new(VecDeque::new()),
        server_wake: Notify::new(),
        tabs,
    });

    // turmoil 0.7 seeds its own SmallRng from a u64; that u64 comes from the scenario's
    // ChaCha stream so every draw traces back to the seed.
    let turmoil_seed = ChaCha8Rng::seed_from_u64(seed).next_u64();
    let end = scenario.duration_ms + DRAIN_MS;
    let mut sim = turmoil::Builder::new()
        .simulation_duration(ms(end + 10_000))
        .tick_duration(ms(config.tick_ms.max(1)))
        .min_message_latency(ms(net.min_latency_ms))
        .max_message_latency(ms(net.max_latency_ms))
        .rng_seed(turmoil_seed)
        .build();
    {
        let w = world.clone();
        sim.host(SERVER, move || server_host::main(w.clone()));
    }
    for tab in 0..scenario.topology.clients {
        let w = world.clone();
        sim.host(Scenario::tab_name(tab), move || {
            tab_host::main(w.clone(), tab)
        });
    }
    for s in &scenario.topology.sessions {
        world
            .server_inbox
            .borrow_mut()
            .push_back(ServerInput::StartSession {
                session: s.as_str().into(),
            });
    }

    let schedule = expand(scenario);
    let heal_at = scenario.heal_at();
    let mut engine = Engine {
        world: world.clone(),
        restart_at: None,
    };
    let mut next = 0;
    let mut healed = heal_at >= scenario.duration_ms;
    let mut verdict = None;
    loop {
        let now = sim.elapsed().as_millis() as Millis;
        world.now.set(now);
        while next < schedule.len() && schedule[next].at <= now {
            engine.apply(&mut sim, &schedule[next]);
            next += 1;
        }
        if !healed && now >= heal_at {
            healed = true;
            engine.heal(&mut sim);
        }
        if engine.restart_at.is_some_and(|at| now >= at) {
            engine.restart(&mut sim);
        }
        if now >= end {
            break;
        }
        if let Err(e) = sim.step() {
            verdict = Some(EndVerdict::EngineError {
                detail: e.to_string(),
            });
            break;
        }
        world.now.set(sim.elapsed().as_millis() as Millis);
        engine.reap_crash(&mut sim);
    }
    let verdict = verdict.unwrap_or_else(|| quiescence(&world));
    world.record(Event::End { verdict });
    let history = world.history.replace(History::default());
    let max_pending = world
        .tabs
        .iter()
        .map(|t| t.max_pending.get())
        .max()
        .unwrap_or(0);
    RunReport::new(history, max_pending)
}

/// Nothing outstanding: the server is up and every tab is connected and drained.
fn quiescence(world: &World) -> EndVerdict {
    let clients: Vec<_> = world.tabs.iter().map(|t| t.client.borrow()).collect();
    crate::quiescence(world.server_is_up(), clients.iter().map(|c| &**c))
}

struct Engine {
    world: Rc<World>,
    restart_at: Option<Millis>,
}

impl Engine {
    fn apply(&mut self, sim: &mut turmoil::Sim<'_>, item: &Scheduled) {
        let w = &self.world;
        match &item.command {
            Command::Mark(action) => w.record(Event::Step {
                index: item.step,
                action: action.clone(),
            }),
            Command::Tab { tab, call } => {
                let t = &w.tabs[*tab as usize];
                let mut hidden = t.hidden.get();
                let input = call.input(&mut hidden, |session| w.head_seq(session));
                t.hidden.set(hidden);
                w.push_tab(*tab, TabCommand::Input(input));
            }
            Command::Emit { session, n } => w.push_server(ServerInput::AgentEmit {
                session: session.clone(),
                n: *n,
            }),
            Command::AgentState { session, to } => w.push_server(ServerInput::AgentState {
                session: session.clone(),
                to: *to,
            }),
            Command::Fault(action) => self.fault(sim, action),
        }
    }

    fn fault(&mut self, sim: &mut turmoil::Sim<'_>, action: &Action) {
        let w = self.world.clone();
        let tab = |c: &u32| Scenario::tab_name(*c);
        let conn_of = |c: &u32| w.tabs[*c as usize].client.borrow().connection_id();
        match action {
            Action::Crash => self.crash(sim, "crash step".into()),
            // A restart of a running server is a no-op (falls through to the last arm).
            Action::Restart if !w.server_is_up() => self.restart(sim),
            Action::Bounce => {
                self.crash(sim, "bounce".into());
                self.restart(sim);
            }
            Action::Partition { client, direction } => match direction {
                Direction::Both => sim.partition(tab(client), SERVER),
                Direction::ToServer => sim.partition_oneway(tab(client), SERVER),
                Direction::FromServer => sim.partition_oneway(SERVER, tab(client)),
            },
            Action::Repair { client, direction } => match direction {
                Direction::Both => sim.repair(tab(client), SERVER),
                Direction::ToServer => sim.repair_oneway(tab(client), SERVER),
                Direction::FromServer => sim.repair_oneway(SERVER, tab(client)),
            },
            Action::Hold { client } => sim.hold(tab(client), SERVER),
            Action::Release { client } => sim.release(tab(client), SERVER),
            Action::Latency {
                client,
                min_ms,
                max_ms,
            } => {
                // turmoil 0.7 has no setter for a link's minimum alone: fixing the link at
                // `min` first sets both bounds, so raising the maximum afterwards can never
                // leave max < min (which made turmoil subtract durations and panic).
                sim.set_link_latency(tab(client), SERVER, ms(*min_ms));
                sim.set_link_max_message_latency(tab(client), SERVER, ms((*max_ms).max(*min_ms)));
            }
            Action::DropConnection { client, notify } => {
                if let Some(conn) = conn_of(client) {
                    w.push_server(ServerInput::DropConnection {
                        conn,
                        close_stream: *notify,
                    });
                }
            }
            Action::DoubleWelcome { client, gap_ms } => {
                w.push_tab(*client, TabCommand::DoubleReopen { gap_ms: *gap_ms })
            }
            Action::TransportThrows { client, on } => {
                if let Some(conn) = conn_of(client) {
                    let health = if *on {
                        TransportHealth::Throwing
                    } else {
                        TransportHealth::Open
                    };
                    w.push_server(ServerInput::SetTransport { conn, health });
                }
            }
            // Server faults (statuses, lost responses, interrupt failures); app and agent
            // actions never reach here (see `schedule::expand`).
            other => {
                w.faults.borrow_mut().arm(other);
            }
        }
    }

    fn crash(&mut self, sim: &mut turmoil::Sim<'_>, reason: String) {
        self.world.kill_server(reason);
        self.reap_crash(sim);
    }

    /// Completes a crash a host or a step asked for: sockets and tasks die with the host.
    fn reap_crash(&mut self, sim: &mut turmoil::Sim<'_>) {
        let Some(reason) = self.world.crash_request.borrow_mut().take() else {
            return;
        };
        sim.crash(SERVER);
        self.world.record(Event::ServerDown { reason });
        self.restart_at = self
            .world
            .net
            .restart_after_ms
            .map(|after| self.world.now() + after);
    }

    fn restart(&mut self, sim: &mut turmoil::Sim<'_>) {
        self.restart_at = None;
        if !self.world.server_is_up() {
            sim.bounce(SERVER);
        }
    }

    /// The heal phase: every fault cleared, so liveness can be judged.
    fn heal(&mut self, sim: &mut turmoil::Sim<'_>) {
        let w = self.world.clone();
        w.record(Event::Heal);
        *w.faults.borrow_mut() = ServerFaults::default();
        for (i, t) in w.tabs.iter().enumerate() {
            let name = Scenario::tab_name(i as u32);
            sim.repair(name.clone(), SERVER);
            sim.release(name, SERVER);
            if let Some(conn) = t.client.borrow().connection_id() {
                w.push_server(ServerInput::SetTransport {
                    conn,
                    health: TransportHealth::Open,
                });
            }
            if t.hidden.get() {
                t.hidden.set(false);
                w.push_tab(
                    i as u32,
                    TabCommand::Input(ClientInput::Page(PageEvent::Visible)),
                );
            }
        }
        if !w.server_is_up() {
            self.restart(sim);
        }
    }
}
