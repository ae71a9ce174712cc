//! The Fargate task definition: the app container's image, size, port, environment, roles and
//! log group; a new revision whenever one of them changes. Also the revisions `deploy` registers
//! and the history of completed rollouts `rollback` goes back through.

use async_trait::async_trait;
use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, HealthCheck, KeyValuePair, LogConfiguration, LogDriver, MountPoint,
    NetworkMode, OsFamily, PortMapping, RuntimePlatform, Secret, TaskDefinition as Definition, TaskDefinitionField,
    TaskDefinitionStatus, TransportProtocol, Volume,
};
use futures::future::BoxFuture;

pub mod image;

use crate::access::{self, arn, global_arn, Condition, Permission, Verb, STACK};
use crate::aws::Clients;
use crate::bill::Charge;
use crate::config::{Config, CpuArchitecture, LogMode};
use crate::error::{returned, AwsContext, StackError};
use crate::model::{
    made_for, owner_tags, tags::Seen, Attr, Changed, Declared, Dep, Diff, Field, Key, Managed, Nodes, Outcome, Record,
    Scope, Shape, Sighting, Step, Sweep,
};
use crate::progress::Line;
use crate::resources::cluster::{ecs_pairs, ecs_retag};
use crate::resources::iam::{EXECUTION_ROLE, EXECUTION_ROLE_ARN, TASK_ROLE, TASK_ROLE_ARN};
use crate::resources::logs::LOG_GROUP;
use crate::resources::secrets;
use crate::resources::table::TABLE;
use crate::resources::tags::TagPairs;
use crate::state::StateError;
use image::Source;
pub use image::TASK_DEFINITION;

pub const CONTAINER_NAME: &str = "app";

/// The revision's family, recorded so a renamed stack still finds its revisions.
const FAMILY: Attr = Attr::new(TASK_DEFINITION, "family");
/// The app container's image in the recorded revision.
pub const IMAGE: Attr = Attr::new(TASK_DEFINITION, "image");

pub fn declare(_shape: &Shape, nodes: &mut Nodes) {
    nodes.managed(TaskDefinition);
}

/// The task definition family: `<stack>-server`.
pub fn family(stack: &str) -> String {
    format!("{stack}-server")
}

/// What the task definition can differ in: any of it registers a new revision.
#[derive(Debug, Clone, PartialEq)]
pub enum DefinitionField {
    Image,
    Cpu,
    Memory,
    Port,
    Environment,
    Secrets,
    ExecutionRole,
    TaskRole,
    LogGroup,
    LogMode,
    Filesystem,
    User,
    Architecture,
    Command,
    Entrypoint,
    HealthCheck,
    StopTimeout,
    AdditionalPorts,
}

impl Field for DefinitionField {
    fn label(&self) -> String {
        match self {
            DefinitionField::Image => "service.image",
            DefinitionField::Cpu => "service.cpu",
            DefinitionField::Memory => "service.memory",
            DefinitionField::Port => "service.container_port",
            DefinitionField::Environment => "service.environment",
            DefinitionField::Secrets => "service.secrets",
            DefinitionField::ExecutionRole => "execution role",
            DefinitionField::TaskRole => "task role",
            DefinitionField::LogGroup => "log group",
            DefinitionField::LogMode => "logs.mode",
            DefinitionField::Filesystem => "service.readonly_root_filesystem",
            DefinitionField::User => "service.user",
            DefinitionField::Architecture => "service.cpu_architecture",
            DefinitionField::Command => "service.command",
            DefinitionField::Entrypoint => "service.entrypoint",
            DefinitionField::HealthCheck => "service.health_check",
            DefinitionField::StopTimeout => "service.stop_timeout",
            DefinitionField::AdditionalPorts => "service.additional_ports",
        }
        .into()
    }
}

/// The task definition's fields that the config decides, as comparable, printable values.
#[derive(Debug, Clone, PartialEq)]
struct Spec {
    image: String,
    cpu: String,
    memory: String,
    port: String,
    environment: String,
    /// `{NAME=valueFrom, ...}`: where each secret is read from (ARNs, never values).
    secrets: String,
    execution_role: String,
    task_role: String,
    log_group: String,
    /// The awslogs driver's delivery: `non-blocking (25m)` or `blocking`.
    log_mode: String,
    /// `read-only, writable /tmp, /var/run` or `writable`.
    filesystem: String,
    user: String,
    /// `X86_64` (also when the revision names no platform, as ECS runs it) or `ARM64`.
    architecture: String,
    /// `["a", "b"]` or `the image's`.
    command: String,
    entrypoint: String,
    /// `none` or `CMD-SHELL exit 0 (every 30 s, timeout 5 s, 3 retries, start period 0 s)`.
    health_check: String,
    /// Seconds, or `30 (ECS's default)` when the revision names none.
    stop_timeout: String,
    /// The container ports mapped besides the load balancer's: `none` or `8081, 9090`.
    additional_ports: String,
}

fn show_words(words: Option<&[String]>) -> String {
    words.map_or_else(|| "the image's".into(), |w| format!("{w:?}"))
}

/// A container health check, with the defaults ECS fills in for what is not given.
fn show_health_check(check: Option<(&[String], i32, i32, i32, i32)>) -> String {
    match check {
        None => "none".into(),
        Some((command, interval, timeout, retries, start)) => format!(
            "{} (every {interval} s, timeout {timeout} s, {retries} retries, start period {start} s)",
            command.join(" ")
        ),
    }
}

fn show_stop_timeout(seconds: Option<i32>) -> String {
    seconds.map_or_else(|| "30 (ECS's default)".into(), |s| s.to_string())
}

fn show_ports(ports: impl Iterator<Item = i32>) -> String {
    let ports: Vec<String> = ports.map(|p| p.to_string()).collect();
    if ports.is_empty() {
        "none".into()
    } else {
        ports.join(", ")
    }
}

/// The app container's root filesystem and the paths mounted writable on it.
fn show_filesystem(readonly: bool, writable: &[String]) -> String {
    match (readonly, writable.is_empty()) {
        (false, _) => "writable".into(),
        (true, true) => "read-only".into(),
        (true, false) => format!("read-only, writable {}", writable.join(", ")),
    }
}

fn show_user(user: Option<&str>) -> String {
    user.map_or_else(|| "the image's".into(), str::to_string)
}

/// The task's scratch volumes: one per writable path, of the task's own storage (no host path).
fn scratch_volume(index: usize) -> String {
    format!("writable-{}", index + 1)
}

/// The awslogs options that say how output is delivered: (mode, buffer size of the non-blocking mode).
fn log_mode_options(config: &Config) -> (&'static str, Option<&str>) {
    match config.logs.mode {
        LogMode::NonBlocking => (LogMode::NonBlocking.as_str(), Some(config.logs.max_buffer_size.as_str())),
        LogMode::Blocking => (LogMode::Blocking.as_str(), None),
    }
}

fn show_log_mode(mode: Option<&str>, buffer: Option<&str>) -> String {
    // Without `mode`, the driver blocks.
    match (mode.unwrap_or(LogMode::Blocking.as_str()), buffer) {
        (mode, Some(size)) => format!("{mode} ({size})"),
        (mode, None) => mode.to_string(),
    }
}

impl Spec {
    fn wanted(ctx: &Scope<'_>) -> Result<Spec, StackError> {
        let table = ctx.need(TABLE)?;
        Ok(Spec {
            image: image::wanted(ctx).image,
            cpu: ctx.config.service.cpu.to_string(),
            memory: ctx.config.service.memory.to_string(),
            port: ctx.config.service.container_port.to_string(),
            environment: show_environment(ctx.config.container_environment(&table).into_iter()),
            secrets: show_environment(secrets::looked_up(ctx, "the task definition")?.container_secrets().into_iter()),
            execution_role: ctx.need_attr(EXECUTION_ROLE_ARN)?,
            task_role: ctx.need_attr(TASK_ROLE_ARN)?,
            log_group: ctx.need(LOG_GROUP)?,
            log_mode: {
                let (mode, buffer) = log_mode_options(ctx.config);
                show_log_mode(Some(mode), buffer)
            },
            filesystem: show_filesystem(
                ctx.config.service.readonly_root_filesystem,
                if ctx.config.service.readonly_root_filesystem { &ctx.config.service.writable_paths } else { &[] },
            ),
            user: show_user(ctx.config.service.user.as_deref()),
            architecture: ctx.config.service.cpu_architecture.as_str().into(),
            command: show_words(ctx.config.service.command.as_deref()),
            entrypoint: show_words(ctx.config.service.entrypoint.as_deref()),
            health_check: show_health_check(health_check(ctx.config).as_ref().map(|h| {
                (
                    h.command(),
                    h.interval.unwrap_or(30),
                    h.timeout.unwrap_or(5),
                    h.retries.unwrap_or(3),
                    h.start_period.unwrap_or(0),
                )
            })),
            stop_timeout: show_stop_timeout(ctx.config.service.stop_timeout.map(|s| s as i32)),
            additional_ports: show_ports(ctx.config.service.additional_ports.iter().map(|p| *p as i32)),
        })
    }

    fn of(def: &Definition) -> Spec {
        let container = def.container_definitions().iter().find(|c| c.name() == Some(CONTAINER_NAME));
        let mut environment: Vec<(String, String)> = container
            .map(|c| {
                c.environment()
                    .iter()
                    .map(|kv| (kv.name().unwrap_or_default().to_string(), kv.value().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        environment.sort();
        let secrets = container
            .map(|c| c.secrets().iter().map(|s| (s.name().to_string(), s.value_from().to_string())).collect::<Vec<_>>())
            .unwrap_or_default();
        let mounted: Vec<String> = container
            .map(|c| c.mount_points().iter().filter_map(|m| m.container_path().map(str::to_string)).collect())
            .unwrap_or_default();
        let log_option = |name: &str| {
            container.and_then(|c| c.log_configuration()).and_then(|l| l.options()?.get(name)).map(String::as_str)
        };
        Spec {
            image: container.and_then(|c| c.image()).unwrap_or_default().to_string(),
            cpu: def.cpu().unwrap_or_default().to_string(),
            memory: def.memory().unwrap_or_default().to_string(),
            port: container
                .and_then(|c| c.port_mappings().first())
                .and_then(|p| p.container_port())
                .map(|p| p.to_string())
                .unwrap_or_default(),
            environment: show_environment(environment.into_iter()),
            secrets: show_environment(secrets.into_iter()),
            execution_role: def.execution_role_arn().unwrap_or_default().to_string(),
            task_role: def.task_role_arn().unwrap_or_default().to_string(),
            log_group: log_option("awslogs-group").unwrap_or_default().to_string(),
            log_mode: show_log_mode(log_option("mode"), log_option("max-buffer-size")),
            filesystem: show_filesystem(container.and_then(|c| c.readonly_root_filesystem()) == Some(true), &mounted),
            user: show_user(container.and_then(|c| c.user())),
            architecture: def
                .runtime_platform()
                .and_then(|p| p.cpu_architecture())
                .map_or(CpuArchitecture::X86_64.as_str(), |a| a.as_str())
                .to_string(),
            command: show_words(container.map(|c| c.command()).filter(|w| !w.is_empty())),
            entrypoint: show_words(container.map(|c| c.entry_point()).filter(|w| !w.is_empty())),
            // ECS fills in the defaults of what a check does not give: shown as it runs.
            health_check: show_health_check(container.and_then(|c| c.health_check()).map(|h| {
                (
                    h.command(),
                    h.interval.unwrap_or(30),
                    h.timeout.unwrap_or(5),
                    h.retries.unwrap_or(3),
                    h.start_period.unwrap_or(0),
                )
            })),
            stop_timeout: show_stop_timeout(container.and_then(|c| c.stop_timeout())),
            additional_ports: show_ports(
                container.iter().flat_map(|c| c.port_mappings().iter().skip(1)).filter_map(|p| p.container_port()),
            ),
        }
    }

    fn diff(&self, want: &Spec) -> Vec<Changed<DefinitionField>> {
        let mut diff = Diff::new();
        diff.field(DefinitionField::Image, &self.image, &want.image)
            .field(DefinitionField::Cpu, &self.cpu, &want.cpu)
            .field(DefinitionField::Memory, &self.memory, &want.memory)
            .field(DefinitionField::Port, &self.port, &want.port)
            .field(DefinitionField::Environment, &self.environment, &want.environment)
            .field(DefinitionField::Secrets, &self.secrets, &want.secrets)
            .field(DefinitionField::ExecutionRole, &self.execution_role, &want.execution_role)
            .field(DefinitionField::TaskRole, &self.task_role, &want.task_role)
            .field(DefinitionField::LogGroup, &self.log_group, &want.log_group)
            .field(DefinitionField::LogMode, &self.log_mode, &want.log_mode)
            .field(DefinitionField::Filesystem, &self.filesystem, &want.filesystem)
            .field(DefinitionField::User, &self.user, &want.user)
            .field(DefinitionField::Architecture, &self.architecture, &want.architecture)
            .field(DefinitionField::Command, &self.command, &want.command)
            .field(DefinitionField::Entrypoint, &self.entrypoint, &want.entrypoint)
            .field(DefinitionField::HealthCheck, &self.health_check, &want.health_check)
            .field(DefinitionField::StopTimeout, &self.stop_timeout, &want.stop_timeout)
            .field(DefinitionField::AdditionalPorts, &self.additional_ports, &want.additional_ports);
        diff.into_changes()
    }
}

/// The container health check the config asks for, as ECS takes it.
fn health_check(config: &Config) -> Option<HealthCheck> {
    let check = config.service.health_check.as_ref()?;
    let built = HealthCheck::builder()
        .set_command(Some(check.command.clone()))
        .interval(check.interval_seconds as i32)
        .timeout(check.timeout_seconds as i32)
        .retries(check.retries as i32)
        .start_period(check.start_period_seconds as i32)
        .build();
    Some(built.expect("the command is set"))
}

/// The app container's port mappings: the load balancer's port first, then the additional ones.
fn port_mappings(config: &Config) -> Vec<PortMapping> {
    [config.service.container_port]
        .iter()
        .chain(&config.service.additional_ports)
        .map(|port| PortMapping::builder().container_port(*port as i32).protocol(TransportProtocol::Tcp).build())
        .collect()
}

fn show_environment(vars: impl Iterator<Item = (String, String)>) -> String {
    let mut vars: Vec<String> = vars.map(|(k, v)| format!("{k}={v}")).collect();
    vars.sort();
    format!("{{{}}}", vars.join(", "))
}

async fn describe_definition(
    ctx: &Scope<'_>,
    id: &str,
) -> Result<Option<(Definition, Vec<aws_sdk_ecs::types::Tag>)>, StackError> {
    let out =
        ctx.aws.ecs.describe_task_definition().task_definition(id).include(TaskDefinitionField::Tags).send().await;
    match out.ctx("describe task definition", id) {
        Ok(out) => Ok(out.task_definition().cloned().map(|d| (d, out.tags().to_vec()))),
        // ECS answers ClientException for an unknown family or revision.
        Err(e) if e.is_not_found() || e.has_code(&["ClientException"]) => Ok(None),
        Err(e) => Err(e),
    }
}

pub struct TaskDefinition;

/// Registering a revision: the call, its tags, and passing the stack's roles to ECS tasks.
fn definition_permissions(verb: Verb) -> Vec<Permission> {
    let revisions = arn("ecs", &format!("task-definition/{}:*", family(STACK)));
    let roles = global_arn("iam", true, &format!("role/{STACK}-*-role"));
    vec![
        Permission::new(verb, "ecs:RegisterTaskDefinition").on(revisions.clone()).tagging(),
        access::tags_on_create("ecs:TagResource", "RegisterTaskDefinition", revisions.clone()),
        access::retagging("ecs:TagResource", revisions.clone()),
        access::retagging("ecs:UntagResource", revisions.clone()),
        Permission::new(verb, "iam:PassRole").on(roles).when(Condition::PassedTo("ecs-tasks.amazonaws.com")).implied(),
    ]
}

/// Every revision (active or inactive, not being deleted) of a family named as a stack's.
fn sweep_revisions(c: &Clients) -> BoxFuture<'_, Result<Vec<Sighting>, StackError>> {
    Box::pin(async move {
        let mut sightings = vec![];
        for status in [TaskDefinitionStatus::Active, TaskDefinitionStatus::Inactive] {
            let arns = c.ecs.list_task_definitions().status(status.clone()).into_paginator().send().try_collect().await;
            let arns = arns.ctx("list", "task definitions")?;
            for arn in arns.iter().flat_map(|page| page.task_definition_arns()) {
                let Some(stack) = family_of(arn).and_then(|f| made_for(f, family)) else { continue };
                let out =
                    c.ecs.describe_task_definition().task_definition(arn).include(TaskDefinitionField::Tags).send();
                let out = out.await.ctx("describe task definition", arn)?;
                let state = out.task_definition().and_then(|d| d.status()).map(|s| s.as_str().to_string());
                if state.as_deref() == Some("DELETE_IN_PROGRESS") {
                    continue;
                }
                let sighting = Sighting::new(TASK_DEFINITION.kind(), format!("{arn} ({})", state.unwrap_or_default()))
                    .named(revision(arn), |_| Some(stack.clone()))
                    .owned(owner_tags(out.tags().pairs()))
                    .active(status == TaskDefinitionStatus::Active);
                sightings.push(sighting);
            }
        }
        Ok(sightings)
    })
}

/// The ownership check of a revision, by its tags.
fn owned(ctx: &Scope<'_>, what: &str, tags: &[aws_sdk_ecs::types::Tag]) -> Result<(), StackError> {
    ctx.owned(TASK_DEFINITION, format!("{} {what}", TASK_DEFINITION.kind()), tags.pairs())
}

#[async_trait]
impl Managed for TaskDefinition {
    type Live = Definition;
    type Field = DefinitionField;

    async fn tags(&self, ctx: &Scope<'_>, live: &Definition) -> Result<Option<Vec<(String, String)>>, StackError> {
        let arn = live.task_definition_arn().unwrap_or_default();
        if let Some(seen) = ctx.run::<Seen>().get(arn) {
            return Ok(Some(seen));
        }
        Ok(describe_definition(ctx, arn).await?.and_then(|(_, tags)| ecs_pairs(&tags)))
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &Definition,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        ecs_retag(ctx, live.task_definition_arn().unwrap_or_default(), put, remove).await
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_revisions)
    }

    fn permissions(&self) -> Vec<Permission> {
        definition_permissions(Verb::Create)
            .into_iter()
            .chain(definition_permissions(Verb::Update))
            .chain([
                Permission::find("ecs:DescribeTaskDefinition"),
                Permission::delete("ecs:ListTaskDefinitions"),
                Permission::delete("ecs:DeregisterTaskDefinition"),
                Permission::delete("ecs:DeleteTaskDefinitions")
                    .on(arn("ecs", &format!("task-definition/{}:*", family(STACK)))),
            ])
            .collect()
    }

    fn billing(&self, _config: &Config) -> Vec<Charge> {
        vec![]
    }

    fn key(&self) -> Key {
        TASK_DEFINITION
    }

    fn needs(&self) -> Vec<Dep> {
        vec![EXECUTION_ROLE.into(), TASK_ROLE.into(), LOG_GROUP.into(), TABLE.into()]
    }

    /// The recorded revision, else the family's latest (left by an interrupted run).
    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<Definition>, StackError> {
        // The secrets' ARNs are compared once they are known.
        secrets::lookup(ctx).await?;
        let family = ctx.attr(FAMILY).unwrap_or_else(|| family(ctx.stack()));
        for candidate in ctx.id(TASK_DEFINITION).into_iter().chain([family]) {
            if let Some((def, tags)) = describe_definition(ctx, &candidate).await? {
                if def.status() == Some(&TaskDefinitionStatus::Active) {
                    owned(ctx, &candidate, &tags)?;
                    ctx.run::<Seen>().note(def.task_definition_arn().unwrap_or_default(), tags.pairs());
                    return Ok(Some(def));
                }
            }
        }
        Ok(None)
    }

    fn record(&self, ctx: &Scope<'_>, live: &Definition) -> Record {
        Record::id(live.task_definition_arn().unwrap_or_default())
            .with(FAMILY, live.family().map_or_else(|| family(ctx.stack()), str::to_string))
            .with(IMAGE, Spec::of(live).image)
    }

    fn diff(&self, ctx: &Scope<'_>, live: &Definition) -> Result<Vec<Changed<DefinitionField>>, StackError> {
        Ok(Spec::of(live).diff(&Spec::wanted(ctx)?))
    }

    async fn create(&self, ctx: &Scope<'_>, _line: &Line) -> Result<Definition, StackError> {
        register(ctx).await
    }

    /// A task definition revision never changes: a new one is registered.
    async fn update(
        &self,
        ctx: &Scope<'_>,
        line: &Line,
        _live: &Definition,
        _changes: &[Changed<DefinitionField>],
    ) -> Result<Option<Definition>, StackError> {
        line.start("registering");
        Ok(Some(register(ctx).await?))
    }

    /// `up` applied the task definition: remember the config's image it applied, and forget a
    /// deployed image the config's change replaced (see `task_definition::image`).
    async fn ready(&self, ctx: &Scope<'_>, _line: &Line, _live: &Definition) -> Result<(), StackError> {
        let choice = image::wanted(ctx);
        let deployed = match choice.source {
            Source::Deploy => choice.deployed_image,
            Source::Config => None,
        };
        ctx.set_attrs(&[(image::CONFIG_IMAGE, Some(choice.config_image)), (image::DEPLOYED_IMAGE, deployed)]).await?;
        Ok(())
    }

    /// Deregister every active revision of the family, then delete them all.
    async fn destroy(&self, ctx: &Scope<'_>, line: &Line, live: Definition) -> Result<Outcome, StackError> {
        let family = live.family().map_or_else(|| family(ctx.stack()), str::to_string);
        let active = revisions(ctx, &family, TaskDefinitionStatus::Active).await?;
        for arn in &active {
            line.start("deregistering");
            ctx.aws.ecs.deregister_task_definition().task_definition(arn).send().await.ctx("deregister", arn)?;
        }
        let inactive = revisions(ctx, &family, TaskDefinitionStatus::Inactive).await?;
        delete_revisions(ctx, &family, active.into_iter().chain(inactive).collect()).await?;
        Ok(Outcome::Deleted)
    }

    /// No active revision is left, but a `down` killed between deregistering and deleting
    /// leaves INACTIVE revisions, which AWS keeps (and lists) until they are deleted.
    async fn settle_gone(&self, ctx: &Scope<'_>, line: &Line) -> Result<(), StackError> {
        let family = ctx.attr(FAMILY).unwrap_or_else(|| family(ctx.stack()));
        let recorded = ctx.id(TASK_DEFINITION);
        let mut ours = vec![];
        for arn in revisions(ctx, &family, TaskDefinitionStatus::Inactive).await? {
            // A recorded revision was checked when it was recorded; any other one is checked now.
            if recorded.as_deref() != Some(arn.as_str()) {
                let Some((_, tags)) = describe_definition(ctx, &arn).await? else { continue };
                if let Err(e) = owned(ctx, &arn, &tags) {
                    ctx.warn(e.to_string());
                    continue;
                }
            }
            ours.push(arn);
        }
        if !ours.is_empty() {
            line.start("deleting inactive revisions");
        }
        delete_revisions(ctx, &family, ours).await
    }
}

/// The revisions of exactly this family (`family_prefix` also matches longer families).
async fn revisions(ctx: &Scope<'_>, family: &str, status: TaskDefinitionStatus) -> Result<Vec<String>, StackError> {
    let mut pages = ctx.aws.ecs.list_task_definitions().family_prefix(family).status(status).into_paginator().send();
    let mut arns = vec![];
    while let Some(page) = pages.next().await {
        let page = page.ctx("list the task definitions of", family)?;
        arns.extend(page.task_definition_arns().iter().filter(|arn| family_of(arn) == Some(family)).cloned());
    }
    Ok(arns)
}

/// Deregistered revisions stay listed until deleted; AWS takes ten per call.
async fn delete_revisions(ctx: &Scope<'_>, family: &str, arns: Vec<String>) -> Result<(), StackError> {
    for chunk in arns.chunks(10) {
        ctx.aws
            .ecs
            .delete_task_definitions()
            .set_task_definitions(Some(chunk.to_vec()))
            .send()
            .await
            .ctx("delete the task definitions of", family)?;
    }
    Ok(())
}

/// `arn:...:task-definition/<family>:<revision>` -> family.
fn family_of(arn: &str) -> Option<&str> {
    arn.rsplit_once('/').and_then(|(_, rev)| rev.rsplit_once(':')).map(|(family, _)| family)
}

/// The container's awslogs configuration, to `log_group`. Non-blocking by default: a slow or
/// throttled log stream drops lines instead of stopping the app.
fn log_configuration(ctx: &Scope<'_>, log_group: &str) -> LogConfiguration {
    let (mode, buffer) = log_mode_options(ctx.config);
    let mut logs = LogConfiguration::builder()
        .log_driver(LogDriver::Awslogs)
        .options("awslogs-group", log_group)
        .options("awslogs-region", ctx.region)
        .options("awslogs-stream-prefix", ctx.stack())
        .options("mode", mode);
    if let Some(size) = buffer {
        logs = logs.options("max-buffer-size", size);
    }
    logs.build().expect("log driver is set")
}

async fn register(ctx: &Scope<'_>) -> Result<Definition, StackError> {
    let want = Spec::wanted(ctx)?;
    let table = ctx.need(TABLE)?;
    let environment = ctx
        .config
        .container_environment(&table)
        .into_iter()
        .map(|(name, value)| KeyValuePair::builder().name(name).value(value).build())
        .collect();
    // By reference: ECS reads each value when a task starts; the revision holds only the ARN.
    let secrets = secrets::looked_up(ctx, "the task definition")?
        .container_secrets()
        .into_iter()
        .map(|(name, value_from)| Secret::builder().name(name).value_from(value_from).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StackError::Failed { resource: family(ctx.stack()), message: e.to_string() })?;
    let logs = log_configuration(ctx, &want.log_group);
    // A read-only root filesystem (Security Hub ECS.5), with an empty volume of the task's storage
    // at each path the image must write to (Fargate has no tmpfs).
    let service = &ctx.config.service;
    let writable: &[String] = if service.readonly_root_filesystem { &service.writable_paths } else { &[] };
    let volumes: Vec<Volume> = (0..writable.len()).map(|i| Volume::builder().name(scratch_volume(i)).build()).collect();
    let mounts = writable.iter().enumerate().map(|(i, path)| {
        MountPoint::builder().source_volume(scratch_volume(i)).container_path(path).read_only(false).build()
    });
    let container = ContainerDefinition::builder()
        .name(CONTAINER_NAME)
        .readonly_root_filesystem(service.readonly_root_filesystem)
        .set_mount_points(Some(mounts.collect()))
        .set_user(service.user.clone())
        .image(&want.image)
        .essential(true)
        .set_port_mappings(Some(port_mappings(ctx.config)))
        .set_command(service.command.clone())
        .set_entry_point(service.entrypoint.clone())
        .set_health_check(health_check(ctx.config))
        .set_stop_timeout(service.stop_timeout.map(|s| s as i32))
        .set_environment(Some(environment))
        .set_secrets(Some(secrets))
        .log_configuration(logs)
        .build();
    let family = family(ctx.stack());
    let out = ctx
        .aws
        .ecs
        .register_task_definition()
        .family(&family)
        .requires_compatibilities(Compatibility::Fargate)
        .network_mode(NetworkMode::Awsvpc)
        .cpu(&want.cpu)
        .memory(&want.memory)
        .runtime_platform(
            RuntimePlatform::builder()
                .cpu_architecture(aws_sdk_ecs::types::CpuArchitecture::from(want.architecture.as_str()))
                .operating_system_family(OsFamily::Linux)
                .build(),
        )
        .execution_role_arn(&want.execution_role)
        .task_role_arn(&want.task_role)
        .container_definitions(container)
        .set_volumes(Some(volumes))
        .set_tags(Some(ctx.sdk_tags(&family)))
        .send()
        .await
        .ctx("register task definition", &family)?;
    returned(out.task_definition().cloned(), family, "register returned nothing")
}

/// The image of the app container of a task definition.
pub fn image_of(def: &Definition) -> String {
    Spec::of(def).image
}

/// A task definition revision, if ECS still has it (ACTIVE or INACTIVE).
pub async fn definition(ctx: &Scope<'_>, arn: &str) -> Result<Option<Definition>, StackError> {
    Ok(describe_definition(ctx, arn).await?.map(|(def, _)| def))
}

/// Register a revision equal to `base` but for the app container's image: what `deploy` ships.
async fn register_with_image(ctx: &Scope<'_>, base: &Definition, image: &str) -> Result<Definition, StackError> {
    let family = base.family().map_or_else(|| family(ctx.stack()), str::to_string);
    let containers: Vec<ContainerDefinition> = base
        .container_definitions()
        .iter()
        .map(|c| {
            if c.name() == Some(CONTAINER_NAME) {
                let mut c = c.clone();
                c.image = Some(image.to_string());
                c
            } else {
                c.clone()
            }
        })
        .collect();
    if !base.container_definitions().iter().any(|c| c.name() == Some(CONTAINER_NAME)) {
        return Err(StackError::Failed {
            resource: family,
            message: format!("has no container named {CONTAINER_NAME:?} to give the image"),
        });
    }
    let out = ctx
        .aws
        .ecs
        .register_task_definition()
        .family(&family)
        .set_requires_compatibilities(Some(base.requires_compatibilities().to_vec()))
        .set_network_mode(base.network_mode().cloned())
        .set_cpu(base.cpu().map(str::to_string))
        .set_memory(base.memory().map(str::to_string))
        .set_execution_role_arn(base.execution_role_arn().map(str::to_string))
        .set_task_role_arn(base.task_role_arn().map(str::to_string))
        .set_container_definitions(Some(containers))
        .set_volumes(Some(base.volumes().to_vec()))
        .set_placement_constraints(Some(base.placement_constraints().to_vec()))
        .set_runtime_platform(base.runtime_platform().cloned())
        .set_ephemeral_storage(base.ephemeral_storage().cloned())
        .set_tags(Some(ctx.sdk_tags(&family)))
        .send()
        .await
        .ctx("register task definition", &family)?;
    returned(out.task_definition().cloned(), family, "register returned nothing")
}

/// `deploy`'s first step after the execution role: a revision equal to the recorded one (`base`)
/// but for the image, recorded at once. For `rollback`, whose revision exists, nothing.
pub struct Deploy {
    pub base: Definition,
    /// The image to register; `None` for a rollback.
    pub image: Option<String>,
}

#[async_trait]
impl Step for Deploy {
    fn permissions(&self) -> Vec<Permission> {
        definition_permissions(Verb::Update)
    }
    fn key(&self) -> Key {
        TASK_DEFINITION
    }

    fn declared(&self) -> Declared {
        Declared { needs: vec![EXECUTION_ROLE.into()], ..Declared::default() }
    }

    async fn run(&self, ctx: &Scope<'_>, line: &Line) -> Result<Outcome, StackError> {
        let Some(image) = &self.image else { return Ok(Outcome::Updated) };
        if *image == image_of(&self.base) {
            return Ok(Outcome::Unchanged);
        }
        line.start("registering");
        let def = register_with_image(ctx, &self.base, image).await?;
        let family = def.family().unwrap_or_default().to_string();
        let record =
            Record::id(def.task_definition_arn().unwrap_or_default()).with(FAMILY, family).with(IMAGE, image.clone());
        ctx.record(&record).await?;
        Ok(Outcome::Created)
    }
}

/// The task definition attribute listing, oldest first, the revisions whose rollout completed
/// (space-separated ARNs): what `rollback` goes back to.
pub const COMPLETED_REVISIONS: Attr = Attr::new(TASK_DEFINITION, "completed_revisions");

/// How many completed revisions the state remembers.
const HISTORY: usize = 20;

pub fn completed_revisions(ctx: &Scope<'_>) -> Vec<String> {
    ctx.attr(COMPLETED_REVISIONS).map(|v| v.split_whitespace().map(str::to_string).collect()).unwrap_or_default()
}

/// `history` with `arn` last (once), at most [`HISTORY`] long, as the attribute's value.
pub fn with_completed(mut history: Vec<String>, arn: &str) -> String {
    if history.last().map(String::as_str) != Some(arn) {
        history.push(arn.to_string());
    }
    let skip = history.len().saturating_sub(HISTORY);
    history[skip..].join(" ")
}

/// A rollout of `arn` completed: remember it for `rollback`.
pub async fn note_completed(ctx: &Scope<'_>, arn: &str) -> Result<(), StateError> {
    let value = with_completed(completed_revisions(ctx), arn);
    ctx.set_attr(COMPLETED_REVISIONS, &value).await
}

/// `arn:...:task-definition/app-server:7` -> `app-server:7`.
pub fn revision(arn: &str) -> &str {
    arn.rsplit_once('/').map_or(arn, |(_, r)| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_definition_changes_read_old_to_new() {
        let have = Spec {
            image: "nginx:latest".into(),
            cpu: "256".into(),
            memory: "512".into(),
            port: "80".into(),
            environment: "{A=1}".into(),
            secrets: "{}".into(),
            execution_role: "r1".into(),
            task_role: "r2".into(),
            log_group: "/ecs/s".into(),
            log_mode: show_log_mode(None, None),
            filesystem: show_filesystem(false, &[]),
            user: show_user(None),
            architecture: "X86_64".into(),
            command: show_words(None),
            entrypoint: show_words(None),
            health_check: show_health_check(None),
            stop_timeout: show_stop_timeout(None),
            additional_ports: show_ports([].into_iter()),
        };
        let want = Spec {
            image: "nginx:1.27".into(),
            environment: "{A=2}".into(),
            log_mode: show_log_mode(Some("non-blocking"), Some("25m")),
            architecture: "ARM64".into(),
            command: show_words(Some(&["nginx".into(), "-g".into(), "daemon off;".into()])),
            health_check: show_health_check(Some((&["CMD-SHELL".into(), "exit 0".into()], 10, 5, 3, 0))),
            stop_timeout: show_stop_timeout(Some(10)),
            additional_ports: show_ports([9090].into_iter()),
            ..have.clone()
        };
        let text: Vec<String> = have.diff(&want).iter().map(|c| c.change.to_string()).collect();
        assert_eq!(
            text,
            [
                "service.image: nginx:latest → nginx:1.27",
                "service.environment: {A=1} → {A=2}",
                "logs.mode: blocking → non-blocking (25m)",
                "service.cpu_architecture: X86_64 → ARM64",
                "service.command: the image's → [\"nginx\", \"-g\", \"daemon off;\"]",
                "service.health_check: none → CMD-SHELL exit 0 (every 10 s, timeout 5 s, 3 retries, start period 0 s)",
                "service.stop_timeout: 30 (ECS's default) → 10",
                "service.additional_ports: none → 9090"
            ]
        );
        assert!(have.diff(&have.clone()).is_empty());
    }

    #[test]
    fn families_and_revisions_are_read_from_arns() {
        let arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/app-server:7";
        assert_eq!(family_of(arn), Some("app-server"));
        assert_eq!(revision(arn), "app-server:7");
        assert_eq!(family_of("arn:aws:ecs:us-east-1:1:task-definition/app-server-x:1"), Some("app-server-x"));
    }
}
