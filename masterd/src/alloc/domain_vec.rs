//! Per-NUMA-domain values of one agent during a placement run, kept inside the agent's state for
//! machines with up to [`INLINE`] domains (one, two and four sockets), on the heap beyond. The ring
//! walk reads them for every candidate agent of a GPU or NUMA task, so they live in the same cache
//! lines as the agent's scalars instead of behind two more pointers.

use std::ops::{Index, IndexMut};

/// Domains held inline.
pub(crate) const INLINE: usize = 4;

/// One value per NUMA domain, in domain order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum DomainVec<T> {
    Inline(u8, [T; INLINE]),
    Heap(Vec<T>),
}

impl<T: Copy + Default> DomainVec<T> {
    /// The values of `values`, in order.
    pub(crate) fn collect(values: impl ExactSizeIterator<Item = T>) -> Self {
        if values.len() <= INLINE {
            let mut inline = [T::default(); INLINE];
            let mut n = 0u8;
            for (slot, v) in inline.iter_mut().zip(values) {
                *slot = v;
                n += 1;
            }
            DomainVec::Inline(n, inline)
        } else {
            DomainVec::Heap(values.collect())
        }
    }

    /// The values as a slice.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[T] {
        match self {
            DomainVec::Inline(n, v) => &v[..usize::from(*n)],
            DomainVec::Heap(v) => v,
        }
    }

    /// The values as a mutable slice.
    #[inline]
    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        match self {
            DomainVec::Inline(n, v) => &mut v[..usize::from(*n)],
            DomainVec::Heap(v) => v,
        }
    }
}

impl<T: Copy + Default> Index<usize> for DomainVec<T> {
    type Output = T;
    #[inline]
    fn index(&self, d: usize) -> &T {
        &self.as_slice()[d]
    }
}

impl<T: Copy + Default> IndexMut<usize> for DomainVec<T> {
    #[inline]
    fn index_mut(&mut self, d: usize) -> &mut T {
        &mut self.as_mut_slice()[d]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_few_values_inline_and_many_on_the_heap_alike() {
        for n in [0usize, 1, 2, INLINE, INLINE + 1, 8] {
            let mut v = DomainVec::collect((0..n as u32).map(|x| x * 10));
            assert_eq!(matches!(v, DomainVec::Inline(..)), n <= INLINE, "{n}");
            assert_eq!(
                v.as_slice(),
                (0..n as u32).map(|x| x * 10).collect::<Vec<_>>()
            );
            if n > 0 {
                v[n - 1] += 1;
                assert_eq!(v[n - 1], (n as u32 - 1) * 10 + 1);
            }
        }
    }
}
