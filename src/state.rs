//! The state file: which AWS resources this stack owns. Only this module touches it.
//!
//! Written after every single creation or deletion, atomically (temp file, fsync, rename, fsync of
//! the directory), mode 0600, so a run killed at any moment leaves a file a later run continues from.
//! A lock file beside it keeps two runs from interleaving.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot {action} state file {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("state file {path} is not valid JSON: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("state file {path} has schema version {found}, newer than this fargate-stack understands ({SCHEMA_VERSION}); upgrade fargate-stack")]
    NewerSchema { path: PathBuf, found: u32 },
    #[error("state file {path} belongs to stack {found:?} in {found_region}, not {expected:?} in {expected_region}; pass --state for this stack")]
    OtherStack { path: PathBuf, found: String, found_region: String, expected: String, expected_region: String },
    #[error("state file {path} is locked by another fargate-stack run ({holder}); wait for it to finish")]
    Locked { path: PathBuf, holder: String },
}

/// One AWS resource the stack owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// `service:type`, e.g. `ec2:vpc`.
    pub kind: String,
    /// The AWS identifier: an ID, a name or an ARN, whichever the delete call takes.
    pub id: String,
    /// Extra facts needed later (ARNs, DNS names, flags such as `retained`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub schema_version: u32,
    pub stack: String,
    pub region: String,
    #[serde(default)]
    pub resources: BTreeMap<String, Recorded>,
}

impl State {
    pub fn new(stack: &str, region: &str) -> State {
        State { schema_version: SCHEMA_VERSION, stack: stack.into(), region: region.into(), resources: BTreeMap::new() }
    }

    pub fn get(&self, key: &str) -> Option<&Recorded> {
        self.resources.get(key)
    }

    pub fn id(&self, key: &str) -> Option<String> {
        self.resources.get(key).map(|r| r.id.clone())
    }

    pub fn attr(&self, key: &str, attr: &str) -> Option<String> {
        self.resources.get(key).and_then(|r| r.attrs.get(attr).cloned())
    }
}

/// The state file on disk, held under an exclusive lock for the life of this value.
pub struct StateFile {
    path: PathBuf,
    /// None for a read-only view, whose changes stay in memory.
    lock: Option<File>,
    state: State,
    /// The holder a run that died (killed, crashed) left in the lock file, if any.
    interrupted: Option<String>,
}

impl StateFile {
    /// Lock and load the state at `path`, or start an empty one. Checks schema, stack and region.
    pub fn open(path: &Path, stack: &str, region: &str) -> Result<StateFile, StateError> {
        let (lock, interrupted) = lock(path)?;
        let state = match read(path)? {
            Some(state) => {
                check_matches(path, &state, stack, region)?;
                state
            }
            None => State::new(stack, region),
        };
        Ok(StateFile { path: path.to_path_buf(), lock: Some(lock), state, interrupted })
    }

    /// `Some(holder)` when the last run on this state did not finish (its lock was released by the
    /// OS when it died, but its name was never cleared).
    pub fn interrupted(&self) -> Option<&str> {
        self.interrupted.as_deref()
    }

    /// A view of a state for commands that change nothing (`status`, `up --dry-run`): no lock, no writes.
    pub fn read_only(path: &Path, state: State) -> StateFile {
        StateFile { path: path.to_path_buf(), lock: None, state, interrupted: None }
    }

    /// Delete the file once it records nothing (the stack is gone).
    pub fn remove_if_empty(&self) -> Result<bool, StateError> {
        if self.lock.is_none() || !self.state.resources.is_empty() {
            return Ok(false);
        }
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
            Err(source) => Err(StateError::Io { action: "remove", path: self.path.clone(), source }),
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// Record a resource and persist at once.
    pub fn put(&mut self, key: &str, record: Recorded) -> Result<(), StateError> {
        if self.state.resources.get(key) == Some(&record) {
            return Ok(());
        }
        self.state.resources.insert(key.to_string(), record);
        self.save()
    }

    /// Forget a resource (confirmed gone) and persist at once.
    pub fn remove(&mut self, key: &str) -> Result<(), StateError> {
        if self.state.resources.remove(key).is_some() {
            self.save()?;
        }
        Ok(())
    }

    fn save(&self) -> Result<(), StateError> {
        if self.lock.is_none() {
            return Ok(());
        }
        write_atomic(&self.path, &self.state)
    }
}

/// Read a state file without locking (for `status`, which changes nothing). `None` if absent.
pub fn read(path: &Path) -> Result<Option<State>, StateError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StateError::Io { action: "read", path: path.into(), source }),
    };
    // Check the version before the shape, so a newer file gets the upgrade message, not a parse error.
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| StateError::Corrupt { path: path.into(), message: e.to_string() })?;
    let found = value.get("schema_version").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
    if found > SCHEMA_VERSION {
        return Err(StateError::NewerSchema { path: path.into(), found });
    }
    let state: State =
        serde_json::from_value(value).map_err(|e| StateError::Corrupt { path: path.into(), message: e.to_string() })?;
    Ok(Some(state))
}

/// Check a loaded state against the stack being run.
pub fn check_matches(path: &Path, state: &State, stack: &str, region: &str) -> Result<(), StateError> {
    if state.stack != stack || state.region != region {
        return Err(StateError::OtherStack {
            path: path.into(),
            found: state.stack.clone(),
            found_region: state.region.clone(),
            expected: stack.into(),
            expected_region: region.into(),
        });
    }
    Ok(())
}

fn write_atomic(path: &Path, state: &State) -> Result<(), StateError> {
    let io = |action| move |source| StateError::Io { action, path: path.into(), source };
    let dir = parent_dir(path);
    fs::create_dir_all(&dir).map_err(io("create the directory of"))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".state-")
        .permissions(owner_only())
        .tempfile_in(&dir)
        .map_err(io("create a temporary file for"))?;
    let mut json = serde_json::to_vec_pretty(state).expect("state serializes");
    json.push(b'\n');
    tmp.write_all(&json).map_err(io("write"))?;
    tmp.as_file().sync_all().map_err(io("fsync"))?;
    tmp.persist(path).map_err(|e| StateError::Io { action: "rename into", path: path.into(), source: e.error })?;
    // The rename is durable only once the directory entry is.
    File::open(&dir).and_then(|d| d.sync_all()).map_err(io("fsync the directory of"))?;
    Ok(())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(unix)]
fn owner_only() -> fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    fs::Permissions::from_mode(0o600)
}

#[cfg(not(unix))]
fn owner_only() -> fs::Permissions {
    fs::metadata(".").map(|m| m.permissions()).expect("cwd metadata")
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    path.with_file_name(name)
}

/// A run that ends normally clears its name from the lock file; one that dies leaves it there.
impl Drop for StateFile {
    fn drop(&mut self) {
        if let Some(lock) = &self.lock {
            let _ = lock.set_len(0);
            let _ = lock.sync_all();
        }
    }
}

/// Take the advisory lock beside the state file and write who holds it. The OS releases the lock
/// when the process dies, so a killed run never leaves a lock that blocks the next one; the name
/// it leaves behind tells the next run that it was interrupted (returned as the second value).
fn lock(path: &Path) -> Result<(File, Option<String>), StateError> {
    let lock_path = lock_path(path);
    let io = |action| {
        let lock_path = lock_path.clone();
        move |source| StateError::Io { action, path: lock_path, source }
    };
    fs::create_dir_all(parent_dir(path)).map_err(io("create the directory of"))?;
    let mut file =
        OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&lock_path).map_err(io("open"))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(StateError::Locked {
                path: path.into(),
                holder: if holder.is_empty() { "unknown holder".into() } else { holder.to_string() },
            });
        }
        Err(std::fs::TryLockError::Error(source)) => {
            return Err(StateError::Io { action: "lock", path: lock_path, source })
        }
    }
    let mut previous = String::new();
    let _ = file.read_to_string(&mut previous);
    let previous = Some(previous.trim().to_string()).filter(|p| !p.is_empty());
    let holder = format!(
        "pid {} on {} since {}",
        std::process::id(),
        gethostname::gethostname().to_string_lossy(),
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    );
    file.set_len(0).map_err(io("truncate"))?;
    file.rewind().map_err(io("rewind"))?;
    file.write_all(holder.as_bytes()).map_err(io("write"))?;
    file.sync_all().map_err(io("fsync"))?;
    Ok((file, previous))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str) -> Recorded {
        Recorded { kind: "ec2:vpc".into(), id: id.into(), attrs: BTreeMap::new() }
    }

    #[test]
    fn put_persists_each_change_with_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/stack.json");
        {
            let mut file = StateFile::open(&path, "s", "us-east-1").unwrap();
            assert!(!path.exists(), "nothing written before the first resource");
            file.put("vpc", rec("vpc-1")).unwrap();
            let on_disk = read(&path).unwrap().unwrap();
            assert_eq!(on_disk.id("vpc").as_deref(), Some("vpc-1"));
            assert_eq!(on_disk.schema_version, SCHEMA_VERSION);
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            }
            file.remove("vpc").unwrap();
            assert!(read(&path).unwrap().unwrap().resources.is_empty());
        }
        // No temp files left behind.
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".state-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn second_open_is_refused_while_locked_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stack.json");
        let first = StateFile::open(&path, "s", "r-1-1").unwrap();
        let err = StateFile::open(&path, "s", "r-1-1").err().expect("locked");
        let msg = err.to_string();
        assert!(msg.contains(&format!("pid {}", std::process::id())), "{msg}");
        drop(first);
        let again = StateFile::open(&path, "s", "r-1-1").expect("lock released on drop");
        assert_eq!(again.interrupted(), None, "a run that ended cleanly is not reported");
        // A run that dies leaves its name behind: simulate by leaking the lock's content.
        std::mem::drop(again);
        fs::write(lock_path(&path), "pid 99999 on elsewhere since 2026-01-01T00:00:00Z").unwrap();
        let after_crash = StateFile::open(&path, "s", "r-1-1").unwrap();
        assert_eq!(after_crash.interrupted(), Some("pid 99999 on elsewhere since 2026-01-01T00:00:00Z"));
    }

    #[test]
    fn rejects_corrupt_newer_and_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stack.json");
        fs::write(&path, "{not json").unwrap();
        assert!(matches!(read(&path), Err(StateError::Corrupt { .. })));
        fs::write(&path, r#"{"schema_version": 99, "whatever": true}"#).unwrap();
        assert!(matches!(read(&path), Err(StateError::NewerSchema { found: 99, .. })));
        fs::write(&path, serde_json::to_string(&State::new("other", "us-east-1")).unwrap()).unwrap();
        let err = StateFile::open(&path, "mine", "us-east-1").err().unwrap();
        assert!(err.to_string().contains("\"other\""), "{err}");
        let err = StateFile::open(&path, "other", "eu-west-1").err().unwrap();
        assert!(err.to_string().contains("us-east-1"), "{err}");
    }
}
