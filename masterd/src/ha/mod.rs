//! Several masters on ZooKeeper (`--zk`), one leading: the election, an HA master's life
//! (standing by, leading, losing the lead), the gate that refuses changes while it does not surely
//! lead, and `standby`, what a master that does not lead answers (proxying to the leader,
//! redirecting to it, or 503 while none is known). See docs/ha.md.

pub mod election;
pub mod gate;
pub mod life;
pub mod proxy;
pub mod standby;
