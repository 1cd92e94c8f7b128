//! Marathon path ids (`/group/app`): normalization, validation (spec §2.1), the "safe" form used
//! inside task ids, and building and parsing task ids (spec §2.3).

use uuid::Uuid;

/// Last segments an app id may not have: they would clash with the `/v2/apps/{id}/...` routes.
pub const RESERVED_LAST_SEGMENTS: [&str; 3] = ["restart", "tasks", "versions"];

/// The regular expression every id segment must match (as Marathon words it in its errors).
pub const SEGMENT_PATTERN: &str =
    r"^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])$";

/// Why an id or task id was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathIdError {
    /// A segment breaks [`SEGMENT_PATTERN`].
    #[error(
        "id segment '{0}' is invalid: use only lowercase letters, digits, '-' and '.', \
         starting and ending with a letter or digit (no '_' and no uppercase)"
    )]
    InvalidSegment(String),
    /// The id is `/` (or resolves to it).
    #[error("Path must contain at least one path element")]
    Root,
    /// `..` climbs above `/`.
    #[error("id '{0}' uses '..' to go above the root group")]
    AboveRoot(String),
    /// The last segment is `restart`, `tasks` or `versions`.
    #[error(
        "must not end with any of the following reserved keywords: restart, tasks, versions \
         (rename '{0}')"
    )]
    ReservedLastSegment(String),
    /// A task id in none of the known forms.
    #[error(
        "Invalid task id '{0}'. Task ids look like '<app>.instance-<uuid>._app.<n>' or \
         '<app>.<uuid>', where <app> is the app id without its leading '/' and with '/' \
         replaced by '_'"
    )]
    InvalidTaskId(String),
}

/// Whether `seg` is a valid id segment (not `.`/`..`): lowercase letters, digits, `-` and `.`,
/// each dot-separated label starting and ending with a letter or digit.
pub fn is_valid_segment(seg: &str) -> bool {
    !seg.is_empty()
        && seg.split('.').all(|label| {
            let b = label.as_bytes();
            let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            match (b.first(), b.last()) {
                (Some(f), Some(l)) => {
                    alnum(f) && alnum(l) && b.iter().all(|c| alnum(c) || *c == b'-')
                }
                _ => false,
            }
        })
}

/// Whether `id` matches Marathon's path pattern: `/`-separated valid segments, `.` or `..`, with
/// empty segments allowed (they collapse). Used for the schema-level `error.pattern` check.
pub fn matches_pattern(id: &str) -> bool {
    id.split('/')
        .all(|s| s.is_empty() || s == "." || s == ".." || is_valid_segment(s))
}

/// Resolves `id` against the group `base` (absolute ids ignore `base`), collapses empty segments
/// and applies `.` and `..`. Returns the absolute id, `/` for the root.
pub fn resolve(id: &str, base: &str) -> Result<String, PathIdError> {
    let mut segs: Vec<&str> = Vec::new();
    let joined;
    let full = if id.starts_with('/') {
        id
    } else {
        joined = format!("{base}/{id}");
        &joined
    };
    for seg in full.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if segs.pop().is_none() {
                    return Err(PathIdError::AboveRoot(id.to_string()));
                }
            }
            s => segs.push(s),
        }
    }
    Ok(format!("/{}", segs.join("/")))
}

/// Makes `id` absolute and collapses empty segments: `test-app` and `//test-app` become `/test-app`.
/// `.` and `..` segments are applied; a `..` above the root is dropped.
pub fn normalize(id: &str) -> String {
    let mut segs: Vec<&str> = Vec::new();
    for seg in id.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    format!("/{}", segs.join("/"))
}

/// Checks an absolute, normalized app id: not the root, every segment valid, and no reserved last
/// segment.
pub fn validate_app_id(id: &str) -> Result<(), PathIdError> {
    let segs: Vec<&str> = id.split('/').filter(|s| !s.is_empty()).collect();
    let Some(last) = segs.last() else {
        return Err(PathIdError::Root);
    };
    if let Some(bad) = segs.iter().find(|s| !is_valid_segment(s)) {
        return Err(PathIdError::InvalidSegment((*bad).to_string()));
    }
    if RESERVED_LAST_SEGMENTS.contains(last) {
        return Err(PathIdError::ReservedLastSegment((*last).to_string()));
    }
    Ok(())
}

/// The parent group of an absolute id (`/a/b` -> `/a`, `/a` -> `/`).
pub fn parent(id: &str) -> String {
    match id.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/".to_string(),
        Some((p, _)) => p.to_string(),
    }
}

/// The id as it appears in task ids: no leading `/`, `/` replaced by `_` (`/a/b` -> `a_b`).
pub fn safe_id(id: &str) -> String {
    id.trim_start_matches('/').replace('/', "_")
}

/// The app id back from its safe form (`a_b` -> `/a/b`). Ids contain no `_`, so this is exact.
pub fn from_safe_id(safe: &str) -> String {
    format!("/{}", safe.replace('_', "/"))
}

/// A new task id for an app, in Marathon's current form: `<safeId>.instance-<uuid>._app.1`.
pub fn new_task_id(app_id: &str) -> String {
    format!("{}._app.1", new_instance_id(app_id))
}

/// A new instance id for an app: `<safeId>.instance-<uuid>`.
pub fn new_instance_id(app_id: &str) -> String {
    format!("{}.instance-{}", safe_id(app_id), Uuid::new_v4())
}

/// What a task id says about its task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskIdParts {
    /// The absolute app id (`/group/app`).
    pub app_id: String,
    /// The instance id (`<safeId>.instance-<uuid>`); for legacy ids, the task id itself.
    pub instance_id: String,
    /// The uuid inside the id.
    pub uuid: Uuid,
    /// The incarnation (`._app.<n>`, or the attempt of a legacy resident id), when present.
    pub incarnation: Option<u64>,
}

/// The instance id of a task (the task id itself when it is not one of Marathon's forms).
pub fn instance_of(task_id: &str) -> String {
    parse_task_id(task_id).map_or_else(|_| task_id.to_owned(), |p| p.instance_id)
}

/// Parses a task id in any of Marathon's forms: `<safeId>.instance-<uuid>._app.<n>`,
/// `<safeId>.marathon-<uuid>._app.<n>`, `<safeId>.instance-<uuid>.<container>`,
/// `<safeId>.instance-<uuid>`, legacy `<safeId>.<uuid>` (or `_<uuid>`) and legacy resident
/// `<safeId>.<uuid>.<attempt>`.
pub fn parse_task_id(task_id: &str) -> Result<TaskIdParts, PathIdError> {
    let bad = || PathIdError::InvalidTaskId(task_id.to_string());
    let app_from = |safe: &str| -> Result<String, PathIdError> {
        let app = from_safe_id(safe);
        validate_app_id(&app).map_err(|_| bad())?;
        Ok(app)
    };
    // Current forms: find the last `.instance-` / `.marathon-` marker.
    let marker = [".instance-", ".marathon-"]
        .iter()
        .filter_map(|m| task_id.rfind(m).map(|at| (at, m.len())))
        .max();
    if let Some((at, len)) = marker {
        let safe = &task_id[..at];
        let rest = &task_id[at + len..];
        let uuid_str = rest.get(..36).ok_or_else(bad)?;
        let uuid = Uuid::parse_str(uuid_str).map_err(|_| bad())?;
        let suffix = &rest[36..];
        let incarnation = if suffix.is_empty() {
            None
        } else if let Some(n) = suffix.strip_prefix("._app.") {
            Some(n.parse::<u64>().map_err(|_| bad())?)
        } else if suffix.len() > 1 && (suffix.starts_with('.') || suffix.starts_with('_')) {
            None // a pod container name
        } else {
            return Err(bad());
        };
        return Ok(TaskIdParts {
            app_id: app_from(safe)?,
            instance_id: task_id[..at + len + 36].to_string(),
            uuid,
            incarnation,
        });
    }
    // Legacy resident: `<safeId>.<uuid>.<attempt>`.
    if let Some((head, attempt)) = task_id.rsplit_once('.') {
        if let (Ok(n), Some((safe, uuid_str))) = (attempt.parse::<u64>(), head.rsplit_once('.')) {
            if let Ok(uuid) = Uuid::parse_str(uuid_str) {
                return Ok(TaskIdParts {
                    app_id: app_from(safe)?,
                    instance_id: task_id.to_string(),
                    uuid,
                    incarnation: Some(n),
                });
            }
        }
    }
    // Legacy: `<safeId>.<uuid>` or `<safeId>_<uuid>`.
    let split = task_id.rfind(['.', '_']).ok_or_else(bad)?;
    let uuid = Uuid::parse_str(&task_id[split + 1..]).map_err(|_| bad())?;
    Ok(TaskIdParts {
        app_id: app_from(&task_id[..split])?,
        instance_id: task_id.to_string(),
        uuid,
        incarnation: None,
    })
}

/// The app id a task id belongs to, or `None` when the task id is malformed.
pub fn app_id_of_task(task_id: &str) -> Option<String> {
    parse_task_id(task_id).ok().map(|p| p.app_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_relative_and_double_slash_ids() {
        assert_eq!(normalize("test-app"), "/test-app");
        assert_eq!(normalize("//test-app"), "/test-app");
        assert_eq!(normalize("/a//b/"), "/a/b");
        assert_eq!(normalize("/a/./b/../c"), "/a/c");
        assert_eq!(normalize("/"), "/");
    }

    #[test]
    fn resolves_against_a_group() {
        assert_eq!(resolve("app", "/group").as_deref(), Ok("/group/app"));
        assert_eq!(resolve("../x", "/g/h").as_deref(), Ok("/g/x"));
        assert_eq!(resolve("/abs", "/g").as_deref(), Ok("/abs"));
        assert_eq!(
            resolve("../../x", "/g"),
            Err(PathIdError::AboveRoot("../../x".into()))
        );
    }

    #[test]
    fn segment_rules() {
        for ok in ["a", "a1", "my-app", "a.b", "0", "a-b.c-d"] {
            assert!(is_valid_segment(ok), "{ok}");
        }
        for bad in ["", "A", "a_b", "-a", "a-", "a..b", ".a", "a.", "a b", "é"] {
            assert!(!is_valid_segment(bad), "{bad}");
        }
        assert!(matches_pattern("//a/../b/./c"));
        assert!(!matches_pattern("/My_App"));
    }

    #[test]
    fn validates_app_ids() {
        assert_eq!(validate_app_id("/a/b"), Ok(()));
        assert_eq!(validate_app_id("/"), Err(PathIdError::Root));
        assert_eq!(
            validate_app_id("/a/tasks"),
            Err(PathIdError::ReservedLastSegment("tasks".into()))
        );
        assert_eq!(validate_app_id("/tasks/a"), Ok(()));
        assert_eq!(
            validate_app_id("/a_b"),
            Err(PathIdError::InvalidSegment("a_b".into()))
        );
    }

    #[test]
    fn parent_of_ids() {
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/"), "/");
    }

    #[test]
    fn task_ids_round_trip() {
        let id = new_task_id("/prod/web.v2");
        assert!(id.starts_with("prod_web.v2.instance-"), "{id}");
        assert!(id.ends_with("._app.1"), "{id}");
        let parts = parse_task_id(&id).expect("own task id parses");
        assert_eq!(parts.app_id, "/prod/web.v2");
        assert_eq!(parts.incarnation, Some(1));
        assert_eq!(format!("{}._app.1", parts.instance_id), id);
        assert_eq!(safe_id("/prod/web.v2"), "prod_web.v2");
        assert_eq!(from_safe_id("prod_web.v2"), "/prod/web.v2");
    }

    #[test]
    fn parses_every_known_task_id_form() {
        let u = "8cad6a69-6cbb-11e7-8a6f-0242ac110002";
        let cases = [
            (format!("pywebserver.{u}"), "/pywebserver", None),
            (format!("a_b.{u}"), "/a/b", None),
            (format!("a_b_{u}"), "/a/b", None),
            (format!("a.b.{u}.3"), "/a.b", Some(3)),
            (format!("a.instance-{u}._app.2"), "/a", Some(2)),
            (format!("a_b.marathon-{u}._app.1"), "/a/b", Some(1)),
            (format!("a.instance-{u}"), "/a", None),
            (format!("a.instance-{u}.web"), "/a", None),
        ];
        for (tid, app, inc) in cases {
            let p = parse_task_id(&tid).unwrap_or_else(|e| panic!("{tid}: {e}"));
            assert_eq!(p.app_id, app, "{tid}");
            assert_eq!(p.incarnation, inc, "{tid}");
            assert_eq!(p.uuid.to_string(), u);
        }
        for bad in [
            "",
            "nope",
            "a.not-a-uuid",
            &format!("A.{u}"),
            &format!(".{u}"),
            &format!("a.instance-{u}._app.x"),
            &format!("a.instance-{u}x"),
        ] {
            assert!(parse_task_id(bad).is_err(), "{bad}");
        }
        assert_eq!(app_id_of_task("x.y"), None);
    }
}
