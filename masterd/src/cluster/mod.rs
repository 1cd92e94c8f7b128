//! The master's core: cluster state (apps, tasks, agents) behind one lock, and the typed actions the
//! APIs and the agent link call. Every action writes to the store before it answers or sends.

pub mod agents;
pub mod state;
pub mod updates;

use crate::config::MasterConfig;
use crate::join_tokens::JoinTokens;
use crate::services::app_definition::AppDefinition;
use crate::store::records::TaskRecord;
use crate::store::{AsyncStore, StoreError, Write};
use gantry_proto::{AgentId, MasterMessage, TaskId};
pub use state::{AgentEntry, ClusterState, Conn};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{Mutex, MutexGuard, Notify};

/// An action that could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("An app with id [{0}] already exists.")]
    AppExists(String),
    #[error("App '{0}' does not exist")]
    AppNotFound(String),
    #[error(transparent)]
    PortsExhausted(#[from] state::PortsExhausted),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The master core, shared by the API handlers, the agent link and the background loops.
pub struct Core {
    pub cfg: MasterConfig,
    /// The tokens agents may present.
    pub tokens: Arc<JoinTokens>,
    /// This master's id (stable across restarts; kept in the store).
    pub master_id: String,
    pub started_at: f64,
    store: AsyncStore,
    state: Mutex<ClusterState>,
    /// Wakes the service controller.
    wake: Notify,
    next_conn: AtomicU64,
}

impl Core {
    /// A core over loaded state.
    pub fn new(
        cfg: MasterConfig,
        tokens: Arc<JoinTokens>,
        master_id: String,
        store: AsyncStore,
        state: ClusterState,
    ) -> Arc<Self> {
        Arc::new(Self {
            cfg,
            tokens,
            master_id,
            started_at: gantry_proto::time::now_secs(),
            store,
            state: Mutex::new(state),
            wake: Notify::new(),
            next_conn: AtomicU64::new(1),
        })
    }

    /// Locks the state for reading (API handlers render from it).
    pub async fn state(&self) -> MutexGuard<'_, ClusterState> {
        self.state.lock().await
    }

    /// Asks the service controller to run soon.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Resolves when someone called `wake`.
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    pub(crate) fn store(&self) -> &AsyncStore {
        &self.store
    }

    pub(crate) fn new_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Creates an app. Stored before this returns.
    pub async fn create_app(&self, app: AppDefinition) -> Result<AppDefinition, CoreError> {
        let mut st = self.state.lock().await;
        if st.apps.contains_key(&app.id) {
            return Err(CoreError::AppExists(app.id));
        }
        let mut app = app;
        st.assign_service_ports(&mut app)?;
        let json = serde_json::to_value(&app).unwrap_or_default();
        self.store
            .apply(vec![Write::PutApp {
                id: app.id.clone(),
                app: json,
            }])
            .await?;
        st.apps.insert(app.id.clone(), app.clone());
        drop(st);
        self.wake();
        Ok(app)
    }

    /// Deletes an app: it disappears at once; its tasks are killed by the controller.
    pub async fn delete_app(&self, id: &str) -> Result<(), CoreError> {
        let mut st = self.state.lock().await;
        if !st.apps.contains_key(id) {
            return Err(CoreError::AppNotFound(id.to_owned()));
        }
        self.store
            .apply(vec![Write::DeleteApp(id.to_owned())])
            .await?;
        st.apps.remove(id);
        st.waiting.remove(id);
        st.launch_delays.remove(id);
        drop(st);
        self.wake();
        Ok(())
    }

    /// Kills tasks of `app_id` (those in `only`, or all of them). With `scale`, the app's instance
    /// count goes down by the number killed (a scaling change, stored first); without it the
    /// controller replaces them. Returns the killed tasks as they were.
    pub async fn kill_app_tasks(
        &self,
        app_id: &str,
        only: Option<&[TaskId]>,
        scale: bool,
        version: &str,
    ) -> Result<Vec<TaskRecord>, CoreError> {
        let mut guard = self.state.lock().await;
        let st = &mut *guard;
        let Some(app) = st.apps.get(app_id) else {
            return Err(CoreError::AppNotFound(app_id.to_owned()));
        };
        let victims: Vec<TaskRecord> = st
            .app_tasks(app_id)
            .filter(|t| only.is_none_or(|ids| ids.contains(&t.info.task_id)))
            .filter(|t| !t.kill_requested)
            .cloned()
            .collect();
        let mut writes = Vec::new();
        let mut scaled = None;
        if scale && !victims.is_empty() {
            let mut a = app.clone();
            a.instances = a.instances.saturating_sub(victims.len() as u32);
            a.stamp_scaling(version);
            writes.push(Write::PutApp {
                id: a.id.clone(),
                app: serde_json::to_value(&a).unwrap_or_default(),
            });
            scaled = Some(a);
        }
        let killed: Vec<TaskRecord> = victims
            .iter()
            .map(|t| TaskRecord {
                kill_requested: true,
                ..t.clone()
            })
            .collect();
        writes.extend(killed.iter().map(|t| Write::PutTask(Box::new(t.clone()))));
        self.store.apply(writes).await?;
        if let Some(a) = scaled {
            st.apps.insert(a.id.clone(), a);
        }
        for t in killed {
            let msg = MasterMessage::KillTask {
                task_id: t.info.task_id.clone(),
                grace_period_secs: Some(t.info.kill_grace_period_secs),
            };
            Self::send(st, &t.info.agent_id, msg);
            st.tasks.insert(t.info.task_id.clone(), t);
        }
        drop(guard);
        self.wake();
        Ok(victims)
    }

    /// Sends a message to an agent if it is connected; false when it is not.
    pub(crate) fn send(st: &ClusterState, agent: &AgentId, msg: MasterMessage) -> bool {
        st.agents
            .get(agent)
            .and_then(|a| a.conn.as_ref())
            .is_some_and(|c| c.tx.send(msg).is_ok())
    }
}
