//! The resource model. Every resource of the stack is declared once, as a [`Managed`] type in its
//! module: its key, what it needs and reads, what must be gone before it can be deleted, how to
//! find it (with the ownership check), how it differs from the config (typed fields, and which
//! need a replacement), how to create, update and delete it, what IAM actions each of those calls
//! and what it bills. [`Driven`] turns that into the three verbs the commands use (`inspect`,
//! `ensure`, `delete`), so the plan, `up`, `status` and `down` cannot disagree. The core knows no
//! particular resource: keys, kinds and attributes are declared by the modules that own them.

mod key;
mod managed;
mod scope;
mod shape;
mod sweep;
pub mod tags;

use std::fmt;

use serde::Serialize;

pub use key::{after, before, Attr, Dep, Edge, Indexed, Key, Kind, MAX_INDEXED};
pub use managed::{
    refusal, Driven, Lifecycle, Managed, Nodes, Prepared, Removal, Replacing, Resource, Retention, Step, Stepping,
    Wait, Waiting,
};
pub use scope::{owner_tags, Declared, Scope, SdkTag};
pub use shape::Shape;
pub use sweep::{made_for, Sighting, Sweep, SweepFn};

/// The attribute a resource kept on purpose by `down` carries (the table, with `--retain-table`).
pub const RETAINED: &str = "retained";

/// One difference between a live resource and the config, as the plan and `status` show it:
/// `from` is what AWS has, `to` what the config asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub field: String,
    pub from: String,
    pub to: String,
    /// AWS cannot make this change in place: the resource (and its data) would be replaced.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replace: bool,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} → {}", self.field, self.from, self.to)
    }
}

/// What a resource can differ in, as its module names it: `update` dispatches on this, never on
/// the label people read.
pub trait Field: Clone + PartialEq + fmt::Debug + Send + Sync + 'static {
    /// How the plan and `status` name it (usually the config key it comes from).
    fn label(&self) -> String;
}

/// For a resource that nothing in the config can change in place.
#[derive(Debug, Clone, PartialEq)]
pub enum NoField {}

impl Field for NoField {
    fn label(&self) -> String {
        match *self {}
    }
}

/// A difference in a typed field.
#[derive(Debug, Clone, PartialEq)]
pub struct Changed<F> {
    pub field: F,
    pub change: Change,
}

impl<F: Field> Changed<F> {
    pub fn new(field: F, from: impl Into<String>, to: impl Into<String>, replace: bool) -> Changed<F> {
        let change = Change { field: field.label(), from: from.into(), to: to.into(), replace };
        Changed { field, change }
    }
}

/// Collects the differences between what AWS has and what the config asks for.
#[derive(Debug)]
pub struct Diff<F>(Vec<Changed<F>>);

impl<F: Field> Default for Diff<F> {
    fn default() -> Self {
        Diff(vec![])
    }
}

impl<F: Field> Diff<F> {
    pub fn new() -> Diff<F> {
        Diff::default()
    }

    /// Record `field` if `have` and `want` differ; changed in place.
    pub fn field<T: PartialEq + fmt::Display + ?Sized>(&mut self, field: F, have: &T, want: &T) -> &mut Diff<F> {
        self.push(field, have, want, false)
    }

    /// Record `field` if `have` and `want` differ; the change needs the resource replaced.
    pub fn replace<T: PartialEq + fmt::Display + ?Sized>(&mut self, field: F, have: &T, want: &T) -> &mut Diff<F> {
        self.push(field, have, want, true)
    }

    fn push<T: PartialEq + fmt::Display + ?Sized>(
        &mut self,
        field: F,
        have: &T,
        want: &T,
        replace: bool,
    ) -> &mut Diff<F> {
        if have != want {
            self.0.push(Changed::new(field, have.to_string(), want.to_string(), replace));
        }
        self
    }

    pub fn into_changes(self) -> Vec<Changed<F>> {
        self.0
    }
}

/// What a step did, for the summary and the JSON result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Updated,
    /// A new one made in its place (`up --replace`).
    Replaced,
    Unchanged,
    Deleted,
    Absent,
    Retained,
    Waited,
    /// Found by name but not carrying this stack's tag: not ours, not touched.
    LeftAlone,
    /// AWS deletes it with the VPC it made it with (the VPC's default security group).
    GoesWithVpc,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Replaced => "replaced",
            Outcome::Unchanged => "unchanged",
            Outcome::Deleted => "deleted",
            Outcome::Absent => "already gone",
            Outcome::Retained => "retained",
            Outcome::Waited => "ready",
            Outcome::LeftAlone => "left alone",
            Outcome::GoesWithVpc => "goes with the VPC",
        }
    }
}

/// Live status of one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Ok,
    Missing,
    Drifted,
    Pending,
}

impl Health {
    pub fn word(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Missing => "missing",
            Health::Drifted => "drifted",
            Health::Pending => "pending",
        }
    }
}

/// What a live check of one resource found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inspection {
    pub status: Health,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// How it differs from the config (drifted), as old → new.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// Recorded in the state file before this check (false: found by tag or name, or absent).
    pub recorded: bool,
    /// Why `up` cannot create or change it (something that is not ours is in the way, or AWS
    /// would refuse): `up` stops before any change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
}

impl Inspection {
    pub fn missing(id: Option<String>, recorded: bool, detail: impl Into<String>) -> Inspection {
        Inspection { status: Health::Missing, id, detail: detail.into(), changes: vec![], recorded, blocked: None }
    }

    /// Missing (or not usable) because of `why`, which `up` cannot get past.
    pub fn blocked(id: Option<String>, recorded: bool, why: String) -> Inspection {
        Inspection { blocked: Some(why.clone()), ..Inspection::missing(id, recorded, why) }
    }

    pub fn found(id: String, recorded: bool, changes: Vec<Change>, pending: Option<String>) -> Inspection {
        let (status, detail) = match (changes.is_empty(), pending) {
            (false, _) => (Health::Drifted, changes.iter().map(Change::to_string).collect::<Vec<_>>().join("; ")),
            (true, Some(state)) => (Health::Pending, state),
            (true, None) => (Health::Ok, String::new()),
        };
        Inspection { status, id: Some(id), detail, changes, recorded, blocked: None }
    }

    /// It exists, or something is in its way: `up` would not create it.
    pub fn exists(&self) -> bool {
        self.status != Health::Missing || self.blocked.is_some()
    }

    /// `up` would update it in place: recorded, drifted, nothing in the way or refused.
    pub fn is_update(&self) -> bool {
        self.recorded
            && self.status == Health::Drifted
            && self.blocked.is_none()
            && self.replacements().next().is_none()
    }

    /// Changes `up` refuses to make because they replace the resource.
    pub fn replacements(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.replace)
    }
}

/// What is written to the state file for a resource: its AWS identifier and a few facts.
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub id: String,
    pub attrs: Vec<(&'static str, String)>,
}

impl Record {
    pub fn id(id: impl Into<String>) -> Record {
        Record { id: id.into(), attrs: vec![] }
    }

    /// With an attribute (of the resource being recorded; others read it through `attr`).
    pub fn with(mut self, attr: Attr, value: impl Into<String>) -> Record {
        self.attrs.push((attr.name, value.into()));
        self
    }

    /// With an attribute of a numbered resource, which nothing else reads.
    pub fn with_fact(mut self, name: &'static str, value: impl Into<String>) -> Record {
        self.attrs.push((name, value.into()));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    enum F {
        Image,
        Cidr,
    }

    impl Field for F {
        fn label(&self) -> String {
            match self {
                F::Image => "image".into(),
                F::Cidr => "cidr".into(),
            }
        }
    }

    #[test]
    fn diff_records_only_differences_and_marks_replacements() {
        let mut d = Diff::new();
        d.field(F::Image, "nginx:1", "nginx:1").field(F::Image, "nginx:1", "nginx:2").replace(F::Cidr, "a", "b");
        let changes = d.into_changes();
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].change.to_string(), "image: nginx:1 → nginx:2");
        assert_eq!(changes[0].field, F::Image);
        assert!(!changes[0].change.replace && changes[1].change.replace);
    }

    #[test]
    fn inspection_status_follows_changes_then_pending() {
        let change = Change { field: "f".into(), from: "a".into(), to: "b".into(), replace: false };
        assert_eq!(Inspection::found("i".into(), true, vec![change.clone()], Some("p".into())).status, Health::Drifted);
        assert_eq!(Inspection::found("i".into(), true, vec![], Some("p".into())).status, Health::Pending);
        assert_eq!(Inspection::found("i".into(), true, vec![], None).status, Health::Ok);
    }
}
