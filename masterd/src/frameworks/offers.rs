//! Offers: every [`super::CYCLE`] each connected agent's free resources (what its tasks and
//! other offers do not hold) go to one subscribed framework that has not suppressed offers or
//! declined that agent recently, and are held out of the pool (`ClusterState::held`) so that the
//! built-in controllers never place onto them. Offers end when accepted, declined, rescinded (agent
//! gone, framework gone, `--offer-timeout-secs`) or when the framework disconnects. The same cycle
//! removes frameworks whose failover timeout ran out and resends unacknowledged updates.

use super::records::{id_json, resources_json};
use super::{FrameworkState, Offer, CYCLE};
use crate::cluster::{ClusterState, Core};
use crate::state::MasterState;
use gantry_proto::{AgentId, Resources};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
#[cfg(test)]
use std::time::Duration;
use tokio::time::Instant;

/// Mesos's smallest offer: 0.01 CPUs and 32 MB (`MIN_CPUS`, `MIN_MEM`).
const MIN_CPUS: f64 = 0.01;
const MIN_MEM: f64 = 32.0;

/// Runs the cycle until the process ends.
pub async fn run(core: Arc<Core>) {
    let mut tick = tokio::time::interval(CYCLE);
    loop {
        tick.tick().await;
        if let Err(e) = cycle(&core).await {
            tracing::error!(error = %e, "framework offer cycle failed");
        }
    }
}

/// One cycle: removals, rescinds, retries, then new offers.
pub async fn cycle(core: &Arc<Core>) -> Result<(), crate::cluster::CoreError> {
    let now = Instant::now();
    let mut guard = core.state().await;
    let MasterState {
        cluster,
        frameworks,
        ..
    } = &mut *guard;
    // Drain the ends of framework tasks (their UPDATEs went out as they happened).
    cluster.take_ended(|o| o.framework_id().is_some());
    let expired: Vec<String> = frameworks
        .frameworks
        .values()
        .filter(|f| {
            f.disconnected_since.is_some_and(|since| {
                now.duration_since(since).as_secs_f64() >= f.record.failover_timeout()
            })
        })
        .map(|f| f.record.id.clone())
        .collect();
    for id in expired {
        tracing::info!(framework = %id, "failover timeout passed: removing the framework and its tasks");
        super::calls::remove_framework(core, cluster, frameworks, &id).await?;
    }
    let mut released = false;
    let stale: Vec<String> = frameworks
        .offers
        .values()
        .filter(|o| {
            now.duration_since(o.made_at) >= core.cfg.offer_timeout
                || !cluster
                    .agents
                    .get(&o.agent)
                    .is_some_and(|a| a.accepts_tasks())
        })
        .map(|o| o.id.clone())
        .collect();
    for id in stale {
        rescind(frameworks, cluster, &id);
        released = true;
    }
    super::updates::resend_due(frameworks, now);
    make_offers(&core.master_id, frameworks, cluster, now);
    drop(guard);
    if released {
        core.wake();
    }
    Ok(())
}

/// Withdraws an offer: its resources go back to the pool and the framework is told (RESCIND).
pub fn rescind(fws: &mut FrameworkState, cluster: &mut ClusterState, offer_id: &str) {
    let Some(offer) = release(fws, cluster, offer_id) else {
        return;
    };
    if let Some(fw) = fws.frameworks.get(&offer.framework) {
        fw.send(json!({"type": "RESCIND", "rescind": {"offer_id": id_json(offer_id)}}));
    }
}

/// Ends an offer without telling anyone (accepted, declined, framework gone).
pub fn release(
    fws: &mut FrameworkState,
    cluster: &mut ClusterState,
    offer_id: &str,
) -> Option<Offer> {
    cluster.held.remove(offer_id);
    fws.offers.remove(offer_id)
}

/// Ends every offer of a framework (it disconnected or was removed).
pub fn withdraw_framework(fws: &mut FrameworkState, cluster: &mut ClusterState, framework: &str) {
    let ids: Vec<String> = fws
        .offers
        .values()
        .filter(|o| o.framework == framework)
        .map(|o| o.id.clone())
        .collect();
    for id in ids {
        release(fws, cluster, &id);
    }
}

/// What is free on each agent that accepts tasks: its total less its tasks and held offers.
fn free_by_agent(cluster: &ClusterState) -> Vec<(AgentId, Resources)> {
    let mut used = cluster.used_by_agent();
    for (agent, r) in cluster.held.values() {
        let u = used.entry(agent.clone()).or_default();
        *u = u.plus(r);
    }
    cluster
        .agents
        .values()
        .filter(|a| a.accepts_tasks())
        .map(|a| {
            let total = &a.record.info.resources;
            let free = used
                .get(&a.record.id)
                .map_or_else(|| total.clone(), |u| total.minus(u));
            (a.record.id.clone(), free)
        })
        .collect()
}

/// Makes new offers of what is free, one framework per agent (the one holding the fewest offers
/// gets it), and sends each framework its offers in one OFFERS event.
pub fn make_offers(
    master_id: &str,
    fws: &mut FrameworkState,
    cluster: &mut ClusterState,
    now: Instant,
) {
    let mut made: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (agent, mut free) in free_by_agent(cluster) {
        if free.cpus < MIN_CPUS || free.mem < MIN_MEM {
            continue;
        }
        let Some(entry) = cluster.agents.get(&agent) else {
            continue;
        };
        let gpu_agent = entry.record.info.resources.gpus > 0;
        let held = |id: &str| fws.offers.values().filter(|o| o.framework == id).count();
        let chosen = fws
            .frameworks
            .values()
            .filter(|f| f.conn.is_some() && !f.suppressed)
            .filter(|f| f.filters.get(&agent).is_none_or(|until| *until <= now))
            // GPU agents go only to frameworks that can use GPUs (as Mesos does).
            .filter(|f| !gpu_agent || f.record.has_capability("GPU_RESOURCES"))
            .min_by_key(|f| held(&f.record.id))
            .map(|f| {
                (
                    f.record.id.clone(),
                    f.record.has_capability("MULTI_ROLE"),
                    f.record.roles(),
                )
            });
        let Some((fw_id, multi_role, roles)) = chosen else {
            continue;
        };
        if !gpu_agent {
            free.gpus = 0;
        }
        let id = fws.new_offer_id(master_id);
        let role = multi_role.then(|| roles.first().cloned().unwrap_or_else(|| "*".into()));
        let attributes: Vec<Value> = entry
            .record
            .info
            .attributes
            .iter()
            .map(|(k, v)| json!({"name": k, "type": "TEXT", "text": {"value": v}}))
            .collect();
        let mut offer = json!({
            "id": id_json(&id),
            "framework_id": id_json(&fw_id),
            "agent_id": id_json(&agent.0),
            "hostname": entry.record.info.hostname,
            "resources": resources_json(&free, true, role.as_deref()),
            "attributes": attributes,
        });
        if let Some(role) = &role {
            offer["allocation_info"] = json!({ "role": role });
        }
        made.entry(fw_id.clone()).or_default().push(offer);
        cluster
            .held
            .insert(id.clone(), (agent.clone(), free.clone()));
        fws.offers.insert(
            id.clone(),
            Offer {
                id,
                framework: fw_id,
                agent,
                resources: free,
                made_at: now,
            },
        );
    }
    for (fw_id, offers) in made {
        if let Some(fw) = fws.frameworks.get(&fw_id) {
            tracing::debug!(framework = %fw_id, offers = offers.len(), "offering");
            fw.send(json!({"type": "OFFERS", "offers": {"offers": offers}}));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{AgentEntry, Conn};
    use crate::frameworks::records::FrameworkRecord;
    use crate::frameworks::{Framework, Subscription};
    use crate::store::records::{AgentLifecycle, AgentRecord, TaskOwner, TaskRecord};
    use gantry_proto::{AgentInfo, TaskInfo, TaskState};
    use tokio::sync::mpsc;

    fn agent(st: &mut ClusterState, id: &str, total: Resources) {
        let (tx, _rx) = mpsc::unbounded_channel();
        let record = AgentRecord {
            id: AgentId(id.into()),
            info: AgentInfo {
                hostname: id.into(),
                resources: total,
                ..Default::default()
            },
            lifecycle: AgentLifecycle::Active,
            registered_at: 0.0,
            reregistered_at: None,
            unreachable_since: None,
        };
        // The receiver is dropped: sends fail, which offers never need.
        st.agents.insert(
            AgentId(id.into()),
            AgentEntry::new(record, Some(Conn { id: 1, tx }), false),
        );
    }

    fn framework(
        fws: &mut FrameworkState,
        id: &str,
        caps: &[&str],
    ) -> mpsc::UnboundedReceiver<Value> {
        let caps: Vec<Value> = caps.iter().map(|c| json!({ "type": c })).collect();
        let mut fw = Framework::disconnected(FrameworkRecord {
            id: id.into(),
            info: json!({"user": "u", "name": id, "capabilities": caps}),
            registered_at: 0.0,
        });
        let (tx, rx) = mpsc::unbounded_channel();
        fw.conn = Some(Subscription {
            stream_id: "s".into(),
            tx,
        });
        fw.disconnected_since = None;
        fws.frameworks.insert(id.into(), fw);
        rx
    }

    #[tokio::test]
    async fn offers_are_what_is_free_are_held_and_are_never_made_twice() {
        let mut st = ClusterState::default();
        let mut fws = FrameworkState::default();
        agent(&mut st, "a", Resources::scalars(4.0, 4096.0, 100.0));
        agent(
            &mut st,
            "g",
            Resources {
                gpus: 2,
                ..Resources::scalars(8.0, 8192.0, 100.0)
            },
        );
        st.put_task(TaskRecord {
            info: TaskInfo {
                task_id: "t".into(),
                agent_id: AgentId("a".into()),
                resources: Resources::scalars(1.0, 1024.0, 0.0),
                ..Default::default()
            },
            owner: TaskOwner::App {
                id: "/x".into(),
                version: "v".into(),
            },
            state: TaskState::TaskRunning,
            status: None,
            last_seq: 0,
            staged_at: 0.0,
            started_at: None,
            unreachable_since: None,
            expunged: false,
            kill_requested: false,
            health: Vec::new(),
        });
        let mut rx = framework(&mut fws, "plain", &[]);
        let now = Instant::now();
        make_offers("m", &mut fws, &mut st, now);
        let event = rx.try_recv().expect("an OFFERS event");
        let offers = event["offers"]["offers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            offers.len(),
            1,
            "the GPU agent is not offered without GPU_RESOURCES"
        );
        assert_eq!(offers[0]["agent_id"]["value"], "a");
        let held = &st.held.values().next().expect("held").1;
        assert_eq!((held.cpus, held.mem), (3.0, 3072.0), "what the task leaves");
        // Held resources count as used for the allocator, and are not offered again.
        let snap = st.snapshot();
        let a = snap.agents.iter().find(|x| x.id.0 == "a").expect("a");
        assert_eq!(a.used.cpus, 4.0);
        make_offers("m", &mut fws, &mut st, now);
        assert!(rx.try_recv().is_err(), "nothing left to offer");
        // A GPU framework gets the GPU agent, with its GPUs.
        let mut grx = framework(&mut fws, "gpu", &["GPU_RESOURCES"]);
        make_offers("m", &mut fws, &mut st, now);
        let event = grx.try_recv().expect("an OFFERS event");
        let offer = &event["offers"]["offers"][0];
        assert_eq!(offer["agent_id"]["value"], "g");
        assert!(offer["resources"].as_array().is_some_and(|r| r
            .iter()
            .any(|r| r["name"] == "gpus" && r["scalar"]["value"] == 2.0)));
        withdraw_framework(&mut fws, &mut st, "gpu");
        fws.frameworks.remove("gpu");
        // Declined agents are filtered until the filter ends; a released offer is free again.
        let id = fws
            .offers
            .values()
            .find(|o| o.framework == "plain")
            .map(|o| o.id.clone());
        let id = id.expect("plain's offer");
        release(&mut fws, &mut st, &id);
        if let Some(f) = fws.frameworks.get_mut("plain") {
            f.filters
                .insert(AgentId("a".into()), now + Duration::from_secs(5));
        }
        make_offers("m", &mut fws, &mut st, now);
        assert!(rx.try_recv().is_err(), "filtered");
        make_offers("m", &mut fws, &mut st, now + Duration::from_secs(6));
        assert!(rx.try_recv().is_ok(), "offered again once the filter ended");
        withdraw_framework(&mut fws, &mut st, "plain");
        assert!(st.held.is_empty() && fws.offers.is_empty());
    }
}
