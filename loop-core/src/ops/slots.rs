//! The table's storage: a slab (a vector of slots, the vacant ones chained by the key of
//! the next vacant one), as the `slab` crate's, with an insert inlined into its caller so a
//! new operation is written into its slot in place rather than built and copied there.

/// One slot of [`Slots`].
#[derive(Debug)]
enum Entry<T> {
    /// Free; the key of the next free slot (the vector's length: none).
    Vacant(usize),
    Occupied(T),
}

/// Values by key; a removed value's key is reused by the next insert.
#[derive(Debug)]
pub(crate) struct Slots<T> {
    entries: Vec<Entry<T>>,
    /// The key of the first free slot (`entries.len()`: none).
    next: usize,
    len: usize,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            entries: Vec::new(),
            next: 0,
            len: 0,
        }
    }
}

impl<T> Slots<T> {
    /// The key the next insert gives.
    #[inline]
    pub(crate) fn vacant_key(&self) -> usize {
        self.next
    }

    /// Puts the value `make` gives in the first free slot, made only once the slot is known
    /// (so it is built in the slot, not built first and copied there); gives its key.
    #[inline(always)]
    pub(crate) fn insert_with(&mut self, make: impl FnOnce() -> T) -> usize {
        let key = self.next;
        match self.entries.get_mut(key) {
            Some(entry) => {
                let Entry::Vacant(next) = *entry else {
                    unreachable!("the free list names an occupied slot");
                };
                *entry = Entry::Occupied(make());
                self.next = next;
            }
            None => self.push_with(make),
        }
        self.len += 1;
        key
    }

    /// [`insert_with`](Self::insert_with) when no slot is free: a new one at the end.
    #[inline(never)]
    fn push_with(&mut self, make: impl FnOnce() -> T) {
        self.entries.push(Entry::Occupied(make()));
        self.next = self.entries.len();
    }

    #[inline]
    pub(crate) fn get(&self, key: usize) -> Option<&T> {
        match self.entries.get(key) {
            Some(Entry::Occupied(val)) => Some(val),
            _ => None,
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        match self.entries.get_mut(key) {
            Some(Entry::Occupied(val)) => Some(val),
            _ => None,
        }
    }

    /// Takes the value under `key` out; `None` if there is none.
    #[inline]
    pub(crate) fn try_remove(&mut self, key: usize) -> Option<T> {
        let entry = self.entries.get_mut(key)?;
        if !matches!(entry, Entry::Occupied(_)) {
            return None;
        }
        match std::mem::replace(entry, Entry::Vacant(self.next)) {
            Entry::Occupied(val) => {
                self.next = key;
                self.len -= 1;
                Some(val)
            }
            Entry::Vacant(_) => None,
        }
    }

    /// Takes the value under `key` out, which the caller saw there.
    #[inline]
    pub(crate) fn remove(&mut self, key: usize) -> T {
        self.try_remove(key)
            .unwrap_or_else(|| unreachable!("no value under key {key}"))
    }

    /// Every value with its key.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(key, entry)| match entry {
                Entry::Occupied(val) => Some((key, val)),
                Entry::Vacant(_) => None,
            })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.next = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_reused_last_freed_first() {
        let mut slots = Slots::default();
        let (a, b, c) = (
            slots.insert_with(|| 'a'),
            slots.insert_with(|| 'b'),
            slots.insert_with(|| 'c'),
        );
        assert_eq!((a, b, c), (0, 1, 2));
        assert_eq!(slots.try_remove(b), Some('b'));
        assert_eq!(slots.try_remove(b), None);
        assert_eq!(slots.try_remove(a), Some('a'));
        assert_eq!(slots.vacant_key(), a);
        assert_eq!(slots.insert_with(|| 'd'), a);
        assert_eq!(slots.insert_with(|| 'e'), b);
        assert_eq!(slots.insert_with(|| 'f'), 3);
        assert_eq!(slots.len(), 4);
        assert_eq!(slots.get(c), Some(&'c'));
        let all: Vec<_> = slots.iter().collect();
        assert_eq!(all, vec![(0, &'d'), (1, &'e'), (2, &'c'), (3, &'f')]);
        slots.clear();
        assert!(slots.is_empty() && slots.get(0).is_none());
        assert_eq!(slots.insert_with(|| 'g'), 0);
    }
}
