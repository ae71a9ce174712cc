//! Which resources a graph holds. The config decides, and beyond it: what a state records (the
//! config may have dropped a part that `down` must still delete), what a run found in AWS, or
//! everything a stack of this name could have (to find it with no state). Each resource module
//! reads the shape and declares its nodes; nothing here knows a particular resource.

use crate::config::Config;
use crate::model::{Indexed, Key, MAX_INDEXED};
use crate::state::State;

/// How far a graph reaches beyond what the config asks for.
#[derive(Debug, Clone, Copy)]
enum Reach<'a> {
    /// The config's resources only.
    Config,
    /// Also every resource the state records.
    Recorded(&'a State),
    /// Everything a stack of this name could have that can be found by tag or name.
    Discover,
    /// Everything any stack can have: the catalog of keys.
    Everything,
}

#[derive(Debug, Clone)]
pub struct Shape<'a> {
    config: &'a Config,
    reach: Reach<'a>,
    waits: bool,
    /// Keys found in AWS though not recorded: held like recorded ones.
    found: Vec<Key>,
    /// Also what AWS may have though nothing records it, to be looked for (see `Nodes::probe`).
    probing: bool,
}

impl<'a> Shape<'a> {
    /// What the config asks for.
    pub fn of(config: &'a Config) -> Shape<'a> {
        Shape { config, reach: Reach::Config, waits: false, found: vec![], probing: false }
    }

    /// What the config asks for and what `state` records beyond it.
    pub fn covering(config: &'a Config, state: &'a State) -> Shape<'a> {
        Shape { reach: Reach::Recorded(state), ..Shape::of(config) }
    }

    /// Every resource a stack of the config's name could have that can be looked for without a
    /// state.
    pub fn discovering(config: &'a Config) -> Shape<'a> {
        Shape { reach: Reach::Discover, ..Shape::of(config) }
    }

    /// Every resource any stack can have, waits included.
    pub fn everything(config: &'a Config) -> Shape<'a> {
        Shape { reach: Reach::Everything, waits: true, ..Shape::of(config) }
    }

    /// With the waits `up` ends with.
    pub fn with_waits(mut self, waits: bool) -> Shape<'a> {
        self.waits = waits;
        self
    }

    /// Also what a run found in AWS though no state records it.
    pub fn with_found(mut self, found: impl IntoIterator<Item = Key>) -> Shape<'a> {
        self.found.extend(found);
        self
    }

    /// Also the resources worth looking for though the state does not record them.
    pub fn probing(mut self) -> Shape<'a> {
        self.probing = true;
        self
    }

    /// Whether to declare probes (see [`Shape::probing`]).
    pub fn probes(&self) -> bool {
        self.probing
    }

    pub fn config(&self) -> &'a Config {
        self.config
    }

    pub fn waits(&self) -> bool {
        self.waits
    }

    /// Looking for what may exist rather than following a config or a state.
    pub fn discovering_all(&self) -> bool {
        matches!(self.reach, Reach::Discover | Reach::Everything)
    }

    /// The catalog: every resource any stack can have.
    pub fn is_everything(&self) -> bool {
        matches!(self.reach, Reach::Everything)
    }

    /// The state records `key` (not found, not discovered: recorded).
    pub fn records(&self, key: Key) -> bool {
        match self.reach {
            Reach::Recorded(state) => state.get(&key.to_string()).is_some(),
            _ => false,
        }
    }

    /// The graph holds `key` whatever the config says: recorded, found, or everything is held.
    pub fn holds(&self, key: Key) -> bool {
        matches!(self.reach, Reach::Everything) || self.records(key) || self.found.contains(&key)
    }

    pub fn holds_any(&self, keys: &[Key]) -> bool {
        keys.iter().any(|k| self.holds(*k))
    }

    /// How many of a numbered resource the graph holds: `configured`, or more when the state
    /// records (or a run found) a higher number of any of `families`; all of them when looking
    /// for everything.
    pub fn count(&self, configured: u8, families: &[Indexed]) -> u8 {
        if self.discovering_all() {
            return MAX_INDEXED;
        }
        let held = |key: Key| self.holds(key);
        let highest = families
            .iter()
            .flat_map(|f| f.all())
            .filter(|k| held(*k))
            .filter_map(|k| k.index())
            .map(|i| i as u8 + 1)
            .max()
            .unwrap_or(0);
        configured.max(highest)
    }
}
