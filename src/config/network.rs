//! `[network]`: the VPC's CIDR, its zones, how the tasks reach out (`nat`), and the subnet layout
//! they give.

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, Invalid};

/// Most AZs a stack spans.
pub const MAX_AZS: u8 = 6;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    pub cidr: Ipv4Net,
    #[serde(default = "defaults::az_count")]
    pub az_count: u8,
    /// How the tasks reach the internet; see [`NatMode`]. Unset: `single` (or what the deprecated
    /// `nat_gateways` says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat: Option<NatMode>,
    /// Deprecated (one release): 1 is `nat = "single"`, `az_count` is `nat = "per_az"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat_gateways: Option<u8>,
    /// What the tasks may reach: `restricted` (HTTPS and the VPC's DNS) or `open` (everything).
    #[serde(default)]
    pub task_egress: TaskEgress,
    /// S3 and DynamoDB gateway endpoints on the private route tables (free; off the NAT).
    #[serde(default = "defaults::gateway_endpoints")]
    pub gateway_endpoints: bool,
}

/// How the tasks reach the internet (image pulls, AWS APIs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NatMode {
    /// A NAT gateway (and its Elastic IP) in every AZ: an AZ's outage leaves the others' egress.
    PerAz,
    /// One NAT gateway for every private subnet.
    #[default]
    Single,
    /// EC2's regional NAT gateway (`availability_mode = regional`): one gateway for the VPC, in
    /// every AZ, with an Elastic IP of the stack's in each; one private route table for all AZs.
    Regional,
    /// No NAT gateway: the tasks run in the public subnets with a public IPv4 address each.
    None,
}

impl NatMode {
    pub fn as_str(self) -> &'static str {
        match self {
            NatMode::PerAz => "per_az",
            NatMode::Single => "single",
            NatMode::Regional => "regional",
            NatMode::None => "none",
        }
    }
}

impl std::fmt::Display for NatMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The tasks' security group egress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskEgress {
    /// TCP 443 anywhere (image pulls and AWS APIs through the NAT) and DNS (53 TCP/UDP) to the
    /// VPC's resolver: what the default service needs, and no more.
    #[default]
    Restricted,
    /// All traffic anywhere: for a service that calls other ports (a database on 5432, SMTP ...).
    Open,
}

/// The subnet layout derived from the VPC CIDR: `az_count` public /24s, then as many private ones.
#[derive(Debug, Clone, PartialEq)]
pub struct SubnetPlan {
    pub public: Vec<Ipv4Net>,
    pub private: Vec<Ipv4Net>,
}

mod defaults {
    pub fn az_count() -> u8 {
        2
    }
    pub fn gateway_endpoints() -> bool {
        true
    }
}

impl NetworkConfig {
    /// The NAT mode: `nat`, else what the deprecated `nat_gateways` stands for, else `single`.
    pub fn nat(&self) -> NatMode {
        match (self.nat, self.nat_gateways) {
            (Some(mode), _) => mode,
            (None, Some(n)) if n > 1 && n == self.az_count => NatMode::PerAz,
            (None, _) => NatMode::Single,
        }
    }

    /// How many NAT gateways (each with its Elastic IP and private route table) the mode has.
    pub fn nat_gateway_count(&self) -> u8 {
        match self.nat() {
            NatMode::PerAz => self.az_count,
            NatMode::Single => 1,
            NatMode::Regional | NatMode::None => 0,
        }
    }

    /// How many private route tables the mode routes the private subnets through: one per NAT
    /// gateway (`per_az`, `single`), one for every AZ (`regional`), none (`none`).
    pub fn private_route_tables(&self) -> u8 {
        match self.nat() {
            NatMode::PerAz => self.az_count,
            NatMode::Single | NatMode::Regional => 1,
            NatMode::None => 0,
        }
    }

    /// Whether the tasks run in private subnets behind NAT (else in the public ones, with public IPs).
    pub fn private_tasks(&self) -> bool {
        self.nat() != NatMode::None
    }

    /// The line a config still using `nat_gateways` gets: what to write instead.
    pub fn deprecation(&self) -> Option<String> {
        self.nat_gateways.map(|n| {
            format!(
                "network.nat_gateways is deprecated and will be removed in the next release: \
                 replace `nat_gateways = {n}` with `nat = \"{}\"`",
                self.nat()
            )
        })
    }

    /// `nat` and the deprecated `nat_gateways`: one of them, and a count that names a mode.
    fn validate_nat(&self, invalid: &Invalid) -> Result<(), ConfigError> {
        let azs = self.az_count;
        match (self.nat, self.nat_gateways) {
            (Some(mode), Some(n)) => Err(invalid(
                "network.nat",
                format!("\"{mode}\" with network.nat_gateways = {n}"),
                "set one of them: network.nat_gateways is deprecated; keep only network.nat".into(),
            )),
            (None, Some(n)) if n != 1 && n != azs => Err(invalid(
                "network.nat_gateways",
                n.to_string(),
                format!(
                    "has no network.nat mode (1 is \"single\", {azs} = network.az_count is \"per_az\"); \
                     replace network.nat_gateways with network.nat = \"single\" or \"per_az\""
                ),
            )),
            _ => Ok(()),
        }
    }
    pub fn gateway_endpoints() -> bool {
        true
    }
}

impl Config {
    /// `[network]`: the CIDR, zones and NAT mode.
    pub(super) fn validate_network(&self, invalid: &Invalid) -> Result<(), ConfigError> {
        let net = &self.network;
        if net.az_count < 2 || net.az_count > MAX_AZS {
            return Err(invalid(
                "network.az_count",
                net.az_count.to_string(),
                "must be between 2 and 6 (an ALB needs subnets in at least 2 AZs)".into(),
            ));
        }
        net.validate_nat(invalid)?;
        if net.cidr.network() != net.cidr.addr() {
            return Err(invalid(
                "network.cidr",
                format!("\"{}\"", net.cidr),
                format!("host bits are set; did you mean \"{}\"?", net.cidr.trunc()),
            ));
        }
        if !is_private(net.cidr) {
            return Err(invalid(
                "network.cidr",
                format!("\"{}\"", net.cidr),
                "must lie in a private range (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)".into(),
            ));
        }
        if net.cidr.prefix_len() < 16 || self.subnet_plan().is_none() {
            return Err(invalid(
                "network.cidr",
                format!("\"{}\"", net.cidr),
                format!(
                    "must be between /16 and a block that holds {} /24 subnets (a VPC may be /16 at most)",
                    2 * net.az_count as u32
                ),
            ));
        }
        Ok(())
    }

    /// The VPC's DNS resolver (Route 53 Resolver): the VPC's base address plus two.
    pub fn dns_resolver(&self) -> std::net::Ipv4Addr {
        std::net::Ipv4Addr::from(u32::from(self.network.cidr.network()) + 2)
    }

    /// Public /24s first, then private ones, carved from the start of the VPC CIDR.
    pub fn subnet_plan(&self) -> Option<SubnetPlan> {
        let n = self.network.az_count as usize;
        let blocks: Vec<Ipv4Net> = self.network.cidr.subnets(24).ok()?.take(2 * n).collect();
        if blocks.len() < 2 * n {
            return None;
        }
        Some(SubnetPlan { public: blocks[..n].to_vec(), private: blocks[n..].to_vec() })
    }
}

fn is_private(net: Ipv4Net) -> bool {
    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
        .iter()
        .map(|s| s.parse::<Ipv4Net>().expect("static CIDR"))
        .any(|range| range.contains(&net))
}
