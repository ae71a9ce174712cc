//! What `state push` leaves at the local state's path: a pointer to where the state went, so that
//! every run in that directory uses the S3 state (or, read as a state, is refused naming it)
//! instead of finding no state and adopting the stack into a second one.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{StateError, SCHEMA_VERSION};

/// The field that tells a pointer from a state.
pub const MOVED_TO: &str = "moved_to";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pointer {
    pub schema_version: u32,
    pub stack: String,
    pub region: String,
    /// Where the state lives now: `s3://bucket/key`.
    pub moved_to: String,
    /// UTC, RFC 3339.
    pub moved_at: String,
    /// For people who open the file.
    #[serde(default)]
    pub note: String,
}

impl Pointer {
    pub fn new(stack: &str, region: &str, to: &str) -> Pointer {
        Pointer {
            schema_version: SCHEMA_VERSION,
            stack: stack.into(),
            region: region.into(),
            moved_to: to.into(),
            moved_at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            note: format!(
                "`fargate-stack state push` moved this stack's state to {to}; runs here use it. `state pull` brings it back."
            ),
        }
    }

    /// Refuse a pointer of another stack or region, as a state would be.
    pub fn check_matches(&self, origin: &str, stack: &str, region: &str) -> Result<(), StateError> {
        super::same_stack(origin, (&self.stack, &self.region), (stack, region))
    }
}

/// The pointer at `path`, if the file there is one (a missing file or a state is `None`).
pub fn read(path: &Path) -> Result<Option<Pointer>, StateError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StateError::Io { action: "read", path: path.into(), source }),
    };
    Ok(parse(&text))
}

/// A pointer, if `text` is one.
pub fn parse(text: &str) -> Option<Pointer> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    value.get(MOVED_TO)?;
    serde_json::from_value(value).ok()
}

/// Write the pointer in place of the state file (atomically, 0600, as a state).
pub fn write(path: &Path, pointer: &Pointer) -> Result<(), StateError> {
    let mut json = serde_json::to_vec_pretty(pointer).expect("a pointer serializes");
    json.push(b'\n');
    super::local::write_bytes_atomic(path, &json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pointer_is_told_from_a_state_and_a_state_reader_refuses_it_naming_the_location() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.json");
        assert_eq!(read(&path).unwrap(), None);
        std::fs::write(&path, crate::state::State::new("app", "us-east-1").to_json()).unwrap();
        assert_eq!(read(&path).unwrap(), None, "a state is no pointer");
        let pointer = Pointer::new("app", "us-east-1", "s3://team-state/stacks/app.json");
        write(&path, &pointer).unwrap();
        assert_eq!(read(&path).unwrap(), Some(pointer.clone()));
        let err = crate::state::local::read(&path).unwrap_err();
        assert!(err.to_string().contains("s3://team-state/stacks/app.json"), "{err}");
        assert!(pointer.check_matches("p", "app", "eu-west-1").is_err());
        assert!(pointer.check_matches("p", "app", "us-east-1").is_ok());
    }
}
