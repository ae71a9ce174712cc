//! `[cluster]`: the ECS cluster's Container Insights.

use serde::{Deserialize, Serialize};

/// Container Insights' level: `enabled` (cluster and service metrics), `enhanced` (also task and
/// container metrics; billed per metric), `disabled`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerInsights {
    #[default]
    Enabled,
    Enhanced,
    Disabled,
}

impl ContainerInsights {
    /// The value of ECS's `containerInsights` cluster setting.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerInsights::Enabled => "enabled",
            ContainerInsights::Enhanced => "enhanced",
            ContainerInsights::Disabled => "disabled",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// On by default (Security Hub ECS.12).
    #[serde(default)]
    pub container_insights: ContainerInsights,
}
