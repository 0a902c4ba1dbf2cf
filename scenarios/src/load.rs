//! Reading scenario files, with errors that name the file, the field and what was expected.

use crate::{Scenario, SCHEMA_VERSION};
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct ScenarioError {
    pub file: Option<PathBuf>,
    /// The JSON path of the offending field (`steps[3].client`), when known.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}: ", file.display())?;
        }
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ScenarioError {}

impl ScenarioError {
    fn at(field: impl Into<String>, message: impl Into<String>) -> Self {
        ScenarioError {
            file: None,
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

pub fn load_file(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: Some(path.to_path_buf()),
        field: None,
        message: format!("cannot read the file: {e}"),
    })?;
    parse_str(&text).map_err(|mut e| {
        e.file = Some(path.to_path_buf());
        e
    })
}

pub fn parse_str(text: &str) -> Result<Scenario, ScenarioError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let scenario: Scenario = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        ScenarioError {
            file: None,
            field: (path != ".").then_some(path),
            message: inner.to_string(),
        }
    })?;
    validate(&scenario)?;
    Ok(scenario)
}

/// Checks what the types cannot: versions, ranges and cross-references.
fn validate(s: &Scenario) -> Result<(), ScenarioError> {
    if s.schema != SCHEMA_VERSION {
        return Err(ScenarioError::at(
            "schema",
            format!(
                "unsupported schema version {}, expected {SCHEMA_VERSION}",
                s.schema
            ),
        ));
    }
    if !(1..=8).contains(&s.topology.clients) {
        return Err(ScenarioError::at(
            "topology.clients",
            format!("{} tabs, expected 1 to 8", s.topology.clients),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, name) in s.topology.sessions.iter().enumerate() {
        if name.is_empty() || !seen.insert(name.as_str()) {
            return Err(ScenarioError::at(
                format!("topology.sessions[{i}]"),
                format!("session name {name:?} is empty or repeated"),
            ));
        }
    }
    if s.duration_ms == 0 {
        return Err(ScenarioError::at("duration_ms", "must be greater than 0"));
    }
    if s.heal_at() > s.duration_ms {
        return Err(ScenarioError::at(
            "heal_at_ms",
            format!("{} is after duration_ms {}", s.heal_at(), s.duration_ms),
        ));
    }
    let n = &s.network;
    if n.min_latency_ms > n.max_latency_ms {
        return Err(ScenarioError::at(
            "network.max_latency_ms",
            format!(
                "{} is below min_latency_ms {}",
                n.max_latency_ms, n.min_latency_ms
            ),
        ));
    }
    for (i, step) in s.steps.iter().enumerate() {
        if step.at_ms > s.duration_ms {
            return Err(ScenarioError::at(
                format!("steps[{i}].at_ms"),
                format!("{} is after duration_ms {}", step.at_ms, s.duration_ms),
            ));
        }
        if let Some(c) = step.action.client() {
            if c >= s.topology.clients {
                return Err(ScenarioError::at(
                    format!("steps[{i}].client"),
                    format!(
                        "tab {c} does not exist (topology.clients is {})",
                        s.topology.clients
                    ),
                ));
            }
        }
        if let crate::Action::Latency { min_ms, max_ms, .. } = &step.action {
            if min_ms > max_ms {
                return Err(ScenarioError::at(
                    format!("steps[{i}].max_ms"),
                    format!("{max_ms} is below min_ms {min_ms}"),
                ));
            }
        }
        if let crate::Action::InjectStatus { status, .. } = &step.action {
            if !(100..=599).contains(status) {
                return Err(ScenarioError::at(
                    format!("steps[{i}].status"),
                    format!("{status} is not an HTTP status"),
                ));
            }
        }
    }
    Ok(())
}
