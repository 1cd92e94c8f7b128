//! Groups (spec §1.3, §3.6): the tree of apps by their path ids, plus the groups created on their
//! own (which may be empty and carry `dependencies`). Apps stay stored one by one (spec §7.3:
//! no root-group blob); a group is its id, its dependencies and its version, and the tree is
//! built from the apps' ids when asked.
//!
//! Dependencies (of an app, or inherited from the groups around it) name apps or groups; a group
//! stands for every app under it. They order a deployment's steps (see
//! `deployments::plan`): an app starts, scales or restarts only after what it depends on.

use super::app_definition::AppDefinition;
use super::path_id;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A group that exists on its own (created through `/v2/groups`), stored as is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub id: String,
    #[serde(default)]
    pub dependencies: Vec<String>,
    pub version: String,
}

/// The dependency graph has a cycle (Marathon: 422 "Dependency graph has cyclic dependencies.").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Dependency graph has cyclic dependencies.")]
pub struct Cycle;

/// Is `id` the path `group` or under it?
pub fn within(id: &str, group: &str) -> bool {
    group == "/" || id == group || id.strip_prefix(group).is_some_and(|r| r.starts_with('/'))
}

/// Every group path above an app (`/a/b/app` → `/`, `/a`, `/a/b`), nearest last.
pub fn ancestors(id: &str) -> Vec<String> {
    let mut out = vec!["/".to_string()];
    let mut cur = String::new();
    let segs: Vec<&str> = id.split('/').filter(|s| !s.is_empty()).collect();
    for s in segs.iter().take(segs.len().saturating_sub(1)) {
        cur.push('/');
        cur.push_str(s);
        out.push(cur.clone());
    }
    out
}

/// Each app's dependencies resolved to app ids: its own and those of the groups around it, each
/// naming an app or every app under a group (itself and groups around it excluded).
pub fn dependency_map<'a>(
    apps: impl IntoIterator<Item = &'a AppDefinition>,
    groups: &BTreeMap<String, GroupRecord>,
) -> BTreeMap<String, BTreeSet<String>> {
    let apps: Vec<&AppDefinition> = apps.into_iter().collect();
    let resolve = |path: &str, me: &str| -> Vec<String> {
        apps.iter()
            .map(|a| a.id.as_str())
            .filter(|a| within(a, path) && *a != me && !within(me, path))
            .map(str::to_owned)
            .collect()
    };
    apps.iter()
        .map(|app| {
            let mut named: Vec<String> = app.dependencies.clone();
            for g in ancestors(&app.id) {
                if let Some(rec) = groups.get(&g) {
                    named.extend(rec.dependencies.iter().cloned());
                }
            }
            let deps = named
                .iter()
                .flat_map(|d| resolve(&path_id::normalize(d), &app.id))
                .collect();
            (app.id.clone(), deps)
        })
        .collect()
}

/// Fails on a cycle anywhere in `deps`.
pub fn check_acyclic(deps: &BTreeMap<String, BTreeSet<String>>) -> Result<(), Cycle> {
    // Kahn's algorithm: what cannot be peeled off lies on a cycle.
    let mut pending: BTreeMap<&str, usize> = deps
        .iter()
        .map(|(a, d)| {
            (
                a.as_str(),
                d.iter().filter(|x| deps.contains_key(*x)).count(),
            )
        })
        .collect();
    let mut ready: Vec<&str> = pending
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(a, _)| *a)
        .collect();
    let mut done = 0;
    while let Some(a) = ready.pop() {
        done += 1;
        for (b, d) in deps {
            if d.contains(a) {
                if let Some(n) = pending.get_mut(b.as_str()) {
                    *n -= 1;
                    if *n == 0 {
                        ready.push(b);
                    }
                }
            }
        }
    }
    if done == deps.len() {
        Ok(())
    } else {
        Err(Cycle)
    }
}

/// The step level of each of `apps` in a deployment: 0 when it depends on none of the others,
/// else one more than the highest level among those it depends on (the longest path). `deps`
/// must be acyclic.
pub fn levels(
    apps: &BTreeSet<String>,
    deps: &BTreeMap<String, BTreeSet<String>>,
) -> BTreeMap<String, usize> {
    fn level(
        app: &str,
        apps: &BTreeSet<String>,
        deps: &BTreeMap<String, BTreeSet<String>>,
        memo: &mut BTreeMap<String, usize>,
        depth: usize,
    ) -> usize {
        if let Some(l) = memo.get(app) {
            return *l;
        }
        // A cycle would recurse forever; the depth bound makes that impossible.
        let l = if depth > apps.len() {
            0
        } else {
            deps.get(app)
                .into_iter()
                .flatten()
                .filter(|d| apps.contains(*d))
                .map(|d| level(d, apps, deps, memo, depth + 1) + 1)
                .max()
                .unwrap_or(0)
        };
        memo.insert(app.to_owned(), l);
        l
    }
    let mut memo = BTreeMap::new();
    for a in apps {
        level(a, apps, deps, &mut memo, 0);
    }
    memo.retain(|a, _| apps.contains(a));
    memo
}

/// The groups that exist: explicit ones and every path above an app, and the root.
pub fn all_group_ids(
    apps: &BTreeMap<String, AppDefinition>,
    groups: &BTreeMap<String, GroupRecord>,
) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = groups.keys().cloned().collect();
    out.insert("/".into());
    for id in apps.keys().chain(groups.keys()) {
        out.extend(ancestors(id));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(id: &str, deps: &[&str]) -> (String, AppDefinition) {
        let mut a = AppDefinition::from_json(&serde_json::json!({"id": id, "cmd": "x"}), "/")
            .expect("valid");
        a.dependencies = deps.iter().map(|d| d.to_string()).collect();
        (id.to_string(), a)
    }

    fn group(id: &str, deps: &[&str]) -> (String, GroupRecord) {
        (
            id.to_string(),
            GroupRecord {
                id: id.into(),
                dependencies: deps.iter().map(|d| d.to_string()).collect(),
                version: "v".into(),
            },
        )
    }

    #[test]
    fn dependencies_name_apps_or_every_app_of_a_group_and_groups_pass_theirs_down() {
        let apps: BTreeMap<_, _> = [
            app("/db/pg", &[]),
            app("/db/cache", &[]),
            app("/web/api", &["/db"]),
            app("/web/ui", &[]),
            app("/lone", &["/web/ui"]),
        ]
        .into_iter()
        .collect();
        let groups: BTreeMap<_, _> = [group("/web", &["/db/cache"])].into_iter().collect();
        let deps = dependency_map(apps.values(), &groups);
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(deps["/web/api"], set(&["/db/cache", "/db/pg"]));
        assert_eq!(deps["/web/ui"], set(&["/db/cache"]), "from its group");
        assert_eq!(deps["/lone"], set(&["/web/ui"]));
        assert!(deps["/db/pg"].is_empty());
        assert_eq!(check_acyclic(&deps), Ok(()));
        let all: BTreeSet<String> = apps.keys().cloned().collect();
        let l = levels(&all, &deps);
        assert_eq!(l["/db/pg"], 0);
        assert_eq!(l["/web/ui"], 1);
        assert_eq!(l["/web/api"], 1);
        assert_eq!(l["/lone"], 2);
        let only_web: BTreeSet<String> = set(&["/web/api", "/lone"]);
        assert_eq!(levels(&only_web, &deps)["/lone"], 0, "ui is not changing");
    }

    #[test]
    fn a_group_depending_on_itself_is_no_cycle_but_two_apps_waiting_on_each_other_are() {
        let apps: BTreeMap<_, _> = [app("/g/a", &["/g"]), app("/g/b", &[])]
            .into_iter()
            .collect();
        assert_eq!(
            check_acyclic(&dependency_map(apps.values(), &BTreeMap::new())),
            Ok(())
        );
        let apps: BTreeMap<_, _> = [app("/a", &["/b"]), app("/b", &["/a"]), app("/c", &[])]
            .into_iter()
            .collect();
        let deps = dependency_map(apps.values(), &BTreeMap::new());
        assert_eq!(check_acyclic(&deps), Err(Cycle));
    }

    #[test]
    fn groups_are_every_path_above_an_app() {
        let apps: BTreeMap<_, _> = [app("/a/b/c", &[])].into_iter().collect();
        let groups: BTreeMap<_, _> = [group("/empty", &[])].into_iter().collect();
        let ids: Vec<String> = all_group_ids(&apps, &groups).into_iter().collect();
        assert_eq!(ids, ["/", "/a", "/a/b", "/empty"]);
        assert!(within("/a/b/c", "/a"));
        assert!(!within("/ab", "/a"));
        assert!(within("/x", "/"));
    }
}
