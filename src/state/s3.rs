//! The state as an S3 object, shared by a team, with a lock made of S3 conditional writes (as
//! Terraform's S3 backend since 1.10: no DynamoDB table).
//!
//! - The lock is the object `<key>.lock`, created with `If-None-Match: *`: exactly one run can
//!   create it. Its body says who holds it ([`LockInfo`]). The run deletes it at its end, with
//!   `If-Match` on the ETag it created, so it never removes someone else's lock.
//! - Every state write is a `PutObject` with `If-Match` on the ETag last read or written (or
//!   `If-None-Match: *` when there was no state): a run that lost its lock (`unlock` while it was
//!   still going) cannot overwrite a newer state; it stops instead.
//! - A run that dies keeps its lock: the next run fails at once naming the holder and the lock ID,
//!   and `fargate-stack unlock LOCK_ID` removes it. The state written up to the death is intact.
//!
//! S3 answers `409 ConditionalRequestConflict` when two conditional writes race on one key: the
//! write did not happen and is retried. A write whose answer was lost after S3 carried it out is
//! retried by the SDK and then meets its own ETag change (412): the object is read back, and if
//! it holds exactly what was written, the write counts as done.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use serde::{Deserialize, Serialize};

use super::location::LOCK_SUFFIX;
use super::{Backend, State, StateError};
use crate::access::{Permission, Verb};
use crate::error::aws::AwsError;

/// Retries of a conditional write that raced another one (409).
const CONFLICT_RETRIES: u32 = 6;

/// Who holds a lock: the body of the lock object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub lock_id: String,
    /// The user who started the run (`$USER`).
    pub holder: String,
    pub host: String,
    pub pid: u32,
    /// UTC, RFC 3339.
    pub started: String,
    /// The command that holds it: `up`, `down`, `state push`...
    pub command: String,
    #[serde(default)]
    pub version: String,
}

impl LockInfo {
    pub fn new(command: &str) -> LockInfo {
        let user = ["USER", "LOGNAME", "USERNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(user_of_uid);
        LockInfo {
            lock_id: new_lock_id(),
            holder: user,
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            pid: std::process::id(),
            started: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            command: command.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// `up by alice on build-7 (pid 4242) since 2026-11-25T17:02:11Z`
    pub fn describe(&self) -> String {
        format!("{} by {} on {} (pid {}) since {}", self.command, self.holder, self.host, self.pid, self.started)
    }
}

/// The name of the user the process runs as, from the user database (CI containers often have no
/// `$USER`); `uid N` when it has no entry.
#[cfg(unix)]
fn user_of_uid() -> String {
    let uid = nix::unistd::getuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => format!("uid {uid}"),
    }
}

#[cfg(not(unix))]
fn user_of_uid() -> String {
    "unknown user".into()
}

/// A random ID in the UUID layout; only its uniqueness matters.
fn new_lock_id() -> String {
    let hex = format!("{:032x}", fastrand::u128(..));
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// A conditional request S3 refused, or an object that is not there.
pub(crate) enum Refused {
    /// 412: the ETag did not match (or an object exists, for `If-None-Match: *`).
    Precondition,
    /// 404: no such key.
    Missing,
}

/// How an S3 call failed.
pub(crate) enum Failure {
    Refused(Refused),
    /// 409: another conditional request on the key was in progress; nothing was done.
    Race,
    Fatal(StateError),
}

/// What a call was doing, for the messages.
#[derive(Clone, Copy)]
enum Op {
    ReadState,
    WriteState,
    DeleteState,
    TakeLock,
    ReadLock,
    ReleaseLock,
}

impl Op {
    fn action(self) -> &'static str {
        match self {
            Op::ReadState => "read the state",
            Op::WriteState => "write the state",
            Op::DeleteState => "delete the state",
            Op::TakeLock => "take the lock",
            Op::ReadLock => "read the lock",
            Op::ReleaseLock => "remove the lock",
        }
    }

    fn permission(self) -> &'static str {
        match self {
            Op::ReadState | Op::ReadLock => {
                "s3:GetObject on it (and s3:ListBucket on the bucket: without it S3 answers a missing object with 403)"
            }
            Op::WriteState | Op::TakeLock => "s3:PutObject on it",
            Op::DeleteState | Op::ReleaseLock => "s3:DeleteObject on it",
        }
    }
}

/// One bucket in one region, owned by one account, with the conditional object calls the state
/// needs. Every call names the owner (`ExpectedBucketOwner`): should the bucket's name ever belong
/// to another account (deleted, then created there), S3 refuses the call instead of handing that
/// account the states and locks.
#[derive(Clone)]
pub struct Bucket {
    client: Client,
    name: String,
    region: String,
    owner: String,
}

impl Bucket {
    pub fn new(client: &Client, name: &str, region: &str, owner: &str) -> Bucket {
        Bucket { client: client.clone(), name: name.to_string(), region: region.to_string(), owner: owner.to_string() }
    }

    /// The account the bucket must belong to.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Why S3 answered AccessDenied, when it is because the bucket belongs to another account: the
    /// bucket answers HeadBucket, but not with our owner named. (Without s3:ListBucket both
    /// answers are 403, and the permission error stands.)
    pub async fn foreign(&self) -> Option<StateError> {
        let head = |owner: Option<&str>| {
            self.client.head_bucket().bucket(&self.name).set_expected_bucket_owner(owner.map(str::to_string)).send()
        };
        let denied = |e: &SdkError<_, HttpResponse>| e.raw_response().is_some_and(|r| r.status().as_u16() == 403);
        match head(Some(&self.owner)).await {
            Err(e) if denied(&e) => head(None)
                .await
                .ok()
                .map(|_| StateError::ForeignBucket { bucket: self.name.clone(), owner: self.owner.clone() }),
            _ => None,
        }
    }

    /// A fatal failure, with AccessDenied explained when the bucket is another account's.
    async fn explain(&self, error: StateError) -> StateError {
        match error {
            StateError::Denied { .. } => self.foreign().await.unwrap_or(error),
            other => other,
        }
    }

    pub fn uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.name)
    }

    fn failure<E>(&self, err: SdkError<E, HttpResponse>, op: Op, key: &str) -> Failure
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        classify(err, &self.name, &self.region, op.action(), &self.uri(key), op.permission())
    }

    /// The object's bytes and ETag; `None` if there is none.
    async fn get(&self, key: &str, op: Op) -> Result<Option<(Vec<u8>, String)>, StateError> {
        let result =
            self.client.get_object().bucket(&self.name).expected_bucket_owner(&self.owner).key(key).send().await;
        let out = match result {
            Ok(out) => out,
            Err(err) => {
                return match self.failure(err, op, key) {
                    Failure::Refused(Refused::Missing) => Ok(None),
                    Failure::Fatal(e) => Err(self.explain(e).await),
                    Failure::Refused(Refused::Precondition) | Failure::Race => Err(StateError::Remote {
                        action: op.action(),
                        object: self.uri(key),
                        message: "S3 refused an unconditional read".into(),
                    }),
                };
            }
        };
        let etag = out.e_tag().unwrap_or_default().to_string();
        let body = out.body.collect().await.map_err(|e| StateError::Remote {
            action: op.action(),
            object: self.uri(key),
            message: format!("the download broke off: {e}"),
        })?;
        Ok(Some((body.to_vec(), etag)))
    }

    /// Write `body` if the object's ETag is `if_match` (`None`: if there is no object). The new ETag,
    /// or why S3 refused.
    async fn put(
        &self,
        key: &str,
        body: &[u8],
        if_match: Option<&str>,
        op: Op,
    ) -> Result<Result<String, Refused>, StateError> {
        for attempt in 0.. {
            let call = self
                .client
                .put_object()
                .bucket(&self.name)
                .expected_bucket_owner(&self.owner)
                .key(key)
                .content_type("application/json")
                .body(ByteStream::from(body.to_vec()));
            let call = match if_match {
                Some(etag) => call.if_match(etag),
                None => call.if_none_match("*"),
            };
            match call.send().await {
                Ok(out) => {
                    return match out.e_tag() {
                        Some(etag) => Ok(Ok(etag.to_string())),
                        // Every PutObject answer carries one; read it back if this one did not.
                        None => match self.get(key, op).await? {
                            Some((_, etag)) => Ok(Ok(etag)),
                            None => Ok(Err(Refused::Missing)),
                        },
                    };
                }
                Err(err) => match self.failure(err, op, key) {
                    Failure::Race if attempt < CONFLICT_RETRIES => race_pause(attempt).await,
                    Failure::Race => return Err(self.race_lost(op, key)),
                    Failure::Refused(why) => return Ok(Err(why)),
                    Failure::Fatal(e) => return Err(self.explain(e).await),
                },
            }
        }
        unreachable!("the loop returns")
    }

    /// Delete the object if its ETag is `if_match`.
    async fn delete(&self, key: &str, if_match: &str, op: Op) -> Result<Result<(), Refused>, StateError> {
        for attempt in 0.. {
            let call = self.client.delete_object().bucket(&self.name).expected_bucket_owner(&self.owner);
            let result = call.key(key).if_match(if_match).send().await;
            match result {
                Ok(_) => return Ok(Ok(())),
                Err(err) => match self.failure(err, op, key) {
                    Failure::Race if attempt < CONFLICT_RETRIES => race_pause(attempt).await,
                    Failure::Race => return Err(self.race_lost(op, key)),
                    Failure::Refused(why) => return Ok(Err(why)),
                    Failure::Fatal(e) => return Err(self.explain(e).await),
                },
            }
        }
        unreachable!("the loop returns")
    }

    fn race_lost(&self, op: Op, key: &str) -> StateError {
        StateError::Remote {
            action: op.action(),
            object: self.uri(key),
            message: format!(
                "S3 kept answering ConditionalRequestConflict ({} attempts): another run is writing it",
                CONFLICT_RETRIES + 1
            ),
        }
    }

    /// The lock beside the state at `key`, if any: its holder (`None` if the body is not a lock)
    /// and its ETag.
    pub async fn read_lock(&self, key: &str) -> Result<Option<(Option<LockInfo>, String)>, StateError> {
        let lock_key = lock_key(key);
        Ok(self
            .get(&lock_key, Op::ReadLock)
            .await?
            .map(|(body, etag)| (serde_json::from_slice::<LockInfo>(&body).ok(), etag)))
    }

    /// The state at `key`, unlocked (for commands that change nothing), with its ETag.
    pub async fn read_state(&self, key: &str) -> Result<Option<(State, String)>, StateError> {
        let Some((body, etag)) = self.get(key, Op::ReadState).await? else { return Ok(None) };
        let text = String::from_utf8_lossy(&body);
        Ok(Some((State::from_json(&self.uri(key), &text)?, etag)))
    }
}

/// What an S3 error means for the state: `object` is what the call was about, `permission` what
/// it needs.
pub(crate) fn classify<E>(
    err: SdkError<E, HttpResponse>,
    bucket: &str,
    region: &str,
    action: &'static str,
    object: &str,
    permission: &'static str,
) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    let code = err.code().unwrap_or_default().to_string();
    let message = err.message().unwrap_or_default().to_string();
    let header_region = err.raw_response().and_then(|r| r.headers().get("x-amz-bucket-region")).map(str::to_string);
    let wrong_region = |bucket_region: String| {
        Failure::Fatal(StateError::WrongRegion {
            bucket: bucket.to_string(),
            bucket_region,
            region: region.to_string(),
        })
    };
    match (code.as_str(), status) {
        ("PreconditionFailed", _) | (_, 412) => Failure::Refused(Refused::Precondition),
        ("ConditionalRequestConflict" | "OperationAborted", _) => Failure::Race,
        ("NoSuchBucket", _) => {
            Failure::Fatal(StateError::NoBucket { bucket: bucket.to_string(), location: object.to_string() })
        }
        ("NoSuchKey" | "NotFound", _) | ("", 404) => Failure::Refused(Refused::Missing),
        ("AccessDenied" | "AllAccessDisabled", _) | (_, 403) => {
            Failure::Fatal(StateError::Denied { action, object: object.to_string(), permission })
        }
        // Another region's bucket: 301 from the global endpoint, 400 from a regional one.
        ("PermanentRedirect" | "AuthorizationHeaderMalformed" | "", _) | (_, 301)
            if header_region.as_ref().or(expected_region(&message).as_ref()).is_some_and(|r| r != region) =>
        {
            wrong_region(header_region.or_else(|| expected_region(&message)).expect("checked"))
        }
        ("PermanentRedirect", _) | (_, 301) => wrong_region("another region".into()),
        _ => Failure::Fatal(StateError::Aws(Box::new(AwsError::of(err, &format!("{action} at"), object)))),
    }
}

/// A short random pause before retrying a write that raced another (a few hundred ms at most).
async fn race_pause(attempt: u32) {
    let base = Duration::from_millis(50 * 2u64.pow(attempt.min(4)));
    tokio::time::sleep(base.mul_f64(0.5 + fastrand::f64() * 0.5)).await;
}

/// `expecting 'eu-west-1'` in an AuthorizationHeaderMalformed message.
fn expected_region(message: &str) -> Option<String> {
    let rest = message.split("expecting '").nth(1)?;
    let region = rest.split('\'').next()?;
    crate::aws::is_region_name(region).then(|| region.to_string())
}

pub fn lock_key(key: &str) -> String {
    format!("{key}{LOCK_SUFFIX}")
}

/// The lock this run holds.
struct Held {
    info: LockInfo,
    etag: String,
}

/// Locks held by this process, so that an interrupted run (Ctrl-C, SIGTERM from CI) can give
/// them up before it exits: (bucket, state key, lock ETag).
static HELD: Mutex<Vec<(Bucket, String, String)>> = Mutex::new(Vec::new());

/// Give up every lock this process holds; for an interrupted run. Returns the locations freed.
pub async fn release_held_locks() -> Vec<String> {
    let held: Vec<(Bucket, String, String)> = std::mem::take(&mut *HELD.lock().expect("held locks"));
    let mut freed = vec![];
    for (bucket, key, etag) in held {
        if let Ok(Ok(())) = bucket.delete(&lock_key(&key), &etag, Op::ReleaseLock).await {
            freed.push(bucket.uri(&key));
        }
    }
    freed
}

/// The state of one stack in S3, locked for this run.
pub struct S3Backend {
    bucket: Bucket,
    key: String,
    /// The ETag of the state as last read or written; `None` while there is no state object.
    etag: Mutex<Option<String>>,
    lock: Mutex<Option<Held>>,
}

impl S3Backend {
    /// Take the lock, then load the state (or start an empty one) and check it is this stack's.
    /// A refusal after the lock was taken gives the lock up again.
    pub async fn open(bucket: Bucket, key: &str, stack: &str, command: &str) -> Result<(S3Backend, State), StateError> {
        let backend = S3Backend { bucket, key: key.to_string(), etag: Mutex::new(None), lock: Mutex::new(None) };
        backend.acquire(command).await?;
        match backend.load(stack).await {
            Ok(state) => Ok((backend, state)),
            Err(e) => {
                backend.release().await;
                Err(e)
            }
        }
    }

    /// Is there a state object (rather than a state that starts empty)?
    pub fn exists(&self) -> bool {
        self.etag.lock().expect("etag").is_some()
    }

    pub fn lock_info(&self) -> Option<LockInfo> {
        self.lock.lock().expect("lock").as_ref().map(|h| h.info.clone())
    }

    async fn acquire(&self, command: &str) -> Result<(), StateError> {
        let info = LockInfo::new(command);
        let body = serde_json::to_vec_pretty(&info).expect("lock serializes");
        let lock_key = lock_key(&self.key);
        // A lock removed between our attempt and our look at it: try again, a few times.
        for _ in 0..3 {
            match self.bucket.put(&lock_key, &body, None, Op::TakeLock).await? {
                Ok(etag) => {
                    HELD.lock().expect("held locks").push((self.bucket.clone(), self.key.clone(), etag.clone()));
                    *self.lock.lock().expect("lock") = Some(Held { info, etag });
                    return Ok(());
                }
                Err(Refused::Missing) => continue,
                Err(Refused::Precondition) => match self.bucket.read_lock(&self.key).await? {
                    // Our own write, carried out before its answer was lost and the SDK retried it.
                    Some((Some(existing), etag)) if existing.lock_id == info.lock_id => {
                        HELD.lock().expect("held locks").push((self.bucket.clone(), self.key.clone(), etag.clone()));
                        *self.lock.lock().expect("lock") = Some(Held { info, etag });
                        return Ok(());
                    }
                    Some((existing, _)) => {
                        return Err(StateError::RemoteLocked {
                            location: self.location(),
                            holder: existing.as_ref().map_or_else(
                                || {
                                    format!(
                                        "an object that is not a fargate-stack lock ({})",
                                        self.bucket.uri(&lock_key)
                                    )
                                },
                                LockInfo::describe,
                            ),
                            lock_id: existing.map_or_else(|| "unknown".into(), |e| e.lock_id),
                        })
                    }
                    None => continue,
                },
            }
        }
        Err(StateError::Remote {
            action: Op::TakeLock.action(),
            object: self.bucket.uri(&lock_key),
            message: "the lock kept appearing and disappearing: other runs keep starting and ending".into(),
        })
    }

    async fn load(&self, stack: &str) -> Result<State, StateError> {
        let region = self.bucket.region.clone();
        match self.bucket.read_state(&self.key).await? {
            Some((state, etag)) => {
                state.check_matches(&self.location(), stack, &region)?;
                *self.etag.lock().expect("etag") = Some(etag);
                Ok(state)
            }
            None => Ok(State::new(stack, &region)),
        }
    }

    fn conflict(&self) -> StateError {
        StateError::Conflict { location: self.location() }
    }
}

#[async_trait]
impl Backend for S3Backend {
    fn location(&self) -> String {
        self.bucket.uri(&self.key)
    }

    async fn save(&self, state: &State) -> Result<(), StateError> {
        let body = state.to_json();
        let expected = self.etag.lock().expect("etag").clone();
        match self.bucket.put(&self.key, &body, expected.as_deref(), Op::WriteState).await? {
            Ok(etag) => {
                *self.etag.lock().expect("etag") = Some(etag);
                Ok(())
            }
            Err(_) => match self.bucket.get(&self.key, Op::ReadState).await? {
                // Our own write landed before its answer was lost: the SDK's retry met its new ETag.
                Some((current, etag)) if current == body => {
                    *self.etag.lock().expect("etag") = Some(etag);
                    Ok(())
                }
                _ => Err(self.conflict()),
            },
        }
    }

    async fn remove(&self) -> Result<(), StateError> {
        let expected = self.etag.lock().expect("etag").clone();
        // Never written by anyone: nothing to delete.
        let Some(etag) = expected else { return Ok(()) };
        match self.bucket.delete(&self.key, &etag, Op::DeleteState).await? {
            // Missing: already gone, which is what was asked.
            Ok(()) | Err(Refused::Missing) => {
                *self.etag.lock().expect("etag") = None;
                Ok(())
            }
            Err(Refused::Precondition) => Err(self.conflict()),
        }
    }

    async fn release(&self) {
        let Some(held) = self.lock.lock().expect("lock").take() else { return };
        HELD.lock().expect("held locks").retain(|(_, _, etag)| *etag != held.etag);
        let lock_key = lock_key(&self.key);
        let uri = self.bucket.uri(&lock_key);
        let problem = match self.bucket.delete(&lock_key, &held.etag, Op::ReleaseLock).await {
            Ok(Ok(())) => return,
            Ok(Err(Refused::Missing)) => "it was already removed (by `fargate-stack unlock`?)".to_string(),
            Ok(Err(Refused::Precondition)) => {
                "it is no longer this run's (removed with `unlock` and taken by another run); left it alone".to_string()
            }
            Err(e) => {
                format!("{e}; remove it with `fargate-stack --state {} unlock {}`", self.location(), held.info.lock_id)
            }
        };
        eprintln!("warning: could not remove the lock {uri}: {problem}");
    }
}

/// Remove the lock on the state at `key` if its ID is `lock_id`; returns who held it.
pub async fn unlock(bucket: &Bucket, key: &str, lock_id: &str) -> Result<LockInfo, StateError> {
    let location = bucket.uri(key);
    let Some((info, etag)) = bucket.read_lock(key).await? else {
        return Err(StateError::NotLocked { location });
    };
    let Some(info) = info else {
        return Err(StateError::Remote {
            action: "read the lock",
            object: bucket.uri(&lock_key(key)),
            message: "it is not a fargate-stack lock; look at it and delete it by hand if it is stale".into(),
        });
    };
    if info.lock_id != lock_id {
        return Err(StateError::LockMismatch {
            location,
            given: lock_id.to_string(),
            lock_id: info.lock_id.clone(),
            holder: info.describe(),
        });
    }
    match bucket.delete(&lock_key(key), &etag, Op::ReleaseLock).await? {
        Ok(()) => Ok(info),
        Err(Refused::Missing) => Err(StateError::NotLocked { location }),
        Err(Refused::Precondition) => Err(StateError::Remote {
            action: "remove the lock",
            object: bucket.uri(&lock_key(key)),
            message: "the lock changed while it was being removed (another run took it?); nothing was removed".into(),
        }),
    }
}

/// What a state in S3 needs: the state object and its lock object, read, written (conditionally)
/// and deleted.
pub fn permissions() -> Vec<Permission> {
    let objects = "arn:{partition}:s3:::{state_bucket}/{state_key}*";
    vec![
        Permission::new(Verb::State, "s3:GetObject").on(objects),
        Permission::new(Verb::State, "s3:PutObject").on(objects),
        Permission::new(Verb::State, "s3:DeleteObject").on(objects),
        // HeadBucket, asked only to tell a bucket of another account from a missing grant.
        Permission::new(Verb::State, "s3:ListBucket").on("arn:{partition}:s3:::{state_bucket}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_ids_are_unique_and_uuid_shaped() {
        let a = new_lock_id();
        assert_ne!(a, new_lock_id());
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }

    #[test]
    fn a_lock_names_its_holder_and_round_trips() {
        let info = LockInfo::new("up");
        let text = serde_json::to_string(&info).unwrap();
        for field in ["lock_id", "holder", "host", "pid", "started", "command"] {
            assert!(text.contains(&format!("\"{field}\"")), "{text}");
        }
        assert_eq!(serde_json::from_str::<LockInfo>(&text).unwrap(), info);
        let line = info.describe();
        assert!(line.starts_with("up by ") && line.contains(&format!("(pid {})", std::process::id())), "{line}");
    }

    #[test]
    fn the_bucket_region_is_read_from_an_authorization_error() {
        let m = "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'";
        assert_eq!(expected_region(m).as_deref(), Some("eu-west-1"));
        assert_eq!(expected_region("something else"), None);
        assert_eq!(lock_key("a/b.json"), "a/b.json.lock");
    }
}
