//! Wall-clock time for throughput figures, `wall_ms` and the benchmark. It is read only to
//! print; no result depends on it. This is the one place the bench reads the wall clock
//! (clippy.toml bans it everywhere else).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

pub struct Stopwatch(std::time::Instant);

impl Stopwatch {
    pub fn start() -> Self {
        Stopwatch(std::time::Instant::now())
    }

    pub fn ms(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }

    /// Seconds, with sub-millisecond resolution.
    pub fn secs(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}
