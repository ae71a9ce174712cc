//! `[network]`: the VPC's CIDR, its zones and NAT gateways, and the subnet layout they give.

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
    #[serde(default = "defaults::nat_gateways")]
    pub nat_gateways: u8,
    /// What the tasks may reach: `restricted` (HTTPS and the VPC's DNS) or `open` (everything).
    #[serde(default)]
    pub task_egress: TaskEgress,
    /// S3 and DynamoDB gateway endpoints on the private route tables (free; off the NAT).
    #[serde(default = "defaults::gateway_endpoints")]
    pub gateway_endpoints: bool,
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
    pub fn nat_gateways() -> u8 {
        1
    }
    pub fn gateway_endpoints() -> bool {
        true
    }
}

impl Config {
    /// `[network]`: the CIDR, zones and NAT gateways.
    pub(super) fn validate_network(&self, invalid: &Invalid) -> Result<(), ConfigError> {
        let net = &self.network;
        if net.az_count < 2 || net.az_count > MAX_AZS {
            return Err(invalid(
                "network.az_count",
                net.az_count.to_string(),
                "must be between 2 and 6 (an ALB needs subnets in at least 2 AZs)".into(),
            ));
        }
        if net.nat_gateways < 1 || net.nat_gateways > net.az_count {
            return Err(invalid(
                "network.nat_gateways",
                net.nat_gateways.to_string(),
                format!("must be between 1 and network.az_count ({})", net.az_count),
            ));
        }
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
