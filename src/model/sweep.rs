//! What AWS still has of a kind of resource, for every stack: each resource declares how to list
//! it ([`Sweep`]). `list` finds the region's stacks through some of these, and the tests' leak
//! check (after `down` nothing of a stack is left) and its count of each resource follow from
//! all of them.

use futures::future::BoxFuture;

use crate::aws::Clients;
use crate::error::StackError;
use crate::model::Kind;

/// One object AWS lists that may be a stack's.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    pub kind: Kind,
    /// Its ID, name or ARN, as messages show it.
    pub id: String,
    /// Its name, for named resources.
    pub name: Option<String>,
    /// The stack its tag names.
    pub stack: Option<String>,
    /// The resource key its tag names (or its name gives).
    pub resource: Option<String>,
    /// The stack its name is made for (`app` for `app-messages`), for named resources.
    pub named_for: Option<String>,
    /// When AWS says it was created (seconds since the epoch).
    pub created: Option<i64>,
    /// Not on its way out (a NAT gateway deleting, an INACTIVE task definition revision).
    pub active: bool,
}

impl Sighting {
    pub fn new(kind: Kind, id: impl Into<String>) -> Sighting {
        Sighting {
            kind,
            id: id.into(),
            name: None,
            stack: None,
            resource: None,
            named_for: None,
            created: None,
            active: true,
        }
    }

    /// With what its tags say of its owner (see `owner_tags`).
    pub fn owned(mut self, (stack, resource): (Option<String>, Option<String>)) -> Sighting {
        self.stack = stack;
        self.resource = resource.or(self.resource);
        self
    }

    /// Named `name`, which is made for the stack `named_for` gives, if any.
    pub fn named(mut self, name: impl Into<String>, named_for: impl Fn(&str) -> Option<String>) -> Sighting {
        let name = name.into();
        self.named_for = named_for(&name);
        self.name = Some(name);
        self
    }

    pub fn created(mut self, secs: Option<i64>) -> Sighting {
        self.created = secs;
        self
    }

    pub fn active(mut self, active: bool) -> Sighting {
        self.active = active;
        self
    }

    /// Is it `stack`'s, by its tag or by its name?
    pub fn belongs_to(&self, stack: &str) -> bool {
        self.stack.as_deref() == Some(stack) || self.named_for.as_deref() == Some(stack)
    }
}

/// Lists every object of a kind that may be a stack's.
pub type SweepFn = for<'a> fn(&'a Clients) -> BoxFuture<'a, Result<Vec<Sighting>, StackError>>;

/// How a resource's kind is listed.
#[derive(Clone, Copy)]
pub enum Sweep {
    Listed(SweepFn),
    /// AWS cannot tell the stack's from anyone else's, or it is not the stack's to leave behind;
    /// why.
    Unlisted(&'static str),
}

/// The stack a name made by `make` (`make("x") == "x-messages"`) is for, if it is one.
pub fn made_for(name: &str, make: fn(&str) -> String) -> Option<String> {
    let template = make("\u{0}");
    let (prefix, suffix) = template.split_once('\u{0}')?;
    let stack = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    (!stack.is_empty()).then(|| stack.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_tells_its_stack_through_the_function_that_makes_it() {
        let table = |s: &str| format!("{s}-messages");
        let group = |s: &str| format!("/ecs/{s}");
        assert_eq!(made_for("app-2-messages", table), Some("app-2".into()));
        assert_eq!(made_for("-messages", table), None);
        assert_eq!(made_for("app-alb", table), None);
        assert_eq!(made_for("/ecs/app", group), Some("app".into()));
        let s = Sighting::new(Kind::new("t:t"), "x").named("app-messages", |n| made_for(n, table));
        assert!(s.belongs_to("app") && !s.belongs_to("app-2"));
    }
}
