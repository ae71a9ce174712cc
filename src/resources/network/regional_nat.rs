//! EC2's regional NAT gateway (`network.nat = "regional"`): one NAT gateway for the whole VPC,
//! made with `availability_mode = regional` and the VPC's ID (no subnet: it needs no public
//! subnet), serving every AZ of the stack. One private route table routes every private subnet
//! to it.
//!
//! Its addresses: in "manual" mode, one Elastic IP of the stack's per AZ
//! (`AvailabilityZoneAddress`), rather than AWS's "automatic" mode (addresses AWS allocates as
//! workloads appear in an AZ). Manual is what a team that allowlists its egress addresses at a
//! partner needs: the addresses exist, are tagged and are printed before the gateway does, they
//! are the stack's to keep or release, and the gateway serves every AZ from its creation instead
//! of expanding into an AZ when a task first lands there (AWS: minutes, cross-AZ meanwhile).
//! Manual mode does not expand to other AZs, which the stack does not use.
//!
//! The VPC needs an attached internet gateway (AWS routes the NAT's own table to it).

use async_trait::async_trait;
use aws_sdk_ec2::types::{AvailabilityMode, AvailabilityZoneAddress, NatGateway as Nat, NatGatewayState};

use super::{
    availability_zones, delete_nats, find_nat, nat_permissions, nat_state, send_create, sweep_nat_gateways,
    wait_available, INTERNET_GATEWAY, VPC,
};
use crate::access::Permission;
use crate::bill::{Charge, Quantity, Unit};
use crate::config::Config;
use crate::error::StackError;
use crate::model::{Dep, Indexed, Key, Kind, Managed, NoField, Outcome, Record, Scope, Sweep};
use crate::progress::Line;
use crate::resources::ec2::{self, Ec2Object};

pub const REGIONAL_NAT_GATEWAY: Key = Key::new("nat-gateway-regional", Kind::new("ec2:nat-gateway"));
/// The regional NAT gateway's Elastic IP in AZ `i + 1`.
pub const REGIONAL_ELASTIC_IP: Indexed = Indexed::new("elastic-ip-regional-", Kind::new("ec2:elastic-ip"));

/// One hour of the regional NAT gateway in one AZ it serves (see config/prices.toml for the basis).
pub const REGIONAL_NAT_AZ_HOUR: &str = "ec2:regional-nat-gateway-az-hour";
/// One GB the regional NAT gateway processes.
pub const REGIONAL_NAT_DATA: &str = "ec2:regional-nat-gateway-data";

/// The regional NAT gateway, with its `addresses` (one Elastic IP per AZ).
pub struct RegionalNatGateway {
    pub addresses: u8,
}

/// The public addresses the gateway holds, as `status` shows them.
fn public_ips(nat: &Nat) -> String {
    let ips: Vec<&str> = nat.nat_gateway_addresses().iter().filter_map(|a| a.public_ip()).collect();
    ips.join(", ")
}

#[async_trait]
impl Managed for RegionalNatGateway {
    type Live = Nat;
    type Field = NoField;

    async fn tags(&self, _ctx: &Scope<'_>, live: &Nat) -> Result<Option<Vec<(String, String)>>, StackError> {
        Ok(ec2::tags_of(live))
    }

    async fn retag(
        &self,
        ctx: &Scope<'_>,
        live: &Nat,
        put: &[(String, String)],
        remove: &[String],
    ) -> Result<(), StackError> {
        ec2::retag(ctx, live, put, remove).await
    }

    fn sweep(&self) -> Sweep {
        Sweep::Listed(sweep_nat_gateways)
    }

    /// Made in the VPC (no subnet) with the stack's addresses.
    fn permissions(&self) -> Vec<Permission> {
        nat_permissions("vpc/*")
    }

    /// Billed per AZ it serves (the stack's `az_count`), and per GB it processes.
    fn billing(&self, config: &Config) -> Vec<Charge> {
        let azs = f64::from(config.network.az_count);
        let what = format!("regional NAT gateway ({} AZs)", config.network.az_count);
        vec![
            Charge::running(REGIONAL_NAT_AZ_HOUR, Unit::Hour, Quantity::fixed(azs), what),
            Charge::usage(REGIONAL_NAT_DATA, Unit::Gb, "data processed by the regional NAT gateway"),
        ]
    }

    fn key(&self) -> Key {
        REGIONAL_NAT_GATEWAY
    }

    /// AWS routes the gateway's own table to the internet gateway: without one attached, it fails.
    fn needs(&self) -> Vec<Dep> {
        let mut needs = vec![VPC.into(), INTERNET_GATEWAY.into()];
        needs.extend((0..self.addresses).map(|i| Dep::from(REGIONAL_ELASTIC_IP.at(i))));
        needs
    }

    async fn find(&self, ctx: &Scope<'_>) -> Result<Option<Nat>, StackError> {
        find_nat(ctx, REGIONAL_NAT_GATEWAY).await
    }

    fn record(&self, _ctx: &Scope<'_>, live: &Nat) -> Record {
        Record::id(live.object_id()).with_fact("public_ips", public_ips(live))
    }

    fn pending(&self, _ctx: &Scope<'_>, live: &Nat) -> Option<String> {
        (live.state() != Some(&NatGatewayState::Available)).then(|| nat_state(live).to_string())
    }

    async fn create(&self, ctx: &Scope<'_>, _line: &Line) -> Result<Nat, StackError> {
        let key = REGIONAL_NAT_GATEWAY;
        let vpc = ctx.need(VPC)?;
        let zones = availability_zones(ctx).await?;
        let mut call = ctx.aws.ec2.create_nat_gateway().availability_mode(AvailabilityMode::Regional).vpc_id(&vpc);
        for (i, zone) in zones.iter().enumerate().take(self.addresses as usize) {
            let allocation = ctx.need(REGIONAL_ELASTIC_IP.at(i as u8))?;
            let address = AvailabilityZoneAddress::builder().availability_zone(zone).allocation_ids(allocation);
            call = call.availability_zone_addresses(address.build());
        }
        send_create(ctx, key, call, "nat-regional").await
    }

    /// The private route table points at it only once it is available (else the pulls black-hole).
    async fn ready(&self, ctx: &Scope<'_>, line: &Line, live: &Nat) -> Result<(), StackError> {
        wait_available(ctx, line, live.object_id()).await
    }

    /// Deletes it (and any earlier failed one) and waits until it is gone: its addresses and the
    /// internet gateway wait for that.
    async fn destroy(&self, ctx: &Scope<'_>, line: &Line, live: Nat) -> Result<Outcome, StackError> {
        delete_nats(ctx, line, REGIONAL_NAT_GATEWAY, live).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_TOML;
    use crate::model::{Nodes, Shape};
    use crate::resources::network::{network, ELASTIC_IP, NAT_GATEWAY, PRIVATE_ROUTE_TABLE};

    fn regional() -> Config {
        Config::parse("t", &DEFAULT_TOML.replace("nat = \"single\"", "nat = \"regional\"")).unwrap()
    }

    #[test]
    fn a_regional_stack_has_one_gateway_an_address_per_az_and_one_private_table() {
        let mut nodes = Nodes::default();
        network(&Shape::of(&regional()), &mut nodes);
        let keys: Vec<Key> = nodes.list.iter().map(|n| n.key()).collect();
        assert!(keys.contains(&REGIONAL_NAT_GATEWAY));
        assert!(keys.contains(&REGIONAL_ELASTIC_IP.at(0)) && keys.contains(&REGIONAL_ELASTIC_IP.at(1)), "{keys:?}");
        assert!(keys.contains(&PRIVATE_ROUTE_TABLE.at(0)) && !keys.contains(&PRIVATE_ROUTE_TABLE.at(1)), "{keys:?}");
        assert!(!keys.iter().any(|k| NAT_GATEWAY.contains(*k) || ELASTIC_IP.contains(*k)), "no zonal NAT: {keys:?}");
        let bill = RegionalNatGateway { addresses: 2 }.billing(&regional());
        assert_eq!((bill[0].item, bill[0].quantity), (REGIONAL_NAT_AZ_HOUR, Some(Quantity::fixed(2.0))));
        assert_eq!((bill[1].item, bill[1].quantity), (REGIONAL_NAT_DATA, None));
    }
}
