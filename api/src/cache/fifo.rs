//! A keyed work queue: updates of one key coalesce, one worker at a time holds a key, and a
//! failed key is re-queued (optionally after a delay).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

/// The queue's state.
struct Inner<T> {
    /// Keys in the order they became ready.
    order: VecDeque<String>,
    /// The latest value of every queued key.
    items: HashMap<String, T>,
    /// Keys handed out and not yet `done`.
    processing: HashSet<String>,
    /// Values that arrived for a key while it was being processed.
    parked: HashMap<String, T>,
    /// Set when the queue is shut down: `pop` returns None once drained.
    closed: bool,
}

/// A keyed FIFO shared by producers (event handlers) and workers.
pub struct Fifo<T> {
    /// The shared state.
    inner: Arc<Mutex<Inner<T>>>,
    /// Wakes a waiting `pop`.
    ready: Arc<Notify>,
}

impl<T> Clone for Fifo<T> {
    fn clone(&self) -> Self {
        Fifo {
            inner: Arc::clone(&self.inner),
            ready: Arc::clone(&self.ready),
        }
    }
}

impl<T: Send + 'static> Default for Fifo<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send + 'static> Fifo<T> {
    /// An empty queue.
    pub fn new() -> Self {
        Fifo {
            inner: Arc::new(Mutex::new(Inner {
                order: VecDeque::new(),
                items: HashMap::new(),
                processing: HashSet::new(),
                parked: HashMap::new(),
                closed: false,
            })),
            ready: Arc::new(Notify::new()),
        }
    }

    /// Queues `value` under `key`, replacing a queued value of the same key.
    pub fn add(&self, key: &str, value: T) {
        let mut inner = lock(&self.inner);
        if inner.processing.contains(key) {
            inner.parked.insert(key.to_string(), value);
            return;
        }
        if inner.items.insert(key.to_string(), value).is_none() {
            inner.order.push_back(key.to_string());
        }
        drop(inner);
        self.ready.notify_one();
    }

    /// Takes the oldest ready key; waits while the queue is empty. None once closed and drained.
    pub async fn pop(&self) -> Option<(String, T)> {
        loop {
            let notified = self.ready.notified();
            {
                let mut inner = lock(&self.inner);
                while let Some(key) = inner.order.pop_front() {
                    if let Some(value) = inner.items.remove(&key) {
                        inner.processing.insert(key.clone());
                        return Some((key, value));
                    }
                }
                if inner.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Marks `key` finished; a value that arrived meanwhile becomes ready.
    pub fn done(&self, key: &str) {
        let mut inner = lock(&self.inner);
        inner.processing.remove(key);
        if let Some(value) = inner.parked.remove(key) {
            drop(inner);
            self.add(key, value);
        }
    }

    /// Marks `key` failed and queues `value` again, after `delay` when one is given.
    pub fn requeue(&self, key: &str, value: T, delay: Option<Duration>) {
        let newer = {
            let mut inner = lock(&self.inner);
            inner.processing.remove(key);
            inner.parked.remove(key)
        };
        // A newer value that arrived while processing wins over the failed one.
        let value = newer.unwrap_or(value);
        match delay {
            None => self.add(key, value),
            Some(delay) => {
                let queue = self.clone();
                let key = key.to_string();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    queue.add(&key, value);
                });
            }
        }
    }

    /// Keys queued and not being processed.
    pub fn len(&self) -> usize {
        lock(&self.inner).items.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes the queue: waiting and future `pop`s return None once it is drained.
    pub fn close(&self) {
        lock(&self.inner).closed = true;
        self.ready.notify_waiters();
        self.ready.notify_one();
    }
}

/// Takes the lock, recovering from poisoning (no critical section can panic half-way).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn updates_of_one_key_coalesce_in_place() {
        let q = Fifo::new();
        q.add("a", 1);
        q.add("b", 1);
        q.add("a", 2);
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop().await, Some(("a".to_string(), 2)));
        assert_eq!(q.pop().await, Some(("b".to_string(), 1)));
    }

    #[tokio::test]
    async fn a_key_in_progress_is_not_handed_out_twice() {
        let q = Fifo::new();
        q.add("a", 1);
        let (key, _) = q.pop().await.unwrap();
        q.add("a", 2);
        assert!(q.is_empty(), "a is parked while processing");
        let second = tokio::time::timeout(Duration::from_millis(50), q.pop()).await;
        assert!(second.is_err(), "pop must wait while a is processed");
        q.done(&key);
        assert_eq!(q.pop().await, Some(("a".to_string(), 2)));
    }

    #[tokio::test]
    async fn failed_items_are_requeued_and_newer_values_win() {
        let q = Fifo::new();
        q.add("a", 1);
        let (key, value) = q.pop().await.unwrap();
        q.requeue(&key, value, None);
        assert_eq!(q.pop().await, Some(("a".to_string(), 1)));
        q.add("a", 5);
        q.requeue("a", 1, Some(Duration::from_millis(10)));
        let got = tokio::time::timeout(Duration::from_secs(2), q.pop())
            .await
            .unwrap();
        assert_eq!(got, Some(("a".to_string(), 5)));
    }

    #[tokio::test]
    async fn pop_waits_for_add_and_ends_on_close() {
        let q: Fifo<u32> = Fifo::new();
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move { q.pop().await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        q.add("x", 7);
        assert_eq!(waiter.await.unwrap(), Some(("x".to_string(), 7)));
        q.close();
        assert_eq!(q.pop().await, None);
    }
}
