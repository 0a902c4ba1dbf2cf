//! Reading scenario files, with errors that name the file, the field and what was expected.
//!
//! Parsing goes through `serde_path_to_error`, which knows the JSON path of most errors. A
//! step is one flat object (`at_ms` plus an internally tagged [`Action`] flattened into it),
//! and serde buffers such objects before deserialising them, so for errors inside a step
//! the path stops at `steps[i]` and serde's message can be vague. For those, the loader
//! looks at the failing step again on its own and names the exact field (`steps[3].do`,
//! `steps[3].client`) and what was expected.

/// mitzo's SSE heartbeat period, the same in every revision.
const DEFAULT_HEARTBEAT_MS: u64 = 30_000;

use crate::{Action, FaultEndpoint, Scenario, SCHEMA_VERSION};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::fmt;
use std::path::{Path, PathBuf};

/// Why a scenario could not be loaded. Displays as `FILE: field `PATH`: MESSAGE`, leaving
/// out the parts that are unknown.
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

    fn whole(message: impl Into<String>) -> Self {
        ScenarioError {
            file: None,
            field: None,
            message: message.into(),
        }
    }
}

/// Reads and checks a scenario file; errors carry the file's path.
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

/// Parses and checks a scenario given as JSON text.
pub fn parse_str(text: &str) -> Result<Scenario, ScenarioError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text); // a byte-order mark
    if text.trim().is_empty() {
        return Err(ScenarioError::whole(
            "the file is empty; expected a JSON object describing a scenario \
             (see scenarios/FORMAT.md)",
        ));
    }
    if !text.trim_start().starts_with('{') {
        // serde would read a struct from an array too; a scenario file is an object.
        return Err(ScenarioError::whole(
            match serde_json::from_str::<Value>(text) {
                Ok(v) => format!(
                    "expected a JSON object describing a scenario, found {}",
                    describe(&v)
                ),
                Err(e) => format!("not valid JSON: {e}"),
            },
        ));
    }
    let de = &mut serde_json::Deserializer::from_str(text);
    let scenario: Scenario =
        serde_path_to_error::deserialize(&mut *de).map_err(|e| explain(text, e))?;
    de.end()
        .map_err(|e| ScenarioError::whole(format!("not valid JSON: {e}")))?;
    check_unit_steps(text, &scenario)?;
    validate(&scenario)?;
    Ok(scenario)
}

/// Turns a deserialisation error into a `ScenarioError` with the best field path we can get.
fn explain(text: &str, e: serde_path_to_error::Error<serde_json::Error>) -> ScenarioError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let (bare, loc) = split_location(&inner);
    if !matches!(inner.classify(), serde_json::error::Category::Data) {
        return ScenarioError::whole(format!("not valid JSON: {inner}"));
    }
    if let Some(i) = step_index(&path) {
        if let Some((field, message)) = diagnose_step(text, i) {
            return ScenarioError::at(field, format!("{message}{loc}"));
        }
    }
    let path = (path != "." && path != "?").then_some(path);
    if let Some(name) = missing_field(&bare) {
        let field = match path {
            Some(p) => format!("{p}.{name}"),
            None => name.to_string(),
        };
        return ScenarioError::at(field, format!("missing required field `{name}`{loc}"));
    }
    ScenarioError {
        file: None,
        field: path,
        message: inner.to_string(),
    }
}

/// serde_json's message without its ` at line L column C` suffix, and that suffix.
fn split_location(e: &serde_json::Error) -> (String, String) {
    let full = e.to_string();
    if e.line() == 0 {
        return (full, String::new());
    }
    let loc = format!(" at line {} column {}", e.line(), e.column());
    match full.strip_suffix(&loc) {
        Some(bare) => (bare.to_string(), loc),
        None => (full, String::new()),
    }
}

/// `i` when the path is exactly `steps[i]`.
fn step_index(path: &str) -> Option<usize> {
    path.strip_prefix("steps[")?.strip_suffix(']')?.parse().ok()
}

/// The field named by serde's "missing field `x`".
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// The field named by serde's "unknown field `x`, ...", and the rest of the message.
fn unknown_field(message: &str) -> Option<(&str, &str)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (name, tail) = rest.split_once('`')?;
    Some((name, tail.trim_start_matches(',').trim_start()))
}

/// A short description of a JSON value for "found ..." messages.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

/// Looks at step `i` on its own and says which field is wrong and what was expected.
/// `None` when the step parses on its own (the caller then keeps serde's message).
fn diagnose_step(text: &str, i: usize) -> Option<(String, String)> {
    let raw: Value = serde_json::from_str(text).ok()?;
    let step = raw.get("steps")?.get(i)?;
    let at = |f: &str| format!("steps[{i}].{f}");
    let Some(obj) = step.as_object() else {
        return Some((
            format!("steps[{i}]"),
            format!(
                "expected a step object such as {{\"at_ms\": 0, \"do\": \"connect\", \"client\": 0}}, found {}",
                describe(step)
            ),
        ));
    };
    match obj.get("at_ms") {
        None => {
            return Some((
                at("at_ms"),
                "missing required field `at_ms` (the step's time in simulated milliseconds)"
                    .to_string(),
            ))
        }
        Some(v) if v.as_u64().is_none() => {
            return Some((
                at("at_ms"),
                format!(
                    "expected a non-negative integer number of milliseconds, found {}",
                    describe(v)
                ),
            ))
        }
        Some(_) => {}
    }
    let expected = Action::NAMES.join(", ");
    let name = match obj.get("do") {
        None => {
            return Some((
                at("do"),
                format!("missing required field `do` (the action), expected one of: {expected}"),
            ))
        }
        Some(Value::String(name)) => name.as_str(),
        Some(v) => {
            return Some((
                at("do"),
                format!(
                    "expected an action name (a string), found {}; one of: {expected}",
                    describe(v)
                ),
            ))
        }
    };
    if !Action::NAMES.contains(&name) {
        return Some((
            at("do"),
            format!("unknown action `{name}`, expected one of: {expected}"),
        ));
    }
    let action_of = |fields: Map<String, Value>| Action::deserialize(Value::Object(fields));
    let mut action_fields = obj.clone();
    action_fields.remove("at_ms");
    let whole = action_of(action_fields).err()?.to_string();
    if let Some(field) = missing_field(&whole) {
        return Some((
            at(field),
            format!("missing required field `{field}` for action `{name}`"),
        ));
    }
    if let Some((field, rest)) = unknown_field(&whole) {
        return Some((
            at(field),
            format!("unknown field `{field}` for action `{name}`, {rest}"),
        ));
    }
    // A wrong type or value: try each field alone next to `do`. With only one field there,
    // serde reports that field's own error before it notices the missing ones.
    let mut culprits = Vec::new();
    for (key, value) in obj.iter().filter(|(k, _)| *k != "at_ms" && *k != "do") {
        let mut alone = Map::new();
        alone.insert("do".to_string(), Value::String(name.to_string()));
        alone.insert(key.clone(), value.clone());
        if let Err(e) = action_of(alone) {
            let message = e.to_string();
            if missing_field(&message).is_none() {
                culprits.push((key.as_str(), value, message));
            }
        }
    }
    let (key, value, message) = culprits
        .iter()
        .find(|(_, _, m)| *m == whole)
        .or(culprits.first())?;
    let message = if message.contains("untagged enum FaultEndpoint") {
        let names = FaultEndpoint::names().join(", ");
        match value {
            Value::String(s) => format!("unknown endpoint `{s}`, expected one of: {names}"),
            other => format!(
                "expected an endpoint name (a string), found {}; one of: {names}",
                describe(other)
            ),
        }
    } else {
        format!("{message} (action `{name}`)")
    };
    Some((at(key), message))
}

/// serde accepts and ignores extra fields on internally tagged unit variants (`crash`,
/// `restart`...) despite `deny_unknown_fields`; reject them here, as for every other action.
fn check_unit_steps(text: &str, s: &Scenario) -> Result<(), ScenarioError> {
    let takes_no_fields = |a: &Action| {
        serde_json::to_value(a)
            .ok()
            .and_then(|v| v.as_object().map(|o| o.len() == 1))
            .unwrap_or(false)
    };
    if !s.steps.iter().any(|step| takes_no_fields(&step.action)) {
        return Ok(());
    }
    let raw: Value = serde_json::from_str(text).map_err(|e| ScenarioError::whole(e.to_string()))?;
    let Some(steps) = raw.get("steps").and_then(Value::as_array) else {
        return Ok(());
    };
    for (i, (step, raw)) in s.steps.iter().zip(steps).enumerate() {
        if !takes_no_fields(&step.action) {
            continue;
        }
        let extra = raw
            .as_object()
            .and_then(|o| o.keys().find(|k| *k != "at_ms" && *k != "do"));
        if let Some(k) = extra {
            return Err(ScenarioError::at(
                format!("steps[{i}].{k}"),
                format!(
                    "unknown field `{k}`: action `{}` takes no fields besides `at_ms` and `do`",
                    step.action.name()
                ),
            ));
        }
    }
    Ok(())
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
        if name.is_empty() {
            return Err(ScenarioError::at(
                format!("topology.sessions[{i}]"),
                "session name is empty",
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err(ScenarioError::at(
                format!("topology.sessions[{i}]"),
                format!("session name {name:?} is repeated"),
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
    let c = &s.constants;
    for (field, value) in [
        ("sync_interval_ms", c.sync_interval_ms),
        ("heartbeat_ms", c.heartbeat_ms),
    ] {
        if value == Some(0) {
            return Err(ScenarioError::at(
                format!("constants.{field}"),
                "must be greater than 0 (it is the period of a repeating timer)",
            ));
        }
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
    let heartbeat = c.heartbeat_ms.unwrap_or(DEFAULT_HEARTBEAT_MS);
    if n.es_idle_timeout_ms <= heartbeat {
        return Err(ScenarioError::at(
            "network.es_idle_timeout_ms",
            format!(
                "{} does not exceed the heartbeat period {heartbeat} ms, so healthy idle streams would be declared dead; raise it or lower constants.heartbeat_ms",
                n.es_idle_timeout_ms
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
                        "tab {c} does not exist (topology.clients is {}, so tabs are 0 to {})",
                        s.topology.clients,
                        s.topology.clients - 1
                    ),
                ));
            }
        }
        if let Action::Latency { min_ms, max_ms, .. } = &step.action {
            if min_ms > max_ms {
                return Err(ScenarioError::at(
                    format!("steps[{i}].max_ms"),
                    format!("{max_ms} is below min_ms {min_ms}"),
                ));
            }
        }
        if let Action::InjectStatus { status, .. } = &step.action {
            if !(100..=599).contains(status) {
                return Err(ScenarioError::at(
                    format!("steps[{i}].status"),
                    format!("{status} is not an HTTP status, expected 100 to 599"),
                ));
            }
        }
    }
    Ok(())
}
