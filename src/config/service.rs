//! `[service]`: the image, its port, how many tasks of which Fargate size, the health check path
//! and the environment.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::container::{self, ContainerHealthCheck};
use super::{Config, ConfigError, Invalid, SpotConfig};

/// Fargate task sizes AWS accepts: cpu units -> allowed memory in MiB.
const FARGATE_SIZES: &[(u32, &[u32])] = &[
    (256, &[512, 1024, 2048]),
    (512, &[1024, 2048, 3072, 4096]),
    (1024, &[2048, 3072, 4096, 5120, 6144, 7168, 8192]),
    (2048, &[4096, 5120, 6144, 7168, 8192, 9216, 10240, 11264, 12288, 13312, 14336, 15360, 16384]),
];

/// Environment variable that always carries the table name into the container.
pub const TABLE_ENV_VAR: &str = "DYNAMODB_MESSAGES_TABLE";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub image: String,
    #[serde(default = "defaults::port")]
    pub container_port: u32,
    #[serde(default = "defaults::desired_count")]
    pub desired_count: u32,
    #[serde(default = "defaults::cpu")]
    pub cpu: u32,
    #[serde(default = "defaults::memory")]
    pub memory: u32,
    #[serde(default = "defaults::health_check_path")]
    pub health_check_path: String,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Variables whose values ECS reads from SSM Parameter Store or Secrets Manager when a task
    /// starts (see `config::secrets`): name -> reference.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// The container's root filesystem read-only (Security Hub ECS.5); what must stay writable is
    /// in `writable_paths`.
    #[serde(default = "defaults::readonly_root_filesystem")]
    pub readonly_root_filesystem: bool,
    /// Paths given an empty, writable volume of the task's own storage (Fargate has no tmpfs):
    /// nginx's cache, pid and temp directories by default.
    #[serde(default = "defaults::writable_paths")]
    pub writable_paths: Vec<String>,
    /// The user the container runs as (`uid`, `uid:gid`, `name`, `name:group`); absent: the image's.
    #[serde(default)]
    pub user: Option<String>,
    /// The task's CPU architecture (its `runtimePlatform`): ARM64 (Graviton) bills about 20 % less
    /// per vCPU and GB, and needs an image built for it (or a multi-arch one, as nginx's).
    #[serde(default)]
    pub cpu_architecture: CpuArchitecture,
    /// Tasks on Fargate Spot beside on-demand (a capacity provider strategy, see `config::spot`);
    /// absent: launch type FARGATE, every task on-demand.
    #[serde(default)]
    pub spot: Option<SpotConfig>,
    /// The container's command (Docker's CMD); absent: the image's.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// The container's entrypoint (Docker's ENTRYPOINT); absent: the image's.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// `[service.health_check]`: a command run in the container; absent: none (the load balancer's
    /// check still judges the tasks).
    #[serde(default)]
    pub health_check: Option<ContainerHealthCheck>,
    /// Seconds between SIGTERM and SIGKILL when a task stops; absent: ECS's 30.
    #[serde(default)]
    pub stop_timeout: Option<u32>,
    /// Container ports mapped besides `container_port` (TCP; reachable only as the task security
    /// group allows, which is from the load balancer to `container_port`).
    #[serde(default)]
    pub additional_ports: Vec<u32>,
    /// Seconds ECS ignores failing load-balancer health checks of a new task; absent:
    /// `load_balancer.health_check_interval_seconds x healthy_threshold + 10`.
    #[serde(default)]
    pub health_check_grace_period_seconds: Option<u32>,
    /// During a rolling deployment: tasks kept running, and tasks at most, in % of the desired count.
    #[serde(default = "container::defaults::minimum_healthy_percent")]
    pub minimum_healthy_percent: u32,
    #[serde(default = "container::defaults::maximum_percent")]
    pub maximum_percent: u32,
    /// ECS Exec (`aws ecs execute-command`): the task role gets the SSM channel grants.
    #[serde(default)]
    pub enable_execute_command: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CpuArchitecture {
    #[default]
    #[serde(rename = "X86_64")]
    X86_64,
    #[serde(rename = "ARM64")]
    Arm64,
}

impl CpuArchitecture {
    /// As ECS spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            CpuArchitecture::X86_64 => "X86_64",
            CpuArchitecture::Arm64 => "ARM64",
        }
    }
}

mod defaults {
    pub fn port() -> u32 {
        80
    }
    pub fn desired_count() -> u32 {
        2
    }
    pub fn cpu() -> u32 {
        256
    }
    pub fn memory() -> u32 {
        512
    }
    pub fn health_check_path() -> String {
        "/".into()
    }
    pub fn readonly_root_filesystem() -> bool {
        true
    }
    pub fn writable_paths() -> Vec<String> {
        ["/var/cache/nginx", "/var/run", "/tmp"].map(String::from).to_vec()
    }
}

/// At most this many writable paths (each one a volume; a task takes 20 volumes of all kinds).
pub const MAX_WRITABLE_PATHS: usize = 10;

/// A container path ECS mounts: absolute, no `.`/`..` parts, not `/`, printable.
fn check_writable_path(path: &str) -> Result<(), String> {
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    let ok = path.starts_with('/')
        && path.len() <= 255
        && !parts.iter().any(|p| p.is_empty() || *p == "." || *p == "..")
        && path.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err("an absolute path below / of a-z, A-Z, 0-9, '/', '.', '_', '-', without '.' or '..' parts".into())
    }
}

/// A container user as ECS takes it on Linux: `user`, `user:group`, `uid`, `uid:gid` (or a mix).
fn check_user(user: &str) -> Result<(), String> {
    let part = |p: &str| {
        !p.is_empty()
            && p.len() <= 32
            && (p.chars().all(|c| c.is_ascii_digit())
                || (p.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                    && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c))))
    };
    let parts: Vec<&str> = user.split(':').collect();
    if parts.len() <= 2 && parts.iter().all(|p| part(p)) {
        Ok(())
    } else {
        Err("a user as `uid`, `uid:gid`, `name` or `name:group` (names of a-z, 0-9, '_', '-')".into())
    }
}

impl Config {
    /// `[service]`'s container hardening: the writable paths and the user.
    pub(super) fn validate_container(&self, invalid: &Invalid) -> Result<(), ConfigError> {
        let svc = &self.service;
        let paths = &svc.writable_paths;
        if paths.len() > MAX_WRITABLE_PATHS {
            return Err(invalid(
                "service.writable_paths",
                format!("{paths:?}"),
                format!("at most {MAX_WRITABLE_PATHS} paths"),
            ));
        }
        for (i, path) in paths.iter().enumerate() {
            check_writable_path(path).map_err(|r| invalid("service.writable_paths", format!("{path:?}"), r))?;
            if paths[..i].contains(path) {
                return Err(invalid("service.writable_paths", format!("{path:?}"), "listed twice".into()));
            }
        }
        if let Some(user) = &svc.user {
            check_user(user).map_err(|r| invalid("service.user", format!("{user:?}"), r))?;
        }
        Ok(())
    }
}

impl Config {
    /// `[service]` (and the listener port): image, ports, count, Fargate size, health check path, environment.
    pub(super) fn validate_service(&self, invalid: &Invalid) -> Result<(), ConfigError> {
        let svc = &self.service;
        validate_image(&svc.image).map_err(|reason| invalid("service.image", format!("{:?}", svc.image), reason))?;
        check_port("service.container_port", svc.container_port)
            .map_err(|r| invalid("service.container_port", svc.container_port.to_string(), r))?;
        check_port("load_balancer.listener_port", self.load_balancer.listener_port)
            .map_err(|r| invalid("load_balancer.listener_port", self.load_balancer.listener_port.to_string(), r))?;
        if svc.desired_count > 1000 {
            return Err(invalid(
                "service.desired_count",
                svc.desired_count.to_string(),
                "must be between 0 and 1000".into(),
            ));
        }
        match FARGATE_SIZES.iter().find(|(cpu, _)| *cpu == svc.cpu) {
            None => {
                return Err(invalid(
                    "service.cpu",
                    svc.cpu.to_string(),
                    format!(
                        "Fargate accepts cpu {}",
                        FARGATE_SIZES.iter().map(|(c, _)| c.to_string()).collect::<Vec<_>>().join(", ")
                    ),
                ))
            }
            Some((_, memories)) if !memories.contains(&svc.memory) => {
                return Err(invalid(
                    "service.memory",
                    svc.memory.to_string(),
                    format!(
                        "with cpu {} Fargate accepts memory {}",
                        svc.cpu,
                        memories.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(", ")
                    ),
                ))
            }
            Some(_) => {}
        }
        if !svc.health_check_path.starts_with('/') || svc.health_check_path.len() > 1024 {
            return Err(invalid(
                "service.health_check_path",
                format!("{:?}", svc.health_check_path),
                "must start with '/' and be at most 1024 characters".into(),
            ));
        }
        for key in svc.environment.keys() {
            if let Some(reason) = secret_looking(key) {
                return Err(invalid(
                    "service.environment",
                    format!("{key:?}"),
                    format!(
                        "{reason}: a secret here would be in clear text in the config, the task definition, the \
                         plan and the state; keep it in SSM Parameter Store or Secrets Manager and pass it by \
                         reference in [service.secrets] (see the README's \"Secrets\" section)"
                    ),
                ));
            }
            if !variable_name_ok(key) || key == TABLE_ENV_VAR {
                return Err(invalid(
                    "service.environment",
                    format!("{key:?}"),
                    if key == TABLE_ENV_VAR {
                        format!("{TABLE_ENV_VAR} is set by fargate-stack to the table name")
                    } else {
                        "names are letters, digits and '_', not starting with a digit".into()
                    },
                ));
            }
        }
        Ok(())
    }

    /// The container environment: the user's variables plus the table name.
    pub fn container_environment(&self, table_name: &str) -> BTreeMap<String, String> {
        let mut env = self.service.environment.clone();
        env.insert(TABLE_ENV_VAR.to_string(), table_name.to_string());
        env
    }
}

/// A container variable's name: letters, digits and '_', not starting with a digit.
pub(super) fn variable_name_ok(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Names Security Hub's ECS.8 flags as credentials in a task definition's environment, and the words
/// that mark a name as a secret.
const SECRET_NAMES: &[&str] = &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "ECS_ENGINE_AUTH_DATA"];
const SECRET_WORDS: &[&str] = &["PASSWORD", "SECRET", "TOKEN", "PRIVATE_KEY"];

/// Why an environment variable's name looks like it holds a secret, if it does.
pub fn secret_looking(key: &str) -> Option<String> {
    let upper = key.to_ascii_uppercase();
    if let Some(name) = SECRET_NAMES.iter().find(|n| **n == upper) {
        return Some(format!("{name} is a credential (Security Hub ECS.8)"));
    }
    SECRET_WORDS
        .iter()
        .find(|w| upper.contains(**w))
        .map(|w| format!("the name contains {w}, so it looks like a secret"))
}

fn check_port(_key: &str, port: u32) -> Result<(), String> {
    if (1..=65535).contains(&port) {
        Ok(())
    } else {
        Err("must be between 1 and 65535".into())
    }
}

/// A Docker image reference: `[registry[:port]/]path[:tag][@sha256:digest]`, lower-case path.
/// An image reference as Docker reads it: `[registry/]path[:tag][@sha256:digest]`.
pub fn validate_image(image: &str) -> Result<(), String> {
    const HINT: &str = "expected an image reference such as \"nginx:latest\" or \"123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.2\"";
    if image.is_empty() || image.len() > 255 || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(HINT.into());
    }
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    if let Some(digest) = digest {
        let ok = digest
            .strip_prefix("sha256:")
            .is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()));
        if !ok {
            return Err(format!("invalid digest; {HINT}"));
        }
    }
    // A tag is after the last ':' that follows the last '/'.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (path, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        let ok = !tag.is_empty()
            && tag.len() <= 128
            && !tag.starts_with(['.', '-'])
            && tag.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !ok {
            return Err(format!("invalid tag {tag:?}; {HINT}"));
        }
    }
    let mut components: Vec<&str> = path.split('/').collect();
    // The first component is a registry host when it has a '.' or ':' or is localhost.
    if components.len() > 1 && (components[0].contains(['.', ':']) || components[0] == "localhost") {
        let host = components.remove(0);
        let ok = host.chars().all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c));
        if !ok {
            return Err(format!("invalid registry {host:?}; {HINT}"));
        }
    }
    for component in components {
        let ok = !component.is_empty()
            && component.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            && component.starts_with(|c: char| c.is_ascii_alphanumeric())
            && component.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !ok {
            return Err(format!("invalid repository name {path:?}; {HINT}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod container_tests {
    use super::{check_user, check_writable_path};

    #[test]
    fn writable_paths_and_users_are_what_ecs_mounts_and_runs() {
        for good in ["/tmp", "/var/cache/nginx", "/var/run", "/app/.cache"] {
            assert!(check_writable_path(good).is_ok(), "{good}");
        }
        for bad in ["", "/", "tmp", "/var/../etc", "/var//run", "/tmp/", "/a b", "/x;rm"] {
            assert!(check_writable_path(bad).is_err(), "{bad}");
        }
        for good in ["101", "101:101", "nginx", "nginx:nginx", "app_user:1000"] {
            assert!(check_user(good).is_ok(), "{good}");
        }
        for bad in ["", ":", "101:", "a:b:c", "Root", "1user", "$(id)", "nginx nginx"] {
            assert!(check_user(bad).is_err(), "{bad}");
        }
    }
}
