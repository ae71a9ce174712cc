//! `up`: check every resource live, refuse what would replace something, then create what is
//! missing and update what differs, concurrently in dependency order, and wait for a healthy
//! service. `up --dry-run` stops after the check and prints the plan.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use serde::Serialize;

use crate::access::Verb;
use crate::bill::BilledLine;
use crate::cli::UpArgs;
use crate::commands::cost::Bill;
use crate::commands::{access_check, verify};
use crate::commands::{
    check_steps, confirm, inspect, state_home, summary, CommandError, Outputs, ResourceRow, Setup, StackState,
};
use crate::context::Ctx;
use crate::graph::{Direction, Graph, StepReport, StepResult};
use crate::model::tags::{during_up, is_tag};
use crate::model::{Change, Health, Key, Kind, Outcome, Removal, Replacing, Resource, Shape};
use crate::progress::Progress;
use crate::report::{self, Report, Text};
use crate::resources;
use crate::resources::task_definition::image;
use crate::state::{Applied, State, Store};
use crate::url_check::UrlCheck;

/// `up --dry-run --detailed-exitcode`: the plan has changes (as Terraform's 2).
pub const EXIT_PLAN_CHANGES: u8 = 2;

/// What `up` would do to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    /// It exists (found by tag or name) but the state does not record it.
    Adopt,
    Update,
    /// The config asks for a change AWS cannot make in place: `up` refuses.
    Replace,
    /// Recorded but no longer in the config.
    Delete,
    /// AWS is still settling it.
    Wait,
    Unchanged,
    /// Something that is not the stack's is in the way (or AWS would refuse): `up` refuses.
    Blocked,
}

impl Action {
    fn word(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Adopt => "adopt",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::Wait => "wait",
            Action::Unchanged => "unchanged",
            Action::Blocked => "blocked",
        }
    }

    fn of(row: &ResourceRow) -> Action {
        if row.blocked.is_some() {
            Action::Blocked
        } else if row.replacements().next().is_some() {
            Action::Replace
        } else if row.status == Health::Missing {
            Action::Create
        } else if !row.recorded {
            Action::Adopt
        } else if row.status == Health::Drifted {
            Action::Update
        } else if row.status == Health::Pending {
            Action::Wait
        } else {
            Action::Unchanged
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PlanRow {
    pub name: Key,
    pub kind: Kind,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The config last applied to this stack, when it is not the one this run uses.
#[derive(Debug, Serialize)]
pub struct ConfigSwitch {
    pub last_applied: String,
    pub last_applied_at: String,
    pub now: String,
}

#[derive(Debug, Serialize)]
pub struct Plan {
    pub resources: Vec<PlanRow>,
    /// Actions and how many resources get each.
    pub counts: BTreeMap<Action, usize>,
    /// The rollout the changes cause, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
    /// Why `up` would stop before changing anything: replacements.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
    /// What `up --replace` replaces instead of refusing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replacing: Vec<Key>,
    /// What `up` replaces without being asked: it holds no data, and the new one is in use before
    /// the old one goes (a target group).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replaced_by_up: Vec<Key>,
    /// Replacements an interrupted `up` began and did not finish, and what the next `up` does.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unfinished: Vec<String>,
    /// Why `up` would stop before changing anything: what is in the way.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocked: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_switch: Option<ConfigSwitch>,
    /// Which image the task definition gets, when a `deploy` is involved (see `task_definition::image`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The `up` on this state that did not finish, if one did not: what it made but could not record
    /// yet is taken back without asking. Otherwise every `adopt` needs `--adopt` (or a confirmation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resuming: Option<String>,
    /// With [autoscaling]: who owns the desired count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaling: Option<String>,
    /// Without [https]: the load balancer serves plain HTTP, said rather than left for a scanner to find.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plain_http: Option<String>,
    /// What the defaults it creates or changes cost (the log group's retention).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub costs: Vec<String>,
    /// The monthly bill of the config, against what was applied last.
    pub cost: Bill,
    /// The `[tags]` changes, grouped: each set of tag changes and the resources it applies to (the
    /// rows carry them too).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<TagGroup>,
}

/// The same tag changes on several resources: one line of the plan rather than one per resource.
#[derive(Debug, Serialize)]
pub struct TagGroup {
    pub changes: Vec<Change>,
    pub resources: Vec<Key>,
}

impl TagGroup {
    /// The rows' tag changes, grouped by identical sets, in the rows' order.
    fn of(rows: &[PlanRow]) -> Vec<TagGroup> {
        let mut groups: Vec<TagGroup> = vec![];
        for row in rows.iter().filter(|r| r.action == Action::Update) {
            let changes: Vec<Change> = row.changes.iter().filter(|c| is_tag(c)).cloned().collect();
            if changes.is_empty() {
                continue;
            }
            match groups.iter_mut().find(|g| g.changes == changes) {
                Some(group) => group.resources.push(row.name),
                None => groups.push(TagGroup { changes, resources: vec![row.name] }),
            }
        }
        groups
    }

    /// `tags: 31 resources: tags.team: payments → platform; ...` (named when they are few).
    fn line(&self) -> String {
        let changes: Vec<String> = self.changes.iter().map(Change::to_string).collect();
        let names: Vec<String> = self.resources.iter().map(Key::to_string).collect();
        let on = match names.len() {
            1..=3 => names.join(", "),
            n => format!("{n} resources"),
        };
        format!("tags on {on}: {}", changes.join("; "))
    }
}

/// The config's graph and the one that also covers what the state records beyond it.
struct Graphs {
    config: Graph,
    covering: Graph,
}

impl Graphs {
    fn node(&self, key: Key) -> Option<&std::sync::Arc<dyn Resource>> {
        self.config.get(key).or_else(|| self.covering.get(key))
    }
}

/// What `up` does about a resource the config no longer has: refused (a part of the network) or
/// deleted, before or after the up pass.
fn removal(graphs: &Graphs, key: Key, setup: &Setup) -> Removal {
    graphs.node(key).map_or(Removal::AfterUp, |n| n.removal(&setup.config))
}

/// What the plan says of the config as a whole: who owns the running count, and plain HTTP.
fn notes(config: &crate::config::Config) -> (Option<String>, Option<String>) {
    // With [autoscaling], a changed service.desired_count is no change: the autoscaler owns the count.
    let scaling = config.autoscaling.as_ref().map(|a| {
        format!(
            "with [autoscaling], Application Auto Scaling owns the running count ({}..={}): service.desired_count \
             ({}) is not applied to a running service",
            a.min_count, a.max_count, config.service.desired_count
        )
    });
    let plain_http = config.https.is_none().then(|| {
        format!(
            "HTTP only: without [https] the load balancer serves plain HTTP on port {} (Security Hub ELB.1); \
             add [https] with a domain or certificate_arn for TLS",
            config.load_balancer.listener_port
        )
    });
    (scaling, plain_http)
}

/// The plan's rows: the config's resources as found, then what the state records beyond the
/// config (deleted, or refused when it cannot go).
fn plan_rows(setup: &Setup, graphs: &Graphs, rows: &[ResourceRow], orphans: &[ResourceRow]) -> Vec<PlanRow> {
    let mut resources: Vec<PlanRow> = rows.iter().map(|r| PlanRow::of(graphs, r)).collect();
    for orphan in orphans {
        let refused = match removal(graphs, orphan.name, setup) {
            Removal::Refused(change) => Some(change),
            _ => None,
        };
        resources.push(PlanRow {
            name: orphan.name,
            kind: orphan.kind,
            action: if refused.is_some() { Action::Replace } else { Action::Delete },
            id: orphan.id.clone(),
            changes: refused.into_iter().collect(),
            detail: graphs
                .node(orphan.name)
                .and_then(|n| n.removal_note(&orphan.inspection))
                .unwrap_or_else(|| "no longer in the config".into()),
        });
    }
    resources
}

/// Each replacement `up` refuses (all but those `--replace` names): what changes, and why.
fn refusals(resources: &[PlanRow], replacing: &[Key]) -> Vec<String> {
    resources
        .iter()
        .filter(|r| r.action == Action::Replace && !replacing.contains(&r.name))
        .map(|r| {
            let why: Vec<String> = r.changes.iter().filter(|c| c.replace).map(Change::to_string).collect();
            format!("{}: {} (AWS cannot change this in place: it needs a new {})", r.name, why.join("; "), r.name)
        })
        .collect()
}

impl PlanRow {
    /// What `up` would do to a resource of the config's graph.
    fn of(graphs: &Graphs, row: &ResourceRow) -> PlanRow {
        let made_with = graphs.node(row.name).and_then(|n| n.lifecycle().made_with);
        match (Action::of(row), made_with) {
            // Nothing to create: AWS makes it with its parent, and `up` configures it.
            (Action::Create, Some(parent)) => PlanRow {
                name: row.name,
                kind: row.kind,
                action: Action::Update,
                id: None,
                changes: vec![],
                detail: format!("AWS makes it with the {parent}; its rules are removed"),
            },
            (action, _) => PlanRow {
                name: row.name,
                kind: row.kind,
                action,
                id: row.id.clone(),
                changes: row.changes.clone(),
                detail: match graphs.node(row.name).and_then(|n| n.replacement_note(&row.inspection)) {
                    Some(note) if action == Action::Replace => note,
                    _ if row.changes.is_empty() => row.detail.clone(),
                    _ => String::new(),
                },
            },
        }
    }
}

impl Plan {
    /// The plan from the live rows of the config's graph, the resources the state records that
    /// the config no longer has, and the config last applied.
    fn new(
        setup: &Setup,
        graphs: &Graphs,
        (rows, orphans): (&[ResourceRow], &[ResourceRow]),
        applied: Option<&Applied>,
        image: Option<String>,
        resuming: Option<&str>,
        replacing: &[Key],
    ) -> Plan {
        let resources = plan_rows(setup, graphs, rows, orphans);
        let blocked: Vec<String> = rows.iter().filter_map(|r| r.blocked.clone()).collect();
        let mut counts = BTreeMap::new();
        for r in &resources {
            *counts.entry(r.action).or_default() += 1;
        }
        let replaced_by_up: Vec<Key> = resources
            .iter()
            .filter(|r| r.action == Action::Replace)
            .filter(|r| graphs.node(r.name).is_some_and(|n| n.lifecycle().replaced_by_up))
            .map(|r| r.name)
            .collect();
        let refused = refusals(&resources, &[replacing, &replaced_by_up].concat());
        // What the changes cause elsewhere (a new task definition revision rolls the service).
        let other = |key: Key| rows.iter().find(|r| r.name == key).map(|r| r.inspection.clone());
        let rollout = rows.iter().find_map(|r| graphs.node(r.name).and_then(|n| n.plan_note(&r.inspection, &other)));
        let config_switch =
            applied.filter(|a| a.config != setup.source.path && a.sha256 != setup.source.sha256).map(|a| {
                ConfigSwitch {
                    last_applied: a.config.clone(),
                    last_applied_at: a.at.clone(),
                    now: setup.source.path.clone(),
                }
            });
        let resuming = resuming.map(str::to_string);
        let (scaling, plain_http) = notes(&setup.config);
        let costs =
            rows.iter().filter_map(|r| graphs.node(r.name).and_then(|n| n.cost_note(&setup.config, r))).collect();
        // Before: what was applied last, or nothing when nothing exists yet.
        let nothing_yet = rows.iter().all(|r| r.status == Health::Missing) && orphans.is_empty();
        let before = applied.map(|a| a.bill.as_slice()).filter(|b| !b.is_empty()).or(nothing_yet.then_some(&[][..]));
        let cost = setup.bill(&graphs.config.bill(&setup.config), before);
        let tags = TagGroup::of(&resources);
        Plan {
            tags,
            resources,
            counts,
            rollout,
            refused,
            replacing: replacing.to_vec(),
            replaced_by_up,
            unfinished: vec![],
            blocked,
            config_switch,
            image,
            resuming,
            scaling,
            plain_http,
            costs,
            cost,
        }
    }

    /// The resources this run would take over (`key id`), if it needs leave to: none when it resumes
    /// a run that did not finish.
    fn adoptions(&self) -> Vec<String> {
        if self.resuming.is_some() {
            return vec![];
        }
        let adopted = self.resources.iter().filter(|r| r.action == Action::Adopt);
        adopted.map(|r| format!("{} {}", r.name, r.id.as_deref().unwrap_or_default()).trim_end().to_string()).collect()
    }

    /// What to do about the refused replacements: the advice their resources give, when they all
    /// give the same one, else to put the values back. Never `down`: that takes the service down, and
    /// the next `up` would refuse the same change.
    fn advice(&self, graphs: &Graphs) -> &'static str {
        let advice: Vec<Option<&'static str>> = self
            .resources
            .iter()
            .filter(|r| r.action == Action::Replace && self.refuses(r.name))
            .map(|r| graphs.node(r.name).and_then(|n| n.lifecycle().advice))
            .collect();
        match advice.first() {
            Some(Some(first)) if advice.iter().all(|a| *a == Some(*first)) => first,
            _ => {
                "AWS cannot make these changes in place and `up` does not replace those resources: put the values \
                 back (nothing was changed; the stack keeps running)"
            }
        }
    }

    /// `up` stops before any change: what is in the way, or a replacement it does not make.
    fn stops(&self, graphs: &Graphs) -> Result<(), CommandError> {
        if !self.blocked.is_empty() {
            return Err(CommandError::Refused(format!(
                "nothing was changed: {}. fargate-stack never overwrites or deletes what is not the stack's",
                self.blocked.join("; ")
            )));
        }
        if !self.refused.is_empty() {
            let how = self.advice(graphs);
            return Err(CommandError::Refused(format!("nothing was changed: {}. {how}", self.refused.join("; "))));
        }
        Ok(())
    }

    /// A plan `up` would refuse is an error (exit 1), so that CI stops on it; with
    /// `--detailed-exitcode`, as Terraform's: 0 no changes, 2 changes.
    fn exit_code(&self, detailed: bool) -> Result<ExitCode, CommandError> {
        let stops: Vec<&String> = self.refused.iter().chain(&self.blocked).collect();
        if !stops.is_empty() {
            return Err(CommandError::Reported(format!(
                "`up` would change nothing and stop: {} (see the plan)",
                stops.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; ")
            )));
        }
        let changes = self.resources.iter().any(|r| {
            matches!(r.action, Action::Create | Action::Adopt | Action::Update | Action::Delete | Action::Replace)
        });
        Ok(if detailed && changes { ExitCode::from(EXIT_PLAN_CHANGES) } else { ExitCode::SUCCESS })
    }

    /// `up` refuses to replace it (unless `--replace` names it, or `up` replaces it itself).
    fn refuses(&self, key: Key) -> bool {
        !self.replacing.contains(&key) && !self.replaced_by_up.contains(&key)
    }

    fn count(&self, action: Action) -> usize {
        self.counts.get(&action).copied().unwrap_or(0)
    }

    /// Nothing to create, adopt, update or delete (with `--no-wait`, nothing to wait for either).
    fn converged(&self, no_wait: bool) -> bool {
        self.resources.iter().all(|r| r.action == Action::Unchanged || (no_wait && r.action == Action::Wait))
    }

    /// The plan's table: a row per resource (those whose only changes are tags are in their group's
    /// line instead), and its changes below it.
    fn table(&self) -> Vec<Vec<String>> {
        let mut table = vec![];
        for r in &self.resources {
            // A row whose only changes are tags is in its group's line below.
            if r.action == Action::Update && !r.changes.is_empty() && r.changes.iter().all(is_tag) {
                continue;
            }
            table.push(vec![format!("  {}", r.action.word()), r.name.to_string(), r.detail.clone()]);
            for change in r.changes.iter().filter(|c| r.action != Action::Update || !is_tag(c)) {
                let note = match (change.replace, self.replacing.contains(&r.name)) {
                    (false, _) => String::new(),
                    // What it means for that resource is the row's own note, above.
                    _ if self.replaced_by_up.contains(&r.name) => "  (replaces it: new one first, as above)".into(),
                    (true, false) => "  (replaces it: refused)".into(),
                    (true, true) => format!("  (replaces it: `up --replace {}`)", r.name),
                };
                table.push(vec![String::new(), format!("  {change}{note}")]);
            }
        }
        table
    }

    fn render(&self, text: &mut Text) {
        let table = self.table();
        text.table(&table);
        for group in &self.tags {
            text.line(group.line());
        }
        if let Some(image) = &self.image {
            text.line(format!("image: {image}"));
        }
        if let Some(rollout) = &self.rollout {
            text.line(format!("rollout: {rollout}"));
        }
        if let Some(scaling) = &self.scaling {
            text.line(format!("note: {scaling}"));
        }
        if let Some(plain_http) = &self.plain_http {
            text.line(format!("note: {plain_http}"));
        }
        for cost in &self.costs {
            text.line(format!("cost: {cost}"));
        }
        self.cost.render("bill", text);
        if let Some(switch) = &self.config_switch {
            text.line(format!(
                "config: this run uses {}, but {} was applied last ({}); `up` asks before applying it",
                switch.now, switch.last_applied, switch.last_applied_at
            ));
        }
        text.line(format!(
            "plan: {} to create, {} to adopt, {} to update, {} to delete, {} to replace ({}), {} unchanged{}",
            self.count(Action::Create),
            self.count(Action::Adopt),
            self.count(Action::Update),
            self.count(Action::Delete),
            self.count(Action::Replace),
            match (self.refused.is_empty(), self.replacing.is_empty()) {
                (false, _) => "refused",
                (true, false) => "--replace",
                (true, true) if !self.replaced_by_up.is_empty() => "new ones first",
                (true, true) => "refused",
            },
            self.count(Action::Unchanged) + self.count(Action::Wait),
            match self.count(Action::Blocked) {
                0 => String::new(),
                n => format!(", {n} blocked"),
            }
        ));
        match (self.count(Action::Adopt), &self.resuming) {
            (0, _) => {}
            (_, Some(run)) => text.line(format!(
                "adopt: the last run on this state did not finish ({run}): what it made but did not record yet is \
                 taken back without asking"
            )),
            (n, None) => text.line(format!(
                "adopt: {n} resources carry the stack's tag but no state records them; adopting makes `up` rewrite \
                 them to the config and `down` delete them: `up` asks on a terminal, and needs --adopt off one"
            )),
        }
        for unfinished in &self.unfinished {
            text.line(format!("unfinished: {unfinished}"));
        }
        for refusal in &self.refused {
            text.line(format!("refused: {refusal}"));
        }
        for why in &self.blocked {
            text.line(format!("blocked: {why}"));
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PlanReport {
    pub stack: String,
    pub region: String,
    pub dry_run: bool,
    #[serde(flatten)]
    pub plan: Plan,
}

impl Report for PlanReport {
    const COMMAND: &'static str = "plan";

    fn render(&self, text: &mut Text) {
        text.line(format!("plan for stack {} in {} (dry run: nothing is changed)", self.stack, self.region));
        self.plan.render(text);
    }
}

#[derive(Debug, Serialize)]
pub struct UpReport {
    pub event: &'static str,
    pub stack: String,
    pub region: String,
    pub state_file: String,
    pub ok: bool,
    /// The stack after the run: `up`, `deploying` (not waited for), or `partial` (a step failed).
    pub state: StackState,
    pub elapsed_ms: u64,
    pub nothing_to_change: bool,
    pub steps: Vec<StepReport>,
    pub outputs: Outputs,
    /// The check that the URL answers, once the rollout completed (absent with --no-wait or when a
    /// step failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_check: Option<UrlCheck>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// What the run kept or left to do by hand (the table a replacement took over from).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    no_wait: bool,
}

impl Report for UpReport {
    const COMMAND: &'static str = "up";

    fn render(&self, text: &mut Text) {
        if !self.ok {
            return;
        }
        text.line(format!("stack {} is up in {}", self.stack, self.region));
        self.outputs.render(text);
        if let Some(summary) = self.url_check.as_ref().and_then(UrlCheck::summary) {
            text.line(format!("  url check: {summary}"));
        }
        if self.no_wait {
            text.line("  (not waited for the service to become healthy: see `fargate-stack status`)");
        }
        for note in &self.notes {
            text.line(format!("note: {note}"));
        }
    }
}

pub async fn run(setup: &Setup, args: &UpArgs) -> Result<ExitCode, CommandError> {
    if args.dry_run {
        let report = dry_run(setup, args).await?;
        report::emit(setup.format, &report);
        return report.plan.exit_code(args.detailed_exitcode);
    }
    let store = setup.open_state().await?;
    let ctx = setup.context(store);
    let result = apply(setup, args, &ctx).await;
    ctx.store().release().await;
    result
}

/// The graphs of `up`: the config's (with its waits, unless `no_wait`), and the one covering what
/// the state records beyond it.
fn graphs(setup: &Setup, state: &State, waits: bool) -> Result<Graphs, CommandError> {
    Ok(Graphs {
        config: resources::stack(&Shape::of(&setup.config).with_waits(waits))?,
        covering: resources::stack(&Shape::covering(&setup.config, state))?,
    })
}

/// The resources `--replace` names, each one that `up` can replace.
fn replacing(graphs: &Graphs, args: &UpArgs) -> Result<Vec<Key>, CommandError> {
    let replaceable: Vec<Key> =
        graphs.config.nodes().iter().filter(|n| n.lifecycle().replaceable).map(|n| n.key()).collect();
    let names: Vec<String> = replaceable.iter().map(Key::to_string).collect();
    args.replace
        .iter()
        .map(|asked| {
            replaceable.iter().copied().find(|k| k.to_string() == *asked).ok_or_else(|| {
                CommandError::Usage(format!(
                    "--replace {asked}: `up` replaces only {} this way; what else AWS cannot change in place is \
                     refused with the reason",
                    names.join(", ")
                ))
            })
        })
        .collect()
}

/// The live rows of the config's graph, and of what the state records beyond it.
async fn check(
    setup: &Setup,
    graphs: &Graphs,
    ctx: &Arc<Ctx>,
    state: &State,
) -> Result<(Vec<ResourceRow>, Vec<ResourceRow>), CommandError> {
    let rows = inspect(setup, &graphs.config, ctx.clone()).await?;
    let mut orphans = vec![];
    for node in graphs.covering.resources() {
        let key = node.key();
        if graphs.config.get(key).is_none() && state.get(&key.to_string()).is_some() {
            orphans.push(ResourceRow { name: key, kind: key.kind(), inspection: node.inspect(ctx).await? });
        }
    }
    Ok((rows, orphans))
}

/// The actions the plan's changes call, asked of IAM's policy simulator for the caller before the
/// first change (see `access_check`): a denied one stops the run here, naming it.
async fn check_access(setup: &Setup, graphs: &Graphs, plan: &Plan, progress: &Progress) -> Result<(), CommandError> {
    let mut needed = vec![];
    for row in &plan.resources {
        let verbs: &[Verb] = match row.action {
            // What it makes it reads back on every later run (`find`): a run that could make it
            // but not read it would leave a stack no later `up` or `status` can look at.
            Action::Create | Action::Adopt => &[Verb::Find, Verb::Create, Verb::Update],
            Action::Update => &[Verb::Find, Verb::Update],
            Action::Delete => &[Verb::Find, Verb::Delete],
            _ => continue,
        };
        let node = graphs.config.get(row.name).or_else(|| graphs.covering.get(row.name));
        let permissions = node.map(|n| n.permissions()).unwrap_or_default();
        needed.extend(permissions.into_iter().filter(|p| verbs.contains(&p.verb)));
    }
    access_check::before_changes(setup, &needed, progress).await
}

/// What AWS would refuse later (a region without enough zones for `az_count`), before any change.
async fn preflight(graph: &Graph, ctx: &Arc<Ctx>) -> Result<(), CommandError> {
    let checks = graph.nodes().iter().map(|n| n.preflight(ctx));
    futures::future::try_join_all(checks).await?;
    Ok(())
}

/// `--prices live`: the prices of what the plan bills, now and as applied last.
async fn fetch_prices(setup: &Setup, graphs: &Graphs, state: &State) {
    let now = graphs.config.bill(&setup.config);
    let before = state.applied.as_ref().map(|a| a.bill.as_slice()).unwrap_or_default();
    setup.fetch_prices(&[&now, before]).await;
}

async fn dry_run(setup: &Setup, args: &UpArgs) -> Result<PlanReport, CommandError> {
    let state = setup.read_state().await?.unwrap_or_else(|| State::new(&setup.config.name, &setup.region));
    let graphs = graphs(setup, &state, false)?;
    let replacing = replacing(&graphs, args)?;
    let ctx = setup.read_only(state.clone());
    let (home, checked) = tokio::join!(state_home::find(setup), check(setup, &graphs, &ctx, &state));
    let (rows, orphans) = checked?;
    let image = image::wanted(&ctx.scope()).note();
    let resuming = state.unfinished.as_deref();
    fetch_prices(setup, &graphs, &state).await;
    let applied = state.applied.as_ref();
    let mut plan = Plan::new(setup, &graphs, (&rows, &orphans), applied, image, resuming, &replacing);
    plan.unfinished = graphs.config.unfinished(&ctx);
    if let Some(home) = home? {
        if let Some(other) = home.elsewhere(setup) {
            plan.blocked.push(state_home::refusal(setup, &home, other).to_string());
        }
    }
    Ok(PlanReport { stack: setup.config.name.clone(), region: setup.region.clone(), dry_run: true, plan })
}

async fn apply(setup: &Setup, args: &UpArgs, ctx: &Arc<Ctx>) -> Result<ExitCode, CommandError> {
    let state = ctx.snapshot();
    let graphs = graphs(setup, &state, !args.no_wait)?;
    let graph = &graphs.config;
    let replacing = replacing(&graphs, args)?;
    ctx.set_run(Replacing(replacing.clone()));
    let progress = setup.progress(&graph.keys());
    let location = setup.location();
    progress.note(&format!("fargate-stack up: stack {} in {} (state {location})", setup.config.name, setup.region));
    setup.report_interrupted(ctx.store(), &progress);
    // Before anything is looked up (looking up records what it finds): a stack whose state lives
    // elsewhere is not adopted into a second state. A VPC made before the tag existed gets it.
    if let Some(home) = state_home::check(setup).await?.filter(|h| h.tag.is_none()) {
        state_home::set(setup, &home.vpc, &location).await?;
    }
    // Before any change, concurrently: what would happen, what AWS would refuse later (refused now),
    // live prices. What it finds stays unwritten until the run may go on.
    ctx.store().hold();
    let (preflight, checked, ()) =
        tokio::join!(preflight(graph, ctx), check(setup, &graphs, ctx, &state), fetch_prices(setup, &graphs, &state));
    preflight?;
    let (rows, orphans) = checked?;
    let image = image::wanted(&ctx.scope()).note();
    let resuming = ctx.store().interrupted().map(str::to_string);
    let applied = state.applied.as_ref();
    let plan = Plan::new(setup, &graphs, (&rows, &orphans), applied, image, resuming.as_deref(), &replacing);
    note_plan(&progress, &plan, graph, ctx);
    plan.stops(&graphs)?;
    let started = std::time::Instant::now();
    let converged = plan.converged(args.no_wait);
    if !converged {
        check_access(setup, &graphs, &plan, &progress).await?;
    }
    confirm_plan(setup, args, &plan, converged)?;
    // From here on what is made may be ahead of what is recorded: a run that changes anything is
    // marked unfinished until it ends, so that if it is killed the next one takes back what it finds.
    tags_syncing(ctx, &state, setup, converged).await?;
    ctx.store().commit_held(Some(setup.command).filter(|_| !converged)).await?;
    let steps = if converged {
        unchanged(graph, ctx, &rows).await?
    } else {
        execute(setup, &graphs, ctx, &progress, &plan).await?
    };
    let mut result = check_steps(&steps);
    if result.is_ok() {
        result = finish_up(graph, ctx).await;
    }
    record_finished(ctx.store(), setup, graph.bill(&setup.config), result.is_ok()).await?;
    let elapsed = if converged { started.elapsed() } else { progress.elapsed() };
    let what = if converged { "nothing to change".to_string() } else { summary(&steps) };
    note_end(&progress, ctx, result.is_ok(), &what, elapsed);
    let (url_check, result) = verify_up(setup, args, ctx, &progress, converged, result).await;
    let all_unchanged = plan.resources.iter().all(|r| r.action == Action::Unchanged);
    let state = end_state(&result, url_check.is_some(), args.no_wait && !all_unchanged);
    let report = UpReport {
        event: "result",
        stack: setup.config.name.clone(),
        region: setup.region.clone(),
        state_file: location,
        ok: result.is_ok(),
        state,
        elapsed_ms: elapsed.as_millis() as u64,
        nothing_to_change: converged,
        steps,
        outputs: Outputs::of(ctx),
        url_check,
        warnings: ctx.warnings(),
        notes: ctx.notes(),
        error: result.as_ref().err().map(|e| e.to_string()),
        no_wait: args.no_wait,
    };
    report::emit(setup.format, &report);
    result.map(|()| ExitCode::SUCCESS)
}

/// The stack's state after `up`: `url_checked` when the run got as far as checking the URL,
/// `left_deploying` when `--no-wait` left a change rolling out.
fn end_state(result: &Result<(), CommandError>, url_checked: bool, left_deploying: bool) -> StackState {
    match result {
        // Only the URL check failed: everything is in place.
        Err(_) if url_checked => StackState::Up,
        Err(_) => StackState::Partial,
        Ok(()) if left_deploying => StackState::Deploying,
        Ok(()) => StackState::Up,
    }
}

/// The run's last notes: how it ended and in how long, then the warnings.
fn note_end(progress: &Progress, ctx: &Ctx, ok: bool, what: &str, elapsed: std::time::Duration) {
    let verdict = if ok { "done" } else { "failed" };
    progress.note(&format!("{verdict} in {:.1}s: {what}", elapsed.as_secs_f64()));
    for warning in ctx.warnings() {
        progress.note(&format!("warning: {warning}"));
    }
}

/// Once the rollout completed (or nothing changed and the service is ok): prove the URL answers,
/// cheaply (one GET) even when nothing changed, since `up` says the stack is up.
async fn verify_up(
    setup: &Setup,
    args: &UpArgs,
    ctx: &Ctx,
    progress: &Progress,
    converged: bool,
    result: Result<(), CommandError>,
) -> (Option<UrlCheck>, Result<(), CommandError>) {
    if result.is_err() || args.no_wait {
        return (None, result);
    }
    let checked = verify::after_rollout(ctx, &setup.asked(&args.verify), progress).await;
    let done = format!(
        "`up` {}: every resource is in place and the state records it, the service's rollout completed and its \
         targets are healthy",
        if converged { "changed nothing" } else { "finished" }
    );
    let result = verify::failed(&checked, &done).map_or(Ok(()), Err);
    if result.is_err() {
        verify::forget_unanswered(ctx).await;
    }
    (Some(checked), result)
}

/// Before a run that changes anything: the state records the keys of the old and the new `[tags]`,
/// so that a run killed mid-way still takes off the old ones (the end of the run records the new).
async fn tags_syncing(ctx: &Ctx, state: &State, setup: &Setup, converged: bool) -> Result<(), CommandError> {
    let user_tags = during_up(state.user_tags.as_ref(), &setup.config.tags);
    ctx.store().update(|s| !converged && s.user_tags.replace(user_tags.clone()) != Some(user_tags)).await?;
    Ok(())
}

/// What the run says before it starts: the image, and what an interrupted run left unfinished.
fn note_plan(progress: &crate::progress::Progress, plan: &Plan, graph: &Graph, ctx: &Ctx) {
    if let Some(image) = &plan.image {
        progress.note(&format!("image: {image}"));
    }
    for unfinished in graph.unfinished(ctx) {
        progress.note(&format!("unfinished: {unfinished}"));
    }
}

/// A run with nothing to change: every step unchanged, after what a finished run would have noted
/// (a service that is ok completed its rollout).
async fn unchanged(graph: &Graph, ctx: &Arc<Ctx>, rows: &[ResourceRow]) -> Result<Vec<StepReport>, CommandError> {
    for row in rows {
        if let Some(node) = graph.get(row.name) {
            node.converged(ctx, &row.inspection).await?;
        }
    }
    let unchanged =
        |key| StepReport { key, result: StepResult::Done { outcome: Outcome::Unchanged }, elapsed: Default::default() };
    Ok(graph.keys().into_iter().map(unchanged).collect())
}

/// Every step done: what the pass left for the end (a replaced table leaves the stack). In reverse
/// order, what needs a resource before it: the task role drops its grant on the replaced table
/// while the table still records which one that is.
async fn finish_up(graph: &Graph, ctx: &Arc<Ctx>) -> Result<(), CommandError> {
    for node in graph.nodes().iter().rev() {
        node.finish_up(ctx).await?;
    }
    Ok(())
}

/// The up pass over the config's graph; then what the config no longer has goes, once the rest is
/// in place.
async fn execute(
    setup: &Setup,
    graphs: &Graphs,
    ctx: &Arc<Ctx>,
    progress: &crate::progress::Progress,
    plan: &Plan,
) -> Result<Vec<StepReport>, CommandError> {
    let deletable: Vec<Key> = plan.resources.iter().filter(|r| r.action == Action::Delete).map(|r| r.name).collect();
    let (graph, beyond) = (&graphs.config, &graphs.covering);
    let (first, last): (Vec<Key>, Vec<Key>) =
        deletable.into_iter().partition(|k| removal(graphs, *k, setup) == Removal::BeforeUp);
    let mut steps = vec![];
    if !first.is_empty() {
        let only = |n: &dyn crate::model::Resource| first.contains(&n.key());
        steps.extend(beyond.execute(Direction::Down, ctx.clone(), progress, setup.max_concurrency, &only).await);
    }
    steps.extend(graph.execute(Direction::Up, ctx.clone(), progress, setup.max_concurrency, &|_| true).await);
    // The rest of what the config no longer has goes once everything else is in place.
    if !last.is_empty() && check_steps(&steps).is_ok() {
        let only = |n: &dyn crate::model::Resource| last.contains(&n.key());
        steps.extend(beyond.execute(Direction::Down, ctx.clone(), progress, setup.max_concurrency, &only).await);
    }
    Ok(steps)
}

impl ConfigSwitch {
    /// Ask on a terminal before applying another config than the last one; refuse off one.
    fn confirm(&self, stack: &str) -> Result<(), CommandError> {
        let question = format!(
            "This run uses {}, but {} was applied last ({}). Apply {} anyway? Type the stack name to confirm: ",
            self.now, self.last_applied, self.last_applied_at, self.now
        );
        let refusal = format!(
            "refusing to apply {} over {} (applied last, {}) without confirmation: pass the same --config, or --yes",
            self.now, self.last_applied, self.last_applied_at
        );
        confirm(&question, stack, &refusal)
    }
}

/// What a person must agree to before the plan is applied: another config than the one applied
/// last, and taking over what no state records.
fn confirm_plan(setup: &Setup, args: &UpArgs, plan: &Plan, converged: bool) -> Result<(), CommandError> {
    if let Some(switch) = plan.config_switch.as_ref().filter(|_| !converged && !args.yes) {
        switch.confirm(&setup.config.name)?;
    }
    let adoptions = plan.adoptions();
    if !adoptions.is_empty() && !args.adopt {
        confirm_adoption(&setup.config.name, &adoptions)?;
    }
    Ok(())
}

/// Ask before taking over resources that carry the stack's tag but that no state records: anyone
/// who can tag a resource could otherwise hand it to the stack, to be rewritten and later deleted.
/// Off a terminal, `--adopt` is the only way.
fn confirm_adoption(stack: &str, adoptions: &[String]) -> Result<(), CommandError> {
    let what = format!(
        "{} resources carry stack {stack}'s tag (fargate-stack:stack={stack}) but no state records them",
        adoptions.len()
    );
    let effect = "adopting makes them the stack's: `up` rewrites them to the config (a role's trust and policies \
                  included) and `down` deletes them";
    let listing: Vec<String> = adoptions.iter().map(|a| format!("  {a}")).collect();
    let question = format!("{what}:\n{}\n{effect}. Adopt them? Type the stack name to confirm: ", listing.join("\n"));
    let refusal = format!(
        "refusing to adopt without --adopt (stdin is not a terminal); nothing was changed. {what}: {}. {effect}. If \
         they are this stack's (its state was lost, or is kept elsewhere: check --state), run again with --adopt; if \
         not, find out who tagged them",
        adoptions.join(", ")
    );
    confirm(&question, stack, &refusal)
}

/// The end of an `up` that ran to its end: the state no longer says a run did not finish (a failed
/// step's call either made nothing or AWS's answer was lost: what it made is then found by tag, and
/// needs --adopt like anything else no state records), and, if every step is done, records the
/// config applied.
async fn record_finished(store: &Store, setup: &Setup, bill: Vec<BilledLine>, done: bool) -> Result<(), CommandError> {
    let source = &setup.source;
    let user_tags = &setup.config.tags;
    let applied = Applied {
        config: source.path.clone(),
        sha256: source.sha256.clone(),
        at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        bill,
    };
    store
        .update(|state| {
            let finished = state.unfinished.take().is_some();
            // Every resource carries the config's `[tags]` now, and no other key of the tool's.
            let tagged = done && state.user_tags.clone().unwrap_or_default() != *user_tags;
            if tagged {
                state.user_tags = Some(user_tags.clone());
            }
            let finished = finished || tagged;
            let same = state
                .applied
                .as_ref()
                .is_some_and(|a| a.config == applied.config && a.sha256 == applied.sha256 && a.bill == applied.bill);
            if !done || same || state.resources.is_empty() {
                return finished;
            }
            state.applied = Some(applied);
            true
        })
        .await?;
    Ok(())
}
