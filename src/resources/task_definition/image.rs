//! Which image the stack runs: the config's `service.image`, or the one `deploy` (or `rollback`)
//! shipped since. One rule, read by the task definition's wanted shape (plan, `up`, `status`) and by
//! the execution role's policy (an ECR image needs a pull grant on its repository):
//!
//! `up` keeps the image a `deploy` shipped unless the config's `service.image` changed since it was
//! last applied by `up`. So a laptop `up` with the config's older image never rolls back what CI
//! deployed, and editing `service.image` in the config still wins.
//!
//! Recorded as attributes of the task definition in the state: [`DEPLOYED_IMAGE`] (set by
//! `deploy`/`rollback`, cleared when `up` applies the config's image) and [`CONFIG_IMAGE`] (the
//! config's `service.image` when `up` last applied the task definition).
//!
//! The task definition's key is declared here, in the leaf of its family: the execution role reads
//! the choice (its policy follows the image) while the task definition needs the roles.

use serde::Serialize;

use crate::model::{Attr, Key, Kind, Scope};

pub const TASK_DEFINITION: Key = Key::new("task-definition", Kind::new("ecs:task-definition"));

/// The image `deploy` or `rollback` put in place (empty or absent: none).
pub const DEPLOYED_IMAGE: Attr = Attr::new(TASK_DEFINITION, "deployed_image");
/// The config's `service.image` the last time `up` applied the task definition.
pub const CONFIG_IMAGE: Attr = Attr::new(TASK_DEFINITION, "config_image");

/// Where the wanted image comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The config's `service.image`.
    Config,
    /// Shipped by `deploy` (or `rollback`); the config's image is unchanged since the last `up`.
    Deploy,
}

/// The image the stack should run, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Choice {
    pub image: String,
    pub source: Source,
    /// The config's `service.image` now.
    pub config_image: String,
    /// What `deploy` shipped, if anything (also when the config's change overrides it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployed_image: Option<String>,
    /// The config's image at the last `up`, if recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_config_image: Option<String>,
}

impl Choice {
    /// The rule, on the recorded attributes and the config's image.
    pub fn decide(config_image: &str, deployed: Option<String>, applied: Option<String>) -> Choice {
        let deployed = deployed.filter(|d| !d.is_empty());
        let source = match (&deployed, &applied) {
            (Some(_), Some(applied)) if applied == config_image => Source::Deploy,
            _ => Source::Config,
        };
        let image = match (source, &deployed) {
            (Source::Deploy, Some(deployed)) => deployed.clone(),
            _ => config_image.to_string(),
        };
        Choice {
            image,
            source,
            config_image: config_image.to_string(),
            deployed_image: deployed,
            applied_config_image: applied,
        }
    }

    /// What a person should know about the choice, when a `deploy` is involved.
    pub fn note(&self) -> Option<String> {
        let deployed = self.deployed_image.as_ref()?;
        Some(match self.source {
            // The same image either way: nothing to tell.
            Source::Deploy if *deployed == self.config_image => return None,
            Source::Deploy => format!(
                "keeps {deployed} from `deploy`; the config's {} is unchanged since the last up",
                self.config_image
            ),
            Source::Config => format!(
                "the config's service.image changed since the last up ({} → {}): it replaces {deployed} from `deploy`",
                self.applied_config_image.as_deref().unwrap_or("not recorded"),
                self.config_image
            ),
        })
    }
}

/// The image the stack should run now.
pub fn wanted(ctx: &Scope<'_>) -> Choice {
    Choice::decide(&ctx.config.service.image, ctx.attr(DEPLOYED_IMAGE), ctx.attr(CONFIG_IMAGE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn a_deployed_image_stays_while_the_config_image_is_unchanged() {
        let c = Choice::decide("nginx:latest", s("nginx:1.28"), s("nginx:latest"));
        assert_eq!((c.image.as_str(), c.source), ("nginx:1.28", Source::Deploy));
        assert_eq!(
            c.note().unwrap(),
            "keeps nginx:1.28 from `deploy`; the config's nginx:latest is unchanged since the last up"
        );
    }

    #[test]
    fn a_changed_config_image_wins_over_a_deployed_one() {
        let c = Choice::decide("nginx:1.29", s("nginx:1.28"), s("nginx:latest"));
        assert_eq!((c.image.as_str(), c.source), ("nginx:1.29", Source::Config));
        assert!(c.note().unwrap().contains("(nginx:latest → nginx:1.29): it replaces nginx:1.28"), "{:?}", c.note());
    }

    #[test]
    fn without_a_deploy_the_config_decides_and_says_nothing() {
        for (deployed, applied) in [(None, None), (None, s("nginx:latest")), (s(""), s("nginx:latest"))] {
            let c = Choice::decide("nginx:latest", deployed, applied);
            assert_eq!((c.image.as_str(), c.source, c.note()), ("nginx:latest", Source::Config, None));
        }
        // Deployed, but the config's image anyway: nothing worth a note.
        assert_eq!(Choice::decide("nginx:latest", s("nginx:latest"), s("nginx:latest")).note(), None);
        // A deploy recorded without the config image of the last up (an older state): the config wins.
        let c = Choice::decide("nginx:latest", s("nginx:1.28"), None);
        assert_eq!(c.source, Source::Config);
    }
}
