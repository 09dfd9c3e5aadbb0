//! A table of the writer's transaction, opened on first use.
//!
//! Opening a redb table looks its definition up in the transaction's table
//! tree, and the commit looks it up again for every table opened, changed
//! or not. The writer's batches mostly touch a few of the two dozen
//! tables (an activity that moves nothing: activities, their index, the
//! prospect and the id counters), so opening all of them for each batch
//! was a quarter of a lone write's CPU in the writer (measured with perf).

use std::cell::OnceCell;

use redb::{Key, Table, TableDefinition, Value, WriteTransaction};

use super::StoreError;

/// `def` in `txn`, opened the first time it is asked for.
pub(crate) struct Lazy<'txn, K: Key + 'static, V: Value + 'static> {
    txn: &'txn WriteTransaction,
    def: TableDefinition<'static, K, V>,
    table: OnceCell<Table<'txn, K, V>>,
}

impl<'txn, K: Key + 'static, V: Value + 'static> Lazy<'txn, K, V> {
    pub(crate) fn new(txn: &'txn WriteTransaction, def: TableDefinition<'static, K, V>) -> Self {
        Lazy {
            txn,
            def,
            table: OnceCell::new(),
        }
    }

    /// The table, for reading.
    pub(crate) fn read(&self) -> Result<&Table<'txn, K, V>, StoreError> {
        if let Some(table) = self.table.get() {
            return Ok(table);
        }
        let opened = self.txn.open_table(self.def)?;
        Ok(self.table.get_or_init(|| opened))
    }

    /// The table, for writing.
    pub(crate) fn write(&mut self) -> Result<&mut Table<'txn, K, V>, StoreError> {
        self.read()?;
        Ok(self.table.get_mut().expect("opened just now"))
    }
}
