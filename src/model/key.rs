//! Keys: what names a resource of the stack in the state file, on its progress line and in its
//! status row. They are data, declared by the module that owns the resource (`network::VPC`,
//! `network::PUBLIC_SUBNET.at(0)`); the core knows none of them. A key's name is part of it, so
//! there is no table to look it up in and nothing to be missing from.

use std::fmt;

use serde::{Serialize, Serializer};

/// Most availability zones (and so subnets, NAT gateways, private route tables) a stack spans.
pub const MAX_INDEXED: u8 = 6;

/// The AWS type of a resource, shown as `service:type` (`ec2:vpc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kind(&'static str);

impl Kind {
    /// A wait: a graph node with nothing to inspect or delete.
    pub const WAIT: Kind = Kind("wait");

    pub const fn new(label: &'static str) -> Kind {
        Kind(label)
    }

    pub fn label(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

/// One logical resource of the stack. Numbered keys count from 0 here and from 1 in their names
/// (`subnet-public-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    name: &'static str,
    index: Option<u8>,
    kind: Kind,
}

impl Key {
    pub const fn new(name: &'static str, kind: Kind) -> Key {
        Key { name, index: None, kind }
    }

    pub fn kind(self) -> Kind {
        self.kind
    }

    /// The index of a numbered key (0-based).
    pub fn index(self) -> Option<usize> {
        self.index.map(usize::from)
    }

    pub fn is_wait(self) -> bool {
        self.kind == Kind::WAIT
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "{}{}", self.name, u16::from(i) + 1),
            None => f.write_str(self.name),
        }
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An attribute a resource records in the state beside its ID, read by others through the name
/// its owning module exports (`load_balancer::DNS_NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub key: Key,
    pub name: &'static str,
}

impl Attr {
    pub const fn new(key: Key, name: &'static str) -> Attr {
        Attr { key, name }
    }
}

/// A family of numbered keys, one per AZ or NAT gateway: `subnet-public-1` to `subnet-public-6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Indexed {
    prefix: &'static str,
    kind: Kind,
}

impl Indexed {
    /// `prefix` ends with `-`: the number follows it.
    pub const fn new(prefix: &'static str, kind: Kind) -> Indexed {
        Indexed { prefix, kind }
    }

    /// The key numbered `i + 1`.
    pub fn at(self, i: u8) -> Key {
        debug_assert!(i < MAX_INDEXED, "{}{}: at most {MAX_INDEXED}", self.prefix, i + 1);
        Key { name: self.prefix, index: Some(i), kind: self.kind }
    }

    pub fn contains(self, key: Key) -> bool {
        key.name == self.prefix && key.index.is_some() && key.kind == self.kind
    }

    /// The family's key named `name` (`subnet-public-3`), if it is one.
    pub fn parse(self, name: &str) -> Option<Key> {
        let n: u8 = name.strip_prefix(self.prefix)?.parse().ok()?;
        ((1..=MAX_INDEXED).contains(&n) && name == format!("{}{n}", self.prefix)).then(|| self.at(n - 1))
    }

    pub fn kind(self) -> Kind {
        self.kind
    }

    /// Every key the family can have.
    pub fn all(self) -> impl Iterator<Item = Key> {
        (0..MAX_INDEXED).map(move |i| self.at(i))
    }
}

/// What a resource depends on, or what must be gone before it: one key, or every key of a numbered
/// family that the graph holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dep {
    /// This key, which the graph must hold.
    One(Key),
    /// This key, when the graph holds it.
    IfPresent(Key),
    /// Every key of the family the graph holds (none, if it holds none).
    Every(Indexed),
}

impl Dep {
    /// Does this dependency name `key`?
    pub fn covers(self, key: Key) -> bool {
        match self {
            Dep::One(k) | Dep::IfPresent(k) => k == key,
            Dep::Every(family) => family.contains(key),
        }
    }
}

impl From<Key> for Dep {
    fn from(key: Key) -> Dep {
        Dep::One(key)
    }
}

impl From<Indexed> for Dep {
    fn from(family: Indexed) -> Dep {
        Dep::Every(family)
    }
}

/// A teardown constraint, with the reason AWS gives: see [`after`] and [`before`].
#[derive(Debug, Clone, Copy)]
pub struct Edge {
    pub dep: Dep,
    pub why: &'static str,
}

/// `dep` must be gone before this resource is deleted, because `why`.
pub fn after(dep: impl Into<Dep>, why: &'static str) -> Edge {
    Edge { dep: dep.into(), why }
}

/// This resource must be gone before `dep` is deleted, because `why`: declared by what uses or
/// sits in `dep`, so that the used resource never names its users.
pub fn before(dep: impl Into<Dep>, why: &'static str) -> Edge {
    Edge { dep: dep.into(), why }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THING: Kind = Kind::new("svc:thing");
    const ONE: Key = Key::new("thing", THING);
    const MANY: Indexed = Indexed::new("thing-", THING);

    #[test]
    fn keys_show_their_names_and_numbered_ones_count_from_one() {
        assert_eq!(ONE.to_string(), "thing");
        assert_eq!(MANY.at(0).to_string(), "thing-1");
        assert_eq!(MANY.at(5).to_string(), "thing-6");
        assert_eq!(serde_json::to_string(&MANY.at(2)).unwrap(), "\"thing-3\"");
        assert_eq!(serde_json::to_string(&THING).unwrap(), "\"svc:thing\"");
        assert_eq!(MANY.at(1).index(), Some(1));
        assert_eq!(ONE.index(), None);
    }

    #[test]
    fn numbered_keys_parse_back_within_the_family_only() {
        for key in MANY.all() {
            assert_eq!(MANY.parse(&key.to_string()), Some(key));
            assert!(MANY.contains(key) && !MANY.contains(ONE));
        }
        for name in ["thing-0", "thing-7", "thing-01", "thing", "other-1", "thing-x"] {
            assert_eq!(MANY.parse(name), None, "{name}");
        }
    }

    #[test]
    fn a_dependency_covers_its_key_or_its_whole_family() {
        assert!(Dep::from(ONE).covers(ONE) && !Dep::from(ONE).covers(MANY.at(0)));
        assert!(Dep::from(MANY).covers(MANY.at(3)) && !Dep::from(MANY).covers(ONE));
        assert!(Dep::IfPresent(ONE).covers(ONE));
    }
}
