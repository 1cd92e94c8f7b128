//! Server slots: every backend is rendered with a fixed number of `server` lines (`a1..aN` for
//! checked servers, `b1..bM` for backups), and tasks are placed into them. A task starting,
//! stopping or changing health then only changes which slot holds which address, which HAProxy's
//! runtime API applies without a reload (`set server <b>/<s> addr|state`); only a backend that
//! needs more slots than it has (or a new or changed frontend or backend) needs a reload, and its
//! pools are then grown to twice the next power of two. Pure: [`plan`] computes the next table
//! and the commands, [`verify`] checks HAProxy's `show servers state` against a table.

use super::model::{Server, Service};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a removed server drains (no new connections, the open ones finish) before it is put
/// in maintenance.
pub const DRAIN: Duration = Duration::from_secs(5);

/// One `server` line of a backend.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Slot {
    /// The server it points at (for a draining slot: the one it pointed at).
    pub server: Option<Server>,
    /// Since when it drains (its server was removed); `None`: in use (with a server) or free.
    pub draining: Option<Instant>,
}

impl Slot {
    /// True when it serves (a server, not draining).
    pub fn live(&self) -> bool {
        self.server.is_some() && self.draining.is_none()
    }
}

/// The slots of one backend: checked servers, then backups.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pools {
    pub active: Vec<Slot>,
    pub backup: Vec<Slot>,
}

impl Pools {
    /// `(name, slot)` for every slot, in rendering order.
    pub fn named(&self) -> impl Iterator<Item = (String, &Slot, bool)> {
        let a = self.active.iter().enumerate();
        let b = self.backup.iter().enumerate();
        a.map(|(i, s)| (format!("a{}", i + 1), s, false))
            .chain(b.map(|(i, s)| (format!("b{}", i + 1), s, true)))
    }
}

/// Backend name → its slots.
pub type Table = BTreeMap<String, Pools>;

/// The slots for `n` servers when a pool is (re)sized: room to double, at least 4.
pub fn size_for(n: usize) -> usize {
    (n.max(1).next_power_of_two() * 2).max(4)
}

/// The outcome of [`plan`].
#[derive(Debug, Default)]
pub struct Plan {
    pub table: Table,
    /// Runtime API commands (without the `@!pid` prefix), backend by backend, in order.
    pub commands: Vec<(String, Vec<String>)>,
    /// A pool ran out of slots (or a backend is new): only a reload applies it.
    pub grew: bool,
}

/// Places the servers of `services` into the slots of `current`, keeping every server that stays
/// in its slot. Removed servers drain for [`DRAIN`], then their slot is free.
pub fn plan(current: &Table, services: &[Service], now: Instant) -> Plan {
    let mut out = Plan::default();
    for s in services {
        let (want_active, want_backup): (Vec<&Server>, Vec<&Server>) =
            s.servers.iter().partition(|v| !v.backup);
        let Some(old) = current.get(&s.name) else {
            out.grew = true;
            out.table.insert(
                s.name.clone(),
                Pools {
                    active: fresh(&want_active),
                    backup: fresh(&want_backup),
                },
            );
            continue;
        };
        let mut cmds = Vec::new();
        let mut pools = old.clone();
        for (prefix, pool, want) in [
            ("a", &mut pools.active, &want_active),
            ("b", &mut pools.backup, &want_backup),
        ] {
            if !place(&s.name, prefix, pool, want, now, &mut cmds) {
                out.grew = true;
                *pool = fresh(want);
            }
        }
        if !cmds.is_empty() {
            out.commands.push((s.name.clone(), cmds));
        }
        out.table.insert(s.name.clone(), pools);
    }
    if current.keys().any(|k| !out.table.contains_key(k)) {
        out.grew = true;
    }
    out
}

/// Slots for a pool rendered anew: the servers first, then free slots.
fn fresh(want: &[&Server]) -> Vec<Slot> {
    let mut v: Vec<Slot> = want
        .iter()
        .map(|s| Slot {
            server: Some((*s).clone()),
            draining: None,
        })
        .collect();
    v.resize(size_for(want.len()), Slot::default());
    v
}

fn same(a: &Server, b: &Server) -> bool {
    a.addr == b.addr && a.port == b.port
}

/// Updates one pool in place to hold `want`, pushing the commands that make HAProxy match; false
/// when the pool has too few slots.
fn place(
    backend: &str,
    prefix: &str,
    pool: &mut [Slot],
    want: &[&Server],
    now: Instant,
    cmds: &mut Vec<String>,
) -> bool {
    let name = |i: usize| format!("{backend}/{prefix}{}", i + 1);
    // Servers gone: drain; drained long enough: maintenance (a free slot).
    for (i, slot) in pool.iter_mut().enumerate() {
        let Some(srv) = &slot.server else { continue };
        let kept = want.iter().any(|w| same(w, srv));
        match slot.draining {
            None if !kept => {
                slot.draining = Some(now);
                cmds.push(format!("set server {} state drain", name(i)));
            }
            Some(since) if !kept && now.duration_since(since) >= DRAIN => {
                *slot = Slot::default();
                cmds.push(format!("set server {} state maint", name(i)));
            }
            _ => {}
        }
    }
    for w in want {
        if let Some(i) = pool
            .iter()
            .position(|s| s.live() && s.server.as_ref().is_some_and(|v| same(v, w)))
        {
            // Same address and port; the check port can still have changed.
            if pool[i].server.as_ref().map(|v| v.check_port) != Some(w.check_port) {
                if let Some(p) = w.check_port {
                    cmds.push(format!("set server {} check-port {p}", name(i)));
                }
            }
            pool[i].server = Some((*w).clone());
            continue;
        }
        // Back before its drain ended: the same slot serves it again.
        let again = pool
            .iter()
            .position(|s| s.draining.is_some() && s.server.as_ref().is_some_and(|v| same(v, w)));
        // Else a free slot, else the draining slot that has drained longest.
        let free = || pool.iter().position(|s| s.server.is_none());
        let oldest = || {
            pool.iter()
                .enumerate()
                .filter_map(|(i, s)| s.draining.map(|d| (d, i)))
                .min()
                .map(|(_, i)| i)
        };
        let Some(i) = again.or_else(free).or_else(oldest) else {
            return false;
        };
        let n = name(i);
        if again != Some(i) {
            if pool[i].server.is_some() {
                cmds.push(format!("set server {n} state maint"));
            }
            cmds.push(format!("set server {n} addr {} port {}", w.addr, w.port));
            if let Some(p) = w.check_port {
                cmds.push(format!("set server {n} check-port {p}"));
            }
        }
        cmds.push(format!("set server {n} state ready"));
        pool[i] = Slot {
            server: Some((*w).clone()),
            draining: None,
        };
    }
    true
}

/// Admin-state bits of `show servers state` (HAProxy's `SRV_ADMF_*`).
const FMAINT: u32 = 0x01;
const FDRAIN: u32 = 0x08;

/// Checks `show servers state <backend>`'s answer against `pools`: every live slot at its
/// address and port and not in maintenance or drain, every draining one draining (or in
/// maintenance), every free one in maintenance. The error names the first difference.
pub fn verify(backend: &str, pools: &Pools, answer: &str) -> Result<(), String> {
    // be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ... srv_port (18)
    let mut seen = BTreeMap::new();
    for line in answer.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() > 18 && f[1] == backend {
            let admin: u32 = f[6]
                .parse()
                .map_err(|_| format!("an admin state of {:?}", f[6]))?;
            seen.insert(
                f[3].to_string(),
                (f[4].to_string(), f[18].to_string(), admin),
            );
        }
    }
    for (name, slot, _) in pools.named() {
        let Some((addr, port, admin)) = seen.get(&name) else {
            return Err(format!("{backend}/{name} is not in HAProxy"));
        };
        let ok = match (&slot.server, slot.draining) {
            (Some(s), None) => {
                *addr == s.addr.to_string()
                    && *port == s.port.to_string()
                    && admin & (FMAINT | FDRAIN) == 0
            }
            (Some(_), Some(_)) => admin & (FMAINT | FDRAIN) != 0,
            (None, _) => admin & FMAINT != 0,
        };
        if !ok {
            return Err(format!(
                "{backend}/{name} is {addr}:{port} admin state {admin}, not {:?}",
                slot
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srv(port: u16, backup: bool) -> Server {
        Server {
            addr: "10.0.0.1".parse().expect("ip"),
            port,
            check_port: None,
            backup,
            task_id: format!("t{port}"),
        }
    }

    fn service(servers: Vec<Server>) -> Service {
        let apps = serde_json::json!({"apps": [{"id": "/w", "labels": {"HAPROXY_GROUP": "g"},
                                      "portDefinitions": [{"port": 10000}], "tasks": []}]});
        let sel = super::super::model::Selection {
            group: "g",
            require_healthy: true,
        };
        let (mut s, _) = super::super::model::services(&apps, &sel, &mut |_| None);
        s[0].servers = servers;
        s.remove(0)
    }

    #[test]
    fn scaling_up_and_down_is_runtime_changes_until_the_slots_run_out() {
        let t0 = Instant::now();
        let p = plan(&Table::new(), &[service(vec![srv(1, false)])], t0);
        assert!(p.grew, "a new backend is a reload");
        let pools = &p.table["w_10000"];
        assert_eq!((pools.active.len(), pools.backup.len()), (4, 4));

        let three = service(vec![srv(1, false), srv(2, false), srv(3, true)]);
        let p = plan(&p.table, std::slice::from_ref(&three), t0);
        assert!(!p.grew);
        assert_eq!(
            p.commands[0].1,
            [
                "set server w_10000/a2 addr 10.0.0.1 port 2",
                "set server w_10000/a2 state ready",
                "set server w_10000/b1 addr 10.0.0.1 port 3",
                "set server w_10000/b1 state ready",
            ]
        );
        // 3 turns healthy: out of the backups, into the checked pool; 1 goes.
        let moved = service(vec![srv(2, false), srv(3, false)]);
        let p = plan(&p.table, std::slice::from_ref(&moved), t0);
        assert_eq!(
            p.commands[0].1,
            [
                "set server w_10000/a1 state drain",
                "set server w_10000/a3 addr 10.0.0.1 port 3",
                "set server w_10000/a3 state ready",
                "set server w_10000/b1 state drain",
            ]
        );
        assert!(p.table["w_10000"].active[0].draining.is_some());
        // Nothing new before the drain ends; after it, maintenance.
        let p2 = plan(
            &p.table,
            std::slice::from_ref(&moved),
            t0 + Duration::from_secs(1),
        );
        assert!(p2.commands.is_empty() && !p2.grew);
        let p3 = plan(&p.table, &[moved], t0 + DRAIN);
        assert_eq!(
            p3.commands[0].1,
            [
                "set server w_10000/a1 state maint",
                "set server w_10000/b1 state maint"
            ]
        );
        // Past the 4 slots: a reload, with the pool grown.
        let many = service((10..15).map(|p| srv(p, false)).collect());
        let p4 = plan(&p3.table, &[many], t0);
        assert!(p4.grew);
        assert_eq!(p4.table["w_10000"].active.len(), 16);
    }

    #[test]
    fn verify_reads_show_servers_state() {
        let p = plan(
            &Table::new(),
            &[service(vec![srv(31001, false)])],
            Instant::now(),
        );
        let pools = &p.table["w_10000"];
        let mut answer = String::from("1\n# be_id be_name srv_id srv_name ...\n");
        for (i, (name, _, _)) in pools.named().enumerate() {
            let (port, admin) = if name == "a1" { (31001, 0) } else { (1, 5) };
            answer += &format!(
                "3 w_10000 {i} {name} 10.0.0.1 2 {admin} 1 1 0 15 3 1 6 0 0 0 - {port} - 0 0 - - 0\n"
            );
        }
        assert_eq!(verify("w_10000", pools, &answer), Ok(()));
        let wrong = answer.replace(" 31001 ", " 31002 ");
        assert!(verify("w_10000", pools, &wrong).is_err());
        let missing = answer.replace(" a1 ", " zz ");
        assert!(verify("w_10000", pools, &missing).is_err());
        assert!(verify("w_10000", pools, "garbage").is_err());
    }
}
