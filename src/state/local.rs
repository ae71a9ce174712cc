//! The state as a local file: written atomically (temp file, fsync, rename, fsync of the
//! directory) with mode 0600, under an OS lock on `<state>.lock` held for the whole run.
//!
//! The lock file carries the holder's name while a run is going. A run that ends (however it
//! ends, error or not) removes it; one that dies leaves it behind with its name, which is how the
//! next run knows the last one did not finish. The OS drops the lock of a dead process, so a
//! killed run never blocks the next one.
//!
//! Nothing is written or read through a link that someone else planted: the state directory must
//! be the user's (or root's) and not writable by everyone (unless sticky, as /tmp); the lock file
//! is opened without following a symbolic link and must be a regular file of the user's with one
//! name; the state file is read the same way. (The state itself is only ever replaced by a rename
//! of a fresh temporary file, never written in place.)

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
    let mut file = match open_no_follow(OpenOptions::new().read(true), path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(refused_link(path, "state file").unwrap_or(StateError::Io {
                action: "read",
                path: path.into(),
                source,
            }))
        }
    };
    check_file(&file, path, "state file", false)?;
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(|source| StateError::Io { action: "read", path: path.into(), source })?;
    State::from_json(&path.display().to_string(), &text).map(Some)
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
        let dir = parent_dir(state_path);
        fs::create_dir_all(&dir).map_err(io("create the directory of"))?;
        check_directory(&dir)?;
        // A run that ends removes the file; one that opened it just before may then lock the
        // removed file. It notices that the path no longer names what it locked, and tries again.
        for _ in 0..100 {
            let mut options = OpenOptions::new();
            options.read(true).write(true).create(true).truncate(false);
            let mut file = open_no_follow(&mut options, &path).map_err(|source| {
                refused_link(&path, "lock file").unwrap_or(StateError::Io {
                    action: "open",
                    path: path.clone(),
                    source,
                })
            })?;
            check_file(&file, &path, "lock file", true)?;
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
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

/// Open `path` with `options`, never through a symbolic link at its last component (that open
/// fails instead), and without blocking on a FIFO put in its place. A lock file created here is the
/// user's alone.
#[cfg(unix)]
fn open_no_follow(options: &mut OpenOptions, path: &Path) -> std::io::Result<File> {
    use rustix::fs::OFlags;
    use std::os::unix::fs::OpenOptionsExt;
    options.custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn open_no_follow(options: &mut OpenOptions, path: &Path) -> std::io::Result<File> {
    options.open(path)
}

/// The refusal for a path that is a symbolic link (why an open without following links failed).
fn refused_link(path: &Path, what: &str) -> Option<StateError> {
    let meta = fs::symlink_metadata(path).ok()?;
    if !meta.file_type().is_symlink() {
        return None;
    }
    let target = fs::read_link(path).map(|t| format!(" (to {})", t.display())).unwrap_or_default();
    Some(StateError::Unsafe {
        path: path.into(),
        reason: format!(
            "the {what} is a symbolic link{target}, and fargate-stack never writes or reads its state through one; \
             remove the link if you did not make it (and check who else can write to {}), or point --state at the \
             real file",
            parent_dir(path).display()
        ),
    })
}

/// The user this process acts as.
#[cfg(unix)]
fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Refuse a file opened as the state or its lock that is not a regular file of the user's (or, for
/// the lock, which is written in place, one with another name elsewhere: a hard link).
#[cfg(unix)]
fn check_file(file: &File, path: &Path, what: &str, single_link: bool) -> Result<(), StateError> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().map_err(|source| StateError::Io { action: "inspect", path: path.into(), source })?;
    let refuse = |reason: String| Err(StateError::Unsafe { path: path.into(), reason });
    if !meta.file_type().is_file() {
        return refuse(format!(
            "the {what} is not a regular file; remove it if you did not make it, or choose another --state"
        ));
    }
    let me = effective_uid();
    if meta.uid() != me {
        return refuse(format!(
            "the {what} belongs to uid {}, not to you (uid {me}); fargate-stack uses only its own files there: remove \
             it if it is not yours, or run as its owner",
            meta.uid()
        ));
    }
    if single_link && meta.nlink() > 1 {
        return refuse(format!(
            "the {what} has {} hard links (another name for the same file, which the lock would overwrite); remove it \
             and run again",
            meta.nlink()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_file(_file: &File, _path: &Path, _what: &str, _single_link: bool) -> Result<(), StateError> {
    Ok(())
}

/// Refuse a state directory that is not the user's (or root's), or that everyone may write to
/// without the sticky bit: whoever can write there can put a link where the lock or the state goes,
/// or swap the state for another.
#[cfg(unix)]
fn check_directory(dir: &Path) -> Result<(), StateError> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(dir).map_err(|source| StateError::Io {
        action: "inspect the directory of",
        path: dir.into(),
        source,
    })?;
    let refuse = |reason: String| Err(StateError::Unsafe { path: dir.into(), reason });
    let me = effective_uid();
    if meta.uid() != me && meta.uid() != 0 {
        return refuse(format!(
            "the state directory belongs to uid {}, not to you (uid {me}); keep the state in a directory of your own \
             (--state)",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o002 != 0 && mode & 0o1000 == 0 {
        return refuse(format!(
            "the state directory is writable by everyone (mode {mode:o}), who could plant a link where the state or \
             its lock goes; run `chmod o-w {}`, or keep the state elsewhere (--state)",
            dir.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_directory(_dir: &Path) -> Result<(), StateError> {
    Ok(())
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

    #[cfg(unix)]
    #[test]
    fn links_and_other_peoples_files_are_refused_and_nothing_is_written_through_them() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stack.json");
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let refused = |what: &str, needle: &str| {
            let err = LocalBackend::open(&path, "s", "r-1-1").err().unwrap_or_else(|| panic!("{what}: opened"));
            assert!(matches!(err, StateError::Unsafe { .. }) && err.to_string().contains(needle), "{what}: {err}");
            assert_eq!(fs::read_to_string(&victim).unwrap(), "precious", "{what}");
        };
        symlink(&victim, lock_path(&path)).unwrap();
        refused("linked lock", "the lock file is a symbolic link");
        fs::remove_file(lock_path(&path)).unwrap();
        // A FIFO where the state goes neither blocks the read nor is taken for a state.
        rustix::fs::mknodat(rustix::fs::CWD, &path, rustix::fs::FileType::Fifo, 0o600.into(), 0).unwrap();
        refused("fifo state", "the state file is not a regular file");
        assert!(matches!(read(&path), Err(StateError::Unsafe { .. })), "read-only commands refuse it too");
        fs::remove_file(&path).unwrap();
        symlink(&victim, &path).unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("the state file is a symbolic link"));
        fs::remove_file(&path).unwrap();
        // Someone else's lock file (possible to set up only as root).
        if effective_uid() == 0 {
            fs::write(lock_path(&path), "").unwrap();
            rustix::fs::chown(lock_path(&path), Some(rustix::process::Uid::from_raw(4242)), None).unwrap();
            refused("another user's lock", "belongs to uid 4242, not to you");
            fs::remove_file(lock_path(&path)).unwrap();
            rustix::fs::chown(dir.path(), Some(rustix::process::Uid::from_raw(4242)), None).unwrap();
            refused("another user's directory", "the state directory belongs to uid 4242");
            rustix::fs::chown(dir.path(), Some(rustix::process::Uid::from_raw(0)), None).unwrap();
        }
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        refused("open directory", "writable by everyone (mode 777)");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).unwrap();
        let (backend, _, _) = LocalBackend::open(&path, "s", "r-1-1").expect("a sticky directory is fine");
        let mode = fs::metadata(lock_path(&path)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the lock file is the user's alone");
        drop(backend);
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
