use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::{ConnHandle, ConnId, MailboxClosed};

/// The live connections of a server: a shared, cloneable map from [`ConnId`] to
/// [`ConnHandle`], kept by the driver (insert on accept, remove on close).
///
/// Use it to count connections and to reach all of them from any thread, for example a
/// `run_every` timer that pushes to every client (gev's server push example).
pub struct Registry<O: 'static> {
    inner: Arc<Mutex<HashMap<ConnId, ConnHandle<O>>>>,
}

impl<O: 'static> Registry<O> {
    /// An empty registry.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Adds a connection (drivers call this on accept).
    pub fn insert(&self, handle: ConnHandle<O>) {
        self.lock().insert(handle.id(), handle);
    }

    /// Removes a connection (drivers call this on close).
    pub fn remove(&self, id: ConnId) -> Option<ConnHandle<O>> {
        self.lock().remove(&id)
    }

    /// Number of open connections.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The handle of connection `id`.
    pub fn get(&self, id: ConnId) -> Option<ConnHandle<O>> {
        self.lock().get(&id).cloned()
    }

    /// A snapshot of every open connection's handle.
    pub fn handles(&self) -> Vec<ConnHandle<O>> {
        self.lock().values().cloned().collect()
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

    fn lock(&self) -> MutexGuard<'_, HashMap<ConnId, ConnHandle<O>>> {
        // A panic while holding the lock cannot leave the map inconsistent: every operation
        // is a single HashMap call.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<O: 'static> Default for Registry<O> {
    fn default() -> Self {
        Self::new()
    }
}

impl<O: 'static> Clone for Registry<O> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
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
}
