//! What a record znode holds: the record's bytes inline, or a pointer to immutable blob chunks
//! (written before the multi that makes a record point at them); and the size budget of a multi.

use serde::{Deserialize, Serialize};

/// The first byte of a record znode's data holding its value inline.
const INLINE: u8 = b'=';
/// The first byte of a record znode's data pointing at blob chunks.
const POINTER: u8 = b'*';

/// The most bytes of a value one blob chunk holds.
pub const CHUNK: usize = 512 * 1024;

/// The most bytes one multi may carry (ZooKeeper's default `jute.maxbuffer` is 1 MiB; the rest
/// is headroom for the request's framing).
pub const MULTI_BUDGET: usize = 960 * 1024;

/// What every operation of a multi costs besides its path and data (headers, ACL, version).
pub const OP_OVERHEAD: usize = 64;

/// A value kept in blob chunks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pointer {
    /// The value's length in bytes.
    pub len: usize,
    /// The chunks' names under `blobs/`, in order.
    pub chunks: Vec<String>,
}

/// A record znode's data, decoded.
pub enum Stored {
    Inline(Vec<u8>),
    Chunks(Pointer),
}

pub fn inline(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 1);
    out.push(INLINE);
    out.extend_from_slice(value);
    out
}

pub fn pointer(p: &Pointer) -> Vec<u8> {
    let mut out = vec![POINTER];
    // A struct of a number and strings always serializes.
    out.extend(serde_json::to_vec(p).unwrap_or_default());
    out
}

/// Decodes a record znode's data; `None` when it is neither form.
pub fn decode(data: &[u8]) -> Option<Stored> {
    match data.split_first() {
        Some((&INLINE, rest)) => Some(Stored::Inline(rest.to_vec())),
        Some((&POINTER, rest)) => serde_json::from_slice(rest).ok().map(Stored::Chunks),
        _ => None,
    }
}

/// Splits `value` into chunks of at most [`CHUNK`] bytes, named `<uuid>-<n>`.
pub fn chunks(value: &[u8]) -> (Pointer, Vec<(String, Vec<u8>)>) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let parts: Vec<(String, Vec<u8>)> = value
        .chunks(CHUNK)
        .enumerate()
        .map(|(i, c)| (format!("{id}-{i}"), c.to_vec()))
        .collect();
    let pointer = Pointer {
        len: value.len(),
        chunks: parts.iter().map(|(n, _)| n.clone()).collect(),
    };
    (pointer, parts)
}
