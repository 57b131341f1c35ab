//! [`Dedupe`]: which events have been seen, by `(event type, id)`, over a window of queue hours.
//!
//! Braze delivers at least once: a duplicate is written when Braze reprocesses its queue, so it sits
//! in a later file, often under a later `date=` hour. Files are read in queue-hour order, so an id
//! only needs to be remembered for as long as its duplicate can still come: the window. Memory is
//! bounded by the events of one window, not by the number of files read. Ids are kept as 128-bit
//! hashes (a collision among 10^9 ids has a probability below 10^-20).

use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};
use xxhash_rust::xxh3::xxh3_128;

/// The events seen within a window of queue hours.
#[derive(Debug, Clone)]
pub struct Dedupe {
    window: Option<SignedDuration>,
    /// Hash of `(event type, id)` → the queue hour (epoch seconds) it was last seen in.
    seen: HashMap<u128, i64>,
    /// The hashes first seen in each queue hour, for eviction.
    by_hour: BTreeMap<i64, Vec<u128>>,
}

/// How long Braze's duplicates are remembered by default: two days of queue hours.
pub const DEFAULT_WINDOW: SignedDuration = SignedDuration::from_hours(48);

impl Default for Dedupe {
    fn default() -> Self {
        Self::within(DEFAULT_WINDOW)
    }
}

impl Dedupe {
    /// Remembers events for `window` of queue hours before the newest file read.
    pub fn within(window: SignedDuration) -> Self {
        Self {
            window: Some(window),
            seen: HashMap::new(),
            by_hour: BTreeMap::new(),
        }
    }

    /// Remembers every event (a scan of a whole bucket that must count every duplicate).
    pub fn unbounded() -> Self {
        Self {
            window: None,
            seen: HashMap::new(),
            by_hour: BTreeMap::new(),
        }
    }

    /// Whether `(event_type, id)` is new (and remembers it), for an event of a file queued at `hour`.
    pub fn first_time(&mut self, event_type: &str, id: &str, hour: Timestamp) -> bool {
        let hash = key_hash(event_type, id);
        let hour = hour.as_second();
        match self.seen.insert(hash, hour) {
            Some(previous) => {
                // Keep the later hour: the id is remembered a window after its last sighting.
                if previous > hour {
                    self.seen.insert(hash, previous);
                }
                false
            }
            None => {
                self.by_hour.entry(hour).or_default().push(hash);
                true
            }
        }
    }

    /// Forgets the ids last seen more than the window before `newest` (the queue hour of the file
    /// about to be read).
    pub fn advance(&mut self, newest: Timestamp) {
        let Some(window) = self.window else {
            return;
        };
        let horizon = newest.as_second() - window.as_secs();
        while let Some(entry) = self.by_hour.first_entry() {
            if *entry.key() >= horizon {
                break;
            }
            let (hour, hashes) = entry.remove_entry();
            for hash in hashes {
                if self.seen.get(&hash).is_some_and(|h| *h <= hour) {
                    self.seen.remove(&hash);
                } else if let Some(later) = self.seen.get(&hash).copied() {
                    // Seen again later: remembered under that hour.
                    self.by_hour.entry(later).or_default().push(hash);
                }
            }
        }
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// The 128-bit hash of `event_type`, a zero byte and `id`, assembled on the stack when it fits
/// (Currents event types and ids are short; this runs for every event read).
fn key_hash(event_type: &str, id: &str) -> u128 {
    let len = event_type.len() + 1 + id.len();
    let mut stack = [0_u8; 160];
    let mut heap = Vec::new();
    let buf: &mut [u8] = if len <= stack.len() {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        &mut heap
    };
    buf[..event_type.len()].copy_from_slice(event_type.as_bytes());
    buf[event_type.len()] = 0;
    buf[event_type.len() + 1..].copy_from_slice(id.as_bytes());
    xxh3_128(buf)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn hour(h: i64) -> Timestamp {
        Timestamp::from_second(1_767_225_600 + h * 3600).unwrap()
    }

    #[test]
    fn a_duplicate_within_the_window_is_caught_and_one_past_it_is_forgotten() {
        let mut d = Dedupe::within(SignedDuration::from_hours(2));
        assert!(d.first_time("t", "a", hour(0)));
        assert!(!d.first_time("t", "a", hour(1)));
        assert!(
            d.first_time("u", "a", hour(1)),
            "the same id of another type is another event"
        );
        d.advance(hour(3));
        assert!(
            !d.first_time("t", "a", hour(3)),
            "last seen at hour 1: still in the window"
        );
        d.advance(hour(6));
        assert!(d.is_empty());
        assert!(d.first_time("t", "a", hour(6)));
    }

    proptest! {
        /// Read in hour order, every duplicate within the window is dropped, nothing new is, and
        /// memory holds at most the ids of the window.
        #[test]
        fn drops_exactly_the_duplicates_within_the_window(
            events in proptest::collection::vec((0_u8..40, 0_i64..3), 1..300),
            window in 1_i64..6,
        ) {
            let mut d = Dedupe::within(SignedDuration::from_hours(window));
            let mut last_seen: HashMap<u8, i64> = HashMap::new();
            let mut h = 0;
            for (id, step) in events {
                h += step;
                d.advance(hour(h));
                let expected_new = last_seen.get(&id).is_none_or(|last| h - last > window);
                prop_assert_eq!(d.first_time("t", &id.to_string(), hour(h)), expected_new);
                last_seen.insert(id, h);
                let in_window = last_seen.values().filter(|last| h - **last <= window).count();
                prop_assert!(d.len() <= in_window.max(1), "{} > {}", d.len(), in_window);
            }
        }
    }
}
