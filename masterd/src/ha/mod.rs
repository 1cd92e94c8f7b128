//! Several masters on ZooKeeper (`--zk`), one leading: the election, an HA master's life
//! (standing by, leading, losing the lead), the gate that refuses changes while it does not surely
//! lead, and `standby`, what a master that does not lead answers (proxying to the leader,
//! redirecting to it, or 503 while none is known). See docs/ha.md.

pub mod election;
pub mod gate;
pub mod life;
pub mod proxy;
pub mod standby;

use std::sync::OnceLock;

/// How this process gives up the lead when asked (`DELETE /v2/leader`): set by an HA master when
/// it joins the election; unset for the one master without `--zk`.
static ABDICATION: OnceLock<Box<dyn Fn() + Send + Sync>> = OnceLock::new();

/// Records how to abdicate (the first call wins: one election per process).
pub(crate) fn on_abdicate(f: impl Fn() + Send + Sync + 'static) {
    let _ = ABDICATION.set(Box::new(f));
}

/// Leaves the masters' group, so that another master leads and this one starts again as a
/// contender (see [`life`]). False when this master runs without `--zk`.
pub fn abdicate() -> bool {
    match ABDICATION.get() {
        Some(f) => {
            f();
            true
        }
        None => false,
    }
}

/// Whether this master could abdicate (it runs with `--zk`).
pub fn can_abdicate() -> bool {
    ABDICATION.get().is_some()
}
