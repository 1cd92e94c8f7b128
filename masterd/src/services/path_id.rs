//! Marathon path ids (`/group/app`): normalization and the "safe" form used inside task ids.

/// Makes `id` absolute and collapses empty segments: `test-app` and `//test-app` become `/test-app`.
pub fn normalize(id: &str) -> String {
    let segs: Vec<&str> = id.split('/').filter(|s| !s.is_empty()).collect();
    format!("/{}", segs.join("/"))
}

/// The id as it appears in task ids: no leading `/`, `/` replaced by `_` (`/a/b` -> `a_b`).
pub fn safe_id(id: &str) -> String {
    id.trim_start_matches('/').replace('/', "_")
}
