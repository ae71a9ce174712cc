//! The state: which AWS resources the stack owns. Only this module reads and writes it.
//!
//! A [`Store`] holds the state in memory and persists it through a [`Backend`] (a local file, or
//! an S3 object shared by a team: [`StateLocation`]) after every creation or deletion, before the
//! call that recorded it returns. Concurrent steps that finish together share one write (group
//! commit): a write in flight carries every change made before it started, and the steps that
//! queued behind it only wait for it.

pub mod local;
pub mod location;
pub mod pointer;
pub mod s3;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use local::LocalBackend;
pub use location::StateLocation;
pub use s3::S3Backend;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot {action} state file {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    /// A path of the local state that someone else could use to make a run write or read another
    /// file: refused before anything is written.
    #[error("refusing to use {}: {reason}", path.display())]
    Unsafe { path: PathBuf, reason: String },
    #[error("state file {path} is not valid JSON: {message}")]
    Corrupt { path: String, message: String },
    #[error("state file {path} has schema version {found}, newer than this fargate-stack understands ({SCHEMA_VERSION}); upgrade fargate-stack")]
    NewerSchema { path: String, found: u32 },
    #[error("state file {path} belongs to stack {found:?} in {found_region}, not {expected:?} in {expected_region}; pass --state for this stack")]
    OtherStack { path: String, found: String, found_region: String, expected: String, expected_region: String },
    #[error("state file {path} is locked by another fargate-stack run ({holder}); wait for it to finish")]
    Locked { path: String, holder: String },
    #[error("invalid state location {value:?}: {reason}")]
    BadLocation { value: String, reason: String },
    #[error(
        "state {location} is locked by another fargate-stack run: {holder} (lock ID {lock_id}). If that run is \
         still going, wait for it; if it died, remove its lock with `fargate-stack --state {location} unlock {lock_id}`"
    )]
    RemoteLocked { location: String, holder: String, lock_id: String },
    #[error(
        "state {location} was changed by someone else since this run read it (was this run's lock removed with \
         `unlock` while it was going?); stopped without overwriting it: run again to continue from the newer state"
    )]
    Conflict { location: String },
    #[error(
        "S3 bucket {bucket} does not exist (state {location}): create it with `fargate-stack state init s3://{bucket}`, \
         or check the name"
    )]
    NoBucket { bucket: String, location: String },
    #[error(
        "no permission to {action} {object} (AccessDenied): fargate-stack needs {permission}; `fargate-stack \
         policy` prints the IAM policy these commands need (\"Working as a team\" in the README explains it)"
    )]
    Denied { action: &'static str, object: String, permission: &'static str },
    #[error(
        "S3 bucket {bucket} does not belong to account {owner}, the account its states are kept in (S3 refused \
         the call naming that owner); nothing was read or written there. A bucket of that name in another account \
         must never get the states: check the name, and where the bucket went; if it is meant to be another \
         account's, give that account with --state-bucket-owner (or FARGATE_STACK_STATE_BUCKET_OWNER)"
    )]
    ForeignBucket { bucket: String, owner: String },
    #[error(
        "S3 bucket {bucket} is in {bucket_region}, but this run is in {region}: keep a stack's state in a bucket of \
         its region (`fargate-stack --region {region} state init s3://BUCKET`), or run in the bucket's region"
    )]
    WrongRegion { bucket: String, bucket_region: String, region: String },
    #[error("cannot {action} {object}: {message}")]
    Remote { action: &'static str, object: String, message: String },
    #[error(transparent)]
    Aws(Box<crate::error::aws::AwsError>),
    #[error(
        "{path} is not a state but a pointer left by `state push`: the state of this stack lives at {to}; run with \
         --state {to} (runs that use {path} as their default state follow it), or `state pull` it back"
    )]
    Moved { path: String, to: String },
    #[error("state {location} is not locked: nothing to unlock")]
    NotLocked { location: String },
    #[error("the lock on {location} has ID {lock_id} ({holder}), not {given}: nothing was removed")]
    LockMismatch { location: String, given: String, lock_id: String, holder: String },
}

impl StateError {
    /// Who holds the lock, when this is "locked by another run".
    pub fn lock_holder(&self) -> Option<&str> {
        match self {
            StateError::Locked { holder, .. } | StateError::RemoteLocked { holder, .. } => Some(holder),
            _ => None,
        }
    }
}

/// One AWS resource the stack owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// `service:type`, e.g. `ec2:vpc` (for people reading the file; the key decides the type).
    pub kind: String,
    /// The AWS identifier: an ID, a name or an ARN, whichever the delete call takes.
    pub id: String,
    /// Extra facts needed later (ARNs, DNS names, flags such as `retained`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
}

/// The config a successful `up` last applied, to notice a run with another config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// An absolute path, or `(built-in default)`.
    pub config: String,
    /// SHA-256 of the config text.
    pub sha256: String,
    pub at: String,
    /// What the applied config bills (the basis, not money): the next plan's "before".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bill: Vec<crate::bill::BilledLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub schema_version: u32,
    pub stack: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<Applied>,
    /// Set by `up` before its first change, cleared when it ends (with a failed step too, as a local
    /// lock file is removed): a state that has it was left by a run that was killed or interrupted,
    /// whose last creations may not be recorded (they are found by tag and taken back without
    /// asking). Names that run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unfinished: Option<String>,
    /// The `[tags]` the tool put on the stack's resources (key → value): a key the config drops is
    /// taken off only if it is here, so tags someone else added are never touched. While an `up`
    /// runs it holds the keys of both the old and the new `[tags]` (a kill mid-way loses neither);
    /// a finished `up` sets it to the config's. Absent in a state written before it existed: the
    /// config's `[tags]` are taken as the applied ones. Not written while empty (a stack without
    /// `[tags]` has the state it had before the record existed).
    #[serde(default, skip_serializing_if = "no_user_tags")]
    pub user_tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub resources: BTreeMap<String, Recorded>,
}

fn no_user_tags(tags: &Option<BTreeMap<String, String>>) -> bool {
    tags.as_ref().is_none_or(BTreeMap::is_empty)
}

impl State {
    pub fn new(stack: &str, region: &str) -> State {
        State {
            schema_version: SCHEMA_VERSION,
            stack: stack.into(),
            region: region.into(),
            applied: None,
            unfinished: None,
            user_tags: None,
            resources: BTreeMap::new(),
        }
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

    /// Parse and check the schema version first, so a newer file gets the upgrade message.
    pub fn from_json(origin: &str, text: &str) -> Result<State, StateError> {
        let corrupt = |e: serde_json::Error| StateError::Corrupt { path: origin.into(), message: e.to_string() };
        let value: serde_json::Value = serde_json::from_str(text).map_err(corrupt)?;
        let found = value.get("schema_version").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
        if found > SCHEMA_VERSION {
            return Err(StateError::NewerSchema { path: origin.into(), found });
        }
        if let Some(to) = value.get(pointer::MOVED_TO).and_then(|v| v.as_str()) {
            return Err(StateError::Moved { path: origin.into(), to: to.to_string() });
        }
        serde_json::from_value(value).map_err(corrupt)
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut json = serde_json::to_vec_pretty(self).expect("state serializes");
        json.push(b'\n');
        json
    }

    /// Refuse a state of another stack or region.
    pub fn check_matches(&self, origin: &str, stack: &str, region: &str) -> Result<(), StateError> {
        same_stack(origin, (&self.stack, &self.region), (stack, region))
    }
}

/// Refuse a state (or a pointer to one) of another stack or region: `found` and `expected` are
/// (stack, region).
pub fn same_stack(origin: &str, found: (&str, &str), expected: (&str, &str)) -> Result<(), StateError> {
    if found != expected {
        return Err(StateError::OtherStack {
            path: origin.into(),
            found: found.0.into(),
            found_region: found.1.into(),
            expected: expected.0.into(),
            expected_region: expected.1.into(),
        });
    }
    Ok(())
}

/// Where a state is kept.
#[async_trait]
pub trait Backend: Send + Sync {
    /// For messages: a path or a URI.
    fn location(&self) -> String;
    async fn save(&self, state: &State) -> Result<(), StateError>;
    /// The stack is gone: delete the stored state.
    async fn remove(&self) -> Result<(), StateError>;
    /// End of the run: give up the lock.
    async fn release(&self);
}

struct Versioned {
    state: State,
    version: u64,
}

/// The state of one run, in memory, persisted after every change.
pub struct Store {
    /// None for commands that change nothing (`status`, `up --dry-run`): changes stay in memory.
    backend: Option<Arc<dyn Backend>>,
    location: String,
    current: Mutex<Versioned>,
    /// The version last written; held while a write is in flight.
    persisted: tokio::sync::Mutex<u64>,
    interrupted: Option<String>,
    /// Changes stay in memory while set (see [`Store::hold`]).
    holding: AtomicBool,
}

impl Store {
    pub fn read_only(location: String, state: State) -> Store {
        Store::build(None, location, state, None)
    }

    pub fn writable(backend: Arc<dyn Backend>, state: State, interrupted: Option<String>) -> Store {
        let location = backend.location();
        Store::build(Some(backend), location, state, interrupted)
    }

    fn build(backend: Option<Arc<dyn Backend>>, location: String, state: State, interrupted: Option<String>) -> Store {
        // A local lock file left by a run that died, else the mark of an `up` that did not finish.
        let interrupted = interrupted.or_else(|| state.unfinished.clone());
        Store {
            backend,
            location,
            current: Mutex::new(Versioned { state, version: 0 }),
            persisted: tokio::sync::Mutex::new(0),
            interrupted,
            holding: AtomicBool::new(false),
        }
    }

    /// Keep changes in memory until [`Store::commit_held`]: what `up`'s look before any change finds
    /// by tag is the stack's only once the run may adopt it, so a refused run writes nothing.
    pub fn hold(&self) {
        self.holding.store(true, Ordering::SeqCst);
    }

    /// Write what was held (if anything changed), and every change from now on. `changing`: the
    /// command that is about to change the stack, marked in the state as not finished (see
    /// [`State::unfinished`]) until it says otherwise.
    pub async fn commit_held(&self, changing: Option<&str>) -> Result<(), StateError> {
        if let Some(command) = changing {
            let run = format!(
                "{command} (pid {} on {} since {})",
                std::process::id(),
                gethostname::gethostname().to_string_lossy(),
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
            );
            let mut current = self.current.lock().expect("state lock");
            if current.state.unfinished.replace(run).is_none() {
                current.version += 1;
            }
        }
        self.holding.store(false, Ordering::SeqCst);
        let version = self.current.lock().expect("state lock").version;
        self.persist(version).await
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    /// `Some(holder)` when the last run on this state died part-way.
    pub fn interrupted(&self) -> Option<&str> {
        self.interrupted.as_deref()
    }

    pub fn snapshot(&self) -> State {
        self.current.lock().expect("state lock").state.clone()
    }

    pub fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.current.lock().expect("state lock").state)
    }

    /// Change the state with `f` (which says whether it changed anything) and persist it before
    /// returning. Writes that queue behind one in flight are covered by the next single write.
    pub async fn update(&self, f: impl FnOnce(&mut State) -> bool) -> Result<(), StateError> {
        let mine = {
            let mut current = self.current.lock().expect("state lock");
            if !f(&mut current.state) {
                return Ok(());
            }
            current.version += 1;
            current.version
        };
        if self.holding.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.persist(mine).await
    }

    /// Write the state unless version `mine` (or a later one) is already written.
    async fn persist(&self, mine: u64) -> Result<(), StateError> {
        let Some(backend) = &self.backend else { return Ok(()) };
        let mut persisted = self.persisted.lock().await;
        if *persisted >= mine {
            return Ok(());
        }
        let (snapshot, version) = {
            let current = self.current.lock().expect("state lock");
            (current.state.clone(), current.version)
        };
        backend.save(&snapshot).await?;
        *persisted = version;
        Ok(())
    }

    /// Delete the stored state once it records nothing (the stack is gone). True if it did.
    pub async fn remove_if_empty(&self) -> Result<bool, StateError> {
        let Some(backend) = &self.backend else { return Ok(false) };
        if !self.read(|s| s.resources.is_empty()) {
            return Ok(false);
        }
        let _writing = self.persisted.lock().await;
        backend.remove().await?;
        Ok(true)
    }

    /// Give up the lock; the end of every run that took one.
    pub async fn release(&self) {
        if let Some(backend) = &self.backend {
            backend.release().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A backend that counts its writes and takes a while for each.
    struct Slow {
        writes: AtomicUsize,
        last: Mutex<Option<State>>,
    }

    #[async_trait]
    impl Backend for Slow {
        fn location(&self) -> String {
            "memory".into()
        }
        async fn save(&self, state: &State) -> Result<(), StateError> {
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.writes.fetch_add(1, Ordering::SeqCst);
            *self.last.lock().unwrap() = Some(state.clone());
            Ok(())
        }
        async fn remove(&self) -> Result<(), StateError> {
            Ok(())
        }
        async fn release(&self) {}
    }

    fn put(key: &str) -> impl FnOnce(&mut State) -> bool + '_ {
        move |s: &mut State| {
            s.resources.insert(key.into(), Recorded { kind: "k".into(), id: key.into(), attrs: BTreeMap::new() });
            true
        }
    }

    #[tokio::test(start_paused = true)]
    async fn every_change_is_persisted_before_update_returns_and_concurrent_ones_share_writes() {
        let backend = Arc::new(Slow { writes: AtomicUsize::new(0), last: Mutex::new(None) });
        let store = Arc::new(Store::writable(backend.clone(), State::new("s", "r"), None));
        store.update(put("a")).await.unwrap();
        assert_eq!(backend.writes.load(Ordering::SeqCst), 1);
        assert!(backend.last.lock().unwrap().as_ref().unwrap().resources.contains_key("a"));
        // Ten steps finishing at once: every one sees its change on disk, in far fewer writes.
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let store = store.clone();
                let backend = backend.clone();
                tokio::spawn(async move {
                    let key = format!("k{i}");
                    store.update(put(&key)).await.unwrap();
                    assert!(backend.last.lock().unwrap().as_ref().unwrap().resources.contains_key(&key), "{key}");
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let writes = backend.writes.load(Ordering::SeqCst);
        assert!((2..=3).contains(&writes), "{writes} writes for 11 changes");
        // No change, no write.
        store.update(|_| false).await.unwrap();
        assert_eq!(backend.writes.load(Ordering::SeqCst), writes);
    }

    #[tokio::test(start_paused = true)]
    async fn held_changes_are_written_only_when_committed_and_a_run_left_unfinished_is_reported() {
        let backend = Arc::new(Slow { writes: AtomicUsize::new(0), last: Mutex::new(None) });
        let store = Store::writable(backend.clone(), State::new("s", "r"), None);
        store.hold();
        store.update(put("a")).await.unwrap();
        assert_eq!(backend.writes.load(Ordering::SeqCst), 0, "held: nothing written (a refused run)");
        store.commit_held(Some("up")).await.unwrap();
        assert_eq!(backend.writes.load(Ordering::SeqCst), 1, "one write for all that was held, and the mark");
        let written = backend.last.lock().unwrap().clone().unwrap();
        assert!(written.resources.contains_key("a") && written.unfinished.as_deref().unwrap().starts_with("up (pid "));
        store.commit_held(None).await.unwrap();
        assert_eq!(backend.writes.load(Ordering::SeqCst), 1, "nothing new, no write");
        // The next run on that state knows the last one did not finish.
        let next = Store::writable(backend.clone(), written, None);
        assert!(next.interrupted().unwrap().starts_with("up (pid "));
        assert_eq!(Store::writable(backend, State::new("s", "r"), None).interrupted(), None);
    }

    #[test]
    fn json_checks_version_before_shape() {
        assert!(matches!(State::from_json("f", "{not json"), Err(StateError::Corrupt { .. })));
        assert!(matches!(
            State::from_json("f", r#"{"schema_version": 99, "whatever": true}"#),
            Err(StateError::NewerSchema { found: 99, .. })
        ));
        let state = State::new("s", "us-east-1");
        assert_eq!(State::from_json("f", std::str::from_utf8(&state.to_json()).unwrap()).unwrap(), state);
        let err = state.check_matches("f", "other", "us-east-1").unwrap_err();
        assert!(err.to_string().contains("\"s\""), "{err}");
    }
}
