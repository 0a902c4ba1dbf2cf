//! The server-side fault bookkeeping both engines share: injected statuses, lost
//! responses and `interrupt()` failures are armed by steps and consumed by the requests and
//! interrupts that pass through the server, in arrival order.

use serde::Serialize;
use ssesim_model::Endpoint;
use ssesim_scenarios::{Action, FaultEndpoint};
use std::collections::{BTreeMap, VecDeque};

/// Faults the server consults as requests and interrupts pass through it. The heal phase
/// resets it to the default (nothing armed).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct ServerFaults {
    /// Queued injected replies per endpoint: (status, Retry-After).
    statuses: BTreeMap<FaultEndpoint, VecDeque<(u16, Option<u32>)>>,
    lost_responses: BTreeMap<Endpoint, u32>,
    interrupt_failures: u32,
    crash_at_interrupt: bool,
}

/// What the server's next `interrupt()` call does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InterruptCall {
    /// The process dies at the call (an armed `crash_at_interrupt`).
    Crash,
    /// It settles after the interrupt latency, rejecting when `ok` is false.
    Settle { ok: bool },
}

impl ServerFaults {
    /// Arms the fault `action` describes if it is one of the server's; false otherwise
    /// (network and process faults are the engine's own).
    pub fn arm(&mut self, action: &Action) -> bool {
        match action {
            Action::CrashAtInterrupt => self.crash_at_interrupt = true,
            Action::InjectStatus {
                endpoint,
                status,
                count,
                retry_after_s,
            } => {
                let q = self.statuses.entry(*endpoint).or_default();
                q.extend((0..*count).map(|_| (*status, *retry_after_s)));
            }
            Action::LoseResponse { endpoint, count } => {
                *self.lost_responses.entry(*endpoint).or_default() += count;
            }
            Action::InterruptFails { count } => self.interrupt_failures += count,
            _ => return false,
        }
        true
    }

    /// Takes the next injected status for an endpoint, if any.
    pub fn injected(&mut self, endpoint: FaultEndpoint) -> Option<(u16, Option<u32>)> {
        self.statuses.get_mut(&endpoint).and_then(|q| q.pop_front())
    }

    /// Whether the reply to a request on `endpoint` is lost (consuming one loss).
    pub fn response_lost(&mut self, endpoint: Endpoint) -> bool {
        match self.lost_responses.get_mut(&endpoint) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }

    /// What an `interrupt()` call does now (consuming an armed crash or one failure).
    pub fn interrupt(&mut self) -> InterruptCall {
        if self.crash_at_interrupt {
            self.crash_at_interrupt = false;
            return InterruptCall::Crash;
        }
        let fail = self.interrupt_failures > 0;
        self.interrupt_failures = self.interrupt_failures.saturating_sub(1);
        InterruptCall::Settle { ok: !fail }
    }
}
