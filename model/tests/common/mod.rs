//! Helpers shared by the model's integration tests: `client` for the client suites
//! (`client`, `client_revisions`, `client_reference`), `server` for the server suites
//! (`server`, `server_reference`).
//!
//! Every test crate that says `mod common;` compiles both halves and uses one, so each half
//! allows the dead code the other crates see in it.

use ssesim_model::types::SessionId;

#[allow(dead_code)]
pub mod client;
#[allow(dead_code)]
pub mod server;

pub fn sid(s: &str) -> SessionId {
    SessionId::new(s)
}
