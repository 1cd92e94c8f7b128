//! Fencing: a store that opens claims the next epoch by bumping `<root>/epoch` (a conditional
//! `set_data`), and remembers the znode version that write produced. Every multi starts with a
//! `check` of that version, so once a newer leader has bumped the epoch, the deposed leader's
//! writes all fail (`StoreError::Fenced`) and none of them commits.

use crate::store::StoreError;
use zookeeper_client::{Client, Error};

/// What fences this store's writes: the znode and the version it must still have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    /// The absolute path of the epoch znode.
    pub path: String,
    /// The version the znode had right after this store's claim.
    pub version: i32,
    /// The epoch number claimed (1 for the first leader, increasing).
    pub epoch: u64,
}

/// Claims the next epoch at `path` (which exists): reads it, writes epoch + 1 conditionally on
/// the version read, retrying when another claimant won the race in between.
pub async fn claim(client: &Client, path: &str) -> Result<Fence, StoreError> {
    for _ in 0..16 {
        let (data, stat) = client.get_data(path).await.map_err(zk("read the epoch"))?;
        let current: u64 = std::str::from_utf8(&data)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let epoch = current + 1;
        match client
            .set_data(path, epoch.to_string().as_bytes(), Some(stat.version))
            .await
        {
            Ok(stat) => {
                return Ok(Fence {
                    path: path.to_owned(),
                    version: stat.version,
                    epoch,
                })
            }
            Err(Error::BadVersion) => continue,
            Err(e) => return Err(zk("claim the epoch")(e)),
        }
    }
    Err(StoreError::Zk(format!(
        "cannot claim the epoch at {path}: other masters keep claiming it"
    )))
}

/// Maps a ZooKeeper error to `StoreError::Zk`, saying what was being done.
pub fn zk(what: &'static str) -> impl Fn(Error) -> StoreError {
    move |e| StoreError::Zk(format!("{what}: {e}"))
}
