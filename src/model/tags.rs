//! The user's `[tags]` kept in step on a live resource: what to put on and take off, and the
//! changes the plan and `status` show (`tags.team: payments → platform`). Only the config's keys
//! and the keys the tool applied before (the state's `user_tags`) are looked at: a tag someone
//! else added is neither drift nor touched.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::model::Change;

/// The prefix of a tag change's field: `tags.<key>`.
pub const TAG_FIELD: &str = "tags.";

/// What a tag not on the resource shows as.
pub const NO_TAG: &str = "(none)";

/// What a tag the tool takes off shows as.
pub const UNTAGGED: &str = "(removed)";

/// What keeps one resource's user tags in step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Retag {
    /// Tags to put (added, or with another value).
    pub put: Vec<(String, String)>,
    /// Keys to take off (the tool applied them; the config no longer has them).
    pub remove: Vec<String>,
    /// One change per key, in key order.
    pub changes: Vec<Change>,
}

impl Retag {
    pub fn is_empty(&self) -> bool {
        self.put.is_empty() && self.remove.is_empty()
    }
}

/// How a resource carrying `live` tags gets to the config's `wanted` ones: every wanted key with
/// its value, and every key the tool `applied` that is no longer wanted taken off (by key: the
/// tool set it).
pub fn retag(
    live: &[(String, String)],
    wanted: &BTreeMap<String, String>,
    applied: &BTreeMap<String, String>,
) -> Retag {
    let have = |key: &str| live.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let mut out = Retag::default();
    let change = |key: &str, from: &str, to: &str| Change {
        field: format!("{TAG_FIELD}{key}"),
        from: from.into(),
        to: to.into(),
        replace: false,
    };
    let mut keys: Vec<&String> = wanted.keys().chain(applied.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        match (wanted.get(key), have(key)) {
            (Some(want), Some(got)) if want == got => {}
            (Some(want), got) => {
                out.changes.push(change(key, got.unwrap_or(NO_TAG), want));
                out.put.push((key.clone(), want.clone()));
            }
            (None, Some(got)) => {
                out.changes.push(change(key, got, UNTAGGED));
                out.remove.push(key.clone());
            }
            (None, None) => {}
        }
    }
    out
}

/// The keys the tool may have applied while an `up` runs: the recorded ones and the config's (a
/// run killed between two resources leaves some of each).
pub fn during_up(
    recorded: Option<&BTreeMap<String, String>>,
    wanted: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut all = recorded.cloned().unwrap_or_default();
    all.extend(wanted.iter().map(|(k, v)| (k.clone(), v.clone())));
    all
}

/// The tags a resource's `find` read for its ownership check, by the resource's ID, kept for the
/// `[tags]` sync of the same run (which then needs no second call). A run's value (`ctx.run`).
#[derive(Debug, Default)]
pub struct Seen(Mutex<HashMap<String, Vec<(String, String)>>>);

impl Seen {
    pub fn note<'a>(&self, id: &str, tags: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let tags = tags.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.0.lock().expect("seen tags").insert(id.to_string(), tags);
    }

    pub fn get(&self, id: &str) -> Option<Vec<(String, String)>> {
        self.0.lock().expect("seen tags").get(id).cloned()
    }
}

/// Whether a change is one of the user's tags.
pub fn is_tag(change: &Change) -> bool {
    change.field.starts_with(TAG_FIELD)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn live(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_changed_added_and_removed_key_and_nothing_of_anyone_elses() {
        let have =
            live(&[("fargate-stack:stack", "app"), ("team", "payments"), ("cost", "cc-42"), ("backup", "daily")]);
        let wanted = map(&[("team", "platform"), ("owner", "ops")]);
        let applied = map(&[("team", "payments"), ("cost", "cc-42")]);
        let r = retag(&have, &wanted, &applied);
        assert_eq!(r.put, live(&[("owner", "ops"), ("team", "platform")]));
        assert_eq!(r.remove, vec!["cost".to_string()]);
        let shown: Vec<String> = r.changes.iter().map(Change::to_string).collect();
        assert_eq!(
            shown,
            ["tags.cost: cc-42 → (removed)", "tags.owner: (none) → ops", "tags.team: payments → platform"]
        );
        // In step: nothing; someone's extra tag (`backup`) and the tool's own are never looked at.
        let done = live(&[("team", "platform"), ("owner", "ops"), ("backup", "daily")]);
        assert!(retag(&done, &wanted, &during_up(Some(&applied), &wanted)).is_empty());
        // A key removed from the config that the tool never applied is not the tool's to take off.
        assert!(retag(&done, &map(&[("owner", "ops")]), &map(&[("owner", "ops")])).remove.is_empty());
    }

    #[test]
    fn an_interrupted_run_keeps_both_sets_of_keys() {
        let old = map(&[("team", "payments"), ("cost", "cc-42")]);
        let new = map(&[("team", "platform")]);
        assert_eq!(during_up(Some(&old), &new), map(&[("team", "platform"), ("cost", "cc-42")]));
        assert_eq!(during_up(None, &new), new, "a state without the record: the config's");
    }
}
