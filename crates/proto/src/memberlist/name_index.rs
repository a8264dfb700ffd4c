//! Where each node sits in memberlist's probe order, found by name without a second copy of it.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::node::Node;

/// Positions in the node list, keyed by the names the nodes themselves carry. A thousand nodes
/// cost 2,048 four-byte slots, where a `HashMap<name, position>` costs 2,048 name-and-position
/// pairs plus a copy of every name: about 90 bytes per node less, in every embedded node.
///
/// Every method takes the node list the positions point into; the index is only correct for
/// the list it was last updated with.
#[derive(Debug, Default)]
pub(crate) struct NameIndex {
    table: HashTable<u32>,
    hasher: RandomState,
}

impl NameIndex {
    /// Where the node called `name` is.
    pub fn get(&self, nodes: &[Node], name: &[u8]) -> Option<usize> {
        let hash = self.hasher.hash_one(name);
        self.table
            .find(hash, |&i| nodes[i as usize].name.as_bytes() == name)
            .map(|&i| i as usize)
    }

    /// Indexes every node of `nodes`, forgetting any earlier positions.
    pub fn rebuild(&mut self, nodes: &[Node]) {
        self.table.clear();
        self.table.reserve(nodes.len(), |&i| {
            self.hasher.hash_one(nodes[i as usize].name.as_bytes())
        });
        for i in 0..nodes.len() {
            self.insert_new(nodes, i);
        }
    }

    /// Puts the node pushed last into `nodes` at position `at`, moving the node there to the end
    /// (a new node joins the probe order at a random place, as in Go).
    pub fn push_at(&mut self, nodes: &mut [Node], at: usize) {
        let last = nodes.len() - 1;
        if at != last {
            // The node at `at` moves to the end: re-point its entry before the swap, while its
            // entry still finds it.
            let moving = self.hasher.hash_one(nodes[at].name.as_bytes());
            if let Some(i) = self.table.find_mut(moving, |&i| i as usize == at) {
                *i = last as u32;
            }
            nodes.swap(at, last);
        }
        self.insert_new(nodes, at);
    }

    /// Adds the entry of `nodes[i]`, whose name is not indexed yet; every other entry must
    /// already point at its node (a resize rehashes them all).
    fn insert_new(&mut self, nodes: &[Node], i: usize) {
        let hash = self.hasher.hash_one(nodes[i].name.as_bytes());
        let hasher = &self.hasher;
        self.table.insert_unique(hash, i as u32, |&j| {
            hasher.hash_one(nodes[j as usize].name.as_bytes())
        });
    }
}
