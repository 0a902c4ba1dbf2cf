//! Identifiers and units shared by every machine.
//!
//! Time is a plain count of simulated milliseconds handed in by the engine; no machine
//! ever reads a clock.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Simulated time in milliseconds since the start of a run.
pub type Millis = u64;

/// A store sequence number. Global across sessions (spec §0.2): per session they increase
/// with gaps.
pub type Seq = u64;

/// A chat session id, as mitzo's UUIDs are strings.
///
/// Shared rather than owned: ids are copied into every event, delivery, cursor and history
/// record, so a clone is a reference count, not an allocation. It reads, writes, compares
/// and hashes exactly as the string it holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionId(pub Arc<str>);

/// The string's order (byte-wise), compared in place: ids are short, and an id compared
/// with a copy of itself (the common case in the machines' maps) is equal at once.
impl Ord for SessionId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return std::cmp::Ordering::Equal;
        }
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        for (x, y) in a.iter().zip(b) {
            if x != y {
                return x.cmp(y);
            }
        }
        a.len().cmp(&b.len())
    }
}

impl PartialOrd for SessionId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl SessionId {
    pub fn new(s: impl Into<String>) -> Self {
        SessionId(Arc::from(s.into()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for SessionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SessionId::new)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for SessionId {
    fn from(s: &str) -> Self {
        SessionId(Arc::from(s))
    }
}

/// A server-issued connection id. The high half is the server's boot number, so ids stay
/// unique across crashes the way mitzo's UUIDs do, and a pre-crash id is always stale.
/// Written as `c<boot>.<n>` in JSON, so histories stay readable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

impl Serialize for ConnId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ConnId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        ConnId::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("bad connection id {text:?}, expected c<boot>.<n>"))
        })
    }
}

impl ConnId {
    /// Reads the `c<boot>.<n>` form.
    pub fn parse(text: &str) -> Option<ConnId> {
        let (boot, n) = text.strip_prefix('c')?.split_once('.')?;
        Some(ConnId::new(boot.parse().ok()?, n.parse().ok()?))
    }
}

impl ConnId {
    pub fn new(boot: u32, n: u32) -> Self {
        ConnId((u64::from(boot) << 32) | u64::from(n))
    }
    pub fn boot(self) -> u32 {
        (self.0 >> 32) as u32
    }
    pub fn index(self) -> u32 {
        self.0 as u32
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}.{}", self.boot(), self.index())
    }
}

/// A client-side handle for one HTTP request, unique within one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReqId(pub u64);

impl fmt::Display for ReqId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// A client-side handle for one EventSource object. The browser may re-open the same
/// EventSource many times (each re-open is a new server connection); the handle only
/// changes when the client itself creates a new EventSource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EsId(pub u32);

impl fmt::Display for EsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "es{}", self.0)
    }
}
