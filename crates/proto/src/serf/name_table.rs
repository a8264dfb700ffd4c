//! Values found by the name each one carries, stored once: serf's member table.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use hashbrown::HashTable;

/// A value that knows its own name.
pub(crate) trait Named {
    fn name(&self) -> &str;
}

/// Boxed values keyed by their own names. A `HashMap<String, Box<T>>` of a thousand members has
/// 2,048 slots of a name and a pointer, plus a second copy of every name; this has 2,048
/// pointers: about 80 bytes per member less, in every embedded node.
#[derive(Debug)]
pub(crate) struct NameTable<T> {
    table: HashTable<Box<T>>,
    hasher: RandomState,
}

impl<T> Default for NameTable<T> {
    fn default() -> Self {
        NameTable {
            table: HashTable::new(),
            hasher: RandomState::new(),
        }
    }
}

impl<T: Named> NameTable<T> {
    fn hash(&self, name: &str) -> u64 {
        self.hasher.hash_one(name.as_bytes())
    }

    pub fn get(&self, name: &str) -> Option<&T> {
        let found = self.table.find(self.hash(name), |v| v.name() == name);
        found.map(|v| &**v)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut T> {
        let hash = self.hash(name);
        let found = self.table.find_mut(hash, |v| v.name() == name);
        found.map(|v| &mut **v)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Adds `value` under its own name, replacing (and returning) the one of the same name.
    pub fn insert(&mut self, value: T) -> Option<T> {
        let old = self.remove(value.name());
        let hash = self.hash(value.name());
        let hasher = &self.hasher;
        self.table.insert_unique(hash, Box::new(value), |v| {
            hasher.hash_one(v.name().as_bytes())
        });
        old
    }

    pub fn remove(&mut self, name: &str) -> Option<T> {
        let hash = self.hash(name);
        let entry = self.table.find_entry(hash, |v| v.name() == name).ok()?;
        Some(*entry.remove().0)
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.table.iter().map(|v| &**v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Item(String, u32);

    impl Named for Item {
        fn name(&self) -> &str {
            &self.0
        }
    }

    #[test]
    fn finds_replaces_and_removes_by_the_name_inside() {
        let mut t = NameTable::default();
        for i in 0..1000 {
            assert_eq!(t.insert(Item(format!("node-{i}"), i)), None);
        }
        assert_eq!(t.len(), 1000);
        assert_eq!(t.get("node-7"), Some(&Item("node-7".into(), 7)));
        assert_eq!(
            t.insert(Item("node-7".into(), 70)),
            Some(Item("node-7".into(), 7))
        );
        t.get_mut("node-8").unwrap().1 = 80;
        assert_eq!(t.get("node-8").unwrap().1, 80);
        assert_eq!(t.remove("node-9"), Some(Item("node-9".into(), 9)));
        assert!(!t.contains_key("node-9") && t.remove("node-9").is_none());
        assert_eq!(t.len(), 999);
        let sum: u64 = t.values().map(|v| u64::from(v.1)).sum();
        assert_eq!(sum, (0..1000u64).sum::<u64>() - 7 - 8 - 9 + 70 + 80);
    }
}
