//! Named presets of [`Params`]: the revisions a scenario or `--revision` can select.
//!
//! Each revision is a value, never a fork of the machines. Only the baseline exists so far;
//! the PR #396 revisions and the reference design are added as their policies land.

use crate::params::Params;

/// Every preset name, in report order.
pub const NAMES: &[&str] = &["baseline"];

/// The preset called `name`, or `None` for an unknown name.
pub fn preset(name: &str) -> Option<Params> {
    match name {
        "baseline" => Some(Params::baseline()),
        _ => None,
    }
}
