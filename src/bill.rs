//! What a resource bills each month, as basis rather than money: hourly items with their quantity,
//! Fargate vCPU and memory hours per task, and usage-based items with their unit (named, not
//! guessed). A price table keyed by [`Charge::item`] turns the basis into money; the quantities
//! follow from the config.

use serde::{Deserialize, Serialize};

mod estimate;
pub mod live;

pub use estimate::{BilledLine, Cost, PriceError, Prices};

/// What one unit of an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// One of it for an hour (a NAT gateway, a load balancer, a public IPv4 address).
    Hour,
    /// One vCPU for an hour.
    VcpuHour,
    /// One GB of memory for an hour.
    GbHour,
    /// One GB processed (NAT data) or ingested (logs).
    Gb,
    /// One GB stored for a month.
    GbMonth,
    /// One load balancer capacity unit for an hour.
    LcuHour,
    /// A million requests (DynamoDB on-demand reads or writes).
    MillionRequests,
    /// One of it for a month (a CloudWatch alarm).
    Month,
}

/// How many units a month's hours (or months) bill, when it follows from the config: the range
/// of the running count (autoscaling runs between `min` and `max`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quantity {
    pub min: f64,
    pub max: f64,
}

impl Quantity {
    pub fn fixed(n: f64) -> Quantity {
        Quantity { min: n, max: n }
    }
}

/// One billed item of a resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Charge {
    /// The price table's key: `service:item[:variant]`, stable across releases.
    pub item: &'static str,
    pub unit: Unit,
    /// `None`: usage-based (traffic, data), named with its unit but not guessed.
    pub quantity: Option<Quantity>,
    /// What it is, as the bill shows it.
    pub what: String,
}

impl Charge {
    /// An item billed for `quantity` units of `unit` per hour (or month) the stack runs.
    pub fn running(item: &'static str, unit: Unit, quantity: Quantity, what: impl Into<String>) -> Charge {
        Charge { item, unit, quantity: Some(quantity), what: what.into() }
    }

    /// An item billed by use.
    pub fn usage(item: &'static str, unit: Unit, what: impl Into<String>) -> Charge {
        Charge { item, unit, quantity: None, what: what.into() }
    }
}

/// Price table keys billed by more than one family (or kept here since the first families). A family
/// whose item is its own declares the key in its module; either way the price table must price it in
/// every region it lists, which `declarations.rs` checks over every node any stack can have.
pub mod items {
    pub const NAT_GATEWAY_HOUR: &str = "ec2:nat-gateway-hour";
    pub const NAT_GATEWAY_DATA: &str = "ec2:nat-gateway-data";
    pub const PUBLIC_IPV4_HOUR: &str = "ec2:public-ipv4-hour";
    pub const ALB_HOUR: &str = "elb:application-load-balancer-hour";
    pub const ALB_LCU: &str = "elb:application-load-balancer-lcu";
    pub const FARGATE_VCPU_X86: &str = "fargate:vcpu-hour:x86_64";
    pub const FARGATE_MEMORY_X86: &str = "fargate:gb-hour:x86_64";
    pub const LOGS_INGESTION: &str = "logs:ingestion";
    pub const LOGS_STORAGE: &str = "logs:storage";
    /// Flow logs delivered to CloudWatch Logs: "vended logs", priced below the containers' logs.
    pub const FLOW_LOGS_INGESTION: &str = "logs:vended-ingestion";
    pub const DYNAMODB_WRITES: &str = "dynamodb:on-demand-writes";
    pub const DYNAMODB_READS: &str = "dynamodb:on-demand-reads";
    pub const DYNAMODB_STORAGE: &str = "dynamodb:storage";
    pub const DYNAMODB_BACKUP: &str = "dynamodb:backup-storage";
    pub const DYNAMODB_RECOVERY: &str = "dynamodb:point-in-time-recovery";
    pub const CLOUDWATCH_ALARM: &str = "cloudwatch:alarm-month";
    pub const CONTAINER_INSIGHTS: &str = "cloudwatch:container-insights-metric-month";
    pub const ROUTE53_QUERIES: &str = "route53:queries";
    pub const S3_STORAGE: &str = "s3:standard-storage";
    pub const FARGATE_VCPU_ARM64: &str = "fargate:vcpu-hour:arm64";
    pub const FARGATE_MEMORY_ARM64: &str = "fargate:gb-hour:arm64";
}
