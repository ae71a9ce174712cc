//! `[service] spot = { base = 1, weight = 3 }`: the service's tasks split between Fargate
//! (on-demand) and Fargate Spot by an ECS capacity provider strategy instead of a launch type.
//!
//! Semantics (ECS's own, named for people): the first `base` tasks always run on-demand
//! (`FARGATE`, base `base`); every task beyond them goes to on-demand or Spot in the ratio
//! `on_demand_weight : weight` (`FARGATE` weight `on_demand_weight`, `FARGATE_SPOT` weight
//! `weight`). `{ base = 1, weight = 3 }` on 5 tasks: 1 on-demand, then 4 split 1:3, so 2 on-demand
//! and 3 on Spot. `{ base = 0, weight = 1, on_demand_weight = 0 }`: every task on Spot.

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, Invalid};

/// The capacity providers ECS offers every cluster for Fargate.
pub const ON_DEMAND_PROVIDER: &str = "FARGATE";
pub const SPOT_PROVIDER: &str = "FARGATE_SPOT";

/// ECS's limits on a strategy item: base 0..=100000, weight 0..=1000.
const MAX_BASE: u32 = 100_000;
const MAX_WEIGHT: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpotConfig {
    /// Tasks that always run on-demand, before any goes to Spot.
    #[serde(default)]
    pub base: u32,
    /// Spot's share of the tasks beyond `base`, against `on_demand_weight`.
    pub weight: u32,
    /// On-demand's share of the tasks beyond `base` (0: all of them on Spot).
    #[serde(default = "one")]
    pub on_demand_weight: u32,
}

fn one() -> u32 {
    1
}

/// One provider of a strategy, as ECS takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrategyItem {
    pub provider: &'static str,
    pub base: u32,
    pub weight: u32,
}

/// How many of `tasks` run on-demand and how many on Spot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    pub on_demand: f64,
    pub spot: f64,
}

impl SpotConfig {
    /// The service's capacity provider strategy.
    pub fn strategy(&self) -> [StrategyItem; 2] {
        [
            StrategyItem { provider: ON_DEMAND_PROVIDER, base: self.base, weight: self.on_demand_weight },
            StrategyItem { provider: SPOT_PROVIDER, base: 0, weight: self.weight },
        ]
    }

    /// How `tasks` split between on-demand and Spot (as a share, for the bill: ECS places whole
    /// tasks, so a single count can round either way).
    pub fn split(&self, tasks: f64) -> Split {
        let base = tasks.min(self.base as f64);
        let rest = tasks - base;
        let total = (self.weight + self.on_demand_weight) as f64;
        let spot = rest * self.weight as f64 / total;
        Split { on_demand: tasks - spot, spot }
    }
}

/// A strategy as one line: `FARGATE base 1 weight 1, FARGATE_SPOT weight 3`, or the launch type.
pub fn describe_strategy(items: &[StrategyItem]) -> String {
    if items.is_empty() {
        return "launch type FARGATE".into();
    }
    items
        .iter()
        .map(|i| match i.base {
            0 => format!("{} weight {}", i.provider, i.weight),
            base => format!("{} base {base} weight {}", i.provider, i.weight),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Config {
    /// `[service] spot`: ECS's limits, a base the service can reach, Spot actually used, x86 only.
    pub(super) fn validate_spot(&self, invalid: &Invalid) -> Result<(), ConfigError> {
        let Some(spot) = &self.service.spot else { return Ok(()) };
        if spot.base > MAX_BASE {
            return Err(invalid("service.spot.base", spot.base.to_string(), format!("ECS takes at most {MAX_BASE}")));
        }
        for (key, value) in
            [("service.spot.weight", spot.weight), ("service.spot.on_demand_weight", spot.on_demand_weight)]
        {
            if value > MAX_WEIGHT {
                return Err(invalid(key, value.to_string(), format!("ECS takes a weight of at most {MAX_WEIGHT}")));
            }
        }
        if spot.weight == 0 {
            return Err(invalid(
                "service.spot.weight",
                "0".into(),
                "must be at least 1: with weight 0 no task runs on Spot (leave `spot` out instead)".into(),
            ));
        }
        // The fewest tasks the service runs: the base is meant to be on-demand capacity it keeps.
        let (fewest, key) = match &self.autoscaling {
            Some(scaling) => (scaling.min_count, "autoscaling.min_count"),
            None => (self.service.desired_count, "service.desired_count"),
        };
        if spot.base > fewest {
            return Err(invalid(
                "service.spot.base",
                spot.base.to_string(),
                format!("must be at most {key} ({fewest}): the base is how many of the service's tasks stay on-demand"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spot(base: u32, weight: u32, on_demand_weight: u32) -> SpotConfig {
        SpotConfig { base, weight, on_demand_weight }
    }

    #[test]
    fn the_base_runs_on_demand_and_the_rest_splits_by_weight() {
        let s = spot(1, 3, 1).split(5.0);
        assert_eq!((s.on_demand, s.spot), (2.0, 3.0));
        // Fewer tasks than the base: all on-demand.
        let s = spot(2, 3, 1).split(1.0);
        assert_eq!((s.on_demand, s.spot), (1.0, 0.0));
        // On-demand weight 0: everything beyond the base on Spot.
        let s = spot(0, 1, 0).split(4.0);
        assert_eq!((s.on_demand, s.spot), (0.0, 4.0));
        assert_eq!(spot(0, 1, 1).split(0.0), Split { on_demand: 0.0, spot: 0.0 });
    }

    fn parse(service_extra: &str, tail: &str) -> Result<Config, String> {
        let (service_extra, arm) = match service_extra.strip_suffix("\nARM") {
            Some(spot) => (spot, true),
            None => (service_extra, false),
        };
        let mut text =
            crate::config::DEFAULT_TOML.replace("desired_count = 2", &format!("desired_count = 2\n{service_extra}"));
        if arm {
            text = text.replace("cpu_architecture = \"X86_64\"", "cpu_architecture = \"ARM64\"");
        }
        Config::parse("test", &format!("{text}\n{tail}")).map_err(|e| e.to_string())
    }

    #[test]
    fn spot_is_checked_naming_the_key() {
        let ok = parse("spot = { base = 1, weight = 3 }", "").unwrap();
        assert_eq!(ok.service.spot, Some(spot(1, 3, 1)));
        let cases = [
            ("spot = { base = 3, weight = 1 }", "", "service.spot.base", "service.desired_count (2)"),
            ("spot = { base = 0, weight = 0 }", "", "service.spot.weight", "at least 1"),
            ("spot = { weight = 1001 }", "", "service.spot.weight", "at most 1000"),
            ("spot = { weight = 1, on_demand_weight = 1001 }", "", "service.spot.on_demand_weight", "at most 1000"),
            (
                "spot = { base = 2, weight = 1 }",
                "[autoscaling]\nmin_count = 1\nmax_count = 4",
                "service.spot.base",
                "autoscaling.min_count (1)",
            ),
            ("spot = { wieght = 1 }", "", "wieght", ""),
        ];
        for (service, tail, key, why) in cases {
            let e = parse(service, tail).expect_err(service);
            assert!(e.contains(key) && e.contains(why), "{service}: {e}");
        }
    }

    #[test]
    fn the_strategy_reads_as_ecs_takes_it() {
        let items = spot(1, 3, 1).strategy();
        assert_eq!(describe_strategy(&items), "FARGATE base 1 weight 1, FARGATE_SPOT weight 3");
        assert_eq!(describe_strategy(&[]), "launch type FARGATE");
    }
}
