//! A scenario's timeline turned into the commands an engine applies, in time order.
//!
//! Expansion is where the scenario's shorthands become concrete: default clientMsgIds,
//! `emit` with a count and period, the two reopens of a double welcome. Every engine
//! applies the same schedule, so they agree on what happened when; [`TabCall::input`] is
//! the one mapping of a tab call to the client machine's input.

use serde::Serialize;
use ssesim_model::{ClientInput, ClientMsg, PageEvent, Seq, SessionId, SessionState};
use ssesim_scenarios::{Action, Scenario, Step};
use std::collections::BTreeMap;

/// One thing an engine does at one simulated time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scheduled {
    pub at: u64,
    /// Index of the scenario step it came from.
    pub step: usize,
    pub command: Command,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Command {
    /// Record the step itself (first command of every step).
    Mark(Action),
    /// An app call or page event in a tab.
    Tab { tab: u32, call: TabCall },
    /// The agent's `n`-th output in a session.
    Emit { session: SessionId, n: u32 },
    AgentState {
        session: SessionId,
        to: SessionState,
    },
    /// A fault or repair the engine applies itself.
    Fault(Action),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum TabCall {
    Connect,
    Disconnect,
    Send(ClientMsg),
    Hidden,
    Visible,
    ForceReconnect,
    /// `trackSeq`; `None` is resolved to the store's head by the engine.
    TrackSeq(SessionId, Option<u64>),
}

impl TabCall {
    /// The client input this call is, at the moment the engine applies it. `hidden` is
    /// the page's visibility flag (the heal phase reads it), updated here; `head` resolves
    /// a `trackSeq` without a seq to the store's head for the session at this moment.
    pub fn input(&self, hidden: &mut bool, head: impl FnOnce(&SessionId) -> Seq) -> ClientInput {
        match self {
            TabCall::Connect => ClientInput::Connect,
            TabCall::Disconnect => ClientInput::Disconnect,
            TabCall::Send(msg) => ClientInput::Send { msg: msg.clone() },
            TabCall::Hidden => {
                *hidden = true;
                ClientInput::Page(PageEvent::Hidden)
            }
            TabCall::Visible => {
                *hidden = false;
                ClientInput::Page(PageEvent::Visible)
            }
            TabCall::ForceReconnect => ClientInput::CheckAndReconnect { force: true },
            TabCall::TrackSeq(session, seq) => ClientInput::TrackSeq {
                session: session.clone(),
                seq: seq.unwrap_or_else(|| head(session)),
            },
        }
    }
}

/// Expands and time-orders a scenario's steps (stable for equal times).
pub fn expand(scenario: &Scenario) -> Vec<Scheduled> {
    let mut expander = Expander::new(scenario);
    let mut out = expander.autoconnects(scenario);
    for (index, step) in scenario.steps.iter().enumerate() {
        out.extend(expander.step(index, step));
    }
    // Stable: equal times keep file order, so the autoconnects come first.
    out.sort_by_key(|s| s.at);
    out
}

/// Step-by-step expansion: what [`expand`] does to a whole file, for an engine that takes
/// further steps while it runs. It carries the per-tab send counts (default clientMsgIds)
/// and the per-session emit counts from one step to the next, so steps expanded one at a
/// time get exactly the commands they would get as part of a file.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Expander {
    sends_per_tab: Vec<u32>,
    emitted: BTreeMap<String, u32>,
}

impl Expander {
    pub fn new(scenario: &Scenario) -> Self {
        Expander {
            sends_per_tab: vec![0; scenario.topology.clients as usize],
            emitted: BTreeMap::new(),
        }
    }

    /// Every tab's `connect()` at time 0 when the topology asks for it.
    pub fn autoconnects(&self, scenario: &Scenario) -> Vec<Scheduled> {
        if !scenario.topology.autoconnect {
            return Vec::new();
        }
        (0..scenario.topology.clients)
            .map(|tab| Scheduled {
                at: 0,
                step: usize::MAX,
                command: Command::Tab {
                    tab,
                    call: TabCall::Connect,
                },
            })
            .collect()
    }

    /// The commands of step `index`, in order (not sorted: an `emit` with a period yields
    /// later times too).
    pub fn step(&mut self, index: usize, step: &Step) -> Vec<Scheduled> {
        let mut out = Vec::new();
        let at = step.at_ms;
        let mut push = |at: u64, command: Command| {
            out.push(Scheduled {
                at,
                step: index,
                command,
            })
        };
        push(at, Command::Mark(step.action.clone()));
        let sends_per_tab = &mut self.sends_per_tab;
        let mut next_id = |tab: u32, id: &Option<String>| -> String {
            let k = &mut sends_per_tab[tab as usize];
            *k += 1;
            id.clone().unwrap_or_else(|| format!("tab{tab}-m{k}"))
        };
        let session = |s: &str| SessionId::from(s);
        let tab_call = |tab: u32, call: TabCall| Command::Tab { tab, call };
        match &step.action {
            Action::Connect { client } => push(at, tab_call(*client, TabCall::Connect)),
            Action::Disconnect { client } => push(at, tab_call(*client, TabCall::Disconnect)),
            Action::Send {
                client,
                session: s,
                id,
                text,
            } => {
                let msg = ClientMsg::Send {
                    session: s.as_deref().map(session),
                    client_msg_id: next_id(*client, id),
                    text: text.clone(),
                };
                push(at, tab_call(*client, TabCall::Send(msg)));
            }
            Action::Interrupt {
                client,
                session: s,
                id,
                text,
            } => {
                let msg = ClientMsg::Interrupt {
                    session: session(s),
                    client_msg_id: next_id(*client, id),
                    text: text.clone(),
                };
                push(at, tab_call(*client, TabCall::Send(msg)));
            }
            Action::Stop { client, session: s } => push(
                at,
                tab_call(
                    *client,
                    TabCall::Send(ClientMsg::Stop {
                        session: session(s),
                    }),
                ),
            ),
            Action::Watch { client, session: s } => push(
                at,
                tab_call(
                    *client,
                    TabCall::Send(ClientMsg::Watch {
                        session: session(s),
                    }),
                ),
            ),
            Action::Unwatch { client, session: s } => push(
                at,
                tab_call(
                    *client,
                    TabCall::Send(ClientMsg::Unwatch {
                        session: session(s),
                    }),
                ),
            ),
            Action::Switch { client, session: s } => push(
                at,
                tab_call(
                    *client,
                    TabCall::Send(ClientMsg::SwitchSession {
                        session: session(s),
                    }),
                ),
            ),
            Action::Hidden { client } => push(at, tab_call(*client, TabCall::Hidden)),
            Action::Visible { client } => push(at, tab_call(*client, TabCall::Visible)),
            Action::ForceReconnect { client } => {
                push(at, tab_call(*client, TabCall::ForceReconnect))
            }
            Action::TrackSeq {
                client,
                session: s,
                seq,
            } => push(at, tab_call(*client, TabCall::TrackSeq(session(s), *seq))),
            Action::Emit {
                session: s,
                count,
                every_ms,
            } => {
                let n = self.emitted.entry(s.clone()).or_insert(0);
                for i in 0..*count {
                    *n += 1;
                    push(
                        at + u64::from(i) * every_ms,
                        Command::Emit {
                            session: session(s),
                            n: *n,
                        },
                    );
                }
            }
            Action::SessionState { session: s, state } => push(
                at,
                Command::AgentState {
                    session: session(s),
                    to: *state,
                },
            ),
            fault => push(at, Command::Fault(fault.clone())),
        }
        out
    }
}
