//! `[deploy]`: how a rollout runs and is watched. `strategy` picks ECS's deployment strategy
//! (rolling, or canary / linear / blue_green with a second target group, a production listener
//! rule and an infrastructure role); the stack's CloudWatch alarms (the target group's 5xx rate,
//! its unhealthy hosts, optionally its p99 latency) are attached to the ECS service's
//! deployments, which ECS rolls back when one of them goes into ALARM.

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, Invalid};

/// CloudWatch evaluates an alarm over at most a day: 1-minute datapoints, so at most 1440; a
/// deploy that waits longer than an hour for its alarms is no longer watched by them.
pub const MAX_DATAPOINTS: u32 = 60;
/// The load balancer's idle timeout is at most 4000 s: no response takes longer.
pub const MAX_P99_LATENCY_MS: u32 = 4_000_000;
/// More unhealthy hosts than this never happen (`[autoscaling] max_count` is at most 100).
pub const MAX_UNHEALTHY_HOSTS: u32 = 100;
/// ECS's longest bake (`bakeTimeInMinutes`, `canaryBakeTimeInMinutes`, `stepBakeTimeInMinutes`):
/// 24 hours.
pub const MAX_BAKE_MINUTES: u32 = 1440;
/// ECS's `canaryPercent`: multiples of 0.1 from 0.1 to 100.0.
pub const CANARY_PERCENT: (f64, f64) = (0.1, 100.0);
/// ECS's `stepPercent`: multiples of 0.1 from 3.0 to 100.0.
pub const LINEAR_STEP_PERCENT: (f64, f64) = (3.0, 100.0);

/// How ECS rolls the service onto a new revision (`deploymentConfiguration.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Tasks replaced a few at a time in the one target group, the circuit breaker watching.
    #[default]
    Rolling,
    /// A full second set of tasks in the alternate target group; `canary_percent` of the traffic,
    /// a bake, then all of it.
    Canary,
    /// The traffic moved `linear_step_percent` at a time, a bake after each step.
    Linear,
    /// All the traffic at once to the second set of tasks.
    BlueGreen,
}

impl Strategy {
    /// ECS's name (`DeploymentStrategy`).
    pub fn ecs_name(self) -> &'static str {
        match self {
            Strategy::Rolling => "ROLLING",
            Strategy::Canary => "CANARY",
            Strategy::Linear => "LINEAR",
            Strategy::BlueGreen => "BLUE_GREEN",
        }
    }

    /// The config's name.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Rolling => "rolling",
            Strategy::Canary => "canary",
            Strategy::Linear => "linear",
            Strategy::BlueGreen => "blue_green",
        }
    }

    /// ECS shifts the traffic between two target groups through a listener rule: the alternate
    /// target group, the production rule and the infrastructure role exist.
    pub fn shifts_traffic(self) -> bool {
        self != Strategy::Rolling
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployConfig {
    /// How ECS rolls out a new revision; rolling (the default) keeps one target group.
    #[serde(default)]
    pub strategy: Strategy,
    /// `canary`: the share of the traffic the new revision gets first, in percent.
    #[serde(default = "defaults::canary_percent")]
    pub canary_percent: f64,
    /// `linear`: the share of the traffic moved at each step, in percent.
    #[serde(default = "defaults::linear_step_percent")]
    pub linear_step_percent: f64,
    /// Minutes ECS waits after a canary step or a linear step (with the old tasks still up), and
    /// again once all the traffic is on the new revision before the old tasks stop. 0: no wait.
    #[serde(default = "defaults::bake_minutes")]
    pub bake_minutes: u32,
    /// The alarms made and attached to the service's deployments (rollback on ALARM); off: none
    /// (and `up` detaches and deletes what an earlier run made).
    #[serde(default = "defaults::alarms")]
    pub alarms: bool,
    /// ALARM above this share of the target group's requests answered 5xx by the tasks, in percent.
    #[serde(default = "defaults::error_rate_percent")]
    pub error_rate_percent: f64,
    /// ALARM at this many unhealthy targets or more.
    #[serde(default = "defaults::unhealthy_hosts")]
    pub unhealthy_hosts: u32,
    /// Consecutive 1-minute datapoints past a threshold that put an alarm into ALARM.
    #[serde(default = "defaults::datapoints")]
    pub datapoints: u32,
    /// ALARM above this p99 response time of the targets, in milliseconds; absent: no such alarm.
    #[serde(default)]
    pub p99_latency_ms: Option<u32>,
}

/// `[deploy]` absent: the alarms on, with the defaults.
impl Default for DeployConfig {
    fn default() -> DeployConfig {
        DeployConfig {
            strategy: Strategy::default(),
            canary_percent: defaults::canary_percent(),
            linear_step_percent: defaults::linear_step_percent(),
            bake_minutes: defaults::bake_minutes(),
            alarms: defaults::alarms(),
            error_rate_percent: defaults::error_rate_percent(),
            unhealthy_hosts: defaults::unhealthy_hosts(),
            datapoints: defaults::datapoints(),
            p99_latency_ms: None,
        }
    }
}

mod defaults {
    pub fn alarms() -> bool {
        true
    }

    /// ECS's default, and Express Mode's.
    pub fn canary_percent() -> f64 {
        5.0
    }

    /// ECS's default.
    pub fn linear_step_percent() -> f64 {
        10.0
    }

    /// Express Mode's fixed bake; 0 allowed.
    pub fn bake_minutes() -> u32 {
        3
    }

    /// Express Mode rolls back at 1 % of 4xx+5xx; the tasks' own 5xx only, at 5 %, leaves room
    /// for a client's retries without letting a broken release through.
    pub fn error_rate_percent() -> f64 {
        5.0
    }

    pub fn unhealthy_hosts() -> u32 {
        1
    }

    /// Two minutes in a row, as Express Mode's "two datapoints".
    pub fn datapoints() -> u32 {
        2
    }
}

/// A percent ECS accepts: a multiple of 0.1 within `(min, max)`.
fn tenths_within(value: f64, (min, max): (f64, f64)) -> bool {
    let tenths = value * 10.0;
    value.is_finite() && value >= min - 1e-9 && value <= max + 1e-9 && (tenths - tenths.round()).abs() < 1e-6
}

impl Config {
    /// `[deploy]`: a strategy ECS can run with this stack, within ECS's ranges; thresholds
    /// CloudWatch accepts and that can be crossed.
    pub(super) fn validate_deploy(&self, invalid: &Invalid) -> Result<(), ConfigError> {
        self.validate_strategy(invalid)?;
        let deploy = &self.deploy;
        let rate = deploy.error_rate_percent;
        if !(rate.is_finite() && rate > 0.0 && rate <= 100.0) {
            return Err(invalid(
                "deploy.error_rate_percent",
                rate.to_string(),
                "expected a percent in (0, 100]".into(),
            ));
        }
        if !(1..=MAX_UNHEALTHY_HOSTS).contains(&deploy.unhealthy_hosts) {
            return Err(invalid(
                "deploy.unhealthy_hosts",
                deploy.unhealthy_hosts.to_string(),
                format!("expected 1 ..= {MAX_UNHEALTHY_HOSTS}"),
            ));
        }
        if !(1..=MAX_DATAPOINTS).contains(&deploy.datapoints) {
            return Err(invalid(
                "deploy.datapoints",
                deploy.datapoints.to_string(),
                format!("expected 1 ..= {MAX_DATAPOINTS} (1-minute datapoints)"),
            ));
        }
        if let Some(ms) = deploy.p99_latency_ms {
            if !(1..=MAX_P99_LATENCY_MS).contains(&ms) {
                return Err(invalid(
                    "deploy.p99_latency_ms",
                    ms.to_string(),
                    format!("expected 1 ..= {MAX_P99_LATENCY_MS} (the load balancer's longest idle timeout)"),
                ));
            }
        }
        Ok(())
    }

    /// The strategy's numbers within ECS's ranges, and nothing in the stack that ECS's traffic
    /// shifting would break.
    fn validate_strategy(&self, invalid: &Invalid) -> Result<(), ConfigError> {
        let deploy = &self.deploy;
        for (key, value, range) in [
            ("deploy.canary_percent", deploy.canary_percent, CANARY_PERCENT),
            ("deploy.linear_step_percent", deploy.linear_step_percent, LINEAR_STEP_PERCENT),
        ] {
            if !tenths_within(value, range) {
                return Err(invalid(
                    key,
                    value.to_string(),
                    format!("expected a multiple of 0.1 from {:.1} to {:.1} (ECS's range)", range.0, range.1),
                ));
            }
        }
        if deploy.bake_minutes > MAX_BAKE_MINUTES {
            return Err(invalid(
                "deploy.bake_minutes",
                deploy.bake_minutes.to_string(),
                format!("expected 0 ..= {MAX_BAKE_MINUTES} (ECS's longest bake, 24 hours)"),
            ));
        }
        let strategy = deploy.strategy;
        if !strategy.shifts_traffic() {
            return Ok(());
        }
        let name = format!("\"{}\"", strategy.name());
        // ECS moves one production listener rule: a second listener forwarding to the primary
        // target group would keep sending traffic to it after the switch, to no task.
        if self.https.as_ref().is_some_and(|h| !h.redirect_http) {
            return Err(invalid(
                "deploy.strategy",
                name,
                "ECS shifts the traffic of one listener (the HTTPS one with [https]); with https.redirect_http = \
                 false the HTTP listener would keep forwarding to the old target group: set https.redirect_http = \
                 true, or strategy = \"rolling\""
                    .into(),
            ));
        }
        // The request-count policy's metric names one target group: after a switch the other serves.
        if matches!(&self.autoscaling, Some(scaling) if scaling.requests_per_target.is_some()) {
            return Err(invalid(
                "deploy.strategy",
                name,
                "autoscaling.requests_per_target scales on the requests of the primary target group, which serves \
                 nothing once ECS has switched to the alternate one: remove it (the CPU target keeps scaling), or \
                 strategy = \"rolling\""
                    .into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_TOML;

    /// The default config with `deploy`'s `key = value` lines in place of its own, and `extra` after.
    fn parse(deploy: &str, extra: &str) -> Result<Config, ConfigError> {
        let mut text = DEFAULT_TOML.to_string();
        for line in deploy.lines() {
            let key = line.split(" = ").next().unwrap();
            let own = text.lines().find(|l| l.starts_with(&format!("{key} "))).map(str::to_string);
            text = match own {
                Some(own) => text.replacen(&own, line, 1),
                None => text.replace("[deploy]\n", &format!("[deploy]\n{line}\n")),
            };
        }
        Config::parse("t", &format!("{text}\n{extra}"))
    }

    #[test]
    fn rolling_by_default_with_ecs_defaults() {
        let c = Config::parse("t", DEFAULT_TOML).unwrap();
        assert_eq!(c.deploy.strategy, Strategy::Rolling);
        assert!(!c.deploy.strategy.shifts_traffic());
        assert_eq!((c.deploy.canary_percent, c.deploy.linear_step_percent, c.deploy.bake_minutes), (5.0, 10.0, 3));
        for (text, strategy, ecs) in [
            ("canary", Strategy::Canary, "CANARY"),
            ("linear", Strategy::Linear, "LINEAR"),
            ("blue_green", Strategy::BlueGreen, "BLUE_GREEN"),
        ] {
            let c = parse(&format!("strategy = \"{text}\""), "").unwrap();
            assert_eq!((c.deploy.strategy, c.deploy.strategy.ecs_name()), (strategy, ecs));
        }
        let fast = parse("strategy = \"canary\"\nbake_minutes = 0\ncanary_percent = 0.1", "").unwrap();
        assert_eq!((fast.deploy.bake_minutes, fast.deploy.canary_percent), (0, 0.1));
        assert!(parse("linear_step_percent = 3.0\nbake_minutes = 1440", "").is_ok());
        assert!(parse("strategy = \"ab\"", "").unwrap_err().to_string().contains("strategy"));
    }

    #[test]
    fn values_outside_ecs_ranges_fail_naming_the_key() {
        for (line, key) in [
            ("canary_percent = 0.0", "deploy.canary_percent"),
            ("canary_percent = 100.1", "deploy.canary_percent"),
            ("canary_percent = 5.05", "deploy.canary_percent"),
            ("linear_step_percent = 2.9", "deploy.linear_step_percent"),
            ("linear_step_percent = 10.01", "deploy.linear_step_percent"),
            ("bake_minutes = 1441", "deploy.bake_minutes"),
        ] {
            let err = parse(line, "").unwrap_err().to_string();
            assert!(err.contains(key), "{line}: {err}");
        }
    }

    #[test]
    fn a_strategy_ecs_cannot_run_with_this_stack_is_refused_naming_why() {
        let arn = "arn:aws:acm:us-east-1:123456789012:certificate/abc";
        let https = |redirect: bool| format!("[https]\ncertificate_arn = \"{arn}\"\nredirect_http = {redirect}\n");
        let err = parse("strategy = \"blue_green\"", &https(false)).unwrap_err().to_string();
        assert!(err.contains("deploy.strategy") && err.contains("https.redirect_http"), "{err}");
        assert!(parse("strategy = \"blue_green\"", &https(true)).is_ok(), "the rule on the HTTPS listener");
        assert!(parse("strategy = \"rolling\"", &https(false)).is_ok());
        let scaled = "[autoscaling]\nmin_count = 1\nmax_count = 4\nrequests_per_target = 100\n";
        let err = parse("strategy = \"canary\"", scaled).unwrap_err().to_string();
        assert!(err.contains("deploy.strategy") && err.contains("autoscaling.requests_per_target"), "{err}");
        let cpu_only = "[autoscaling]\nmin_count = 1\nmax_count = 4\n";
        assert!(parse("strategy = \"canary\"", cpu_only).is_ok());
        // Capacity providers (Fargate Spot) are no obstacle: ECS runs the strategies on them.
        let spot = DEFAULT_TOML
            .replace(
                "enable_execute_command = false",
                "enable_execute_command = false\nspot = { base = 1, weight = 3 }",
            )
            .replace("strategy = \"rolling\"", "strategy = \"linear\"");
        assert!(Config::parse("t", &spot).unwrap().service.spot.is_some());
    }
}
