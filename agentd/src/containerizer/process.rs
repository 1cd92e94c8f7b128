//! Plain-process containerizer (no isolation).
