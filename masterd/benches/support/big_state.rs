//! The master's state for the benches that read it at scale: 1,000 apps of 10 running tasks each
//! on 100 agents (the figures issues 13 and 16 name).

use gantry_masterd::cluster::AgentEntry;
use gantry_masterd::services::app_definition::AppDefinition;
use gantry_masterd::services::launch::{new_task_id, task_info};
use gantry_masterd::state::MasterState;
use gantry_masterd::store::records::{AgentLifecycle, AgentRecord, TaskOwner, TaskRecord};
use gantry_proto::{AgentId, AgentInfo, TaskState};

pub const APPS: usize = 1_000;
pub const PER_APP: usize = 10;
pub const AGENTS: usize = 100;

/// The state: every app with its tasks, ids as the master makes them.
pub fn state() -> MasterState {
    let mut st = MasterState::default();
    for a in 0..AGENTS {
        let id = AgentId(format!("agent-{a}"));
        let info = AgentInfo {
            hostname: format!("node{a}.example"),
            ..AgentInfo::default()
        };
        let record = AgentRecord {
            id: id.clone(),
            info,
            lifecycle: AgentLifecycle::Active,
            registered_at: 0.0,
            reregistered_at: None,
            unreachable_since: None,
        };
        st.cluster
            .agents
            .insert(id, AgentEntry::new(record, None, false));
    }
    for i in 0..APPS {
        let json = format!(
            r#"{{"id":"/team{}/app-{i}","cmd":"sleep 3600","cpus":0.1,"mem":32,"instances":{PER_APP},"labels":{{"team":"t{}"}}}}"#,
            i % 20,
            i % 20
        );
        let app = AppDefinition::parse(json.as_bytes()).expect("a valid app");
        for k in 0..PER_APP {
            let tid = new_task_id(&app.id);
            let agent = AgentId(format!("agent-{}", (i * PER_APP + k) % AGENTS));
            let info = task_info(&app, tid.clone(), agent, vec![31000], None);
            let rec = TaskRecord {
                info,
                owner: TaskOwner::App {
                    id: app.id.clone(),
                    version: app.version.clone(),
                },
                state: TaskState::TaskRunning,
                status: None,
                last_seq: 1,
                staged_at: 1.0,
                started_at: Some(2.0),
                unreachable_since: None,
                expunged: false,
                kill_requested: false,
                health: Vec::new(),
            };
            st.cluster.put_task(rec);
        }
        st.services.apps.insert(app.id.clone(), app);
    }
    st
}
