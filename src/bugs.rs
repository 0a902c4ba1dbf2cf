//! The documented bugs: spec section 6 (B1-B12) and the ones the spec says the reviewers
//! missed, each with the catalog file that reproduces it, the revisions it shows on and the
//! invariant it breaks. The catalog test checks the files against this table; `reports/hunt.sh`
//! measures, with `ssesim hunt --bug`, how fast exploration finds each without them.
//!
//! A bug's identity, for a hunt, is differential: a case is the bug when it breaks the bug's
//! invariant on its `hunt_revision` and does not break it on the bug's `controls`, the
//! revisions just before the bug came in and the one that fixed it (spec section 6). Two
//! bugs with the same invariant and the same revision profile are told apart by a coverage
//! probe (`probe`) where one exists, or by an invariant one breaks and the other keeps
//! (`keeps`).

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
    /// The control revisions: a case shows this bug only if it breaks `invariant` on
    /// `hunt_revision` and on none of these. As a rule the revision before the bug came in
    /// and the one that fixed it (`reference` for the bugs #396 never fixed); the entries
    /// below say why where the rule needs judgement.
    pub controls: &'static [&'static str],
    /// What the hunted run on `hunt_revision` must show of a coverage probe
    /// (`ssesim_oracles::PROBES`), for bugs that share invariant and controls.
    pub probe: ProbeRule,
    /// Invariants the hunted run must keep on `hunt_revision`: for a bug whose invariant
    /// another bug with the same controls breaks too, the one that bug breaks and this one
    /// does not.
    pub keeps: &'static [&'static str],
}

/// A coverage probe a bug's identity requires or excludes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeRule {
    /// No probe condition.
    None,
    /// The run must hit this probe.
    Hit(&'static str),
    /// The run must not hit this probe.
    Miss(&'static str),
}

impl ProbeRule {
    /// Whether a run whose probe counts are `hits` satisfies the rule.
    pub fn holds(&self, hits: &std::collections::BTreeMap<&'static str, u64>) -> bool {
        let hit = |p: &str| hits.get(p).copied().unwrap_or(0) > 0;
        match self {
            ProbeRule::None => true,
            ProbeRule::Hit(p) => hit(p),
            ProbeRule::Miss(p) => !hit(p),
        }
    }
}

/// The documented bug called `id` (case-insensitive), or an error naming them all.
pub fn find(id: &str) -> Result<&'static Bug, String> {
    DOCUMENTED
        .iter()
        .find(|b| b.id.eq_ignore_ascii_case(id.trim()))
        .ok_or_else(|| {
            format!(
                "unknown bug `{id}`, expected one of: {}",
                DOCUMENTED
                    .iter()
                    .map(|b| b.id)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

impl Bug {
    /// The bug's id as a file-name part: lower case, runs of other characters as `-`.
    pub fn slug(&self) -> String {
        let mut out = String::new();
        for c in self.id.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            } else if !out.ends_with('-') {
                out.push('-');
            }
        }
        out.trim_matches('-').to_string()
    }
}

/// The catalog files of the documented bugs, built in so that `hunt --bug` can lean its
/// cases towards a bug's ingredients from any directory.
const CATALOG: &[(&str, &str)] = &[
    (
        "b01-unbounded-requeue",
        include_str!("../scenarios/catalog/b01-unbounded-requeue.json"),
    ),
    (
        "b02-permanent-error-retried",
        include_str!("../scenarios/catalog/b02-permanent-error-retried.json"),
    ),
    (
        "b03-stranded-while-healthy",
        include_str!("../scenarios/catalog/b03-stranded-while-healthy.json"),
    ),
    (
        "b04-endless-cycling",
        include_str!("../scenarios/catalog/b04-endless-cycling.json"),
    ),
    (
        "b05-too-many-requests-dropped",
        include_str!("../scenarios/catalog/b05-too-many-requests-dropped.json"),
    ),
    (
        "b06-first-connect-ordering",
        include_str!("../scenarios/catalog/b06-first-connect-ordering.json"),
    ),
    (
        "b07-concurrent-flushes",
        include_str!("../scenarios/catalog/b07-concurrent-flushes.json"),
    ),
    (
        "b08a-skipped-flush",
        include_str!("../scenarios/catalog/b08a-skipped-flush.json"),
    ),
    (
        "b08b-mid-flush-stranding",
        include_str!("../scenarios/catalog/b08b-mid-flush-stranding.json"),
    ),
    (
        "b09-attempt-burn",
        include_str!("../scenarios/catalog/b09-attempt-burn.json"),
    ),
    (
        "b10-detached-not-synced",
        include_str!("../scenarios/catalog/b10-detached-not-synced.json"),
    ),
    (
        "b11-replay-gap-skip",
        include_str!("../scenarios/catalog/b11-replay-gap-skip.json"),
    ),
    (
        "demo-interrupt-crash",
        include_str!("../scenarios/catalog/demo-interrupt-crash.json"),
    ),
    (
        "lost-reply-new-session",
        include_str!("../scenarios/catalog/lost-reply-new-session.json"),
    ),
    (
        "replay-storm",
        include_str!("../scenarios/catalog/replay-storm.json"),
    ),
];

impl Bug {
    /// The bug's catalog scenario, `scenarios/catalog/<catalog>.json`.
    pub fn catalog_scenario(&self) -> Result<ssesim_scenarios::Scenario, String> {
        let (_, text) = CATALOG
            .iter()
            .find(|(name, _)| *name == self.catalog)
            .ok_or_else(|| format!("{}: catalog file {} is not built in", self.id, self.catalog))?;
        ssesim_scenarios::parse_str(text)
            .map_err(|e| format!("scenarios/catalog/{}.json: {e}", self.catalog))
    }
}

const LATER: &[&str] = &["r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9"];

pub const DOCUMENTED: &[Bug] = &[
    Bug {
        id: "B1",
        catalog: "b01-unbounded-requeue",
        revisions: &["r1"],
        invariant: "bounded_queue",
        hunt_revision: "r1",
        // Before: the baseline never re-queues. Fixed: r2's `enqueuePending` applies the cap.
        controls: &["baseline", "r2"],
        probe: ProbeRule::None,
        keeps: &[],
    },
    Bug {
        id: "B2",
        catalog: "b02-permanent-error-retried",
        revisions: &["r1", "r2"],
        invariant: "bounded_queue",
        hunt_revision: "r2",
        // Before: the baseline never re-queues. Fixed: r3 re-queues only 404 and >= 500.
        controls: &["baseline", "r3"],
        probe: ProbeRule::None,
        keeps: &[],
    },
    Bug {
        id: "B3",
        catalog: "b03-stranded-while-healthy",
        revisions: LATER,
        invariant: "liveness",
        hunt_revision: "r3",
        // Before: the baseline never re-queues. Never fixed in #396 (the reference has the outbox).
        controls: &["baseline", "reference"],
        probe: ProbeRule::None,
        // B10 (an idle session's events never synced) breaks liveness on the same
        // revisions, baseline and reference passing: the tab never reaches the store's head.
        // B3's stranded send loses no event.
        keeps: &["no_silent_event_loss"],
    },
    Bug {
        id: "B4",
        catalog: "b04-endless-cycling",
        revisions: &["r3"],
        invariant: "bounded_queue",
        hunt_revision: "r3",
        // Fixed: r4's attempt budget. Before: not r2, since r1 and r2 re-queue without a budget
        // too (the catalog file breaks bounded_queue on r1-r3); the baseline, which never
        // re-queues.
        controls: &["baseline", "r4"],
        probe: ProbeRule::None,
        keeps: &[],
    },
    Bug {
        id: "budget drop",
        catalog: "b04-endless-cycling",
        revisions: &["r4", "r5", "r6", "r7", "r8", "r9"],
        invariant: "no_silent_send_loss",
        hunt_revision: "r4",
        // Before: r3 has no budget (it keeps retrying). Never fixed in #396. The catalog file
        // also breaks no_silent_send_loss on r3 (the send is stranded after its sixth 503, B3),
        // so it is not itself an instance; a hunted one is the purer story.
        controls: &["r3", "reference"],
        probe: ProbeRule::None,
        keeps: &[],
    },
    Bug {
        id: "B5",
        catalog: "b05-too-many-requests-dropped",
        revisions: &["r3", "r4"],
        invariant: "no_silent_send_loss",
        hunt_revision: "r3",
        // Before: r2 re-queues every failure, 429 included. Fixed: r5 retries 429.
        controls: &["r2", "r5"],
        probe: ProbeRule::None,
        keeps: &[],
    },
    Bug {
        id: "B6",
        catalog: "b06-first-connect-ordering",
        revisions: &["r5", "r6"],
        invariant: "send_order",
        hunt_revision: "r5",
        // The race exists wherever `_connected` is set before the flush completes: every
        // revision up to r9 (the catalog file breaks send_order on all of them; the spec calls
        // B6's fix in #396 unclear), so the only control is the reference. What makes it B6
        // rather than two direct sends racing, or B3's re-queued send overtaken: send() is
        // called while a flush's posts are in flight.
        controls: &["reference"],
        probe: ProbeRule::Hit("send_during_flush"),
        keeps: &[],
    },
    Bug {
        id: "B7",
        catalog: "b07-concurrent-flushes",
        revisions: &["r6"],
        invariant: "no_duplicate_dispatch",
        hunt_revision: "r6",
        // Fixed: r7's `_flushing` guard (no second flush). Before: not r5, which has no guard
        // either (the catalog file duplicates on r1-r6); the baseline, which never re-queues.
        // The r7 control is what separates B7 from the lost reply re-posted by a later flush.
        controls: &["baseline", "r7"],
        probe: ProbeRule::None,
        keeps: &[],
    },
    Bug {
        id: "B8a",
        catalog: "b08a-skipped-flush",
        revisions: &["r7"],
        invariant: "send_order",
        hunt_revision: "r7",
        // Before: r6 has no `_flushing` guard to skip a flush. Fixed: r8 joins the running flush.
        controls: &["r6", "r8"],
        probe: ProbeRule::None,
        keeps: &[],
    },
    Bug {
        id: "B8b",
        catalog: "b08b-mid-flush-stranding",
        revisions: &["r8"],
        invariant: "liveness",
        hunt_revision: "r8",
        // Before: r5 does not await the flush on the reconnect path (r6 and r7 strand the same
        // way as r8: the catalog file breaks liveness on r6-r8). Fixed: r9's while loop.
        controls: &["r5", "r9"],
        probe: ProbeRule::None,
        keeps: &[],
    },
    Bug {
        id: "B8b loss",
        catalog: "b08b-mid-flush-stranding",
        revisions: &["r8"],
        invariant: "no_silent_send_loss",
        hunt_revision: "r8",
        // As B8b.
        controls: &["r5", "r9"],
        probe: ProbeRule::None,
        keeps: &[],
    },
    Bug {
        id: "B9",
        catalog: "b09-attempt-burn",
        revisions: &["r9"],
        invariant: "no_silent_send_loss",
        hunt_revision: "r9",
        // Before: r8 re-posts a failed send at the next welcome only. Never fixed in #396. The
        // catalog file also breaks no_silent_send_loss on r8 (its injected 404s outlast r8's
        // welcomes and strand the send, B3), so it is not itself an instance.
        controls: &["r8", "reference"],
        probe: ProbeRule::None,
        keeps: &[],
    },
    Bug {
        id: "B10",
        catalog: "b10-detached-not-synced",
        revisions: LATER,
        invariant: "no_silent_event_loss",
        hunt_revision: "r1",
        // Before: the baseline syncs every watched session. Never fixed in #396. B11 has the same
        // profile; a run where the replay-gap cap skipped events is B11's, not B10's.
        controls: &["baseline", "reference"],
        probe: ProbeRule::Miss("sync_hit_replay_gap"),
        keeps: &[],
    },
    Bug {
        id: "B11",
        catalog: "b11-replay-gap-skip",
        revisions: LATER,
        invariant: "no_silent_event_loss",
        hunt_revision: "r1",
        // Before: the baseline has no replay-gap cap. Never fixed in #396. Told from B10 (same
        // profile) by the probe: a sync tick skipped events because of the cap.
        controls: &["baseline", "reference"],
        probe: ProbeRule::Hit("sync_hit_replay_gap"),
        keeps: &[],
    },
    Bug {
        id: "B12 crash",
        catalog: "demo-interrupt-crash",
        revisions: &["baseline"],
        invariant: "server_survives",
        hunt_revision: "baseline",
        // Fixed: r1's try/catch around interrupt().
        controls: &["r1"],
        probe: ProbeRule::None,
        keeps: &[],
    },
    Bug {
        id: "B12 storm",
        catalog: "replay-storm",
        revisions: &["baseline"],
        invariant: "bounded_replay",
        hunt_revision: "baseline",
        // Fixed: r1's shouldSync no longer syncs idle sessions, where the storm lives.
        controls: &["r1"],
        probe: ProbeRule::None,
        keeps: &[],
    },
    Bug {
        id: "cursor backwards",
        catalog: "replay-storm",
        revisions: &["baseline"],
        invariant: "no_duplicate_apply",
        hunt_revision: "baseline",
        // The catalog's story (the storm's duplicate half) ends in r1 with the storm.
        controls: &["r1"],
        probe: ProbeRule::None,
        keeps: &[],
    },
    Bug {
        id: "lost reply, second session",
        catalog: "lost-reply-new-session",
        revisions: LATER,
        invariant: "no_duplicate_dispatch",
        hunt_revision: "r1",
        // Before: the baseline never re-posts. Never fixed in #396 (the reference dedups by id).
        controls: &["baseline", "reference"],
        probe: ProbeRule::None,
        keeps: &[],
    },
];
