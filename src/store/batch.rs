//! [`Batch`]: the puts and deletes that a store applies as one atomic, durable commit.

/// One operation of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Store `value` under `key`, replacing any previous value.
    Put { key: Vec<u8>, value: Vec<u8> },
    /// Remove `key` if present.
    Delete { key: Vec<u8> },
}

/// Puts and deletes applied atomically by [`crate::store::Store::apply`], in the order they were
/// added: a later operation on the same key wins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// The operations in the order they were added, which is the order they take effect.
    ops: Vec<Op>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put of `value` under `key`.
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(Op::Put {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Adds a delete of `key`.
    pub fn delete(&mut self, key: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(Op::Delete { key: key.into() });
        self
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch has no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Removes every operation, keeping the allocation for the next batch.
    pub fn clear(&mut self) {
        self.ops.clear();
    }

    /// The operations in the order they take effect.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }
}
