//! Splitting work into requests of Braze's maximum size.
//!
//! Braze caps a request at 50 users for `/users/export/ids` and for the recipients of a send, and at
//! 75 objects in each of the three arrays of `/users/track`. [`chunks`] splits any iterator lazily into
//! batches of at most a given size, keeping every item exactly once and in order.

use std::num::NonZeroUsize;

/// Most identifiers in one `/users/export/ids` request.
pub const MAX_EXPORT_IDS: usize = 50;
/// Most recipients (or `external_user_ids`) in one send or schedule request.
pub const MAX_RECIPIENTS: usize = 50;
/// Most objects in each array (attributes, events, purchases) of one `/users/track` request.
pub const MAX_TRACK_OBJECTS: usize = 75;

/// The non-zero form of a batch limit. Every constant above is non-zero.
pub fn limit(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

/// Splits `items` into consecutive batches of at most `size`, lazily; the last batch may be shorter,
/// and no batch is empty.
pub fn chunks<I: IntoIterator>(items: I, size: NonZeroUsize) -> Chunks<I::IntoIter> {
    Chunks {
        items: items.into_iter(),
        size: size.get(),
    }
}

/// Iterator of [`chunks`].
#[derive(Debug)]
pub struct Chunks<I> {
    items: I,
    size: usize,
}

impl<I: Iterator> Iterator for Chunks<I> {
    type Item = Vec<I::Item>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch: Vec<I::Item> = self.items.by_ref().take(self.size).collect();
        (!batch.is_empty()).then_some(batch)
    }
}

/// Splits three lists into per-request triples of at most `size` each: request `i` carries the `i`-th
/// batch of every list, so `/users/track` requests stay few while each array stays within its limit.
pub fn zip_batches<A, E, P>(
    attributes: Vec<A>,
    events: Vec<E>,
    purchases: Vec<P>,
    size: NonZeroUsize,
) -> Vec<(Vec<A>, Vec<E>, Vec<P>)> {
    let mut a = chunks(attributes, size);
    let mut e = chunks(events, size);
    let mut p = chunks(purchases, size);
    let mut out = Vec::new();
    loop {
        let next = (a.next(), e.next(), p.next());
        if next.0.is_none() && next.1.is_none() && next.2.is_none() {
            return out;
        }
        out.push((
            next.0.unwrap_or_default(),
            next.1.unwrap_or_default(),
            next.2.unwrap_or_default(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn chunks_keep_every_item_once_in_order_within_the_limit(
            items in proptest::collection::vec(any::<u32>(), 0..500),
            size in 1usize..100,
        ) {
            let batches: Vec<Vec<u32>> = chunks(items.clone(), limit(size)).collect();
            prop_assert!(batches.iter().all(|b| !b.is_empty() && b.len() <= size));
            // Only the last batch may be short.
            prop_assert!(batches.iter().rev().skip(1).all(|b| b.len() == size));
            prop_assert_eq!(batches.concat(), items);
        }

        #[test]
        fn zipped_track_batches_keep_each_list_intact(
            a in proptest::collection::vec(any::<u16>(), 0..300),
            e in proptest::collection::vec(any::<u16>(), 0..300),
            p in proptest::collection::vec(any::<u16>(), 0..300),
        ) {
            let batches = zip_batches(a.clone(), e.clone(), p.clone(), limit(MAX_TRACK_OBJECTS));
            let longest = a.len().max(e.len()).max(p.len());
            prop_assert_eq!(batches.len(), longest.div_ceil(MAX_TRACK_OBJECTS));
            prop_assert!(batches.iter().all(|(x, y, z)| x.len() <= 75 && y.len() <= 75 && z.len() <= 75));
            prop_assert!(batches.iter().all(|(x, y, z)| !(x.is_empty() && y.is_empty() && z.is_empty())));
            let (mut ra, mut re, mut rp) = (vec![], vec![], vec![]);
            for (x, y, z) in batches {
                ra.extend(x);
                re.extend(y);
                rp.extend(z);
            }
            prop_assert_eq!((ra, re, rp), (a, e, p));
        }
    }
}
