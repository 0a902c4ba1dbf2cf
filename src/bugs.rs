//! The documented bugs: spec section 6 (B1-B12) and the ones the spec says the reviewers
//! missed, each with the catalog file that reproduces it, the revisions it shows on and the
//! invariant it breaks. The catalog test checks the files against this table; `reports/hunt.sh`
//! measures, with `ssesim hunt`, how fast exploration finds each without them.

/// One documented bug.
#[derive(Clone, Copy, Debug)]
pub struct Bug {
    pub id: &'static str,
    /// `scenarios/catalog/<catalog>.json`.
    pub catalog: &'static str,
    /// Every revision the catalog file shows it on.
    pub revisions: &'static [&'static str],
    pub invariant: &'static str,
    /// The revision a hunt for it targets: the one that introduced it.
    pub hunt_revision: &'static str,
}

const LATER: &[&str] = &["r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9"];

pub const DOCUMENTED: &[Bug] = &[
    Bug {
        id: "B1",
        catalog: "b01-unbounded-requeue",
        revisions: &["r1"],
        invariant: "bounded_queue",
        hunt_revision: "r1",
    },
    Bug {
        id: "B2",
        catalog: "b02-permanent-error-retried",
        revisions: &["r1", "r2"],
        invariant: "bounded_queue",
        hunt_revision: "r2",
    },
    Bug {
        id: "B3",
        catalog: "b03-stranded-while-healthy",
        revisions: LATER,
        invariant: "liveness",
        hunt_revision: "r3",
    },
    Bug {
        id: "B4",
        catalog: "b04-endless-cycling",
        revisions: &["r3"],
        invariant: "bounded_queue",
        hunt_revision: "r3",
    },
    Bug {
        id: "budget drop",
        catalog: "b04-endless-cycling",
        revisions: &["r4", "r5", "r6", "r7", "r8", "r9"],
        invariant: "no_silent_send_loss",
        hunt_revision: "r4",
    },
    Bug {
        id: "B5",
        catalog: "b05-too-many-requests-dropped",
        revisions: &["r3", "r4"],
        invariant: "no_silent_send_loss",
        hunt_revision: "r3",
    },
    Bug {
        id: "B6",
        catalog: "b06-first-connect-ordering",
        revisions: &["r5", "r6"],
        invariant: "send_order",
        hunt_revision: "r5",
    },
    Bug {
        id: "B7",
        catalog: "b07-concurrent-flushes",
        revisions: &["r6"],
        invariant: "no_duplicate_dispatch",
        hunt_revision: "r6",
    },
    Bug {
        id: "B8a",
        catalog: "b08a-skipped-flush",
        revisions: &["r7"],
        invariant: "send_order",
        hunt_revision: "r7",
    },
    Bug {
        id: "B8b",
        catalog: "b08b-mid-flush-stranding",
        revisions: &["r8"],
        invariant: "liveness",
        hunt_revision: "r8",
    },
    Bug {
        id: "B8b loss",
        catalog: "b08b-mid-flush-stranding",
        revisions: &["r8"],
        invariant: "no_silent_send_loss",
        hunt_revision: "r8",
    },
    Bug {
        id: "B9",
        catalog: "b09-attempt-burn",
        revisions: &["r9"],
        invariant: "no_silent_send_loss",
        hunt_revision: "r9",
    },
    Bug {
        id: "B10",
        catalog: "b10-detached-not-synced",
        revisions: LATER,
        invariant: "no_silent_event_loss",
        hunt_revision: "r1",
    },
    Bug {
        id: "B11",
        catalog: "b11-replay-gap-skip",
        revisions: LATER,
        invariant: "no_silent_event_loss",
        hunt_revision: "r1",
    },
    Bug {
        id: "B12 crash",
        catalog: "demo-interrupt-crash",
        revisions: &["baseline"],
        invariant: "server_survives",
        hunt_revision: "baseline",
    },
    Bug {
        id: "B12 storm",
        catalog: "replay-storm",
        revisions: &["baseline"],
        invariant: "bounded_replay",
        hunt_revision: "baseline",
    },
    Bug {
        id: "cursor backwards",
        catalog: "replay-storm",
        revisions: &["baseline"],
        invariant: "no_duplicate_apply",
        hunt_revision: "baseline",
    },
    Bug {
        id: "lost reply, second session",
        catalog: "lost-reply-new-session",
        revisions: LATER,
        invariant: "no_duplicate_dispatch",
        hunt_revision: "r1",
    },
];
