//! `/v2/groups` bodies (GroupUpdate, spec §1.3) and what they change: a group tree with apps
//! and nested groups (ids relative to the group around them), a rollback to a version, or a
//! `scaleBy`. Each becomes the app changes and group records of one deployment (pure functions of
//! the services' state; `updates::deploy_with` plans and stores them).

use super::app::{AppError, FieldErrors};
use super::app_definition::AppDefinition;
use super::groups::{all_group_ids, within, GroupRecord};
use super::path_id;
use super::state::ServiceState;
use super::updates::{Change, GroupChanges, Target};
use serde_json::Value;
use std::collections::BTreeSet;

/// A group as a body describes it, ids made absolute. `None`: the body left it out.
#[derive(Clone, Debug)]
pub struct GroupSpec {
    pub id: String,
    pub dependencies: Option<Vec<String>>,
    pub apps: Option<Vec<AppDefinition>>,
    pub groups: Option<Vec<GroupSpec>>,
}

/// What a PUT body asks for.
#[derive(Clone, Debug)]
pub enum GroupUpdate {
    Spec(GroupSpec),
    /// `{"scaleBy": f}`: every app under the group scaled by `f` (rounded up).
    ScaleBy(f64),
    /// `{"version": v}`: the group as it was at `v` (wins over `scaleBy`).
    Rollback(String),
}

fn invalid(path: &str, why: impl Into<String>) -> AppError {
    AppError::InvalidObject(vec![FieldErrors {
        path: path.into(),
        errors: vec![why.into()],
    }])
}

fn wrong_type(path: &str, code: &str) -> AppError {
    AppError::InvalidFields(vec![FieldErrors {
        path: path.into(),
        errors: vec![code.into()],
    }])
}

/// An app's errors with their paths under `prefix` (`/apps(0)`).
fn under(prefix: &str, e: AppError) -> AppError {
    let move_all = |v: Vec<FieldErrors>| -> Vec<FieldErrors> {
        v.into_iter()
            .map(|f| FieldErrors {
                path: if f.path == "/" {
                    prefix.to_owned()
                } else {
                    format!("{prefix}{}", f.path)
                },
                errors: f.errors,
            })
            .collect()
    };
    match e {
        AppError::InvalidFields(v) => AppError::InvalidFields(move_all(v)),
        AppError::InvalidObject(v) => AppError::InvalidObject(move_all(v)),
        other => other,
    }
}

/// A group id every part of the API can name: valid segments, none of them a sub-resource
/// (`versions`, `tasks`, ...), which would make the group or its apps unreachable.
fn check_group_id(id: &str, path: &str) -> Result<(), AppError> {
    for seg in id.split('/').filter(|s| !s.is_empty()) {
        if !path_id::is_valid_segment(seg) {
            return Err(invalid(
                path,
                format!(
                    "'{seg}' is not a valid group name: lowercase letters, digits, '-' and '.'"
                ),
            ));
        }
        if super::app::limits::RESERVED_ID_SEGMENTS.contains(&seg) {
            return Err(invalid(
                path,
                format!(
                    "'{seg}' is reserved: the API reads /{seg} after an id as a sub-resource, so \
                     choose another name for this group"
                ),
            ));
        }
    }
    Ok(())
}

/// Reads a PUT body for group `id` (absolute; `/` for `/v2/groups`).
pub fn parse_update(body: &Value, id: &str) -> Result<GroupUpdate, AppError> {
    let Some(obj) = body.as_object() else {
        return Err(wrong_type("/", "error.expected.jsobject"));
    };
    if let Some(v) = obj.get("version") {
        let Some(v) = v.as_str() else {
            return Err(wrong_type("/version", "error.expected.jsstring"));
        };
        return Ok(GroupUpdate::Rollback(v.to_owned()));
    }
    if let Some(f) = obj.get("scaleBy") {
        return match f.as_f64() {
            Some(f) if f.is_finite() && f >= 0.0 => Ok(GroupUpdate::ScaleBy(f)),
            Some(_) => Err(invalid("/scaleBy", "must be a number 0 or more")),
            None => Err(wrong_type("/scaleBy", "error.expected.jsnumber")),
        };
    }
    parse_spec(body, id).map(GroupUpdate::Spec)
}

/// Reads a group tree. Its id is `at` when that is not the root (the path names it), else the
/// body's `id` made absolute.
pub fn parse_spec(body: &Value, at: &str) -> Result<GroupSpec, AppError> {
    let id = if at != "/" {
        at.to_owned()
    } else {
        match body.get("id").and_then(Value::as_str) {
            Some(raw) => path_id::resolve(raw, "/").map_err(|e| invalid("/id", e.to_string()))?,
            None => "/".to_owned(),
        }
    };
    check_group_id(&id, "/id")?;
    read_group(body, id, "")
}

fn read_group(body: &Value, id: String, prefix: &str) -> Result<GroupSpec, AppError> {
    let Some(obj) = body.as_object() else {
        return Err(wrong_type(&format!("{prefix}/"), "error.expected.jsobject"));
    };
    if obj
        .get("pods")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty())
    {
        return Err(invalid(&format!("{prefix}/pods"), "pods are not supported"));
    }
    let list = |key: &str| -> Result<Option<&Vec<Value>>, AppError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(wrong_type(
                &format!("{prefix}/{key}"),
                "error.expected.jsarray",
            )),
        }
    };
    let dependencies = match list("dependencies")? {
        None => None,
        Some(ds) => Some(
            ds.iter()
                .enumerate()
                .map(|(i, d)| {
                    let p = format!("{prefix}/dependencies({i})");
                    let raw = d
                        .as_str()
                        .ok_or_else(|| wrong_type(&p, "error.expected.jsstring"))?;
                    path_id::resolve(raw, &id).map_err(|e| invalid(&p, e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let apps = match list("apps")? {
        None => None,
        Some(apps) => {
            let mut out = Vec::new();
            let mut seen = BTreeSet::new();
            for (i, v) in apps.iter().enumerate() {
                let p = format!("{prefix}/apps({i})");
                let app = AppDefinition::from_json(v, &id).map_err(|e| under(&p, e))?;
                if path_id::parent(&app.id) != id {
                    return Err(invalid(
                        &format!("{p}/id"),
                        format!(
                            "identifier {} is not child of {id}. Hint: use relative paths.",
                            app.id
                        ),
                    ));
                }
                if !seen.insert(app.id.clone()) {
                    return Err(invalid(&format!("{p}/id"), "ids must be unique"));
                }
                out.push(app);
            }
            Some(out)
        }
    };
    let groups = match list("groups")? {
        None => None,
        Some(gs) => Some(
            gs.iter()
                .enumerate()
                .map(|(i, g)| {
                    let p = format!("{prefix}/groups({i})");
                    let raw = g.get("id").and_then(Value::as_str).ok_or_else(|| {
                        AppError::InvalidFields(vec![FieldErrors {
                            path: format!("{p}/id"),
                            errors: vec!["error.path.missing".into()],
                        }])
                    })?;
                    let gid = path_id::resolve(raw, &id)
                        .map_err(|e| invalid(&format!("{p}/id"), e.to_string()))?;
                    check_group_id(&gid, &format!("{p}/id"))?;
                    if path_id::parent(&gid) != id {
                        return Err(invalid(
                            &format!("{p}/id"),
                            format!(
                                "identifier {gid} is not child of {id}. Hint: use relative paths."
                            ),
                        ));
                    }
                    read_group(g, gid, &p)
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(GroupSpec {
        id,
        dependencies,
        apps,
        groups,
    })
}

/// Does group `id` exist (on its own, or above an app)? The root always does.
pub fn exists(svc: &ServiceState, id: &str) -> bool {
    id == "/" || svc.groups.contains_key(id) || svc.apps.keys().any(|a| within(a, id) && a != id)
}

/// The apps under group `id`, at any depth.
pub fn apps_under<'a>(
    svc: &'a ServiceState,
    id: &'a str,
) -> impl Iterator<Item = &'a AppDefinition> {
    svc.apps
        .values()
        .filter(move |a| within(&a.id, id) && a.id != id)
}

/// The changes that make the tree `spec` so: every app in it put, and where the spec lists a
/// group's `apps` (or `groups`), the ones it does not list are deleted with what they hold.
/// Every group of the tree is kept as a record (with its dependencies).
pub fn changes_for(svc: &ServiceState, spec: &GroupSpec) -> (Vec<Change>, GroupChanges) {
    let mut changes = Vec::new();
    let mut groups = GroupChanges::default();
    walk(svc, spec, &mut changes, &mut groups);
    (changes, groups)
}

fn walk(svc: &ServiceState, spec: &GroupSpec, changes: &mut Vec<Change>, out: &mut GroupChanges) {
    if spec.id != "/" {
        let kept = svc.groups.get(&spec.id);
        out.put.push(GroupRecord {
            id: spec.id.clone(),
            dependencies: spec
                .dependencies
                .clone()
                .or_else(|| kept.map(|g| g.dependencies.clone()))
                .unwrap_or_default(),
            version: String::new(),
        });
    }
    if let Some(apps) = &spec.apps {
        let listed: BTreeSet<&str> = apps.iter().map(|a| a.id.as_str()).collect();
        for old in svc.apps.values() {
            if path_id::parent(&old.id) == spec.id && !listed.contains(old.id.as_str()) {
                changes.push(Change {
                    id: old.id.clone(),
                    target: Target::Delete,
                });
            }
        }
        for app in apps {
            changes.push(Change {
                id: app.id.clone(),
                target: Target::Put(app.clone()),
            });
        }
    }
    if let Some(groups) = &spec.groups {
        let listed: BTreeSet<&str> = groups.iter().map(|g| g.id.as_str()).collect();
        for old in all_group_ids(&svc.apps, &svc.groups) {
            if old != spec.id && path_id::parent(&old) == spec.id && !listed.contains(old.as_str())
            {
                let (c, g) = delete_changes(svc, &old);
                changes.extend(c);
                out.delete.extend(g.delete);
            }
        }
        for g in groups {
            walk(svc, g, changes, out);
        }
    }
}

/// Deleting group `id`: every app under it, and every group record under it (itself included).
pub fn delete_changes(svc: &ServiceState, id: &str) -> (Vec<Change>, GroupChanges) {
    let changes = apps_under(svc, id)
        .map(|a| Change {
            id: a.id.clone(),
            target: Target::Delete,
        })
        .collect();
    let delete = svc
        .groups
        .keys()
        .filter(|g| within(g, id))
        .cloned()
        .collect();
    (
        changes,
        GroupChanges {
            put: Vec::new(),
            delete,
        },
    )
}

/// `scaleBy`: every app under `id` to `ceil(instances × factor)`.
pub fn scale_changes(svc: &ServiceState, id: &str, factor: f64) -> Vec<Change> {
    apps_under(svc, id)
        .map(|a| {
            let mut app = a.clone();
            app.instances = (f64::from(a.instances) * factor)
                .ceil()
                .min(f64::from(u32::MAX)) as u32;
            Change {
                id: a.id.clone(),
                target: Target::Put(app),
            }
        })
        .collect()
}

/// The versions of group `id`, oldest first: those of every app version under it and of its
/// record.
pub fn versions(svc: &ServiceState, id: &str) -> Vec<String> {
    let mut out: BTreeSet<String> = svc
        .versions
        .iter()
        .filter(|(a, _)| within(a, id) && a.as_str() != id)
        .flat_map(|(_, v)| v.keys().cloned())
        .collect();
    if let Some(g) = svc.groups.get(id) {
        out.insert(g.version.clone());
    }
    out.remove("");
    out.into_iter().collect()
}

/// Back to version `v` of group `id`: each app under it to its newest stored version at or
/// before `v`, and apps that did not exist then deleted. `None` when `v` is not a version of it.
pub fn rollback_changes(svc: &ServiceState, id: &str, v: &str) -> Option<Vec<Change>> {
    if !versions(svc, id).iter().any(|x| x == v) {
        return None;
    }
    Some(
        apps_under(svc, id)
            .map(|a| {
                let then = svc
                    .versions
                    .get(&a.id)
                    .and_then(|vs| vs.range(..=v.to_owned()).next_back())
                    .map(|(_, def)| def.clone());
                Change {
                    id: a.id.clone(),
                    target: match then {
                        Some(def) => Target::Rollback(def),
                        None => Target::Delete,
                    },
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(apps: &[&str]) -> ServiceState {
        let mut svc = ServiceState::default();
        for id in apps {
            let a = AppDefinition::from_json(&json!({"id": id, "cmd": "x", "instances": 2}), "/")
                .expect("valid");
            svc.apps.insert(a.id.clone(), a);
        }
        svc
    }

    #[test]
    fn a_tree_reads_with_relative_ids_and_refuses_strangers() {
        let body = json!({"id": "/prod", "dependencies": ["db"], "apps": [{"id": "web", "cmd": "x"}],
                          "groups": [{"id": "db", "apps": [{"id": "pg", "cmd": "x"}]}]});
        let spec = parse_spec(&body, "/").expect("valid");
        assert_eq!(spec.id, "/prod");
        assert_eq!(spec.dependencies, Some(vec!["/prod/db".to_string()]));
        assert_eq!(
            spec.apps.as_ref().map(|a| a[0].id.as_str()),
            Some("/prod/web")
        );
        let db = &spec.groups.as_ref().expect("groups")[0];
        assert_eq!(
            db.apps.as_ref().map(|a| a[0].id.as_str()),
            Some("/prod/db/pg")
        );

        let stranger = json!({"id": "/g", "apps": [{"id": "/app", "cmd": "x"}]});
        match parse_spec(&stranger, "/") {
            Err(AppError::InvalidObject(e)) => {
                assert_eq!(e[0].path, "/apps(0)/id");
                assert_eq!(
                    e[0].errors[0],
                    "identifier /app is not child of /g. Hint: use relative paths."
                );
            }
            other => panic!("{other:?}"),
        }
        match parse_spec(&json!({"apps": [{"id": "a", "cpus": "x"}]}), "/g") {
            Err(AppError::InvalidFields(e)) => assert!(e[0].path.starts_with("/apps(0)/"), "{e:?}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_update(&json!({"version": "v1", "scaleBy": 2}), "/g"),
            Ok(GroupUpdate::Rollback(v)) if v == "v1"
        ));
        assert!(matches!(
            parse_update(&json!({"scaleBy": 1.5}), "/g"),
            Ok(GroupUpdate::ScaleBy(_))
        ));
    }

    #[test]
    fn listing_apps_replaces_the_groups_apps_and_unlisted_groups_go() {
        let svc = state(&["/g/a", "/g/b", "/g/sub/c", "/other"]);
        let spec = parse_spec(
            &json!({"apps": [{"id": "a", "cmd": "y"}], "groups": []}),
            "/g",
        )
        .expect("valid");
        let (changes, groups) = changes_for(&svc, &spec);
        let deleted: Vec<&str> = changes
            .iter()
            .filter(|c| matches!(c.target, Target::Delete))
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(deleted, ["/g/b", "/g/sub/c"]);
        assert!(changes
            .iter()
            .any(|c| c.id == "/g/a" && matches!(c.target, Target::Put(_))));
        assert_eq!(groups.put[0].id, "/g");
        assert!(exists(&svc, "/g/sub") && !exists(&svc, "/nope") && exists(&svc, "/"));
        let scaled = scale_changes(&svc, "/g", 1.5);
        assert_eq!(scaled.len(), 3);
        assert!(scaled
            .iter()
            .all(|c| matches!(&c.target, Target::Put(a) if a.instances == 3)));
    }
}
