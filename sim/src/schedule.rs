//! A scenario's timeline turned into the commands an engine applies, in time order.
//!
//! Expansion is where the scenario's shorthands become concrete: default clientMsgIds,
//! `emit` with a count and period, the two reopens of a double welcome. Every engine
//! applies the same schedule, so they agree on what happened when.

use ssesim_model::{ClientMsg, SessionId, SessionState};
use ssesim_scenarios::{Action, Scenario};

/// One thing an engine does at one simulated time.
#[derive(Clone, Debug, PartialEq)]
pub struct Scheduled {
    pub at: u64,
    /// Index of the scenario step it came from.
    pub step: usize,
    pub command: Command,
}

#[derive(Clone, Debug, PartialEq)]
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

#[derive(Clone, Debug, PartialEq)]
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

/// Expands and time-orders a scenario's steps (stable for equal times).
pub fn expand(scenario: &Scenario) -> Vec<Scheduled> {
    let mut out = Vec::new();
    let mut sends_per_tab = vec![0u32; scenario.topology.clients as usize];
    let mut emitted: std::collections::BTreeMap<String, u32> = std::collections::BTreeMap::new();
    if scenario.topology.autoconnect {
        for tab in 0..scenario.topology.clients {
            out.push(Scheduled {
                at: 0,
                step: usize::MAX,
                command: Command::Tab {
                    tab,
                    call: TabCall::Connect,
                },
            });
        }
    }
    for (index, step) in scenario.steps.iter().enumerate() {
        let at = step.at_ms;
        let mut push = |at: u64, command: Command| {
            out.push(Scheduled {
                at,
                step: index,
                command,
            })
        };
        push(at, Command::Mark(step.action.clone()));
        let mut next_id = |tab: u32, id: &Option<String>| -> String {
            let k = &mut sends_per_tab[tab as usize];
            *k += 1;
            id.clone().unwrap_or_else(|| format!("tab{tab}-m{k}"))
        };
        let session = |s: &str| SessionId::new(s);
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
                let n = emitted.entry(s.clone()).or_insert(0);
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
    }
    // Stable: equal times keep file order, so the autoconnects come first.
    out.sort_by_key(|s| s.at);
    out
}
