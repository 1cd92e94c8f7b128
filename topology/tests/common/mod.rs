//! Locating the shared hwloc fixtures (../shared/fixtures/hwloc) from the topology tests.

use gantry_topology::Topology;
use std::path::PathBuf;

/// The fixture directory; panics with a clear message when the shared checkout is missing.
pub fn fixture_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/hwloc"
    ));
    assert!(
        dir.is_dir(),
        "hwloc fixtures not found at {}: these tests need the shared fixtures checked out next to \
         the workspace (../shared/fixtures/hwloc)",
        dir.display()
    );
    dir
}

/// Loads one fixture by file name.
#[allow(dead_code)] // not every test binary loads fixtures by name
pub fn load(name: &str) -> Topology {
    let path = fixture_dir().join(name);
    match Topology::from_xml_file(&path) {
        Ok(t) => t,
        Err(e) => panic!("loading fixture {}: {e}", path.display()),
    }
}
