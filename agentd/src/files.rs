//! Mesos's `/files` endpoints on the agent (spec §6.4): `GET /files/browse?path=`,
//! `GET /files/read?path=&offset=&length=` and `GET /files/download?path=`, with the `.json`
//! aliases of the first two. Every path is confined to the agent's sandboxes directory, and a
//! path inside a task's sandbox to that sandbox: `..`, an absolute path elsewhere, or a link
//! that resolves out of the sandbox is refused with 403. The task user can write in its sandbox
//! (and plant links, or swap a directory for a link between our check and our open), so a path
//! is resolved with `canonicalize` and checked, then opened with `O_NOFOLLOW`, and the file that
//! was really opened (`/proc/self/fd/N`) is checked again before a byte of it is read.
//!
//! A path is absolute (inside the sandboxes directory, as Mesos clients send it) or relative to
//! the sandboxes directory (`<task dir name>/stdout`, as the master's proxy sends it); listed
//! entries carry paths in the same form as the request.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Component, Path, PathBuf};

/// The most bytes one `/files/read` returns (also its default `length`).
pub const MAX_READ_BYTES: u64 = 16 << 20;

/// The most entries one `/files/browse` lists (a task may make millions of files).
pub const MAX_BROWSE_ENTRIES: usize = 100_000;

/// Why a files request is refused. Rendered as plain text, as Mesos answers.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// 400: a missing or malformed parameter, or the wrong kind of file.
    #[error("{0}")]
    BadRequest(String),
    /// 403: the path leaves the sandboxes directory or its task's sandbox.
    #[error("{0}")]
    Forbidden(String),
    /// 404: nothing there.
    #[error("{0}")]
    NotFound(String),
    /// 500: the file system failed.
    #[error("{0}")]
    Io(String),
}

impl FilesError {
    pub fn status(&self) -> StatusCode {
        match self {
            FilesError::BadRequest(_) => StatusCode::BAD_REQUEST,
            FilesError::Forbidden(_) => StatusCode::FORBIDDEN,
            FilesError::NotFound(_) => StatusCode::NOT_FOUND,
            FilesError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error of an `open` or `canonicalize` of `shown`.
    fn of_io(shown: &str, e: &std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => {
                FilesError::NotFound(format!("'{shown}' does not exist"))
            }
            Some(libc::ELOOP) => FilesError::Forbidden(format!(
                "'{shown}' is a symbolic link (it was changed while it was opened)"
            )),
            Some(libc::EACCES) | Some(libc::EPERM) => {
                FilesError::Forbidden(format!("'{shown}': permission denied"))
            }
            _ => FilesError::Io(format!("'{shown}': {e}")),
        }
    }
}

impl IntoResponse for FilesError {
    fn into_response(self) -> Response {
        let mut r = Response::new(Body::from(self.to_string()));
        *r.status_mut() = self.status();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    }
}

/// A requested path, resolved and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The canonical path (no links, no `..`).
    pub real: PathBuf,
    /// What `real` must stay inside: its task's sandbox (canonical), or the sandboxes directory
    /// itself when the request names that.
    pub bound: PathBuf,
}

/// Resolves `requested` against the sandboxes directory `root`: refuses (403) an absolute path
/// outside `root`, any `..`, and a path whose links resolve out of its task's sandbox; 404 when
/// nothing is there.
pub fn resolve(root: &Path, requested: &str) -> Result<Resolved, FilesError> {
    if requested.is_empty() {
        return Err(FilesError::BadRequest(
            "Expecting 'path=value' in query".into(),
        ));
    }
    if requested.contains('\0') {
        return Err(FilesError::BadRequest("the path holds a NUL byte".into()));
    }
    let canon_root = root
        .canonicalize()
        .map_err(|e| FilesError::Io(format!("the sandboxes directory: {e}")))?;
    let asked = Path::new(requested);
    let rel = if asked.is_absolute() {
        asked
            .strip_prefix(root)
            .or_else(|_| asked.strip_prefix(&canon_root))
            .map_err(|_| {
                FilesError::Forbidden(format!(
                    "'{requested}' is outside the agent's sandboxes directory"
                ))
            })?
    } else {
        asked
    };
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => parts.push(n),
            Component::CurDir => {}
            _ => {
                return Err(FilesError::Forbidden(format!(
                    "'{requested}' leaves the sandbox ('..' is not allowed)"
                )))
            }
        }
    }
    let Some(first) = parts.first() else {
        return Ok(Resolved {
            real: canon_root.clone(),
            bound: canon_root,
        });
    };
    let sandbox = canon_root.join(first);
    // The sandbox directory itself is the agent's (tasks cannot write in the sandboxes
    // directory): a real directory, never a link.
    match std::fs::symlink_metadata(&sandbox) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(FilesError::Forbidden(format!(
                "'{requested}' is not inside a task's sandbox"
            )))
        }
        Err(e) => return Err(FilesError::of_io(requested, &e)),
    }
    let lexical: PathBuf = parts.iter().fold(canon_root.clone(), |p, c| p.join(c));
    let real = lexical
        .canonicalize()
        .map_err(|e| FilesError::of_io(requested, &e))?;
    if !real.starts_with(&sandbox) {
        return Err(FilesError::Forbidden(format!(
            "'{requested}' resolves outside its task's sandbox"
        )));
    }
    Ok(Resolved {
        real,
        bound: sandbox,
    })
}

/// Opens a resolved path for reading without following a link at its last component, and checks
/// that the file really opened (a directory on the way may have been swapped for a link since
/// [`resolve`]) is still inside its bound.
pub fn open_confined(res: &Resolved, shown: &str) -> Result<(File, Metadata), FilesError> {
    let file = OpenOptions::new()
        .read(true)
        // O_NONBLOCK: a FIFO planted by the task must not hang the request at open.
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(&res.real)
        .map_err(|e| FilesError::of_io(shown, &e))?;
    let opened = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(|e| FilesError::Io(format!("'{shown}': cannot tell what was opened: {e}")))?;
    if !opened.starts_with(&res.bound) {
        return Err(FilesError::Forbidden(format!(
            "'{shown}' resolves outside its task's sandbox"
        )));
    }
    let meta = file
        .metadata()
        .map_err(|e| FilesError::Io(format!("'{shown}': {e}")))?;
    Ok((file, meta))
}

/// Opens a regular file (not a directory, FIFO or device) confined to its sandbox.
fn open_regular(root: &Path, requested: &str) -> Result<(File, Metadata), FilesError> {
    let res = resolve(root, requested)?;
    let (file, meta) = open_confined(&res, requested)?;
    if meta.is_dir() {
        return Err(FilesError::BadRequest(format!(
            "'{requested}' is a directory"
        )));
    }
    if !meta.is_file() {
        return Err(FilesError::BadRequest(format!(
            "'{requested}' is not a regular file"
        )));
    }
    Ok((file, meta))
}

/// `ls -l`'s mode column: `-rw-r--r--`, `drwxr-xr-x`, `lrwxrwxrwx`.
pub fn mode_string(meta: &Metadata) -> String {
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        'd'
    } else if ft.is_symlink() {
        'l'
    } else if ft.is_fifo() {
        'p'
    } else if ft.is_socket() {
        's'
    } else if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else {
        '-'
    };
    let m = meta.mode();
    let mut out = String::with_capacity(10);
    out.push(kind);
    for (shift, special, set_exec, set_noexec) in [
        (6, 0o4000, 's', 'S'),
        (3, 0o2000, 's', 'S'),
        (0, 0o1000, 't', 'T'),
    ] {
        let bits = (m >> shift) & 0o7;
        out.push(if bits & 4 != 0 { 'r' } else { '-' });
        out.push(if bits & 2 != 0 { 'w' } else { '-' });
        let exec = bits & 1 != 0;
        out.push(match (m & special != 0, exec) {
            (true, true) => set_exec,
            (true, false) => set_noexec,
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    out
}

/// User and group names, looked up once per request.
#[derive(Default)]
struct Names {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl Names {
    fn user(&mut self, uid: u32) -> String {
        self.users
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map_or_else(|| uid.to_string(), |u| u.name)
            })
            .clone()
    }

    fn group(&mut self, gid: u32) -> String {
        self.groups
            .entry(gid)
            .or_insert_with(|| {
                nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
                    .ok()
                    .flatten()
                    .map_or_else(|| gid.to_string(), |g| g.name)
            })
            .clone()
    }
}

/// One entry of a listing, as Mesos writes it.
fn entry_json(path: String, meta: &Metadata, names: &mut Names) -> Value {
    json!({
        "path": path,
        "nlink": meta.nlink(),
        "size": meta.len(),
        "mtime": meta.mtime(),
        "mode": mode_string(meta),
        "uid": names.user(meta.uid()),
        "gid": names.group(meta.gid()),
    })
}

/// The listing of `requested` (a directory: its entries, links not followed; a file: itself).
pub fn browse(root: &Path, requested: &str) -> Result<Vec<Value>, FilesError> {
    let res = resolve(root, requested)?;
    let (dir, meta) = open_confined(&res, requested)?;
    let mut names = Names::default();
    let base = requested.trim_end_matches('/');
    if !meta.is_dir() {
        return Ok(vec![entry_json(base.to_string(), &meta, &mut names)]);
    }
    // Listed through the descriptor checked above, never through the path again.
    let listing = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))
        .map_err(|e| FilesError::of_io(requested, &e))?;
    let mut out = Vec::new();
    for entry in listing {
        let entry = entry.map_err(|e| FilesError::of_io(requested, &e))?;
        // Does not follow a link: the entry itself is described.
        let Ok(m) = entry.metadata() else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        out.push(entry_json(format!("{base}/{name}"), &m, &mut names));
        if out.len() >= MAX_BROWSE_ENTRIES {
            break;
        }
    }
    out.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    drop(dir);
    Ok(out)
}

/// Parses an optional integer parameter.
fn int_param(name: &str, v: Option<&str>) -> Result<Option<i64>, FilesError> {
    match v {
        None | Some("") => Ok(None),
        Some(s) => s.parse::<i64>().map(Some).map_err(|_| {
            FilesError::BadRequest(format!("Failed to parse {name}: '{s}' is not an integer"))
        }),
    }
}

/// The text of `buf` and how many of its bytes it stands for: an incomplete UTF-8 sequence at
/// the end is left for the next read; other invalid bytes become U+FFFD.
pub fn decode(buf: &[u8]) -> (String, usize) {
    let mut end = buf.len();
    for back in 1..=buf.len().min(3) {
        let b = buf[buf.len() - back];
        if b & 0xC0 != 0x80 {
            let need = match b {
                0xF0.. => 4,
                0xE0.. => 3,
                0xC0.. => 2,
                _ => 1,
            };
            if need > back {
                end = buf.len() - back;
            }
            break;
        }
    }
    if end == 0 {
        end = buf.len();
    }
    (String::from_utf8_lossy(&buf[..end]).into_owned(), end)
}

/// `/files/read`: `{"data", "offset"}` as Mesos answers, plus `next_offset` (where the next read
/// should start: `offset` plus the bytes `data` stands for). `offset=-1` gives the file's size
/// in `offset` and no data; an offset at or past the end gives no data and the size.
pub fn read(
    root: &Path,
    requested: &str,
    offset: Option<&str>,
    length: Option<&str>,
) -> Result<Value, FilesError> {
    let offset = int_param("offset", offset)?.unwrap_or(0);
    if offset < -1 {
        return Err(FilesError::BadRequest(format!(
            "Negative offset provided: {offset}"
        )));
    }
    let length = match int_param("length", length)? {
        Some(l) if l < 0 => {
            return Err(FilesError::BadRequest(format!(
                "Negative length provided: {l}"
            )))
        }
        Some(l) => (l as u64).min(MAX_READ_BYTES),
        None => MAX_READ_BYTES,
    };
    let (mut file, meta) = open_regular(root, requested)?;
    let size = meta.len();
    if offset == -1 || offset as u64 >= size {
        return Ok(json!({"data": "", "offset": size, "next_offset": size}));
    }
    let offset = offset as u64;
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| FilesError::Io(format!("'{requested}': {e}")))?;
    let mut buf = Vec::with_capacity(length.min(size - offset) as usize);
    file.take(length)
        .read_to_end(&mut buf)
        .map_err(|e| FilesError::Io(format!("'{requested}': {e}")))?;
    let (data, used) = decode(&buf);
    Ok(json!({"data": data, "offset": offset, "next_offset": offset + used as u64}))
}

/// A file name safe inside a quoted `Content-Disposition` filename.
fn disposition_name(requested: &str) -> String {
    let name = Path::new(requested)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".into());
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The query of every files endpoint.
#[derive(Debug, Default, Deserialize)]
pub struct FilesQuery {
    pub path: Option<String>,
    pub offset: Option<String>,
    pub length: Option<String>,
}

impl FilesQuery {
    fn path(&self) -> Result<&str, FilesError> {
        match self.path.as_deref() {
            Some(p) if !p.is_empty() => Ok(p),
            _ => Err(FilesError::BadRequest(
                "Expecting 'path=value' in query".into(),
            )),
        }
    }
}

/// What the handlers read: the sandboxes directory.
#[derive(Clone, Debug)]
pub struct FilesRoot(pub PathBuf);

/// The files routes, for the agent's router.
pub fn router<S: Clone + Send + Sync + 'static>(root: PathBuf) -> Router<S> {
    Router::new()
        .route("/files/browse", get(browse_handler))
        .route("/files/browse.json", get(browse_handler))
        .route("/files/read", get(read_handler))
        .route("/files/read.json", get(read_handler))
        .route("/files/download", get(download_handler))
        .route("/files/download.json", get(download_handler))
        .with_state(FilesRoot(root))
}

/// Runs a file-system job on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FilesError> + Send + 'static,
) -> Result<T, FilesError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| FilesError::Io(format!("the file job failed: {e}")))?
}

async fn browse_handler(
    State(root): State<FilesRoot>,
    Query(q): Query<FilesQuery>,
) -> Result<Json<Value>, FilesError> {
    let path = q.path()?.to_string();
    let list = blocking(move || browse(&root.0, &path)).await?;
    Ok(Json(Value::Array(list)))
}

async fn read_handler(
    State(root): State<FilesRoot>,
    Query(q): Query<FilesQuery>,
) -> Result<Json<Value>, FilesError> {
    let path = q.path()?.to_string();
    let v =
        blocking(move || read(&root.0, &path, q.offset.as_deref(), q.length.as_deref())).await?;
    Ok(Json(v))
}

async fn download_handler(
    State(root): State<FilesRoot>,
    Query(q): Query<FilesQuery>,
) -> Result<Response, FilesError> {
    let path = q.path()?.to_string();
    let name = disposition_name(&path);
    let (file, meta) = blocking(move || open_regular(&root.0, &path)).await?;
    let size = meta.len();
    // The file as long as it was when opened (stdout may still grow): the length is promised.
    let reader = tokio::io::AsyncReadExt::take(tokio::fs::File::from_std(file), size);
    let stream = futures_util::stream::unfold(reader, |mut r| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match tokio::io::AsyncReadExt::read(&mut r, &mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), r))
            }
            Err(e) => Some((Err(e), r)),
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A sandboxes directory with one sandbox `t1` holding `stdout`, `sub/f`, links in and out.
    fn fixture() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let sb = d.path().join("t1");
        std::fs::create_dir_all(sb.join("sub")).unwrap();
        std::fs::create_dir_all(d.path().join("t2")).unwrap();
        std::fs::write(sb.join("stdout"), "hello world\n").unwrap();
        std::fs::write(sb.join("sub/f"), "nested").unwrap();
        std::fs::write(d.path().join("t2/secret"), "other task").unwrap();
        symlink("/etc/passwd", sb.join("leak")).unwrap();
        symlink("/etc", sb.join("etcdir")).unwrap();
        symlink("stdout", sb.join("inside")).unwrap();
        symlink("../t2/secret", sb.join("sibling")).unwrap();
        symlink("sub", sb.join("subdir")).unwrap();
        d
    }

    fn status(r: Result<Resolved, FilesError>) -> u16 {
        match r {
            Ok(_) => 200,
            Err(e) => e.status().as_u16(),
        }
    }

    #[test]
    fn confinement() {
        let d = fixture();
        let root = d.path();
        let abs = |p: &str| root.join(p).display().to_string();
        assert_eq!(status(resolve(root, "t1/stdout")), 200);
        assert_eq!(status(resolve(root, "./t1/./sub/f")), 200);
        assert_eq!(status(resolve(root, &abs("t1/stdout"))), 200);
        assert_eq!(status(resolve(root, "t1/inside")), 200);
        assert_eq!(status(resolve(root, "t1/subdir/f")), 200);
        assert_eq!(status(resolve(root, "t1")), 200);
        assert_eq!(status(resolve(root, ".")), 200);
        // Out of the sandbox.
        assert_eq!(status(resolve(root, "t1/../t2/secret")), 403);
        assert_eq!(status(resolve(root, "../etc/passwd")), 403);
        assert_eq!(status(resolve(root, "t1/sub/../../..")), 403);
        assert_eq!(status(resolve(root, "/etc/passwd")), 403);
        assert_eq!(status(resolve(root, &format!("{}/../x", abs("t1")))), 403);
        assert_eq!(status(resolve(root, "t1/leak")), 403);
        assert_eq!(status(resolve(root, "t1/etcdir")), 403);
        assert_eq!(status(resolve(root, "t1/etcdir/passwd")), 403);
        assert_eq!(status(resolve(root, "t1/sibling")), 403);
        // Missing, malformed.
        assert_eq!(status(resolve(root, "t1/nope")), 404);
        assert_eq!(status(resolve(root, "nope/stdout")), 404);
        assert_eq!(status(resolve(root, "t1/stdout/x")), 404);
        assert_eq!(status(resolve(root, "")), 400);
        assert_eq!(status(resolve(root, "t1/a\0b")), 400);
    }

    #[test]
    fn a_link_swapped_in_after_resolving_is_refused_at_open() {
        let d = fixture();
        let root = d.path();
        std::fs::write(root.join("t1/sub/passwd"), "mine").unwrap();
        let res = resolve(root, "t1/sub/passwd").unwrap();
        // The task replaces the checked directory with a link out, then the agent opens.
        std::fs::remove_dir_all(root.join("t1/sub")).unwrap();
        symlink("/etc", root.join("t1/sub")).unwrap();
        assert!(matches!(
            open_confined(&res, "t1/sub/passwd"),
            Err(FilesError::Forbidden(_))
        ));
        let leaf = resolve(root, "t1/stdout").unwrap();
        std::fs::remove_file(root.join("t1/stdout")).unwrap();
        symlink("/etc/passwd", root.join("t1/stdout")).unwrap();
        assert!(matches!(
            open_confined(&leaf, "t1/stdout"),
            Err(FilesError::Forbidden(_))
        ));
    }

    #[test]
    fn read_offsets_and_lengths() {
        let d = fixture();
        let root = d.path();
        let r = read(root, "t1/stdout", None, None).unwrap();
        assert_eq!(r["data"], "hello world\n");
        assert_eq!(r["offset"], 0);
        assert_eq!(r["next_offset"], 12);
        let r = read(root, "t1/stdout", Some("6"), Some("5")).unwrap();
        assert_eq!(r["data"], "world");
        assert_eq!(r["offset"], 6);
        let r = read(root, "t1/stdout", Some("-1"), None).unwrap();
        assert_eq!(r["data"], "");
        assert_eq!(r["offset"], 12);
        let r = read(root, "t1/stdout", Some("100"), None).unwrap();
        assert_eq!(
            (r["data"].as_str(), r["offset"].as_u64()),
            (Some(""), Some(12))
        );
        let r = read(root, "t1/stdout", Some("0"), Some("0")).unwrap();
        assert_eq!(r["data"], "");
        for (o, l) in [(Some("-2"), None), (Some("x"), None), (None, Some("-1"))] {
            let e = read(root, "t1/stdout", o, l).unwrap_err();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{o:?} {l:?}");
        }
        assert_eq!(
            read(root, "t1/sub", None, None).unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            read(root, "t1/leak", None, None).unwrap_err().status(),
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn read_refuses_a_fifo_without_hanging() {
        let d = fixture();
        let fifo = d.path().join("t1/fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let e = read(d.path(), "t1/fifo", None, None).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn browse_lists_entries_without_following_links() {
        let d = fixture();
        let list = browse(d.path(), "t1/").unwrap();
        let paths: Vec<&str> = list.iter().filter_map(|e| e["path"].as_str()).collect();
        assert_eq!(
            paths,
            [
                "t1/etcdir",
                "t1/inside",
                "t1/leak",
                "t1/sibling",
                "t1/stdout",
                "t1/sub",
                "t1/subdir"
            ]
        );
        let stdout = &list[4];
        assert_eq!(stdout["size"], 12);
        assert!(stdout["mode"].as_str().unwrap().starts_with("-rw"));
        assert_eq!(stdout["nlink"], 1);
        assert!(list[2]["mode"].as_str().unwrap().starts_with('l'));
        assert!(list[5]["mode"].as_str().unwrap().starts_with('d'));
        assert_eq!(browse(d.path(), "t1/stdout").unwrap().len(), 1);
        assert!(matches!(
            browse(d.path(), "t1/etcdir"),
            Err(FilesError::Forbidden(_))
        ));
    }

    #[test]
    fn decoding_keeps_offsets_honest() {
        assert_eq!(decode(b"abc"), ("abc".into(), 3));
        let e = "é".as_bytes();
        assert_eq!(decode(&[b'a', e[0]]), ("a".into(), 1));
        assert_eq!(decode(&[b'a', e[0], e[1]]), ("aé".into(), 3));
        assert_eq!(decode(&[0xFF, b'a']).1, 2);
        assert_eq!(decode(&[e[0]]).1, 1);
    }

    #[test]
    fn modes_read_like_ls() {
        let d = fixture();
        let f = d.path().join("t1/stdout");
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o4754)).unwrap();
        assert_eq!(mode_string(&std::fs::metadata(&f).unwrap()), "-rwsr-xr--");
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o1644)).unwrap();
        assert_eq!(mode_string(&std::fs::metadata(&f).unwrap()), "-rw-r--r-T");
    }

    #[test]
    fn download_names_are_safe() {
        assert_eq!(disposition_name("t1/std\"out"), "std_out");
        assert_eq!(disposition_name("t1/stdout"), "stdout");
    }
}
