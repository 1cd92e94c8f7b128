//! The cluster page (`/`): totals and every agent with used/total cpus, memory, disk, ports and
//! GPUs; and an agent's page (`/ui/agents/{id}`): its NUMA domains drawn as boxes holding their
//! cores, memory and GPUs, each GPU with its NVLink peers, health (the XID reason when unhealthy)
//! and the task holding it, then the agent's tasks.

use super::layout::{bar, cpus, enc, mib, respond, Page, Section};
use crate::cluster::{ClusterState, Core};
use crate::store::records::AgentLifecycle;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gantry_proto::{AgentId, AgentInfo, Resources};
use maud::{html, Markup};
use std::collections::HashMap;
use std::sync::Arc;

/// One agent, copied out of the state.
struct AgentRow {
    id: String,
    info: AgentInfo,
    state: &'static str,
    used: Resources,
    tasks: usize,
    gpus_held: usize,
}

fn lifecycle(st: &ClusterState, id: &AgentId) -> &'static str {
    match st.agents.get(id) {
        Some(a) if a.recovering => "recovering",
        Some(a) if a.conn.is_none() && a.record.lifecycle == AgentLifecycle::Active => {
            "disconnected"
        }
        Some(a) => match a.record.lifecycle {
            AgentLifecycle::Active => "active",
            AgentLifecycle::Unreachable => "unreachable",
            AgentLifecycle::Gone => "gone",
        },
        None => "unknown",
    }
}

fn rows(st: &ClusterState) -> Vec<AgentRow> {
    let used = st.used_by_agent();
    let mut tasks: HashMap<&AgentId, (usize, usize)> = HashMap::new();
    for t in st.tasks().values() {
        let e = tasks.entry(&t.info.agent_id).or_default();
        e.0 += 1;
        e.1 += t.info.placement.as_ref().map_or(0, |p| p.gpus.len());
    }
    st.agents
        .values()
        .map(|a| {
            let (n, g) = tasks.get(&a.record.id).copied().unwrap_or_default();
            AgentRow {
                id: a.record.id.0.clone(),
                info: a.record.info.clone(),
                state: lifecycle(st, &a.record.id),
                used: used.get(&a.record.id).cloned().unwrap_or_default(),
                tasks: n,
                gpus_held: g,
            }
        })
        .collect()
}

fn resource_cells(total: &Resources, used: &Resources) -> Markup {
    let ports_total = total.ports.len() as f64;
    let ports_used = used.ports.len() as f64;
    html! {
        td { (bar(used.cpus, total.cpus, format!("{} / {}", cpus(used.cpus), cpus(total.cpus)))) }
        td { (bar(used.mem, total.mem, format!("{} / {}", mib(used.mem), mib(total.mem)))) }
        td { (bar(used.disk, total.disk, format!("{} / {}", mib(used.disk), mib(total.disk)))) }
        td { (bar(ports_used, ports_total, format!("{ports_used} / {ports_total}"))) }
    }
}

fn cluster_markup(agents: &[AgentRow]) -> Markup {
    let mut total = Resources::default();
    let mut used = Resources::default();
    let (mut gpus, mut gpus_held, mut gpus_bad, mut tasks) = (0, 0, 0, 0);
    for a in agents.iter().filter(|a| a.state == "active") {
        total = total.plus(&a.info.resources);
        used = used.plus(&a.used);
    }
    for a in agents {
        gpus += a.info.gpus.len();
        gpus_bad += a.info.gpus.iter().filter(|g| !g.healthy).count();
        gpus_held += a.gpus_held;
        tasks += a.tasks;
    }
    let active = agents.iter().filter(|a| a.state == "active").count();
    html! {
        h1 { "Cluster" }
        div.cards {
            div.card { b { (active) " / " (agents.len()) } span { "agents active" } }
            div.card { b { (cpus(used.cpus)) " / " (cpus(total.cpus)) } span { "CPUs used" } }
            div.card { b { (mib(used.mem)) " / " (mib(total.mem)) } span { "memory used" } }
            div.card { b { (gpus_held) " / " (gpus) } span { "GPUs held" @if gpus_bad > 0 { ", " (gpus_bad) " unhealthy" } } }
            div.card { b #task-count { (tasks) } span { "live tasks" } }
        }
        h2 { "Agents" }
        @if agents.is_empty() {
            p.empty { "No agent has registered. Start one with " code { "gantry-agentd --master <this address>" } "." }
        } @else {
            table.grid #agents {
                thead { tr { th { "Agent" } th { "State" } th { "CPUs" } th { "Memory" } th { "Disk" } th { "Ports" } th { "GPUs" } th { "Tasks" } } }
                tbody {
                    @for a in agents {
                        tr data-agent=(a.id) {
                            td { a href=(format!("/ui/agents/{}", enc(&a.id))) { (a.info.hostname) } br; small.mono { (a.id) } }
                            td { span class=(format!("pill {}", a.state)) { (a.state) } }
                            (resource_cells(&a.info.resources, &a.used))
                            td {
                                @if a.info.gpus.is_empty() { "—" } @else {
                                    (a.gpus_held) " / " (a.info.gpus.len()) " held"
                                    @let bad = a.info.gpus.iter().filter(|g| !g.healthy).count();
                                    @if bad > 0 { br; span.pill.unhealthy { (bad) " unhealthy" } }
                                }
                            }
                            td { (a.tasks) }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /`: the cluster.
pub async fn page(State(core): State<Arc<Core>>, headers: HeaderMap) -> Response {
    let agents = {
        let st = core.state().await;
        rows(&st.cluster)
    };
    respond(
        &headers,
        Page::live("Cluster", Section::Cluster, cluster_markup(&agents)),
    )
}

/// Who holds what on one agent: each GPU's task, each PU's task.
#[derive(Default)]
struct Holders {
    gpus: HashMap<u32, String>,
    pus: HashMap<u32, String>,
    tasks: Vec<(String, String, String)>,
}

fn holders(st: &ClusterState, agent: &AgentId) -> Holders {
    let mut h = Holders::default();
    for t in st.tasks().values().filter(|t| &t.info.agent_id == agent) {
        h.tasks.push((
            t.info.task_id.0.clone(),
            t.info.name.clone(),
            t.state.name().to_owned(),
        ));
        if let Some(p) = &t.info.placement {
            for g in &p.gpus {
                h.gpus.insert(g.index, t.info.task_id.0.clone());
            }
            for c in &p.cpus {
                h.pus.insert(*c, t.info.task_id.0.clone());
            }
        }
    }
    h
}

fn task_link(id: &str) -> Markup {
    html! { a.mono href=(format!("/ui/tasks/{}", enc(id))) { (id) } }
}

fn gpu_card(g: &gantry_proto::GpuInfo, holder: Option<&String>) -> Markup {
    let class = if !g.healthy {
        "gpu unhealthy"
    } else if holder.is_some() {
        "gpu held"
    } else {
        "gpu free"
    };
    html! {
        div class=(class) data-gpu=(g.index) title=(g.uuid) {
            div.gpu-head { b { "GPU " (g.index) } " " small { (g.name) } }
            div { (mib(g.memory_mib as f64)) " · " span.mono { (g.pci_bus_id) } }
            @if !g.nvlink_peers.is_empty() {
                div.peers { "NVLink: " (g.nvlink_peers.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")) }
            }
            @if g.mig_mode == "enabled" { div { "MIG enabled" } }
            div.health {
                @if g.healthy { "healthy" } @else {
                    "unhealthy: " (g.unhealthy_reason.as_deref().unwrap_or("no reason given"))
                }
            }
            div.holder {
                @match holder { Some(t) => { "held by " (task_link(t)) }, None => { "free" } }
            }
        }
    }
}

fn numa_markup(info: &AgentInfo, h: &Holders) -> Markup {
    let placed: Vec<u32> = info
        .numa_domains
        .iter()
        .flat_map(|d| d.gpus.clone())
        .collect();
    let loose: Vec<&gantry_proto::GpuInfo> = info
        .gpus
        .iter()
        .filter(|g| !placed.contains(&g.index))
        .collect();
    html! {
        div.numa-row {
            @for d in &info.numa_domains {
                div.numa data-numa=(d.id) {
                    div.numa-head { b { "NUMA node " (d.id) } " · " (d.cpus.len()) " CPUs · " (mib(d.mem)) }
                    div.cores {
                        @let cores: Vec<Vec<u32>> = if d.cores.is_empty() { d.cpus.iter().map(|c| vec![*c]).collect() } else { d.cores.clone() };
                        @for core in &cores {
                            @let holder = core.iter().find_map(|pu| h.pus.get(pu));
                            span class=(if holder.is_some() { "core held" } else { "core" })
                                title=(format!("PUs {}{}", core.iter().map(u32::to_string).collect::<Vec<_>>().join(","), holder.map(|t| format!(" · {t}")).unwrap_or_default())) {}
                        }
                    }
                    div.gpus {
                        @for g in info.gpus.iter().filter(|g| d.gpus.contains(&g.index)) {
                            (gpu_card(g, h.gpus.get(&g.index)))
                        }
                    }
                }
            }
            @if !loose.is_empty() {
                div.numa data-numa="none" {
                    div.numa-head { b { "GPUs on no known NUMA node" } }
                    div.gpus { @for g in loose { (gpu_card(g, h.gpus.get(&g.index))) } }
                }
            }
        }
    }
}

fn agent_markup(a: &AgentRow, h: &Holders) -> Markup {
    let info = &a.info;
    html! {
        h1 { "Agent " (info.hostname) }
        p.meta {
            span.mono { (a.id) } " · " span class=(format!("pill {}", a.state)) { (a.state) }
            " · port " (info.port) " · version " (info.version)
            @if !info.containerizers.is_empty() { " · runs " (info.containerizers.join(", ")) }
        }
        @if !info.attributes.is_empty() {
            p.meta { "Attributes: " @for (k, v) in &info.attributes { span.tag { (k) ": " (v) } " " } }
        }
        table.grid { thead { tr { th { "CPUs" } th { "Memory" } th { "Disk" } th { "Ports" } } } tbody { tr { (resource_cells(&info.resources, &a.used)) } } }
        h2 { "NUMA domains and GPUs" }
        @if info.numa_domains.is_empty() && info.gpus.is_empty() {
            p.empty { "This agent reported no NUMA topology and no GPUs." }
        } @else {
            (numa_markup(info, h))
        }
        @for w in &info.topology_warnings { p.warn { "Topology: " (w) } }
        h2 { "Tasks here" }
        @if h.tasks.is_empty() { p.empty { "None." } } @else {
            table.grid { thead { tr { th { "Task" } th { "Name" } th { "State" } } }
                tbody { @for (id, name, state) in &h.tasks { tr { td { (task_link(id)) } td { (name) } td { span class=(format!("pill {}", state.to_lowercase())) { (state) } } } } } }
        }
    }
}

/// `GET /ui/agents/{id}`.
pub async fn agent_page(
    State(core): State<Arc<Core>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let found = {
        let st = core.state().await;
        let aid = AgentId(id.clone());
        rows(&st.cluster)
            .into_iter()
            .find(|a| a.id == id)
            .map(|a| (a, holders(&st.cluster, &aid)))
    };
    match found {
        Some((a, h)) => {
            let title = format!("Agent {}", a.info.hostname);
            respond(
                &headers,
                Page::live(title, Section::Cluster, agent_markup(&a, &h)),
            )
        }
        None => not_found(
            &headers,
            Section::Cluster,
            &format!("No agent has the id {id}."),
        ),
    }
}

/// A 404 page in the UI's shell.
pub fn not_found(headers: &HeaderMap, section: Section, what: &str) -> Response {
    let page = Page::live(
        "Not found",
        section,
        html! { h1 { "Not found" } p { (what) } },
    );
    (StatusCode::NOT_FOUND, respond(headers, page)).into_response()
}
