//! What a resource sees of the run: the config, the clients, and the state, read through the keys
//! it declares. The driver hands each resource's verbs a [`Scope`] of its declared `needs` and
//! `reads` (and `writes`); a read of anything else is refused (the read finds nothing, and the
//! step then fails naming the read), so an undeclared contract cannot hide behind a dependency
//! that happens to be recorded first. Commands get an unrestricted scope.

use std::any::Any;
use std::sync::{Arc, Mutex};

use crate::aws::Clients;
use crate::config::Config;
use crate::context::{Ctx, RESOURCE_TAG, STACK_TAG};
use crate::error::StackError;
use crate::model::{Attr, Dep, Key, Record};
use crate::state::{Recorded, StateError};

/// What a resource may touch: its own key, what it needs or reads, and what it writes.
#[derive(Debug, Clone, Default)]
pub struct Declared {
    pub needs: Vec<Dep>,
    pub reads: Vec<Dep>,
    pub writes: Vec<Key>,
}

pub struct Scope<'a> {
    pub config: &'a Config,
    pub region: &'a str,
    pub aws: &'a Clients,
    ctx: &'a Ctx,
    /// The resource whose scope this is; `None` for a command.
    key: Option<Key>,
    declared: Declared,
    /// Reads and writes it made of what it did not declare.
    undeclared: Mutex<Vec<String>>,
}

impl Ctx {
    /// The unrestricted scope of a command.
    pub fn scope(&self) -> Scope<'_> {
        Scope::new(self, None, Declared::default())
    }

    /// The scope of the resource `key`, limited to what it declares.
    pub fn scope_of(&self, key: Key, declared: Declared) -> Scope<'_> {
        Scope::new(self, Some(key), declared)
    }
}

impl<'a> Scope<'a> {
    fn new(ctx: &'a Ctx, key: Option<Key>, declared: Declared) -> Scope<'a> {
        Scope {
            config: &ctx.config,
            region: &ctx.region,
            aws: &ctx.aws,
            ctx,
            key,
            declared,
            undeclared: Mutex::new(vec![]),
        }
    }

    /// The resource whose scope this is.
    pub fn key(&self) -> Key {
        self.key.expect("a resource's scope")
    }

    /// Who reads: the resource, or the command.
    fn by(&self) -> String {
        self.key.map_or_else(|| "the command".to_string(), |k| k.to_string())
    }

    fn may_read(&self, key: Key) -> bool {
        let Some(own) = self.key else { return true };
        let declared = key == own
            || self.declared.writes.contains(&key)
            || self.declared.needs.iter().chain(&self.declared.reads).any(|d| d.covers(key));
        if !declared {
            self.refuse(format!("reads {key}"));
        }
        declared
    }

    fn may_write(&self, key: Key) -> bool {
        let Some(own) = self.key else { return true };
        let declared = key == own || self.declared.writes.contains(&key);
        if !declared {
            self.refuse(format!("writes {key}"));
        }
        declared
    }

    fn refuse(&self, what: String) {
        let mut undeclared = self.undeclared.lock().expect("undeclared lock");
        if !undeclared.contains(&what) {
            undeclared.push(what);
        }
    }

    /// The step's result, failed if it touched what it does not declare.
    pub fn checked<T>(&self, result: Result<T, StackError>) -> Result<T, StackError> {
        let undeclared = self.undeclared.lock().expect("undeclared lock").clone();
        if undeclared.is_empty() {
            return result;
        }
        Err(StackError::Undeclared { by: self.by(), what: undeclared.join(", ") })
    }

    pub fn stack(&self) -> &'a str {
        self.ctx.stack()
    }

    /// `<stack>-<suffix>`: the name of a stack resource.
    /// Where the run's state lives (a local path or an S3 URI), which the stack's VPC carries.
    pub fn state_location(&self) -> String {
        self.ctx.store().location().to_string()
    }

    pub fn name(&self, suffix: &str) -> String {
        self.ctx.name(suffix)
    }

    /// Inspections compare with the config (false: `list` looking at another stack).
    pub fn compares_config(&self) -> bool {
        self.ctx.compares_config
    }

    /// The tags this resource gets, as (key, value) pairs.
    pub fn tags(&self, name: &str) -> Vec<(String, String)> {
        self.ctx.tags(self.key(), name)
    }

    /// The `[tags]` the tool applied to the stack's resources (the state's record; while `up` runs,
    /// the old and new keys), or the config's for a state written before the record existed.
    pub fn applied_user_tags(&self) -> std::collections::BTreeMap<String, String> {
        self.ctx.store().read(|s| s.user_tags.clone()).unwrap_or_else(|| self.config.tags.clone())
    }

    /// The tags in an SDK's own type.
    pub fn sdk_tags<T: SdkTag>(&self, name: &str) -> Vec<T> {
        self.tags(name).into_iter().map(|(k, v)| T::tag(k, v)).collect()
    }

    /// Is a resource with these tags this stack's resource `key`? `Err` says why not.
    pub fn owns<'t>(&self, key: Key, tags: impl IntoIterator<Item = (&'t str, &'t str)>) -> Result<(), String> {
        self.ctx.owns(key, tags)
    }

    /// The ownership check, as the error that names `what` (the resource as messages show it).
    pub fn owned<'t>(
        &self,
        key: Key,
        what: impl Into<String>,
        tags: impl IntoIterator<Item = (&'t str, &'t str)>,
    ) -> Result<(), StackError> {
        self.owns(key, tags).map_err(|why| self.not_ours(what, why))
    }

    /// The error for a resource that fails the ownership check.
    pub fn not_ours(&self, what: impl Into<String>, why: String) -> StackError {
        self.ctx.not_ours(what, why)
    }

    /// The last run on this state was killed or interrupted: what it made may not be recorded yet.
    pub fn resuming(&self) -> bool {
        self.ctx.store().interrupted().is_some()
    }

    pub fn id(&self, key: Key) -> Option<String> {
        if !self.may_read(key) {
            return None;
        }
        self.ctx.id(key)
    }

    pub fn attr(&self, attr: Attr) -> Option<String> {
        if !self.may_read(attr.key) {
            return None;
        }
        self.ctx.attr(attr.key, attr.name)
    }

    /// The ID of a resource that must already exist for this one.
    pub fn need(&self, key: Key) -> Result<String, StackError> {
        self.id(key).ok_or_else(|| StackError::MissingDependency { needed: key.to_string(), by: self.by() })
    }

    pub fn need_attr(&self, attr: Attr) -> Result<String, StackError> {
        self.attr(attr).ok_or_else(|| StackError::MissingDependency {
            needed: format!("{}.{}", attr.key, attr.name),
            by: self.by(),
        })
    }

    /// The state's whole record of a resource.
    pub fn recorded(&self, key: Key) -> Option<Recorded> {
        if !self.may_read(key) {
            return None;
        }
        self.ctx.recorded(key)
    }

    /// Record this resource (its attributes merged over what is recorded); persisted before this
    /// returns.
    pub async fn record(&self, record: &Record) -> Result<(), StateError> {
        self.ctx.record(self.key(), record).await
    }

    /// Add or change one attribute.
    pub async fn set_attr(&self, attr: Attr, value: &str) -> Result<(), StateError> {
        if !self.may_write(attr.key) {
            return Ok(());
        }
        self.ctx.set_attr(attr.key, attr.name, value).await
    }

    /// Set several attributes of one resource in one persisted change (`None` removes one).
    pub async fn set_attrs(&self, attrs: &[(Attr, Option<String>)]) -> Result<(), StateError> {
        let Some((first, _)) = attrs.first() else { return Ok(()) };
        if attrs.iter().any(|(a, _)| a.key != first.key) || !self.may_write(first.key) {
            self.refuse(format!("writes attributes of several resources at once ({})", first.key));
            return Ok(());
        }
        let named: Vec<(&str, Option<String>)> = attrs.iter().map(|(a, v)| (a.name, v.clone())).collect();
        self.ctx.set_attrs(first.key, &named).await
    }

    /// Set a resource's whole record in one persisted change.
    pub async fn put_record(&self, key: Key, recorded: Recorded) -> Result<(), StateError> {
        if !self.may_write(key) {
            return Ok(());
        }
        self.ctx.put_record(key, recorded).await
    }

    /// Forget this resource, confirmed gone; persisted before this returns.
    pub async fn forget(&self) -> Result<(), StateError> {
        self.ctx.forget(self.key()).await
    }

    /// Something the user must see in the command's result (e.g. a backup ARN).
    pub fn note(&self, message: String) {
        self.ctx.note(message)
    }

    /// Something found that is not ours and was left alone.
    pub fn warn(&self, message: String) {
        self.ctx.warn(message)
    }

    /// This run's value of a type a module keeps for the run (a lookup made once, a decision
    /// taken before the first change).
    pub fn run<T: Default + Any + Send + Sync>(&self) -> Arc<T> {
        self.ctx.run()
    }
}

/// Tag types of the SDKs, built from a key and a value (implemented in `resources::tags`).
pub trait SdkTag {
    fn tag(key: String, value: String) -> Self;
}

/// The stack and resource tags among `tags`: what a sighting of an object says about its owner.
pub fn owner_tags<'t>(tags: impl IntoIterator<Item = (&'t str, &'t str)>) -> (Option<String>, Option<String>) {
    let mut stack = None;
    let mut resource = None;
    for (k, v) in tags {
        match k {
            STACK_TAG => stack = Some(v.to_string()),
            RESOURCE_TAG => resource = Some(v.to_string()),
            _ => {}
        }
    }
    (stack, resource)
}
