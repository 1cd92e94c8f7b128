//! Reading the whole store: every bucket listed and every record read with pipelined requests
//! (the client sends them all before waiting for any answer), blob chunks fetched the same way.

use super::batch::{Index, NodeMeta};
use super::codec::{self, Stored};
use super::fence::zk;
use super::layout;
use crate::store::records::{AgentRecord, AuditRecord, TaskRecord};
use crate::store::{Snapshot, StoreError, StoredEvent};
use futures_util::future::join_all;
use std::collections::BTreeSet;
use zookeeper_client::{Client, Error};

/// Everything read: the snapshot, the index, and the blob chunks records point at.
pub struct Scanned {
    pub snapshot: Snapshot,
    pub index: Index,
    pub referenced: BTreeSet<String>,
}

fn corrupt(key: &str, why: &str) -> StoreError {
    StoreError::Zk(format!("stored znode '{key}' is corrupt: {why}"))
}

fn from_json<T: serde::de::DeserializeOwned>(key: &str, body: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(body).map_err(|source| StoreError::Corrupt {
        key: key.to_owned(),
        source,
    })
}

/// Lists the children of `path`; a missing znode has none.
async fn children(client: &Client, path: String) -> Result<Vec<String>, StoreError> {
    match client.list_children(&path).await {
        Ok(mut c) => {
            c.sort();
            Ok(c)
        }
        Err(Error::NoNode) => Ok(Vec::new()),
        Err(e) => Err(zk("list the store")(e)),
    }
}

/// Reads every value (following blob pointers) of the record paths given (relative to
/// `state/`); a record deleted meanwhile is left out.
async fn read_values(
    client: &Client,
    root: &str,
    paths: Vec<String>,
) -> Result<Vec<(String, Vec<u8>, Vec<String>)>, StoreError> {
    let gets = paths.iter().map(|p| {
        let full = format!("{root}/state/{p}");
        let client = client.clone();
        async move { client.get_data(&full).await }
    });
    let answers = join_all(gets).await;
    let mut out = Vec::with_capacity(paths.len());
    let mut pointed = Vec::new();
    for (path, answer) in paths.into_iter().zip(answers) {
        let data = match answer {
            Ok((data, _)) => data,
            Err(Error::NoNode) => continue,
            Err(e) => return Err(zk("read a record")(e)),
        };
        match codec::decode(&data) {
            Some(Stored::Inline(v)) => out.push((path, v, Vec::new())),
            Some(Stored::Chunks(p)) => {
                pointed.push((out.len(), p.clone()));
                out.push((path, Vec::new(), p.chunks));
            }
            None => return Err(corrupt(&path, "neither an inline value nor a blob pointer")),
        }
    }
    for (i, pointer) in pointed {
        let value = read_blob(client, root, &pointer).await?;
        out[i].1 = value;
    }
    Ok(out)
}

/// A value kept in blob chunks.
pub async fn read_blob(
    client: &Client,
    root: &str,
    pointer: &codec::Pointer,
) -> Result<Vec<u8>, StoreError> {
    let gets = pointer.chunks.iter().map(|c| {
        let full = format!("{root}/blobs/{c}");
        let client = client.clone();
        async move { client.get_data(&full).await }
    });
    let mut value = Vec::with_capacity(pointer.len);
    for (name, answer) in pointer.chunks.iter().zip(join_all(gets).await) {
        let (data, _) = answer.map_err(|e| StoreError::Zk(format!("read blob {name}: {e}")))?;
        value.extend(data);
    }
    if value.len() != pointer.len {
        return Err(corrupt(
            &pointer.chunks.join(","),
            "blob chunks of the wrong length",
        ));
    }
    Ok(value)
}

/// The audit entries of one page.
pub async fn read_audit_page(
    client: &Client,
    root: &str,
    page: u64,
) -> Result<Vec<AuditRecord>, StoreError> {
    let path = format!("{root}/state/{}", layout::audit_page_path(page));
    match client.get_data(&path).await {
        Ok((data, _)) => from_json(&path, &data),
        Err(Error::NoNode) => Ok(Vec::new()),
        Err(e) => Err(zk("read the audit log")(e)),
    }
}

/// The audit pages that exist, in order.
pub async fn audit_pages(client: &Client, root: &str) -> Result<Vec<u64>, StoreError> {
    Ok(children(client, format!("{root}/state/audit"))
        .await?
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect())
}

fn key_of(path: &str) -> Result<String, StoreError> {
    let name = path.rsplit('/').next().unwrap_or_default();
    layout::unescape(name).ok_or_else(|| corrupt(path, "not an escaped key"))
}

fn number_of(path: &str) -> Result<u64, StoreError> {
    let name = path.rsplit('/').next().unwrap_or_default();
    name.parse().map_err(|_| corrupt(path, "not a number"))
}

/// Reads everything under `root`.
pub async fn scan(client: &Client, root: &str) -> Result<Scanned, StoreError> {
    // Every bucket of every collection, and the events, listed at once.
    let mut dirs: Vec<String> = Vec::new();
    for coll in layout::COLLECTIONS {
        for b in layout::buckets() {
            dirs.push(format!("{coll}/{b}"));
        }
    }
    dirs.push("events".into());
    let listings = join_all(
        dirs.iter()
            .map(|d| children(client, format!("{root}/state/{d}"))),
    )
    .await;
    let mut paths = Vec::new();
    for (dir, listing) in dirs.iter().zip(listings) {
        paths.extend(listing?.into_iter().map(|n| format!("{dir}/{n}")));
    }
    let values = read_values(client, root, paths).await?;

    let mut snap = Snapshot::default();
    let mut index = Index::new();
    let mut referenced = BTreeSet::new();
    for (path, body, blobs) in values {
        let coll = path.split('/').next().unwrap_or_default();
        let mut job = None;
        match coll {
            "apps" => snap.apps.push((key_of(&path)?, from_json(&path, &body)?)),
            "deployments" => snap
                .deployments
                .push((key_of(&path)?, from_json(&path, &body)?)),
            "groups" => snap.groups.push((key_of(&path)?, from_json(&path, &body)?)),
            "jobs" => snap.jobs.push((key_of(&path)?, from_json(&path, &body)?)),
            "tasks" => snap.tasks.push(from_json::<TaskRecord>(&path, &body)?),
            "agents" => snap.agents.push(from_json::<AgentRecord>(&path, &body)?),
            "meta" => snap.meta.push((
                key_of(&path)?,
                String::from_utf8(body).map_err(|_| corrupt(&path, "not UTF-8"))?,
            )),
            "app_versions" => {
                let name = path.rsplit('/').next().unwrap_or_default();
                let (app, version) = name
                    .split_once('@')
                    .and_then(|(a, v)| Some((layout::unescape(a)?, layout::unescape(v)?)))
                    .ok_or_else(|| corrupt(&path, "not <app>@<version>"))?;
                snap.app_versions
                    .push((app, version, from_json(&path, &body)?));
            }
            "runs" => {
                #[derive(serde::Deserialize)]
                struct Run {
                    job: String,
                    run: serde_json::Value,
                }
                let r: Run = from_json(&path, &body)?;
                snap.runs.push((number_of(&path)?, r.run));
                job = Some(r.job);
            }
            "events" => {
                #[derive(serde::Deserialize)]
                struct Event {
                    #[serde(rename = "type")]
                    event_type: String,
                    body: String,
                }
                let e: Event = from_json(&path, &body)?;
                snap.events.push(StoredEvent {
                    id: number_of(&path)?,
                    event_type: e.event_type,
                    body: e.body,
                });
            }
            _ => return Err(corrupt(&path, "in no known collection")),
        }
        referenced.extend(blobs.iter().cloned());
        index.nodes.insert(path, NodeMeta { blobs, job });
    }
    snap.apps.sort_by(|a, b| a.0.cmp(&b.0));
    snap.deployments.sort_by(|a, b| a.0.cmp(&b.0));
    snap.groups.sort_by(|a, b| a.0.cmp(&b.0));
    snap.jobs.sort_by(|a, b| a.0.cmp(&b.0));
    snap.meta.sort_by(|a, b| a.0.cmp(&b.0));
    snap.tasks
        .sort_by(|a, b| a.info.task_id.as_str().cmp(b.info.task_id.as_str()));
    snap.agents.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    snap.app_versions
        .sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    snap.runs.sort_by_key(|r| r.0);
    snap.events.sort_by_key(|e| e.id);

    // The audit log: only the last page is read (the next seq and the page being filled).
    let pages = audit_pages(client, root).await?;
    index.audit_pages = pages.iter().copied().collect();
    if let Some(&last) = pages.last() {
        let entries = read_audit_page(client, root, last).await?;
        if let Some(max) = entries.iter().map(|a| a.seq).max() {
            index.audit_next = max + 1;
        }
        if layout::audit_page(index.audit_next) == last {
            index.audit_tail = entries;
        }
    }
    Ok(Scanned {
        snapshot: snap,
        index,
        referenced,
    })
}
