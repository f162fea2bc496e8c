//! A vector indexed by log index that can forget its front.

/// How far past its end a window may grow in one step to reach an index. An index further out
/// cannot come from a real log (logs grow by appends of bounded size) and is reported instead of
/// being allocated for.
pub(crate) const GROWTH_MAX: u64 = 1 << 20;

/// Items for the consecutive log indices `start..end`. Indices below `start` are forgotten: the
/// checkers drop history that no node can touch again, so memory follows the live part of the
/// logs rather than the length of the run. Forgetting is amortized O(1): the storage's front is
/// drained only once the forgotten part is at least half of it.
#[derive(Clone, Debug)]
pub(crate) struct Window<T> {
    /// The index of `items[0]`.
    base: u64,
    /// The first index still remembered; `base <= start <= end()`.
    start: u64,
    items: Vec<T>,
}

impl<T> Window<T> {
    /// An empty window whose first item will be at `first`.
    pub(crate) fn new(first: u64) -> Window<T> {
        Window {
            base: first,
            start: first,
            items: Vec::new(),
        }
    }

    /// The first remembered index.
    pub(crate) fn start(&self) -> u64 {
        self.start
    }

    /// One past the last index.
    pub(crate) fn end(&self) -> u64 {
        self.base + self.items.len() as u64
    }

    fn offset(&self, index: u64) -> Option<usize> {
        if index < self.start {
            return None;
        }
        usize::try_from(index - self.base).ok()
    }

    /// The item at `index`, if remembered.
    pub(crate) fn get(&self, index: u64) -> Option<&T> {
        self.items.get(self.offset(index)?)
    }

    /// The last item, if any index is remembered.
    pub(crate) fn last(&self) -> Option<&T> {
        if self.end() > self.start {
            self.items.last()
        } else {
            None
        }
    }

    /// Appends the item for index `end()`.
    pub(crate) fn push(&mut self, item: T) {
        self.items.push(item);
    }

    /// Forgets every index from `end` on (never below `start`).
    pub(crate) fn truncate(&mut self, end: u64) {
        let end = end.max(self.start);
        if let Ok(keep) = usize::try_from(end - self.base) {
            self.items.truncate(keep);
        }
    }

    /// Forgets everything; the next pushed item is at `first`.
    pub(crate) fn reset(&mut self, first: u64) {
        self.items.clear();
        self.base = first;
        self.start = first;
    }

    /// Forgets every index below `index` (at most up to `end()`).
    pub(crate) fn forget_below(&mut self, index: u64) {
        let index = index.min(self.end());
        if index <= self.start {
            return;
        }
        self.start = index;
        let Ok(dead) = usize::try_from(self.start - self.base) else {
            return;
        };
        if dead * 2 >= self.items.len() {
            self.items.drain(..dead);
            self.base = self.start;
        }
    }
}

/// Where [`Window::get_or_grow`] found an index.
pub(crate) enum Slot<'a, T> {
    /// The index is remembered (possibly just added with a default item).
    Held(&'a mut T),
    /// The index is below `start`: forgotten on purpose, nothing to check.
    Forgotten,
    /// The index is more than [`GROWTH_MAX`] past the end.
    TooFar,
}

impl<T: Default> Window<T> {
    /// The item at `index`, growing the window with default items to reach it.
    pub(crate) fn get_or_grow(&mut self, index: u64) -> Slot<'_, T> {
        if index < self.start {
            return Slot::Forgotten;
        }
        if index >= self.end() {
            if index - self.end() > GROWTH_MAX {
                return Slot::TooFar;
            }
            let Ok(len) = usize::try_from(index - self.base + 1) else {
                return Slot::TooFar;
            };
            self.items.resize_with(len, T::default);
        }
        match self.offset(index).and_then(|k| self.items.get_mut(k)) {
            Some(item) => Slot::Held(item),
            None => Slot::TooFar,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_front_and_keeps_indices() {
        let mut w = Window::new(0);
        for i in 0..10u64 {
            w.push(i);
        }
        w.forget_below(3);
        assert_eq!(w.get(2), None);
        assert_eq!(w.get(3), Some(&3));
        w.forget_below(6); // drains: 6 dead of 10
        assert_eq!(w.get(5), None);
        assert_eq!(w.get(9), Some(&9));
        assert_eq!(w.start(), 6);
        assert_eq!(w.end(), 10);
        w.truncate(8);
        assert_eq!(w.end(), 8);
        w.truncate(2); // never below start
        assert_eq!(w.end(), 6);
        assert_eq!(w.last(), None);
    }

    #[test]
    fn grows_with_defaults_but_not_absurdly() {
        let mut w: Window<u32> = Window::new(0);
        assert!(matches!(w.get_or_grow(5), Slot::Held(0)));
        assert_eq!(w.end(), 6);
        assert!(matches!(w.get_or_grow(GROWTH_MAX * 2), Slot::TooFar));
        w.forget_below(3);
        assert!(matches!(w.get_or_grow(1), Slot::Forgotten));
    }
}
