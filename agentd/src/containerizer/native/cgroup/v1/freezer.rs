//! v1 `freezer`: freeze the container while it is SIGKILLed, so nothing escapes by forking.

use super::super::fs;
use super::super::CgroupError;
use std::path::Path;
use std::time::{Duration, Instant};

/// Writes FROZEN or THAWED and waits (up to 2 s) until `freezer.state` agrees.
pub fn set_frozen(dir: &Path, frozen: bool) -> Result<(), CgroupError> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        fs::write(dir, "freezer.state", want)?;
        if fs::read(dir, "freezer.state")?.trim() == want || Instant::now() > deadline {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
