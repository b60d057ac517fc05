//! A growable vector kept in fixed-size blocks, for the engine's instance slots. A `Vec` that
//! doubles copies every element into fresh memory each time it grows, and the kernel clears
//! every fresh page first: with hundreds of thousands of instances that was the engine's
//! largest single cost in replay (`perf`: page clearing under `Vec` growth). Blocks are
//! allocated once and never move, so each element is written once and each page cleared
//! once; an index costs one extra lookup in the small block table.

use std::ops::{Index, IndexMut};

/// Elements per block (a power of two, so an index splits with a shift and a mask).
const BLOCK: usize = 4096;

#[derive(Clone, Debug)]
pub struct Blocks<T> {
    blocks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Blocks<T> {
    fn default() -> Self {
        Blocks {
            blocks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Blocks<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn push(&mut self, value: T) {
        match self.blocks.last_mut() {
            Some(block) if block.len() < BLOCK => block.push(value),
            _ => {
                let mut block = Vec::with_capacity(BLOCK);
                block.push(value);
                self.blocks.push(block);
            }
        }
        self.len += 1;
    }

    pub fn get(&self, index: usize) -> Option<&T> {
        self.blocks.get(index / BLOCK)?.get(index % BLOCK)
    }

    /// Every element in index order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.blocks.iter().flatten()
    }
}

impl<T> Index<usize> for Blocks<T> {
    type Output = T;

    fn index(&self, index: usize) -> &T {
        &self.blocks[index / BLOCK][index % BLOCK]
    }
}

impl<T> IndexMut<usize> for Blocks<T> {
    fn index_mut(&mut self, index: usize) -> &mut T {
        &mut self.blocks[index / BLOCK][index % BLOCK]
    }
}

impl<T> FromIterator<T> for Blocks<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut blocks = Blocks::default();
        for item in items {
            blocks.push(item);
        }
        blocks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_across_blocks_like_a_vec() {
        let count = 3 * BLOCK + 17;
        let mut blocks: Blocks<usize> = (0..count).collect();
        assert_eq!(blocks.len(), count);
        assert_eq!(blocks.blocks.len(), 4);
        for index in [0, 1, BLOCK - 1, BLOCK, 2 * BLOCK + 5, count - 1] {
            assert_eq!(blocks[index], index);
            assert_eq!(blocks.get(index), Some(&index));
        }
        assert_eq!(blocks.get(count), None);
        blocks[BLOCK] = 7;
        assert_eq!((blocks[BLOCK - 1], blocks[BLOCK], blocks[BLOCK + 1]), (BLOCK - 1, 7, BLOCK + 1));
        let expected: Vec<usize> = (0..count).map(|index| if index == BLOCK { 7 } else { index }).collect();
        assert_eq!(blocks.iter().copied().collect::<Vec<_>>(), expected);
        assert_eq!(Blocks::<u8>::default().len(), 0);
    }

    #[test]
    fn an_index_past_the_end_panics_like_a_vec() {
        let blocks: Blocks<u8> = [1, 2, 3].into_iter().collect();
        assert_eq!(blocks[2], 3);
        let past_the_end = std::panic::catch_unwind(|| blocks[3]);
        assert!(past_the_end.is_err(), "index 3 of 3 elements must panic");
    }
}
