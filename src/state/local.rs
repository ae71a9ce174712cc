//! The state as a local file: written atomically (temp file, fsync, rename, fsync of the
//! directory) with mode 0600, under an OS lock on `<state>.lock` held for the whole run.
//!
//! The lock file carries the holder's name while a run is going. A run that ends (however it
//! ends, error or not) removes it; one that dies leaves it behind with its name, which is how the
//! next run knows the last one did not finish. The OS drops the lock of a dead process, so a
//! killed run never blocks the next one.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Backend, State, StateError};

pub struct LocalBackend {
    path: PathBuf,
    lock: Mutex<Option<LockGuard>>,
}

impl LocalBackend {
    /// Lock the state at `path` and load it, or start an empty one. Checks schema, stack and
    /// region. Returns the holder of a previous run that died, if any.
    pub fn open(path: &Path, stack: &str, region: &str) -> Result<(LocalBackend, State, Option<String>), StateError> {
        let (guard, interrupted) = LockGuard::take(path)?;
        // On an error below the guard is dropped and the lock file removed: a run that fails
        // cleanly is not reported as interrupted next time.
        let state = match read(path)? {
            Some(state) => {
                state.check_matches(&path.display().to_string(), stack, region)?;
                state
            }
            None => State::new(stack, region),
        };
        Ok((LocalBackend { path: path.to_path_buf(), lock: Mutex::new(Some(guard)) }, state, interrupted))
    }
}

impl LocalBackend {
    /// Is there a state file (rather than a state that starts empty)?
    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// Move the state file aside to `<file>.<suffix>` (after `state push`): kept as a backup, read
    /// by nothing.
    pub fn set_aside(&self, suffix: &str) -> Result<PathBuf, StateError> {
        let mut name = self.path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(format!(".{suffix}"));
        let to = self.path.with_file_name(name);
        let io = |action| {
            let path = self.path.clone();
            move |source| StateError::Io { action, path, source }
        };
        fs::rename(&self.path, &to).map_err(io("move aside"))?;
        File::open(parent_dir(&self.path)).and_then(|d| d.sync_all()).map_err(io("fsync the directory of"))?;
        Ok(to)
    }
}

#[async_trait]
impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    async fn save(&self, state: &State) -> Result<(), StateError> {
        write_atomic(&self.path, state)
    }

    async fn remove(&self) -> Result<(), StateError> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StateError::Io { action: "remove", path: self.path.clone(), source }),
        }
    }

    async fn release(&self) {
        self.lock.lock().expect("lock guard").take();
    }
}

/// Read a state file without locking (for commands that change nothing). `None` if absent.
pub fn read(path: &Path) -> Result<Option<State>, StateError> {
    match fs::read_to_string(path) {
        Ok(text) => State::from_json(&path.display().to_string(), &text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Io { action: "read", path: path.into(), source }),
    }
}

fn write_atomic(path: &Path, state: &State) -> Result<(), StateError> {
    write_bytes_atomic(path, &state.to_json())
}

/// Write `bytes` to `path` atomically with mode 0600 (a state, or the pointer `state push` leaves).
pub(super) fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let io = |action| move |source| StateError::Io { action, path: path.into(), source };
    let dir = parent_dir(path);
    fs::create_dir_all(&dir).map_err(io("create the directory of"))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".state-")
        .permissions(owner_only())
        .tempfile_in(&dir)
        .map_err(io("create a temporary file for"))?;
    tmp.write_all(bytes).map_err(io("write"))?;
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

pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    path.with_file_name(name)
}

/// The OS lock on `<state>.lock`, with the holder's name written in it. Dropping it removes the
/// file (while still locked), then closes it.
struct LockGuard {
    file: File,
    path: PathBuf,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
        let _ = self.file.set_len(0);
    }
}

impl LockGuard {
    fn take(state_path: &Path) -> Result<(LockGuard, Option<String>), StateError> {
        let path = lock_path(state_path);
        let io = |action| {
            let path = path.clone();
            move |source| StateError::Io { action, path, source }
        };
        fs::create_dir_all(parent_dir(state_path)).map_err(io("create the directory of"))?;
        // A run that ends removes the file; one that opened it just before may then lock the
        // removed file. It notices that the path no longer names what it locked, and tries again.
        for _ in 0..100 {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io("open"))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    let holder = holder.trim();
                    return Err(StateError::Locked {
                        path: state_path.display().to_string(),
                        holder: if holder.is_empty() { "unknown holder".into() } else { holder.to_string() },
                    });
                }
                Err(std::fs::TryLockError::Error(source)) => {
                    return Err(StateError::Io { action: "lock", path, source })
                }
            }
            if !same_file(&file, &path) {
                continue;
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
            return Ok((LockGuard { file, path }, previous));
        }
        Err(StateError::Locked {
            path: state_path.display().to_string(),
            holder: "runs that keep starting and ending".into(),
        })
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Recorded, Store};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn rec(id: &str) -> Recorded {
        Recorded { kind: "ec2:vpc".into(), id: id.into(), attrs: BTreeMap::new() }
    }

    fn open(path: &Path, stack: &str, region: &str) -> Result<(Store, Arc<LocalBackend>), StateError> {
        let (backend, state, interrupted) = LocalBackend::open(path, stack, region)?;
        let backend = Arc::new(backend);
        Ok((Store::writable(backend.clone(), state, interrupted), backend))
    }

    #[tokio::test]
    async fn each_change_is_on_disk_with_0600_and_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/stack.json");
        let (store, _) = open(&path, "s", "us-east-1").unwrap();
        assert!(!path.exists(), "nothing written before the first resource");
        store.update(|s| s.resources.insert("vpc".into(), rec("vpc-1")).is_none()).await.unwrap();
        let on_disk = read(&path).unwrap().unwrap();
        assert_eq!(on_disk.id("vpc").as_deref(), Some("vpc-1"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        store.update(|s| s.resources.remove("vpc").is_some()).await.unwrap();
        assert!(read(&path).unwrap().unwrap().resources.is_empty());
        assert!(store.remove_if_empty().await.unwrap());
        assert!(!path.exists());
        store.release().await;
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().filter_map(|e| e.ok()).collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[tokio::test]
    async fn a_second_open_is_refused_naming_the_holder_and_the_lock_file_goes_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stack.json");
        let (first, _) = open(&path, "s", "r-1-1").unwrap();
        let err = open(&path, "s", "r-1-1").err().expect("locked");
        assert!(err.to_string().contains(&format!("pid {}", std::process::id())), "{err}");
        first.release().await;
        assert!(!lock_path(&path).exists(), "the lock file is removed when the run ends");
        let (again, _) = open(&path, "s", "r-1-1").expect("lock released");
        assert_eq!(again.interrupted(), None, "a run that ended is not reported");
        again.release().await;
    }

    #[test]
    fn a_run_that_died_is_reported_and_one_that_failed_cleanly_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stack.json");
        // A run that dies leaves its name in the lock file.
        fs::write(lock_path(&path), "pid 99999 on elsewhere since 2026-01-01T00:00:00Z").unwrap();
        let (_, _, interrupted) = LocalBackend::open(&path, "s", "r-1-1").unwrap();
        assert_eq!(interrupted.as_deref(), Some("pid 99999 on elsewhere since 2026-01-01T00:00:00Z"));
        // A run that fails on a bad state file ends cleanly: no lock file, no report next time.
        fs::write(&path, "{not json").unwrap();
        assert!(matches!(LocalBackend::open(&path, "s", "r-1-1"), Err(StateError::Corrupt { .. })));
        assert!(!lock_path(&path).exists());
        fs::remove_file(&path).unwrap();
        let (_, _, interrupted) = LocalBackend::open(&path, "s", "r-1-1").unwrap();
        assert_eq!(interrupted, None);
    }

    #[test]
    fn rejects_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stack.json");
        fs::write(&path, String::from_utf8(State::new("other", "us-east-1").to_json()).unwrap()).unwrap();
        let err = LocalBackend::open(&path, "mine", "us-east-1").err().unwrap();
        assert!(err.to_string().contains("\"other\""), "{err}");
        let err = LocalBackend::open(&path, "other", "eu-west-1").err().unwrap();
        assert!(err.to_string().contains("us-east-1"), "{err}");
    }
}
