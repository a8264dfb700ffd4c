//! Giving back the memory a burst grew. Every node hears about every member at a join storm or
//! a push/pull with a new cluster: its queues and indexes grow to the cluster's size, and Rust's
//! collections keep their capacity when emptied. At a thousand members that left several hundred
//! bytes per member in every node after the news was handled.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};

/// Capacity kept however empty a collection gets: small enough to ignore, large enough that an
/// idle node's few messages never reallocate.
const KEEP: usize = 64;

/// Takes the front of `queue`, giving back what its buffer grew past [`KEEP`] once the queue is
/// drained. Each release follows at least as many pushes as the buffer held, so the cost stays
/// proportional to them, and an ordinary turn's few messages never reallocate.
pub(crate) fn pop_front<T>(queue: &mut VecDeque<T>) -> Option<T> {
    let front = queue.pop_front();
    if queue.is_empty() && queue.capacity() > KEEP {
        queue.shrink_to(KEEP);
    }
    front
}

/// Call after removing from `map`: gives back most of its table once it is three-quarters empty.
/// Shrinking to twice the entries left keeps rehashing proportional to the removals.
pub(crate) fn after_remove<K: Eq + Hash, V, S: BuildHasher>(map: &mut HashMap<K, V, S>) {
    if map.capacity() > KEEP && map.len() < map.capacity() / 4 {
        map.shrink_to(map.len() * 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drained_queue_keeps_only_its_floor() {
        let mut queue: VecDeque<u32> = (0..1000).collect();
        while pop_front(&mut queue).is_some() {}
        assert!(queue.capacity() >= KEEP && queue.capacity() < 1000);
        // An ordinary turn's few messages fit in the floor without reallocating.
        let floor = queue.capacity();
        queue.extend(0..KEEP as u32);
        assert_eq!(queue.capacity(), floor);
    }

    #[test]
    fn a_mostly_emptied_map_shrinks() {
        let mut map: HashMap<u32, u32> = (0..1000).map(|i| (i, i)).collect();
        let grown = map.capacity();
        for i in 0..990 {
            map.remove(&i);
            after_remove(&mut map);
        }
        assert!(map.capacity() < grown / 4, "{} of {grown}", map.capacity());
        assert_eq!(map.len(), 10);
    }
}
