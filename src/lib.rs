//! The `ssesim` library behind the command line: exploration and reports.
//!
//! - [`explore`]: scenarios generated from a seed: the matrix's fixed-seed budget, and the
//!   proptest cases (swarm faults, shrinkable) of campaigns.
//! - [`campaign`]: campaigns over revisions (`ssesim explore`, `hunt`, `merge`): jobs,
//!   shards, shrinking to scenario files, summaries.
//! - [`report`]: the revision x invariant matrix and its counterexamples, as Markdown with
//!   Mermaid diagrams that read in a terminal and on a forge.

pub mod campaign;
pub mod explore;
pub mod report;
