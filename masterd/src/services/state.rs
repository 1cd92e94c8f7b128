//! What the services controller holds in memory beside the core's tasks: the app definitions, each
//! app's launch delay after failures (Marathon's backoff) and why an app waits. Guarded by the
//! master's one lock, next to the core's state, so a controller run sees apps and tasks together.
//! Also every stored version of each app, the deployments in progress and readiness results.

use super::app_definition::AppDefinition;
use super::deployments::DeploymentPlan;
use super::groups::GroupRecord;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The range service ports are assigned from (Marathon's `local_port_min`..`local_port_max`).
pub const SERVICE_PORTS: std::ops::RangeInclusive<u32> = 10000..=20000;

/// Too few free service ports for an app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "no free service ports: the app asks for {needed} (port 0) and {free} of 10000-20000 are \
     free; give fixed ports, or delete apps that hold service ports"
)]
pub struct PortsExhausted {
    pub needed: usize,
    pub free: usize,
}

/// The launch delay of an app after failures (Marathon's backoff).
#[derive(Clone, Debug)]
pub struct LaunchDelay {
    pub delay_secs: f64,
    pub until: f64,
}

/// Why an app (or a job) has instances that are not placed.
#[derive(Clone, Debug)]
pub struct Waiting {
    pub since: f64,
    pub reason: String,
    pub count: usize,
}

/// The services controller's state.
#[derive(Debug, Default)]
pub struct ServiceState {
    pub apps: BTreeMap<String, AppDefinition>,
    pub launch_delays: HashMap<String, LaunchDelay>,
    pub waiting: BTreeMap<String, Waiting>,
    /// Every stored version of each app, by app id then version.
    pub versions: BTreeMap<String, BTreeMap<String, AppDefinition>>,
    /// The deployments in progress, by id.
    pub deployments: BTreeMap<String, DeploymentPlan>,
    /// The groups created on their own (`/v2/groups`), by id; the rest of the tree is implied by
    /// the apps' ids.
    pub groups: BTreeMap<String, GroupRecord>,
    /// Readiness results of new tasks during deployments (memory only: a restart probes again).
    pub readiness: super::readiness::ReadinessState,
}

impl ServiceState {
    /// One stored version of an app.
    pub fn version(&self, app: &str, version: &str) -> Option<&AppDefinition> {
        self.versions.get(app)?.get(version)
    }

    /// The deployments that change any of `apps` (they lock them), by id.
    pub fn locking<'a>(&self, apps: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let apps: Vec<&str> = apps.into_iter().collect();
        self.deployments
            .values()
            .filter(|d| apps.iter().any(|a| d.affects(a)))
            .map(|d| d.id.clone())
            .collect()
    }

    /// Does a deployment hold `app` back until an earlier step (what it depends on) is done?
    pub fn held(&self, app: &str) -> bool {
        self.deployments.values().any(|d| d.holds(app))
    }

    /// Is a deployment's step in progress restarting `app` (a rolling replace)?
    pub fn restarting(&self, app: &str) -> bool {
        self.deployments.values().any(|d| d.restarting(app))
    }

    /// Gives every port definition asking for port 0 a service port from 10000-20000 (Marathon's
    /// default `local_port_min`/`max`), unique across apps. When the range has too few free ports
    /// nothing is assigned and the error says how many were needed and free.
    pub fn assign_service_ports(&self, app: &mut AppDefinition) -> Result<(), PortsExhausted> {
        let taken: HashSet<u32> = self
            .apps
            .values()
            .filter(|a| a.id != app.id)
            .flat_map(|a| a.port_definitions.iter().map(|p| p.port))
            .chain(app.port_definitions.iter().map(|p| p.port))
            .collect();
        let needed = app.port_definitions.iter().filter(|p| p.port == 0).count();
        let free: Vec<u32> = SERVICE_PORTS
            .filter(|p| !taken.contains(p))
            .take(needed)
            .collect();
        if free.len() < needed {
            return Err(PortsExhausted {
                needed,
                free: free.len(),
            });
        }
        let mut free = free.into_iter();
        for pd in app.port_definitions.iter_mut().filter(|p| p.port == 0) {
            pd.port = free.next().unwrap_or_default();
        }
        Ok(())
    }
}
