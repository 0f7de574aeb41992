use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::{ConnHandle, ConnId, MailboxClosed};

/// The live connections of a server: a shared, cloneable view from [`ConnId`] to
/// [`ConnHandle`].
///
/// Use it to count connections and to reach all of them from any thread, for example a
/// `run_every` timer that pushes to every client (gev's server push example).
///
/// Two kinds exist. [`Registry::new`] makes a map the driver fills ([`insert`](Self::insert)
/// on accept, [`remove`](Self::remove) on close). [`Registry::from_directory`] makes a view
/// of tables the driver keeps anyway (gale's drivers do): nothing is stored per connection
/// twice, which matters at hundreds of thousands of idle connections; `insert` and `remove`
/// do nothing on such a registry.
pub struct Registry<O: 'static> {
    inner: Inner<O>,
}

/// Where a [`Registry`] made with [`Registry::from_directory`] finds the connections: the
/// driver's own tables.
///
/// Implementations must not call back into the registry, and should not hold locks while
/// calling `f` in [`for_each`](Self::for_each) (it may send to the handles it gets).
pub trait Directory<O: 'static>: Send + Sync + 'static {
    /// Number of open connections.
    fn len(&self) -> usize;

    /// Whether no connection is open.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The handle of connection `id`, if it is open.
    fn get(&self, id: ConnId) -> Option<ConnHandle<O>>;

    /// Calls `f` with a handle to every open connection (a snapshot: connections opened or
    /// closed meanwhile may or may not be seen).
    fn for_each(&self, f: &mut dyn FnMut(ConnHandle<O>));
}

enum Inner<O: 'static> {
    Map(Arc<Mutex<HashMap<ConnId, ConnHandle<O>>>>),
    Directory(Arc<dyn Directory<O>>),
}

impl<O: 'static> Registry<O> {
    /// An empty registry, filled by [`insert`](Self::insert) and emptied by
    /// [`remove`](Self::remove).
    pub fn new() -> Self {
        Self {
            inner: Inner::Map(Arc::new(Mutex::new(HashMap::new()))),
        }
    }

    /// A registry that reads the driver's own tables through `directory`.
    pub fn from_directory(directory: Arc<dyn Directory<O>>) -> Self {
        Self {
            inner: Inner::Directory(directory),
        }
    }

    /// Adds a connection (drivers call this on accept). Does nothing on a registry made
    /// with [`from_directory`](Self::from_directory).
    pub fn insert(&self, handle: ConnHandle<O>) {
        if let Inner::Map(map) = &self.inner {
            lock(map).insert(handle.id(), handle);
        }
    }

    /// Removes a connection (drivers call this on close). Does nothing (and returns `None`)
    /// on a registry made with [`from_directory`](Self::from_directory).
    pub fn remove(&self, id: ConnId) -> Option<ConnHandle<O>> {
        match &self.inner {
            Inner::Map(map) => lock(map).remove(&id),
            Inner::Directory(_) => None,
        }
    }

    /// Number of open connections.
    pub fn len(&self) -> usize {
        match &self.inner {
            Inner::Map(map) => lock(map).len(),
            Inner::Directory(d) => d.len(),
        }
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The handle of connection `id`.
    pub fn get(&self, id: ConnId) -> Option<ConnHandle<O>> {
        match &self.inner {
            Inner::Map(map) => lock(map).get(&id).cloned(),
            Inner::Directory(d) => d.get(id),
        }
    }

    /// A snapshot of every open connection's handle.
    pub fn handles(&self) -> Vec<ConnHandle<O>> {
        match &self.inner {
            Inner::Map(map) => lock(map).values().cloned().collect(),
            Inner::Directory(d) => {
                let mut all = Vec::with_capacity(d.len());
                d.for_each(&mut |h| all.push(h));
                all
            }
        }
    }

    /// Sends a clone of `msg` to every open connection; returns how many accepted it.
    pub fn broadcast(&self, msg: &O) -> usize
    where
        O: Clone,
    {
        self.handles()
            .iter()
            .filter(|h| h.send(msg.clone()).is_ok())
            .count()
    }

    /// Asks every open connection to close after flushing.
    pub fn close_all(&self) -> Result<(), MailboxClosed> {
        for h in self.handles() {
            let _ = h.close();
        }
        Ok(())
    }
}

fn lock<O>(
    map: &Mutex<HashMap<ConnId, ConnHandle<O>>>,
) -> MutexGuard<'_, HashMap<ConnId, ConnHandle<O>>> {
    // A panic while holding the lock cannot leave the map inconsistent: every operation
    // is a single HashMap call.
    map.lock().unwrap_or_else(|p| p.into_inner())
}

impl<O: 'static> Default for Registry<O> {
    fn default() -> Self {
        Self::new()
    }
}

impl<O: 'static> Clone for Registry<O> {
    fn clone(&self) -> Self {
        Self {
            inner: match &self.inner {
                Inner::Map(map) => Inner::Map(Arc::clone(map)),
                Inner::Directory(d) => Inner::Directory(Arc::clone(d)),
            },
        }
    }
}

impl<O: 'static> std::fmt::Debug for Registry<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::LocalMailbox;

    #[test]
    fn broadcast_reaches_open_connections_only() {
        let reg: Registry<u32> = Registry::new();
        let a = Arc::new(LocalMailbox::default());
        let b = Arc::new(LocalMailbox::default());
        reg.insert(ConnHandle::new(ConnId(1), a.clone()));
        reg.insert(ConnHandle::new(ConnId(2), b.clone()));
        b.close();
        assert_eq!(reg.broadcast(&7), 1);
        assert_eq!(a.take().len(), 1);
        reg.remove(ConnId(1));
        assert_eq!(reg.len(), 1);
    }

    /// A driver table: ids 1..=n share one mailbox.
    struct Table {
        mailbox: Arc<LocalMailbox<u32>>,
        open: Mutex<Vec<u64>>,
    }

    impl Directory<u32> for Table {
        fn len(&self) -> usize {
            self.open.lock().unwrap().len()
        }

        fn get(&self, id: ConnId) -> Option<ConnHandle<u32>> {
            let open = self.open.lock().unwrap().contains(&id.0);
            open.then(|| ConnHandle::new(id, self.mailbox.clone()))
        }

        fn for_each(&self, f: &mut dyn FnMut(ConnHandle<u32>)) {
            let ids = self.open.lock().unwrap().clone();
            for id in ids {
                f(ConnHandle::new(ConnId(id), self.mailbox.clone()));
            }
        }
    }

    #[test]
    fn a_directory_registry_reads_the_driver_tables_and_ignores_insert_and_remove() {
        let mailbox = Arc::new(LocalMailbox::default());
        let table = Arc::new(Table {
            mailbox: mailbox.clone(),
            open: Mutex::new(vec![1, 2, 3]),
        });
        let reg = Registry::from_directory(table.clone());
        assert_eq!(reg.len(), 3);
        assert!(reg.get(ConnId(2)).is_some());
        assert!(reg.get(ConnId(9)).is_none());
        reg.insert(ConnHandle::new(ConnId(9), mailbox.clone()));
        assert!(reg.remove(ConnId(1)).is_none());
        let copy = reg.clone();
        assert_eq!(copy.len(), 3);
        assert_eq!(reg.broadcast(&5), 3);
        assert_eq!(mailbox.take().len(), 3);
        table.open.lock().unwrap().clear();
        assert!(copy.is_empty());
        assert!(reg.handles().is_empty());
    }
}
