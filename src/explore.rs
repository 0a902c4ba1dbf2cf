//! Generated scenarios: a workload and a fault schedule drawn from a ChaCha stream seeded by
//! a case seed, followed by a heal phase long enough for every invariant to be judged.
//!
//! Each case enables a random subset of the fault kinds (swarm testing), so rare
//! combinations get reached instead of every case carrying a little of everything.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ssesim_model::{Endpoint, SessionState};
use ssesim_scenarios::{
    Action, Constants, Direction, FaultEndpoint, Network, Scenario, Step, Topology, SCHEMA_VERSION,
};

/// When the generated fault phase ends.
pub const HEAL_AT_MS: u64 = 6000;
/// Generated runs end here, leaving the heal phase the settle bound of compact timings.
pub const DURATION_MS: u64 = 30_000;

/// The fault kinds a case may enable.
const FAULTS: &[&str] = &[
    "crash",
    "crash_at_interrupt",
    "bounce",
    "partition",
    "hold",
    "drop_connection",
    "inject_status",
    "lose_response",
    "interrupt_fails",
    "double_welcome",
    "transport_throws",
    "force_reconnect",
];

/// The scenario of case `seed`, for `revision`.
pub fn generate(seed: u64, revision: &str) -> Scenario {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let clients = rng.random_range(1..=2u32);
    let sessions: Vec<String> = (1..=rng.random_range(1..=2u32))
        .map(|i| format!("s{i}"))
        .collect();
    let enabled: Vec<&str> = FAULTS
        .iter()
        .copied()
        .filter(|_| rng.random_bool(0.4))
        .collect();
    let mut steps = Vec::new();
    let pick_session = |rng: &mut ChaCha8Rng| sessions[rng.random_range(0..sessions.len())].clone();
    for c in 0..clients {
        let s = pick_session(&mut rng);
        steps.push(Step {
            at_ms: rng.random_range(10..100),
            action: Action::Watch {
                client: c,
                session: s,
            },
        });
    }
    let n = rng.random_range(4..14);
    for _ in 0..n {
        let at_ms = rng.random_range(100..HEAL_AT_MS - 500);
        let client = rng.random_range(0..clients);
        let action = match rng.random_range(0..10) {
            0..=3 => Action::Send {
                client,
                session: if rng.random_bool(0.85) {
                    Some(pick_session(&mut rng))
                } else {
                    None
                },
                id: None,
                text: if rng.random_bool(0.1) {
                    String::new()
                } else {
                    "hi".into()
                },
            },
            4 => Action::Interrupt {
                client,
                session: pick_session(&mut rng),
                id: None,
                text: "stop".into(),
            },
            5 | 6 => Action::Emit {
                session: pick_session(&mut rng),
                count: rng.random_range(1..8),
                every_ms: rng.random_range(0..30),
            },
            7 => Action::Switch {
                client,
                session: pick_session(&mut rng),
            },
            8 => Action::SessionState {
                session: pick_session(&mut rng),
                state: [
                    SessionState::Detached,
                    SessionState::Suspended,
                    SessionState::Active,
                ][rng.random_range(0..3)],
            },
            _ => {
                if rng.random_bool(0.5) {
                    Action::Hidden { client }
                } else {
                    Action::Visible { client }
                }
            }
        };
        steps.push(Step { at_ms, action });
    }
    if !enabled.is_empty() {
        for _ in 0..rng.random_range(1..6) {
            let at_ms = rng.random_range(100..HEAL_AT_MS - 200);
            let client = rng.random_range(0..clients);
            let kind = enabled[rng.random_range(0..enabled.len())];
            let action = match kind {
                "crash" => Action::Crash,
                "crash_at_interrupt" => Action::CrashAtInterrupt,
                "bounce" => Action::Bounce,
                "partition" => Action::Partition {
                    client,
                    direction: [Direction::Both, Direction::ToServer, Direction::FromServer]
                        [rng.random_range(0..3)],
                },
                "hold" => Action::Hold { client },
                "drop_connection" => Action::DropConnection {
                    client,
                    notify: rng.random_bool(0.5),
                },
                "inject_status" => Action::InjectStatus {
                    endpoint: FaultEndpoint::Post(
                        [
                            Endpoint::Send,
                            Endpoint::Reconnect,
                            Endpoint::Watch,
                            Endpoint::Interrupt,
                        ][rng.random_range(0..4)],
                    ),
                    status: [400, 404, 429, 500, 503][rng.random_range(0..5)],
                    count: rng.random_range(1..4),
                    retry_after_s: None,
                },
                "lose_response" => Action::LoseResponse {
                    endpoint: [Endpoint::Send, Endpoint::Reconnect, Endpoint::Interrupt]
                        [rng.random_range(0..3)],
                    count: 1,
                },
                "interrupt_fails" => Action::InterruptFails { count: 1 },
                "double_welcome" => Action::DoubleWelcome { client, gap_ms: 1 },
                "transport_throws" => Action::TransportThrows { client, on: true },
                _ => Action::ForceReconnect { client },
            };
            steps.push(Step { at_ms, action });
        }
    }
    steps.sort_by_key(|s| s.at_ms);
    Scenario {
        schema: SCHEMA_VERSION,
        name: format!("explore-{seed}"),
        description: format!(
            "generated case {seed}; faults enabled: {}",
            enabled.join(", ")
        ),
        revision: revision.to_string(),
        seed,
        topology: Topology {
            clients,
            sessions,
            autoconnect: true,
        },
        constants: Constants {
            heartbeat_ms: Some(1000),
            ..Constants::default()
        },
        network: compact_network(),
        duration_ms: DURATION_MS,
        heal_at_ms: Some(HEAL_AT_MS),
        steps,
        expect: Default::default(),
    }
}

/// Timings short enough that the settle bound fits in a generated run's heal phase.
pub fn compact_network() -> Network {
    Network {
        min_latency_ms: 1,
        max_latency_ms: 20,
        es_retry_ms: 500,
        es_idle_timeout_ms: 3000,
        fetch_timeout_ms: 2000,
        restart_after_ms: Some(1000),
        interrupt_latency_ms: 2,
    }
}
