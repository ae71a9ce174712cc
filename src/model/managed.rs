//! How a resource is declared ([`Managed`], [`Wait`], [`Step`]) and driven ([`Driven`], [`Waiting`],
//! [`Stepping`]) as a node of the graph ([`Resource`]).

use std::sync::Arc;

use async_trait::async_trait;

use crate::access::Permission;
use crate::bill::Charge;
use crate::config::Config;
use crate::context::Ctx;
use crate::error::StackError;
use crate::model::tags::{retag, Retag};
use crate::model::{
    Change, Changed, Declared, Dep, Edge, Field, Health, Inspection, Key, Outcome, Record, Scope, Sweep,
};
use crate::progress::Line;

/// What `up` does with a resource the config no longer asks for (but the state records).
#[derive(Debug, Clone, PartialEq)]
pub enum Removal {
    /// Deleted once the rest is in place.
    AfterUp,
    /// Deleted before the up pass (what would undo the up pass while it runs).
    BeforeUp,
    /// Refused, like a replacement: the change that removes it.
    Refused(Change),
}

/// How the commands speak of a resource `down` keeps on purpose ([`Outcome::Retained`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `down`'s line once it is kept.
    pub kept: &'static str,
    /// `status` when nothing else is left; `{id}` is its recorded ID.
    pub status: &'static str,
    /// `list` when nothing else is left.
    pub list: &'static str,
}

/// Facts about a resource's part in the commands' flows.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    /// `down` looks for it first when the state does not record it: others are checked against
    /// it (the VPC) or found through it (a certificate's records).
    pub found_first: bool,
    /// `down` may keep it on purpose.
    pub retention: Option<Retention>,
    /// What to do when `up` refuses a replacement of it (else: put the values back).
    pub advice: Option<&'static str>,
    /// `up --replace <key>` replaces it ([`Managed::replace`]) instead of refusing.
    pub replaceable: bool,
    /// It holds no data: `up` replaces it ([`Managed::replace`]) without being asked, the new one made
    /// and put to use before the old one goes ([`Managed::finish_up`]), so nothing stops serving.
    pub replaced_by_up: bool,
    /// AWS makes it with this resource and deletes it with it (the VPC's default security group):
    /// `up` only configures it, and `down` leaves it to go with that one.
    pub made_with: Option<Key>,
}

/// What `down` decided about a resource before deleting anything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prepared {
    /// Added to the list `down` asks to confirm.
    pub confirm: Option<String>,
    /// A progress note once the deletion starts.
    pub progress: Option<String>,
}

/// One resource of the stack, declared once. Implementations live in `resources/`; every verb gets
/// a [`Scope`] of what the resource declares.
#[async_trait]
pub trait Managed: Send + Sync + 'static {
    /// What a describe call returns for it (plus whatever else the checks need).
    type Live: Send + Sync + 'static;
    /// What it can differ in.
    type Field: Field;

    fn key(&self) -> Key;

    /// Every IAM action its verbs call, with the resources and conditions that keep each to the
    /// stack (see `access`): a test checks that every SDK call in its module is declared.
    fn permissions(&self) -> Vec<Permission>;

    /// What it bills each month with this config (see `bill`); empty when it bills nothing.
    fn billing(&self, config: &Config) -> Vec<Charge>;

    /// How what AWS has of its kind is listed for every stack (see `model::Sweep`).
    fn sweep(&self) -> Sweep;

    /// What must be up before it is created (and recorded before it can be compared).
    fn needs(&self) -> Vec<Dep>;

    /// What it reads without waiting for it (recorded by an earlier run, or not at all).
    fn reads(&self) -> Vec<Dep> {
        vec![]
    }

    /// What needs it to be up first, declared from this side because this resource is the newer
    /// one (the HTTP listener redirects to the HTTPS listener only once it answers).
    fn needed_by(&self) -> Vec<Dep> {
        vec![]
    }

    /// Other resources whose records it changes.
    fn writes(&self) -> Vec<Key> {
        vec![]
    }

    /// What must be gone before it can be deleted, each with the reason AWS gives.
    fn teardown_after(&self) -> Vec<Edge> {
        vec![]
    }

    /// What it must be gone before (what it uses or sits in), each with the reason AWS gives.
    fn gone_before(&self) -> Vec<Edge> {
        vec![]
    }

    fn lifecycle(&self) -> Lifecycle {
        Lifecycle::default()
    }

    /// What `up` does when the config no longer asks for it.
    fn removal(&self, _config: &Config) -> Removal {
        Removal::AfterUp
    }

    /// A line for the plan about what the changes cause here: `found` is this resource's check,
    /// `other` another's.
    fn plan_note(&self, _found: &Inspection, _other: &dyn Fn(Key) -> Option<Inspection>) -> Option<String> {
        None
    }

    /// What the plan says of deleting it when the config no longer has it (`found`: its check),
    /// beyond "no longer in the config": what stops working.
    fn removal_note(&self, _found: &Inspection) -> Option<String> {
        None
    }

    /// What the plan says of a replacement `up` makes itself ([`Lifecycle::replaced_by_up`]): what is
    /// replaced, by what, and how it stays up meanwhile.
    fn replacement_note(&self, _found: &Inspection) -> Option<String> {
        None
    }

    /// A replacement an earlier `up` began but did not finish (it was interrupted): what it is, and
    /// what the next `up` does to finish it. Read from the state.
    fn unfinished(&self, _ctx: &Scope<'_>) -> Option<String> {
        None
    }

    /// A line for the plan about what a default costs, when the plan creates or changes it (the
    /// log group's year of retention): the trade-off made explicit where it is made.
    fn cost_note(&self, _config: &Config, _found: &Inspection) -> Option<String> {
        None
    }

    /// The live resource: the recorded one if AWS still has it, else one found by tag or name.
    /// Every candidate passes the ownership check here (this stack's tag, this stack's VPC);
    /// one that fails is reported and left alone, whatever filter AWS applied.
    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<Self::Live>, StackError>;

    /// What to record in the state file.
    fn record(&self, ctx: &Scope<'_>, live: &Self::Live) -> Record;

    /// How the live resource differs from the config. Changes marked `replace` are refused.
    fn diff(&self, _ctx: &Scope<'_>, _live: &Self::Live) -> Result<Vec<Changed<Self::Field>>, StackError> {
        Ok(vec![])
    }

    /// What `status` shows beside it when it is as the config asks (an alarm's state).
    fn note(&self, _ctx: &Scope<'_>, _live: &Self::Live) -> Option<String> {
        None
    }

    /// The tags it carries now, read with its own service's call (often already in what `find`
    /// described); `None` for what carries no user tags. The user's `[tags]` are kept in step on
    /// every resource that answers here (see `model::tags`).
    async fn tags(&self, _ctx: &Scope<'_>, _live: &Self::Live) -> Result<Option<Vec<(String, String)>>, StackError> {
        Ok(None)
    }

    /// Put `put` on it and take the keys `remove` off, with its own service's tagging calls.
    async fn retag(
        &self,
        ctx: &Scope<'_>,
        _live: &Self::Live,
        _put: &[(String, String)],
        _remove: &[String],
    ) -> Result<(), StackError> {
        Err(StackError::Refused(format!("{}: its tags cannot be changed", ctx.key())))
    }

    /// AWS is still settling it (e.g. `pending`): shown by `status`, waited for by `ready`.
    fn pending(&self, _ctx: &Scope<'_>, _live: &Self::Live) -> Option<String> {
        None
    }

    async fn create(&self, ctx: &Scope<'_>, line: &Line) -> Result<Self::Live, StackError>;

    /// Apply `changes` in place. Returns the new live resource when its identity changed (a new
    /// task definition revision).
    async fn update(
        &self,
        _ctx: &Scope<'_>,
        _line: &Line,
        _live: &Self::Live,
        changes: &[Changed<Self::Field>],
    ) -> Result<Option<Self::Live>, StackError> {
        Err(StackError::Refused(format!(
            "{}: {} cannot be changed in place",
            self.key(),
            changes.iter().map(|c| c.change.field.as_str()).collect::<Vec<_>>().join(", ")
        )))
    }

    /// Wait until it can be used (a NAT gateway available, a table ACTIVE).
    async fn ready(&self, _ctx: &Scope<'_>, _line: &Line, _live: &Self::Live) -> Result<(), StackError> {
        Ok(())
    }

    /// Delete it; `Deleted` unless it is kept on purpose (`Retained`).
    async fn destroy(&self, ctx: &Scope<'_>, line: &Line, live: Self::Live) -> Result<Outcome, StackError>;

    /// `down` found nothing to delete: wait for whatever is still on its way out (a service
    /// draining after an interrupted `down`), since what comes after it waits for that.
    async fn settle_gone(&self, _ctx: &Scope<'_>, _line: &Line) -> Result<(), StackError> {
        Ok(())
    }

    /// `up`, before any change: what AWS would refuse later (a region without enough zones).
    async fn preflight(&self, _ctx: &Scope<'_>) -> Result<(), StackError> {
        Ok(())
    }

    /// `down`, before anything is deleted: decide what needs deciding (a table with data), so that
    /// a refusal leaves the stack whole.
    async fn prepare_teardown(&self, _ctx: &Scope<'_>) -> Result<Option<Prepared>, StackError> {
        Ok(None)
    }

    /// `up` found nothing to change: what a finished run would have noted.
    async fn converged(&self, _ctx: &Scope<'_>, _found: &Inspection) -> Result<(), StackError> {
        Ok(())
    }

    /// `up --replace <key>` (lifecycle `replaceable`): make and record the replacement of `live`,
    /// leaving `live` itself as it is until [`Managed::finish_up`]; returns the replacement.
    async fn replace(&self, _ctx: &Scope<'_>, _line: &Line, _live: Self::Live) -> Result<Self::Live, StackError> {
        Err(StackError::Refused(format!("{}: `up` cannot replace it", self.key())))
    }

    /// Every step of `up` is done (the service runs on what the pass made): finish what the pass
    /// left for the end (the table a replacement took over from).
    async fn finish_up(&self, _ctx: &Scope<'_>) -> Result<(), StackError> {
        Ok(())
    }
}

/// This run's `up --replace` keys: their replacements are made instead of refused.
#[derive(Debug, Default)]
pub struct Replacing(pub Vec<Key>);

/// A node of the stack's graph: a resource, a wait or a step.
#[async_trait]
pub trait Resource: Send + Sync {
    fn key(&self) -> Key;
    fn declared(&self) -> Declared;
    fn permissions(&self) -> Vec<Permission>;
    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![]
    }
    /// The type that declares it (`fargate_stack::resources::network::Vpc`): where its calls are.
    fn declared_by(&self) -> &'static str;
    /// How its kind is listed (a resource's; a wait or step has none).
    fn sweep(&self) -> Option<Sweep> {
        None
    }
    fn needs(&self) -> Vec<Dep> {
        self.declared().needs
    }
    fn needed_by(&self) -> Vec<Dep> {
        vec![]
    }
    fn teardown_after(&self) -> Vec<Edge>;
    fn gone_before(&self) -> Vec<Edge>;
    /// A wait has nothing to inspect or delete.
    fn is_wait(&self) -> bool {
        false
    }
    fn lifecycle(&self) -> Lifecycle {
        Lifecycle::default()
    }
    fn removal(&self, _config: &Config) -> Removal {
        Removal::AfterUp
    }
    fn plan_note(&self, _found: &Inspection, _other: &dyn Fn(Key) -> Option<Inspection>) -> Option<String> {
        None
    }
    fn removal_note(&self, _found: &Inspection) -> Option<String> {
        None
    }
    fn replacement_note(&self, _found: &Inspection) -> Option<String> {
        None
    }
    fn unfinished(&self, _ctx: &Ctx) -> Option<String> {
        None
    }
    fn cost_note(&self, _config: &Config, _found: &Inspection) -> Option<String> {
        None
    }
    async fn inspect(&self, ctx: &Ctx) -> Result<Inspection, StackError>;
    async fn ensure(&self, ctx: &Ctx, line: &Line) -> Result<Outcome, StackError>;
    async fn delete(&self, ctx: &Ctx, line: &Line) -> Result<Outcome, StackError>;
    async fn preflight(&self, _ctx: &Ctx) -> Result<(), StackError> {
        Ok(())
    }
    async fn prepare_teardown(&self, _ctx: &Ctx) -> Result<Option<Prepared>, StackError> {
        Ok(None)
    }
    async fn converged(&self, _ctx: &Ctx, _found: &Inspection) -> Result<(), StackError> {
        Ok(())
    }
    async fn finish_up(&self, _ctx: &Ctx) -> Result<(), StackError> {
        Ok(())
    }
}

/// The nodes a shape gives, in the order `status` lists them.
#[derive(Default)]
pub struct Nodes {
    pub list: Vec<Arc<dyn Resource>>,
    /// Nodes that are in the graph only to be looked for: kept only if found.
    pub probes: Vec<Key>,
}

impl Nodes {
    pub fn managed<M: Managed>(&mut self, m: M) {
        self.list.push(Arc::new(Driven(m)));
    }

    pub fn wait<W: Wait>(&mut self, w: W) {
        self.list.push(Arc::new(Waiting(w)));
    }

    /// A resource the state does not record but AWS may have (a run killed right after making
    /// it): looked for, and kept in the graph only if found.
    pub fn probe<M: Managed>(&mut self, m: M) {
        self.probes.push(m.key());
        self.managed(m);
    }
}

/// A wait that ends `up` (or lets what needs it start): nothing to inspect or delete.
#[async_trait]
pub trait Wait: Send + Sync + 'static {
    fn key(&self) -> Key;
    /// The IAM actions its waiting calls.
    fn permissions(&self) -> Vec<Permission>;
    fn needs(&self) -> Vec<Dep>;
    fn reads(&self) -> Vec<Dep> {
        vec![]
    }
    fn writes(&self) -> Vec<Key> {
        vec![]
    }
    /// Wait until AWS is ready; the error says what was last seen.
    async fn wait(&self, ctx: &Scope<'_>, line: &Line) -> Result<(), StackError>;
}

/// Drives a [`Wait`] as a graph node.
pub struct Waiting<W>(pub W);

#[async_trait]
impl<W: Wait> Resource for Waiting<W> {
    fn key(&self) -> Key {
        self.0.key()
    }

    fn permissions(&self) -> Vec<Permission> {
        self.0.permissions()
    }

    fn declared_by(&self) -> &'static str {
        std::any::type_name::<W>()
    }

    fn declared(&self) -> Declared {
        Declared { needs: self.0.needs(), reads: self.0.reads(), writes: self.0.writes() }
    }

    fn teardown_after(&self) -> Vec<Edge> {
        vec![]
    }

    fn gone_before(&self) -> Vec<Edge> {
        vec![]
    }

    fn is_wait(&self) -> bool {
        true
    }

    async fn inspect(&self, _ctx: &Ctx) -> Result<Inspection, StackError> {
        Ok(Inspection::missing(None, false, "a wait"))
    }

    async fn ensure(&self, ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
        let scope = ctx.scope_of(self.key(), self.declared());
        line.start("checking");
        let waited = self.0.wait(&scope, line).await;
        scope.checked(waited)?;
        Ok(Outcome::Waited)
    }

    async fn delete(&self, _ctx: &Ctx, _line: &Line) -> Result<Outcome, StackError> {
        Ok(Outcome::Absent)
    }
}

/// One step of a command's declared sequence (`deploy`'s registration of a revision, the
/// service rolled onto it): run once, in order, nothing to inspect or delete.
#[async_trait]
pub trait Step: Send + Sync + 'static {
    fn key(&self) -> Key;
    fn declared(&self) -> Declared;
    /// The IAM actions it calls.
    fn permissions(&self) -> Vec<Permission>;
    async fn run(&self, ctx: &Scope<'_>, line: &Line) -> Result<Outcome, StackError>;
}

/// Drives a [`Step`] as a graph node.
pub struct Stepping<S>(pub S);

#[async_trait]
impl<S: Step> Resource for Stepping<S> {
    fn key(&self) -> Key {
        self.0.key()
    }

    fn permissions(&self) -> Vec<Permission> {
        self.0.permissions()
    }

    fn declared_by(&self) -> &'static str {
        std::any::type_name::<S>()
    }

    fn declared(&self) -> Declared {
        self.0.declared()
    }

    fn teardown_after(&self) -> Vec<Edge> {
        vec![]
    }

    fn gone_before(&self) -> Vec<Edge> {
        vec![]
    }

    async fn inspect(&self, _ctx: &Ctx) -> Result<Inspection, StackError> {
        Ok(Inspection::missing(None, false, "a step"))
    }

    async fn ensure(&self, ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
        let scope = ctx.scope_of(self.key(), self.declared());
        let outcome = self.0.run(&scope, line).await;
        scope.checked(outcome)
    }

    async fn delete(&self, _ctx: &Ctx, _line: &Line) -> Result<Outcome, StackError> {
        Ok(Outcome::Absent)
    }
}

/// Drives a [`Managed`] resource through the three verbs.
pub struct Driven<M>(pub M);

/// The refusal `up` gives for changes that need a replacement.
pub fn refusal(key: Key, changes: &[&Change]) -> StackError {
    let list = changes.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("; ");
    StackError::Refused(format!(
        "{key}: {list}: AWS cannot change this in place, it would need a new {key}; `up` does not replace it \
         (nothing was changed): put the value back"
    ))
}

impl<M: Managed> Driven<M> {
    fn scope<'c>(&self, ctx: &'c Ctx) -> Scope<'c> {
        ctx.scope_of(self.0.key(), Resource::declared(self))
    }

    async fn inspect_in(&self, ctx: &Scope<'_>) -> Result<Inspection, StackError> {
        let key = self.0.key();
        let recorded = ctx.id(key);
        let live = match self.0.find(ctx).await {
            Ok(live) => live,
            // In the way of `up`: reported here, refused by `up` before it changes anything.
            Err(e @ (StackError::NotOurs { .. } | StackError::Blocked { .. })) => {
                return Ok(Inspection::blocked(recorded.clone(), recorded.is_some(), e.to_string()))
            }
            Err(e) => return Err(e),
        };
        let Some(live) = live else {
            let detail = if recorded.is_some() { "deleted outside fargate-stack" } else { "not created" };
            return Ok(Inspection::missing(recorded.clone(), recorded.is_some(), detail));
        };
        // Known from here on (in memory only for read-only runs), so dependents can be compared.
        let record = self.0.record(ctx, &live);
        ctx.record(&record).await?;
        // A resource that cannot be compared because what it refers to is missing is reported
        // by that missing resource, not as drift here.
        let changes = match self.0.diff(ctx, &live) {
            _ if !ctx.compares_config() => vec![],
            Err(StackError::MissingDependency { .. }) => vec![],
            other => other?.into_iter().map(|c| c.change).collect::<Vec<_>>(),
        };
        let changes = match ctx.compares_config() {
            true => [changes, self.tag_changes(ctx, &live).await?.changes].concat(),
            false => changes,
        };
        let mut found = Inspection::found(record.id, recorded.is_some(), changes, self.0.pending(ctx, &live));
        if found.status == Health::Ok {
            found.detail = self.0.note(ctx, &live).unwrap_or_default();
        }
        Ok(found)
    }

    /// How its tags differ from the config's `[tags]`, among the keys the tool applied.
    async fn tag_changes(&self, ctx: &Scope<'_>, live: &M::Live) -> Result<Retag, StackError> {
        Ok(match self.0.tags(ctx, live).await? {
            Some(have) => retag(&have, &ctx.config.tags, &ctx.applied_user_tags()),
            None => Retag::default(),
        })
    }

    async fn ensure_in(&self, ctx: &Scope<'_>, line: &Line) -> Result<Outcome, StackError> {
        let key = self.0.key();
        line.start("checking");
        let (mut live, created) = match self.0.find(ctx).await? {
            Some(live) => (live, false),
            None => {
                line.start("creating");
                (self.0.create(ctx, line).await?, true)
            }
        };
        // Recorded the moment it is known, before anything else can fail.
        ctx.record(&self.0.record(ctx, &live)).await?;
        let changes = self.0.diff(ctx, &live)?;
        let replaced: Vec<&Change> = changes.iter().map(|c| &c.change).filter(|c| c.replace).collect();
        let replacing = !replaced.is_empty();
        let changes = if !replacing {
            changes
        } else if self.0.lifecycle().replaced_by_up
            || (self.0.lifecycle().replaceable && ctx.run::<Replacing>().0.contains(&key))
        {
            line.start("replacing");
            live = self.0.replace(ctx, line, live).await?;
            ctx.record(&self.0.record(ctx, &live)).await?;
            self.0.diff(ctx, &live)?
        } else {
            return Err(refusal(key, &replaced));
        };
        if !changes.is_empty() {
            line.start(if created { "configuring" } else { "updating" });
            if let Some(new) = self.0.update(ctx, line, &live, &changes).await? {
                live = new;
                ctx.record(&self.0.record(ctx, &live)).await?;
            }
        }
        // Tags sent with a create are the config's; what was there already is kept in step.
        let retagged = if created { Retag::default() } else { self.tag_changes(ctx, &live).await? };
        if !retagged.is_empty() {
            line.start("tagging");
            self.0.retag(ctx, &live, &retagged.put, &retagged.remove).await?;
        }
        self.0.ready(ctx, line, &live).await?;
        let made_by_aws = self.0.lifecycle().made_with.is_some();
        Ok(if created && !made_by_aws {
            Outcome::Created
        } else if replacing {
            Outcome::Replaced
        } else if changes.is_empty() && retagged.is_empty() {
            Outcome::Unchanged
        } else {
            Outcome::Updated
        })
    }

    async fn delete_in(&self, ctx: &Scope<'_>, line: &Line) -> Result<Outcome, StackError> {
        let recorded = ctx.id(self.0.key()).is_some();
        let live = match self.0.find(ctx).await {
            Ok(Some(live)) => live,
            Ok(None) => {
                self.0.settle_gone(ctx, line).await?;
                ctx.forget().await?;
                return Ok(Outcome::Absent);
            }
            // Found by name only, without this stack's tag: someone else's.
            Err(e @ StackError::NotOurs { .. }) if !recorded => {
                ctx.warn(e.to_string());
                line.done("left alone", "not ours");
                return Ok(Outcome::LeftAlone);
            }
            // Never recorded, and what it would be looked for in is not there: nothing of ours.
            Err(StackError::Blocked { .. }) if !recorded => {
                ctx.forget().await?;
                return Ok(Outcome::Absent);
            }
            Err(e) => return Err(e),
        };
        line.start("deleting");
        let outcome = self.0.destroy(ctx, line, live).await?;
        if outcome != Outcome::Retained {
            ctx.forget().await?;
        }
        Ok(outcome)
    }
}

#[async_trait]
impl<M: Managed> Resource for Driven<M> {
    fn key(&self) -> Key {
        self.0.key()
    }

    fn permissions(&self) -> Vec<Permission> {
        self.0.permissions()
    }

    fn billing(&self, config: &Config) -> Vec<Charge> {
        self.0.billing(config)
    }

    fn sweep(&self) -> Option<Sweep> {
        Some(self.0.sweep())
    }

    fn declared_by(&self) -> &'static str {
        std::any::type_name::<M>()
    }

    fn declared(&self) -> Declared {
        Declared { needs: self.0.needs(), reads: self.0.reads(), writes: self.0.writes() }
    }

    fn needed_by(&self) -> Vec<Dep> {
        self.0.needed_by()
    }

    fn teardown_after(&self) -> Vec<Edge> {
        self.0.teardown_after()
    }

    fn gone_before(&self) -> Vec<Edge> {
        self.0.gone_before()
    }

    fn lifecycle(&self) -> Lifecycle {
        self.0.lifecycle()
    }

    fn removal(&self, config: &Config) -> Removal {
        self.0.removal(config)
    }

    fn removal_note(&self, found: &Inspection) -> Option<String> {
        self.0.removal_note(found)
    }

    fn plan_note(&self, found: &Inspection, other: &dyn Fn(Key) -> Option<Inspection>) -> Option<String> {
        self.0.plan_note(found, other)
    }

    fn cost_note(&self, config: &Config, found: &Inspection) -> Option<String> {
        self.0.cost_note(config, found)
    }

    fn replacement_note(&self, found: &Inspection) -> Option<String> {
        self.0.replacement_note(found)
    }

    fn unfinished(&self, ctx: &Ctx) -> Option<String> {
        self.0.unfinished(&self.scope(ctx))
    }

    async fn inspect(&self, ctx: &Ctx) -> Result<Inspection, StackError> {
        let scope = self.scope(ctx);
        let found = self.inspect_in(&scope).await;
        scope.checked(found)
    }

    async fn ensure(&self, ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
        let scope = self.scope(ctx);
        let outcome = self.ensure_in(&scope, line).await;
        scope.checked(outcome)
    }

    async fn delete(&self, ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
        let scope = self.scope(ctx);
        let outcome = self.delete_in(&scope, line).await;
        scope.checked(outcome)
    }

    async fn preflight(&self, ctx: &Ctx) -> Result<(), StackError> {
        let scope = self.scope(ctx);
        let checked = self.0.preflight(&scope).await;
        scope.checked(checked)
    }

    async fn prepare_teardown(&self, ctx: &Ctx) -> Result<Option<Prepared>, StackError> {
        let scope = self.scope(ctx);
        let prepared = self.0.prepare_teardown(&scope).await;
        scope.checked(prepared)
    }

    async fn converged(&self, ctx: &Ctx, found: &Inspection) -> Result<(), StackError> {
        let scope = self.scope(ctx);
        let noted = self.0.converged(&scope, found).await;
        scope.checked(noted)
    }

    async fn finish_up(&self, ctx: &Ctx) -> Result<(), StackError> {
        let scope = self.scope(ctx);
        let finished = self.0.finish_up(&scope).await;
        scope.checked(finished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::tests_support::ctx;
    use crate::model::{Attr, Kind, NoField};
    use crate::progress::Line;

    const THING: Kind = Kind::new("test:thing");
    const MINE: Key = Key::new("mine", THING);
    const NEEDED: Key = Key::new("needed", THING);
    const OTHER: Key = Key::new("other", THING);

    /// Reads `reads` in `find`, declaring only that it needs NEEDED.
    struct Reader {
        reads: Key,
    }

    #[async_trait]
    impl Managed for Reader {
        type Live = String;
        type Field = NoField;

        fn key(&self) -> Key {
            MINE
        }

        fn permissions(&self) -> Vec<Permission> {
            vec![]
        }

        fn billing(&self, _config: &Config) -> Vec<Charge> {
            vec![]
        }

        fn sweep(&self) -> Sweep {
            Sweep::Unlisted("a test")
        }

        fn needs(&self) -> Vec<Dep> {
            vec![NEEDED.into()]
        }

        async fn find(&self, ctx: &Scope<'_>) -> Result<Option<String>, StackError> {
            Ok(ctx.attr(Attr::new(self.reads, "arn")).or(Some("x".into())))
        }

        fn record(&self, _ctx: &Scope<'_>, live: &String) -> Record {
            Record::id(live)
        }

        async fn create(&self, _ctx: &Scope<'_>, _line: &Line) -> Result<String, StackError> {
            Ok("x".into())
        }

        async fn destroy(&self, _ctx: &Scope<'_>, _line: &Line, _live: String) -> Result<Outcome, StackError> {
            Ok(Outcome::Deleted)
        }
    }

    #[tokio::test]
    async fn a_resource_reads_what_it_declares_and_an_undeclared_read_fails_its_step() {
        let c = ctx();
        for key in [NEEDED, OTHER] {
            c.record(key, &Record::id("i").with(Attr::new(key, "arn"), "arn:x")).await.unwrap();
        }
        assert!(Driven(Reader { reads: NEEDED }).inspect(&c).await.is_ok());
        assert!(Driven(Reader { reads: MINE }).inspect(&c).await.is_ok(), "its own record");
        let err = Driven(Reader { reads: OTHER }).inspect(&c).await.unwrap_err();
        assert!(matches!(err, StackError::Undeclared { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "internal error: mine reads other, which it does not declare (needs, reads or writes)"
        );
        let err = Driven(Reader { reads: OTHER }).ensure(&c, &Line::hidden()).await.unwrap_err();
        assert!(matches!(err, StackError::Undeclared { .. }), "up fails the step too: {err}");
        // A command's scope reads anything.
        assert_eq!(c.scope().attr(Attr::new(OTHER, "arn")).as_deref(), Some("arn:x"));
    }
}
