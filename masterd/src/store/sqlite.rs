//! The embedded SQLite store: versioned migrations, WAL journal, every batch one durable transaction.

use super::records::{AgentRecord, AuditRecord, TaskRecord};
use super::{Snapshot, Store, StoreError, StoredEvent, Write, AUDIT_KEPT, EVENTS_KEPT};
use rusqlite::{params, Connection};
use std::path::Path;
use std::sync::Mutex;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: apps, tasks, agents, meta.
    "CREATE TABLE apps (id TEXT PRIMARY KEY, body TEXT NOT NULL);
     CREATE TABLE tasks (id TEXT PRIMARY KEY, app_id TEXT NOT NULL, body TEXT NOT NULL);
     CREATE INDEX tasks_by_app ON tasks(app_id);
     CREATE TABLE agents (id TEXT PRIMARY KEY, body TEXT NOT NULL);
     CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    // 2: the audit log of mutations.
    "CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);",
    // 3: batch jobs and their runs (history included).
    "CREATE TABLE jobs (name TEXT PRIMARY KEY, body TEXT NOT NULL);
     CREATE TABLE runs (id INTEGER PRIMARY KEY, job TEXT NOT NULL, body TEXT NOT NULL);
     CREATE INDEX runs_by_job ON runs(job);",
    // 4: every version of every app, and deployment plans with their progress. The apps stored
    // before keep their current definition as their one version.
    "CREATE TABLE app_versions (app_id TEXT NOT NULL, version TEXT NOT NULL, body TEXT NOT NULL,
                                PRIMARY KEY (app_id, version));
     INSERT INTO app_versions (app_id, version, body)
         SELECT id, COALESCE(json_extract(body, '$.version'), ''), body FROM apps;
     CREATE TABLE deployments (id TEXT PRIMARY KEY, body TEXT NOT NULL);",
    // 5: the event stream's history, for `Last-Event-ID` replay across restarts.
    "CREATE TABLE events (id INTEGER PRIMARY KEY, event_type TEXT NOT NULL, body TEXT NOT NULL);",
    // 6: groups created on their own through /v2/groups (their dependencies and version).
    "CREATE TABLE groups (id TEXT PRIMARY KEY, body TEXT NOT NULL);",
];

/// A SQLite database file (or an in-memory one for tests).
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed) `<state_dir>/gantry.db` and migrates it to the latest schema.
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(state_dir).map_err(|source| StoreError::StateDir {
            path: state_dir.to_owned(),
            source,
        })?;
        let conn = Connection::open(state_dir.join("gantry.db"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        Self::with_connection(conn)
    }

    /// An in-memory database (tests).
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::with_connection(Connection::open_in_memory()?)
    }

    fn with_connection(mut conn: Connection) -> Result<Self, StoreError> {
        migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// The schema version the database is at.
    pub fn schema_version(&self) -> Result<usize, StoreError> {
        let conn = self.lock();
        let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        Ok(v as usize)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-applied transaction (it rolls back
        // on drop), so a poisoned lock is still safe to use.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "store migrated");
    }
    Ok(())
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    // Serializing our own plain data types cannot fail (no maps with non-string keys).
    serde_json::to_string(v).unwrap_or_default()
}

fn from_json<T: serde::de::DeserializeOwned>(key: &str, body: &str) -> Result<T, StoreError> {
    serde_json::from_str(body).map_err(|source| StoreError::Corrupt {
        key: key.to_owned(),
        source,
    })
}

impl Store for SqliteStore {
    fn apply(&self, writes: &[Write]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        for w in writes {
            match w {
                Write::PutApp { id, app } => {
                    tx.execute(
                        "INSERT OR REPLACE INTO apps (id, body) VALUES (?1, ?2)",
                        params![id, to_json(app)],
                    )?;
                }
                Write::DeleteApp(id) => {
                    tx.execute("DELETE FROM apps WHERE id = ?1", params![id])?;
                    tx.execute("DELETE FROM app_versions WHERE app_id = ?1", params![id])?;
                }
                Write::PutAppVersion { id, version, app } => {
                    tx.execute(
                        "INSERT OR REPLACE INTO app_versions (app_id, version, body) \
                         VALUES (?1, ?2, ?3)",
                        params![id, version, to_json(app)],
                    )?;
                }
                Write::PutDeployment { id, deployment } => {
                    tx.execute(
                        "INSERT OR REPLACE INTO deployments (id, body) VALUES (?1, ?2)",
                        params![id, to_json(deployment)],
                    )?;
                }
                Write::PutGroup { id, group } => {
                    tx.execute(
                        "INSERT OR REPLACE INTO groups (id, body) VALUES (?1, ?2)",
                        params![id, to_json(group)],
                    )?;
                }
                Write::DeleteGroup(id) => {
                    tx.execute("DELETE FROM groups WHERE id = ?1", params![id])?;
                }
                Write::DeleteDeployment(id) => {
                    tx.execute("DELETE FROM deployments WHERE id = ?1", params![id])?;
                }
                Write::PutTask(t) => {
                    tx.execute(
                        "INSERT OR REPLACE INTO tasks (id, app_id, body) VALUES (?1, ?2, ?3)",
                        params![t.info.task_id.as_str(), t.owner.key(), to_json(t)],
                    )?;
                }
                Write::DeleteTask(id) => {
                    tx.execute("DELETE FROM tasks WHERE id = ?1", params![id])?;
                }
                Write::PutAgent(a) => {
                    tx.execute(
                        "INSERT OR REPLACE INTO agents (id, body) VALUES (?1, ?2)",
                        params![a.id.as_str(), to_json(a)],
                    )?;
                }
                Write::DeleteMeta(key) => {
                    tx.execute("DELETE FROM meta WHERE key = ?1", params![key])?;
                }
                Write::PutJob { name, job } => {
                    tx.execute(
                        "INSERT OR REPLACE INTO jobs (name, body) VALUES (?1, ?2)",
                        params![name, to_json(job)],
                    )?;
                }
                Write::DeleteJob(name) => {
                    tx.execute("DELETE FROM jobs WHERE name = ?1", params![name])?;
                    tx.execute("DELETE FROM runs WHERE job = ?1", params![name])?;
                }
                Write::PutRun { id, job, run } => {
                    tx.execute(
                        "INSERT OR REPLACE INTO runs (id, job, body) VALUES (?1, ?2, ?3)",
                        params![*id as i64, job, to_json(run)],
                    )?;
                }
                Write::DeleteRun(id) => {
                    tx.execute("DELETE FROM runs WHERE id = ?1", params![*id as i64])?;
                }
                Write::PutMeta { key, value } => {
                    tx.execute(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                        params![key, value],
                    )?;
                }
                Write::Audit(a) => {
                    tx.execute("INSERT INTO audit (body) VALUES (?1)", params![to_json(a)])?;
                    let seq = tx.last_insert_rowid();
                    tx.execute(
                        "DELETE FROM audit WHERE seq <= ?1",
                        params![seq - AUDIT_KEPT as i64],
                    )?;
                }
                Write::Event(e) => {
                    tx.execute(
                        "INSERT OR REPLACE INTO events (id, event_type, body) VALUES (?1, ?2, ?3)",
                        params![e.id as i64, e.event_type, e.body],
                    )?;
                    tx.execute(
                        "DELETE FROM events WHERE id <= ?1",
                        params![e.id as i64 - EVENTS_KEPT as i64],
                    )?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn load(&self) -> Result<Snapshot, StoreError> {
        let conn = self.lock();
        let rows = |sql: &str| -> Result<Vec<(String, String)>, StoreError> {
            let mut stmt = conn.prepare(sql)?;
            let out = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(out)
        };
        let apps = rows("SELECT id, body FROM apps ORDER BY id")?
            .into_iter()
            .map(|(id, body)| Ok((id.clone(), from_json(&id, &body)?)))
            .collect::<Result<_, StoreError>>()?;
        let tasks = rows("SELECT id, body FROM tasks ORDER BY id")?
            .into_iter()
            .map(|(id, body)| from_json::<TaskRecord>(&id, &body))
            .collect::<Result<_, _>>()?;
        let agents = rows("SELECT id, body FROM agents ORDER BY id")?
            .into_iter()
            .map(|(id, body)| from_json::<AgentRecord>(&id, &body))
            .collect::<Result<_, _>>()?;
        let meta = rows("SELECT key, value FROM meta ORDER BY key")?;
        let jobs = rows("SELECT name, body FROM jobs ORDER BY name")?
            .into_iter()
            .map(|(name, body)| Ok((name.clone(), from_json(&name, &body)?)))
            .collect::<Result<_, StoreError>>()?;
        let runs = {
            let mut stmt = conn.prepare("SELECT id, body FROM runs ORDER BY id")?;
            let out = stmt
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            out.into_iter()
                .map(|(id, body)| Ok((id as u64, from_json(&format!("run {id}"), &body)?)))
                .collect::<Result<_, StoreError>>()?
        };
        let app_versions = {
            let mut stmt = conn.prepare(
                "SELECT app_id, version, body FROM app_versions ORDER BY app_id, version",
            )?;
            let out = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            out.into_iter()
                .map(|(id, v, body)| {
                    let app = from_json(&format!("{id} version {v}"), &body)?;
                    Ok((id, v, app))
                })
                .collect::<Result<_, StoreError>>()?
        };
        let deployments = rows("SELECT id, body FROM deployments ORDER BY id")?
            .into_iter()
            .map(|(id, body)| Ok((id.clone(), from_json(&id, &body)?)))
            .collect::<Result<_, StoreError>>()?;
        let groups = rows("SELECT id, body FROM groups ORDER BY id")?
            .into_iter()
            .map(|(id, body)| Ok((id.clone(), from_json(&id, &body)?)))
            .collect::<Result<_, StoreError>>()?;
        let events = {
            let mut stmt = conn.prepare("SELECT id, event_type, body FROM events ORDER BY id")?;
            let out = stmt
                .query_map([], |r| {
                    Ok(StoredEvent {
                        id: r.get::<_, i64>(0)? as u64,
                        event_type: r.get(1)?,
                        body: r.get(2)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            out
        };
        Ok(Snapshot {
            apps,
            tasks,
            agents,
            meta,
            jobs,
            runs,
            app_versions,
            deployments,
            events,
            groups,
        })
    }

    fn audit_log(&self, after: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare("SELECT seq, body FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
        let rows = stmt
            .query_map(params![after as i64, limit as i64], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(seq, body)| {
                let mut a: AuditRecord = from_json(&format!("audit {seq}"), &body)?;
                a.seq = seq as u64;
                Ok(a)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::AgentLifecycle;
    use gantry_proto::{AgentInfo, CommandInfo, Resources, TaskInfo, TaskState};

    fn task(id: &str) -> TaskRecord {
        TaskRecord {
            info: TaskInfo {
                task_id: id.into(),
                name: "app".into(),
                agent_id: "a1".into(),
                command: CommandInfo::default(),
                resources: Resources::scalars(0.1, 32.0, 0.0),
                ports: vec![31000],
                kill_grace_period_secs: 3.0,
                ..TaskInfo::default()
            },
            owner: crate::store::records::TaskOwner::App {
                id: "/app".into(),
                version: "v1".into(),
            },
            state: TaskState::TaskStaging,
            status: None,
            last_seq: 0,
            staged_at: 1.0,
            started_at: None,
            unreachable_since: None,
            expunged: false,
            kill_requested: false,
            health: Vec::new(),
        }
    }

    #[test]
    fn migration_4_keeps_each_stored_app_as_its_one_version() {
        let conn = Connection::open_in_memory().unwrap();
        for (i, sql) in MIGRATIONS.iter().take(3).enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", (i + 1) as i64)
                .unwrap();
        }
        conn.execute(
            "INSERT INTO apps (id, body) VALUES ('/web', ?1)",
            params![r#"{"id":"/web","version":"2026-01-01T00:00:00.000Z"}"#],
        )
        .unwrap();
        let s = SqliteStore::with_connection(conn).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len());
        let snap = s.load().unwrap();
        assert_eq!(
            snap.app_versions,
            vec![(
                "/web".to_string(),
                "2026-01-01T00:00:00.000Z".to_string(),
                serde_json::json!({"id": "/web", "version": "2026-01-01T00:00:00.000Z"})
            )]
        );
        s.apply(&[
            Write::PutDeployment {
                id: "d1".into(),
                deployment: serde_json::json!({"steps": []}),
            },
            Write::DeleteApp("/web".into()),
        ])
        .unwrap();
        let snap = s.load().unwrap();
        assert!(snap.app_versions.is_empty(), "a deleted app's versions go");
        assert_eq!(
            snap.deployments,
            vec![("d1".to_string(), serde_json::json!({"steps": []}))]
        );
        s.apply(&[Write::DeleteDeployment("d1".into())]).unwrap();
        assert!(s.load().unwrap().deployments.is_empty());
        s.apply(&[Write::PutGroup {
            id: "/g".into(),
            group: serde_json::json!({"id": "/g"}),
        }])
        .unwrap();
        assert_eq!(s.load().unwrap().groups.len(), 1);
        s.apply(&[Write::DeleteGroup("/g".into())]).unwrap();
        assert!(s.load().unwrap().groups.is_empty());
    }

    #[test]
    fn batches_round_trip_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SqliteStore::open(dir.path()).unwrap();
            assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len());
            s.apply(&[
                Write::PutApp {
                    id: "/app".into(),
                    app: serde_json::json!({"id": "/app", "instances": 2}),
                },
                Write::PutTask(Box::new(task("t1"))),
                Write::PutTask(Box::new(task("t2"))),
                Write::PutAgent(Box::new(AgentRecord {
                    id: "a1".into(),
                    info: AgentInfo::default(),
                    lifecycle: AgentLifecycle::Active,
                    registered_at: 1.0,
                    reregistered_at: None,
                    unreachable_since: None,
                })),
                Write::PutMeta {
                    key: "master_id".into(),
                    value: "m".into(),
                },
            ])
            .unwrap();
            s.apply(&[Write::DeleteTask("t2".into())]).unwrap();
        }
        let s = SqliteStore::open(dir.path()).unwrap();
        let snap = s.load().unwrap();
        assert_eq!(snap.apps.len(), 1);
        assert_eq!(snap.apps[0].1["instances"], 2);
        assert_eq!(snap.tasks, vec![task("t1")]);
        assert_eq!(snap.agents.len(), 1);
        assert_eq!(snap.meta, vec![("master_id".into(), "m".into())]);
    }

    #[test]
    fn a_failing_batch_changes_nothing() {
        let s = SqliteStore::in_memory().unwrap();
        s.apply(&[Write::PutTask(Box::new(task("t1")))]).unwrap();
        // Drop the table under the store to force the second statement of a batch to fail.
        s.lock().execute_batch("DROP TABLE agents").unwrap();
        let err = s.apply(&[
            Write::DeleteTask("t1".into()),
            Write::PutAgent(Box::new(AgentRecord {
                id: "a1".into(),
                info: AgentInfo::default(),
                lifecycle: AgentLifecycle::Active,
                registered_at: 1.0,
                reregistered_at: None,
                unreachable_since: None,
            })),
        ]);
        assert!(err.is_err());
        let snap = s
            .lock()
            .query_row("SELECT COUNT(*) FROM tasks", [], |r| r.get::<_, i64>(0));
        assert_eq!(
            snap.unwrap(),
            1,
            "the delete was rolled back with the failed batch"
        );
    }

    #[test]
    fn events_survive_a_reopen_and_only_the_newest_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let event = |id: u64| {
            Write::Event(Box::new(StoredEvent {
                id,
                event_type: "app_terminated_event".into(),
                body: format!("{{\"n\":{id}}}"),
            }))
        };
        {
            let s = SqliteStore::open(dir.path()).unwrap();
            s.apply(&[event(1), event(2)]).unwrap();
            s.apply(&[event(EVENTS_KEPT + 1)]).unwrap();
        }
        let snap = SqliteStore::open(dir.path()).unwrap().load().unwrap();
        let ids: Vec<u64> = snap.events.iter().map(|e| e.id).collect();
        assert_eq!(
            ids,
            vec![2, EVENTS_KEPT + 1],
            "event 1 fell out of the kept window"
        );
        assert_eq!(snap.events[0].body, "{\"n\":2}");
        assert_eq!(snap.events[0].event_type, "app_terminated_event");
    }

    #[test]
    fn the_audit_log_appends_in_order_and_pages() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        let entry = |path: &str| {
            Write::Audit(Box::new(AuditRecord {
                seq: 0,
                at: 1.5,
                principal: "ops".into(),
                method: "POST".into(),
                path: path.into(),
                status: 201,
                remote: "127.0.0.1:9".into(),
            }))
        };
        s.apply(&[entry("/v2/apps"), entry("/v2/apps/a")]).unwrap();
        s.apply(&[entry("/v2/apps/b")]).unwrap();
        let all = s.audit_log(0, 10).unwrap();
        assert_eq!(all.len(), 3);
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(all[2].path, "/v2/apps/b");
        let page = s.audit_log(all[0].seq, 1).unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].path, "/v2/apps/a");
    }
}
