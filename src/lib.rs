//! The `ssesim` library behind the command line: exploration and reports.
//!
//! - [`explore`]: scenarios generated from a seed (a fixed-seed exploration budget).
//! - [`report`]: the revision x invariant matrix and its counterexamples, as Markdown with
//!   Mermaid diagrams that read in a terminal and on a forge.

pub mod explore;
pub mod report;
