//! Where a stack's state lives: a local file (the default) or an S3 object, from `--state`,
//! `FARGATE_STACK_STATE` or the config's `state` key.
//!
//! `s3://bucket/path/name.json` names the object. `s3://bucket` and `s3://bucket/prefix/` name a
//! folder: the state is `<prefix>/<stack>.json` there, so one setting serves every stack of a team.
//! A plain path is a local file; one ending in `/` is a folder, as for S3.

use std::fmt;
use std::path::{Path, PathBuf};

use super::StateError;

/// Suffix of the lock object beside an S3 state (and of the lock file beside a local one).
pub const LOCK_SUFFIX: &str = ".lock";

/// Tag on the stack's VPC saying where its state lives: an S3 state's URI, or `local` for a local
/// file (a path means nothing on another machine). `up` refuses to adopt the stack into a state
/// elsewhere; `state push` / `pull` move it with the state. Tags are visible to anyone in the
/// account: it holds a location, never a secret.
pub const STATE_TAG: &str = "fargate-stack:state";

/// The [`STATE_TAG`] value of a local state.
pub const LOCAL_TAG_VALUE: &str = "local";

/// The [`STATE_TAG`] value for a location as [`StateLocation`]'s `Display` writes it. EC2 tag
/// values hold 256 characters: a longer S3 URI is kept as its SHA-256.
pub fn tag_value(location: &str) -> String {
    if !location.starts_with("s3://") {
        return LOCAL_TAG_VALUE.to_string();
    }
    if location.chars().count() <= 256 {
        return location.to_string();
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(location.as_bytes());
    format!("sha256:{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    Local(PathBuf),
    S3 { bucket: String, key: String },
}

impl StateLocation {
    /// `.fargate-stack/<stack>.json` in the working directory.
    pub fn default_for(stack: &str) -> StateLocation {
        StateLocation::Local(PathBuf::from(".fargate-stack").join(format!("{stack}.json")))
    }

    /// Parse a location given by the user; `base` anchors a relative local path (the config
    /// file's folder for the config's `state` key).
    pub fn parse(value: &str, stack: &str, base: Option<&Path>) -> Result<StateLocation, StateError> {
        let bad = |reason: String| StateError::BadLocation { value: value.to_string(), reason };
        let value_trimmed = value.trim();
        if value_trimmed.is_empty() {
            return Err(bad("empty; give a file path or s3://BUCKET/KEY".into()));
        }
        if value_trimmed != value {
            return Err(bad("has leading or trailing spaces".into()));
        }
        if let Some(scheme_end) = value.find("://") {
            let scheme = &value[..scheme_end];
            let looks_like_scheme =
                !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
            if looks_like_scheme && !scheme.eq_ignore_ascii_case("s3") {
                return Err(bad(format!("{scheme}:// is not supported; use a file path or s3://BUCKET/KEY")));
            }
        }
        let lower = value.to_ascii_lowercase();
        if lower.starts_with("s3:") {
            let Some(rest) = value.get(5..).filter(|_| lower.starts_with("s3://")) else {
                return Err(bad("expected s3://BUCKET/KEY".into()));
            };
            return parse_s3(rest, stack).map_err(bad);
        }
        if value.contains('\0') {
            return Err(bad("contains a NUL byte".into()));
        }
        let mut path = PathBuf::from(value);
        if value.ends_with('/') || value.ends_with(std::path::MAIN_SEPARATOR) {
            path = path.join(format!("{stack}.json"));
        }
        if path.is_relative() {
            if let Some(base) = base {
                path = base.join(path);
            }
        }
        Ok(StateLocation::Local(path))
    }

    pub fn is_remote(&self) -> bool {
        matches!(self, StateLocation::S3 { .. })
    }
}

impl fmt::Display for StateLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateLocation::Local(path) => write!(f, "{}", path.display()),
            StateLocation::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

/// `bucket[/key]` after `s3://`.
fn parse_s3(rest: &str, stack: &str) -> Result<StateLocation, String> {
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    check_bucket_name(bucket)?;
    let key = if key.is_empty() || key.ends_with('/') { format!("{key}{stack}.json") } else { key.to_string() };
    check_key(&key)?;
    Ok(StateLocation::S3 { bucket: bucket.to_string(), key })
}

/// The naming rules of general purpose buckets, so a typo fails here rather than as an AWS error.
pub fn check_bucket_name(bucket: &str) -> Result<(), String> {
    if bucket.is_empty() {
        return Err("no bucket name; expected s3://BUCKET/KEY".into());
    }
    if !(3..=63).contains(&bucket.len()) {
        return Err(format!("bucket name {bucket:?} must be 3 to 63 characters long"));
    }
    if !bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-') {
        return Err(format!("bucket name {bucket:?} may hold only a-z, 0-9, '.' and '-'"));
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge_ok(bucket.chars().next()) || !edge_ok(bucket.chars().last()) {
        return Err(format!("bucket name {bucket:?} must start and end with a letter or digit"));
    }
    if bucket.contains("..") {
        return Err(format!("bucket name {bucket:?} must not contain \"..\""));
    }
    if bucket.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err(format!("bucket name {bucket:?} must not be an IP address"));
    }
    const RESERVED_PREFIXES: &[&str] = &["xn--", "sthree-", "amzn-s3-demo-"];
    const RESERVED_SUFFIXES: &[&str] = &["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];
    if let Some(p) = RESERVED_PREFIXES.iter().find(|p| bucket.starts_with(*p)) {
        return Err(format!("bucket name {bucket:?} must not start with {p:?} (reserved by S3)"));
    }
    if let Some(s) = RESERVED_SUFFIXES.iter().find(|s| bucket.ends_with(*s)) {
        return Err(format!("bucket name {bucket:?} must not end with {s:?} (reserved by S3)"));
    }
    Ok(())
}

fn check_key(key: &str) -> Result<(), String> {
    if key.len() > 1024 - LOCK_SUFFIX.len() {
        return Err("the key is longer than S3 allows (with its .lock)".into());
    }
    if key.starts_with('/') || key.contains("//") {
        return Err(format!("key {key:?} has an empty path segment"));
    }
    if key.split('/').any(|segment| segment == "." || segment == "..") {
        return Err(format!("key {key:?} has a \".\" or \"..\" segment"));
    }
    if key.chars().any(|c| c.is_control()) {
        return Err(format!("key {key:?} contains control characters"));
    }
    if key.contains(['?', '#']) {
        return Err(format!("key {key:?} contains '?' or '#' (an S3 URI has no query or fragment)"));
    }
    if key.ends_with(LOCK_SUFFIX) {
        return Err(format!("key {key:?} ends with {LOCK_SUFFIX}, the suffix of the lock beside a state"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(bucket: &str, key: &str) -> StateLocation {
        StateLocation::S3 { bucket: bucket.into(), key: key.into() }
    }

    fn parse(value: &str) -> Result<StateLocation, String> {
        StateLocation::parse(value, "app", None).map_err(|e| e.to_string())
    }

    #[test]
    fn s3_uris_name_an_object_or_a_folder_of_stacks() {
        assert_eq!(parse("s3://team-state/envs/prod/app.json").unwrap(), s3("team-state", "envs/prod/app.json"));
        assert_eq!(parse("s3://team-state").unwrap(), s3("team-state", "app.json"));
        assert_eq!(parse("s3://team-state/").unwrap(), s3("team-state", "app.json"));
        assert_eq!(parse("s3://team-state/stacks/").unwrap(), s3("team-state", "stacks/app.json"));
        assert_eq!(parse("S3://team-state/a.json").unwrap(), s3("team-state", "a.json"));
        assert_eq!(parse("s3://my.bucket-1/x").unwrap().to_string(), "s3://my.bucket-1/x");
    }

    #[test]
    fn malformed_uris_say_what_is_wrong() {
        for (value, needle) in [
            ("s3://", "no bucket name"),
            ("s3:/bucket/x.json", "expected s3://BUCKET/KEY"),
            ("s3:bucket", "expected s3://BUCKET/KEY"),
            ("s3://Team_State/x.json", "may hold only a-z"),
            ("s3://ab/x.json", "3 to 63"),
            ("s3://-bucket/x.json", "start and end"),
            ("s3://a..b/x.json", "\"..\""),
            ("s3://192.168.1.1/x.json", "IP address"),
            ("s3://xn--bucket/x.json", "reserved"),
            ("s3://bucket//x.json", "empty path segment"),
            ("s3://bucket/a/../x.json", "\"..\" segment"),
            ("s3://bucket/x.json?versionId=1", "query"),
            ("s3://bucket/x.json.lock", "suffix of the lock"),
            ("gs://bucket/x.json", "gs:// is not supported"),
            ("https://bucket.s3.amazonaws.com/x.json", "https:// is not supported"),
            ("", "empty"),
            (" s3://bucket/x.json", "spaces"),
        ] {
            let err = parse(value).expect_err(value);
            assert!(err.contains(needle), "{value}: {err}");
            assert!(err.contains("invalid state location"), "{err}");
        }
    }

    #[test]
    fn the_state_tag_names_an_s3_state_and_says_local_for_a_file() {
        assert_eq!(tag_value("s3://team-state/stacks/app.json"), "s3://team-state/stacks/app.json");
        assert_eq!(tag_value(".fargate-stack/app.json"), "local");
        assert_eq!(tag_value("/home/alice/app.json"), "local", "no path in a tag anyone can read");
        let long = format!("s3://team-state/{}.json", "k".repeat(300));
        let value = tag_value(&long);
        assert!(value.starts_with("sha256:") && value.len() == 71, "{value}");
        assert_eq!(value, tag_value(&long));
    }

    #[test]
    fn local_paths_stay_files_and_relative_ones_follow_the_base() {
        assert_eq!(parse("state/app.json").unwrap(), StateLocation::Local("state/app.json".into()));
        assert_eq!(parse("states/").unwrap(), StateLocation::Local("states/app.json".into()));
        let base = Path::new("/repo/infra");
        assert_eq!(
            StateLocation::parse("s.json", "app", Some(base)).unwrap(),
            StateLocation::Local("/repo/infra/s.json".into())
        );
        assert_eq!(
            StateLocation::parse("/abs/s.json", "app", Some(base)).unwrap(),
            StateLocation::Local("/abs/s.json".into())
        );
        assert_eq!(StateLocation::default_for("app").to_string(), ".fargate-stack/app.json");
        assert!(!StateLocation::default_for("app").is_remote());
    }
}
