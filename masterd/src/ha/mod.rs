//! High availability: several masters, one leading. `standby` is what a master that does not
//! lead answers (proxying to the leader, redirecting to it, or 503 while none is known).

pub mod proxy;
pub mod standby;
