//! `[service]`'s container and deployment options: command, entrypoint, the container health check,
//! stop timeout, additional ports; the health check grace period, the rolling deployment's bounds
//! and ECS Exec. Each checked against ECS's ranges before any AWS call.

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, Invalid};

/// `[service.health_check]`: a command Docker runs in the container (ECS's `healthCheck`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerHealthCheck {
    /// `["CMD", "exe", "arg"]` or `["CMD-SHELL", "a shell command"]`, as ECS takes it.
    pub command: Vec<String>,
    #[serde(default = "defaults::interval")]
    pub interval_seconds: u32,
    #[serde(default = "defaults::timeout")]
    pub timeout_seconds: u32,
    #[serde(default = "defaults::retries")]
    pub retries: u32,
    /// Failures in this time after the start do not count (0: off).
    #[serde(default)]
    pub start_period_seconds: u32,
}

pub(super) mod defaults {
    pub fn interval() -> u32 {
        30
    }
    pub fn timeout() -> u32 {
        5
    }
    pub fn retries() -> u32 {
        3
    }
    pub fn minimum_healthy_percent() -> u32 {
        100
    }
    pub fn maximum_percent() -> u32 {
        200
    }
}

/// ECS's ranges for a container health check: (key, value, min, max).
fn health_check_ranges(check: &ContainerHealthCheck) -> [(&'static str, u32, u32, u32); 4] {
    [
        ("service.health_check.interval_seconds", check.interval_seconds, 5, 300),
        ("service.health_check.timeout_seconds", check.timeout_seconds, 2, 60),
        ("service.health_check.retries", check.retries, 1, 10),
        ("service.health_check.start_period_seconds", check.start_period_seconds, 0, 300),
    ]
}

/// `CMD` with an executable, or `CMD-SHELL` with one command line.
fn check_health_command(command: &[String]) -> Result<(), String> {
    match command.first().map(String::as_str) {
        Some("CMD") if command.len() >= 2 && !command[1].is_empty() => Ok(()),
        Some("CMD-SHELL") if command.len() == 2 && !command[1].trim().is_empty() => Ok(()),
        _ => Err("[\"CMD\", \"executable\", \"arg\", ...] or [\"CMD-SHELL\", \"command line\"]".into()),
    }
}

/// A command or entrypoint: absent for the image's own; given, at least one word, none with a NUL.
fn check_words(words: &[String]) -> Result<(), String> {
    if words.is_empty() || words[0].is_empty() {
        return Err("a non-empty list whose first word is the executable; leave the key out for the image's".into());
    }
    if words.iter().any(|w| w.contains('\0')) || words.iter().map(String::len).sum::<usize>() > MAX_WORDS_BYTES {
        return Err(format!("words without NUL characters, {MAX_WORDS_BYTES} bytes in all at most"));
    }
    Ok(())
}

/// A task definition is at most 64 KiB: a command line gets a generous share of it.
const MAX_WORDS_BYTES: usize = 16 * 1024;

/// Additional container ports, each a port mapping of the task definition.
pub const MAX_ADDITIONAL_PORTS: usize = 10;

/// ECS takes a grace period (and a percentage) up to 2^31 - 1.
const MAX_GRACE_SECONDS: u32 = i32::MAX as u32;

/// A rolling deployment of `n` tasks can make progress: ECS may run more tasks than it must keep
/// (the maximum rounded down, the minimum rounded up), so it can start a new task or stop an old one.
pub fn rolling_deployment_moves(n: u32, minimum: u32, maximum: u32) -> bool {
    let (n, minimum, maximum) = (u64::from(n), u64::from(minimum), u64::from(maximum));
    n == 0 || n * maximum / 100 > (n * minimum).div_ceil(100)
}

/// The paths the ECS Exec agent writes to in the container.
pub const EXEC_AGENT_PATHS: [&str; 3] = ["/managed-agents", "/var/lib/amazon/ssm", "/var/log/amazon/ssm"];

impl Config {
    /// `[service]`'s command, entrypoint, health check, stop timeout and additional ports.
    pub(super) fn validate_container_options(&self, invalid: &Invalid) -> Result<(), ConfigError> {
        let svc = &self.service;
        for (key, words) in [("service.command", &svc.command), ("service.entrypoint", &svc.entrypoint)] {
            if let Some(words) = words {
                check_words(words).map_err(|r| invalid(key, format!("{words:?}"), r))?;
            }
        }
        if let Some(check) = &svc.health_check {
            check_health_command(&check.command)
                .map_err(|r| invalid("service.health_check.command", format!("{:?}", check.command), r))?;
            for (key, value, min, max) in health_check_ranges(check) {
                if !(min..=max).contains(&value) {
                    return Err(invalid(key, value.to_string(), format!("ECS takes {min} to {max}")));
                }
            }
        }
        if let Some(stop) = svc.stop_timeout {
            if !(2..=120).contains(&stop) {
                return Err(invalid("service.stop_timeout", stop.to_string(), "Fargate takes 2 to 120 seconds".into()));
            }
        }
        let ports = &svc.additional_ports;
        if ports.len() > MAX_ADDITIONAL_PORTS {
            return Err(invalid(
                "service.additional_ports",
                format!("{ports:?}"),
                format!("at most {MAX_ADDITIONAL_PORTS} ports"),
            ));
        }
        for (i, port) in ports.iter().enumerate() {
            let reason = if !(1..=65535).contains(port) {
                "must be between 1 and 65535"
            } else if *port == svc.container_port {
                "is service.container_port, which the load balancer's mapping already has"
            } else if ports[..i].contains(port) {
                "listed twice"
            } else {
                continue;
            };
            return Err(invalid("service.additional_ports", port.to_string(), reason.into()));
        }
        Ok(())
    }

    /// `[service]`'s grace period, rolling deployment bounds and ECS Exec.
    pub(super) fn validate_deployment(&self, invalid: &Invalid) -> Result<(), ConfigError> {
        let svc = &self.service;
        if let Some(grace) = svc.health_check_grace_period_seconds {
            if grace > MAX_GRACE_SECONDS {
                return Err(invalid(
                    "service.health_check_grace_period_seconds",
                    grace.to_string(),
                    format!("ECS takes 0 to {MAX_GRACE_SECONDS}"),
                ));
            }
        }
        let (minimum, maximum) = (svc.minimum_healthy_percent, svc.maximum_percent);
        if minimum > 100 {
            return Err(invalid("service.minimum_healthy_percent", minimum.to_string(), "ECS takes 0 to 100".into()));
        }
        if maximum <= minimum || maximum > MAX_GRACE_SECONDS {
            return Err(invalid(
                "service.maximum_percent",
                maximum.to_string(),
                format!(
                    "must be above service.minimum_healthy_percent ({minimum}): ECS could neither start a new task \
                     nor stop an old one"
                ),
            ));
        }
        let (low, high) = match &self.autoscaling {
            // Every count a scheduled range allows too (0 tasks have nothing to deploy).
            Some(scaling) => (scaling.bounds().0.max(1), scaling.bounds().1),
            None => (svc.desired_count, svc.desired_count),
        };
        if let Some(stuck) = (low..=high).find(|n| !rolling_deployment_moves(*n, minimum, maximum)) {
            return Err(invalid(
                "service.maximum_percent",
                maximum.to_string(),
                format!(
                    "with {stuck} task(s) and service.minimum_healthy_percent = {minimum}, a deployment could neither \
                     start a new task nor stop an old one (ECS rounds the maximum down and the minimum up)"
                ),
            ));
        }
        if svc.enable_execute_command && svc.readonly_root_filesystem {
            let missing: Vec<&str> =
                EXEC_AGENT_PATHS.into_iter().filter(|p| !svc.writable_paths.iter().any(|w| w == p)).collect();
            if !missing.is_empty() {
                return Err(invalid(
                    "service.enable_execute_command",
                    "true".into(),
                    format!(
                        "the ECS Exec agent writes to {}: add them to service.writable_paths, or set \
                         service.readonly_root_filesystem = false",
                        missing.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_check_commands_are_cmd_or_cmd_shell() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for good in [&["CMD", "/bin/check"][..], &["CMD", "curl", "-f", "http://localhost/"], &["CMD-SHELL", "exit 0"]]
        {
            assert!(check_health_command(&words(good)).is_ok(), "{good:?}");
        }
        for bad in
            [&[][..], &["CMD"], &["CMD-SHELL"], &["CMD-SHELL", "a", "b"], &["NONE"], &["curl", "x"], &["CMD", ""]]
        {
            assert!(check_health_command(&words(bad)).is_err(), "{bad:?}");
        }
        assert!(check_words(&words(&["nginx", "-g", "daemon off;"])).is_ok());
        assert!(check_words(&[]).is_err());
        assert!(check_words(&words(&[""])).is_err());
        assert!(check_words(&words(&["a\0b"])).is_err());
        assert!(check_words(&["x".repeat(MAX_WORDS_BYTES + 1)]).is_err());
    }

    #[test]
    fn a_rolling_deployment_must_be_able_to_start_or_stop_a_task() {
        assert!(rolling_deployment_moves(2, 100, 200));
        assert!(rolling_deployment_moves(2, 50, 100), "stops one, then starts one");
        assert!(rolling_deployment_moves(1, 0, 100));
        assert!(!rolling_deployment_moves(1, 50, 150), "1 task: at least 1, at most 1");
        assert!(!rolling_deployment_moves(2, 100, 100));
        assert!(!rolling_deployment_moves(3, 100, 133), "at most floor(3.99) = 3");
        assert!(rolling_deployment_moves(3, 100, 134));
        assert!(rolling_deployment_moves(0, 100, 100), "nothing to deploy");
    }
}
