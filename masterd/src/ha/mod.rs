//! Several masters on ZooKeeper (`--zk`): the election, an HA master's life (standing by, leading,
//! losing the lead), and the gate that refuses changes while it does not surely lead. See
//! docs/ha.md.

pub mod election;
pub mod gate;
pub mod life;
pub mod placeholder;
