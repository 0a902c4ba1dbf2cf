//! The `ssesim` library behind the command line: exploration and reports.
//!
//! - [`explore`]: scenarios generated from a seed: the matrix's fixed-seed budget, and the
//!   proptest cases (swarm faults, shrinkable) of campaigns.
//! - [`bugs`]: the documented bugs, their catalog files, revisions and invariants.
//! - [`campaign`]: campaigns over revisions (`ssesim explore`, `hunt`, `merge`): jobs,
//!   shards, shrinking to scenario files, summaries.
//! - [`check`]: bounded exhaustive search over small configurations (`ssesim check`).
//! - [`report`]: the revision x invariant matrix and its counterexamples, as Markdown with
//!   Mermaid diagrams that read in a terminal and on a forge.

pub mod bugs;
pub mod campaign;
pub mod check;
pub mod explore;
pub mod report;
