//! The one walk every keyed comparison of the engine shares: packages,
//! interfaces, worlds, world imports and exports, types and functions are
//! each matched by a key, then reported as changed, added or removed.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

/// One key of a [`diff_keyed`] walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keyed<K, O, N> {
    /// `(key, old, new)`: the key is on both sides; compare the two.
    Both(K, O, N),
    /// `(key, new)`: the key is only in NEW.
    Added(K, N),
    /// `(key, old)`: the key is only in OLD.
    Removed(K, O),
}

impl<K, O, N> Keyed<K, O, N> {
    /// The key, whichever side holds it.
    pub(super) fn key(&self) -> &K {
        match self {
            Keyed::Both(key, ..) | Keyed::Added(key, _) | Keyed::Removed(key, _) => key,
        }
    }
}

/// Matches two keyed lists in report order: every NEW entry in NEW's order
/// (paired with the OLD entry of the same key, or added), then every OLD
/// entry whose key NEW lacks, in OLD's order.
///
/// A key repeated in OLD pairs with its last entry; a key repeated in NEW
/// yields one item per entry.
pub(super) fn diff_keyed<K, O, N>(old: Vec<(K, O)>, new: Vec<(K, N)>) -> Vec<Keyed<K, O, N>>
where
    K: Eq + Hash,
    O: Copy,
{
    let (pairs, gone) = {
        let old_by_key: HashMap<&K, O> = old.iter().map(|(k, o)| (k, *o)).collect();
        let new_keys: HashSet<&K> = new.iter().map(|(k, _)| k).collect();
        let pairs: Vec<Option<O>> = new
            .iter()
            .map(|(k, _)| old_by_key.get(k).copied())
            .collect();
        let gone: Vec<bool> = old.iter().map(|(k, _)| !new_keys.contains(k)).collect();
        (pairs, gone)
    };
    let mut out = Vec::with_capacity(new.len());
    for ((key, new), old) in new.into_iter().zip(pairs) {
        out.push(match old {
            Some(old) => Keyed::Both(key, old, new),
            None => Keyed::Added(key, new),
        });
    }
    for ((key, old), gone) in old.into_iter().zip(gone) {
        if gone {
            out.push(Keyed::Removed(key, old));
        }
    }
    out
}

/// The entries of a map with a copyable value, ready for [`diff_keyed`].
pub(super) fn entries<'m, K: 'm, V: Copy + 'm>(
    map: impl IntoIterator<Item = (&'m K, &'m V)>,
) -> Vec<(&'m K, V)> {
    map.into_iter().map(|(k, v)| (k, *v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_order_first_then_the_removed_in_old_order() {
        let old = vec![("a", 1), ("b", 2), ("c", 3), ("d", 4)];
        let new = vec![("e", 'e'), ("c", 'c'), ("a", 'a'), ("f", 'f')];
        assert_eq!(
            diff_keyed(old, new),
            vec![
                Keyed::Added("e", 'e'),
                Keyed::Both("c", 3, 'c'),
                Keyed::Both("a", 1, 'a'),
                Keyed::Added("f", 'f'),
                Keyed::Removed("b", 2),
                Keyed::Removed("d", 4),
            ]
        );
    }

    #[test]
    fn repeated_keys_pair_with_the_last_old_entry() {
        let old = vec![("x", 1), ("y", 2), ("x", 3), ("y", 4)];
        let new = vec![("x", 'p'), ("x", 'q')];
        assert_eq!(
            diff_keyed(old, new),
            vec![
                Keyed::Both("x", 3, 'p'),
                Keyed::Both("x", 3, 'q'),
                Keyed::Removed("y", 2),
                Keyed::Removed("y", 4),
            ]
        );
    }

    #[test]
    fn one_side_empty() {
        let none: Vec<(&str, u8)> = Vec::new();
        assert_eq!(
            diff_keyed(none.clone(), vec![("k", 'n')]),
            vec![Keyed::Added("k", 'n')]
        );
        assert_eq!(
            diff_keyed(vec![("k", 7u8)], Vec::<(&str, char)>::new()),
            vec![Keyed::Removed("k", 7)]
        );
    }
}
