//! The packages' tests live in `packaging/tests/` (see docs/packaging.md): this crate has no code
//! of its own. `packaging/build` makes the .deb and .rpm packages; the tests install them into a
//! booted Debian root, check the .rpm against the .deb, cross-build for arm64, and check the
//! packaged config files against the daemons' flags.
