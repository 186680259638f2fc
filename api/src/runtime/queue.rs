//! The work queue: keyed, coalescing, with delayed entries, closed by shutdown.
//!
//! A key is queued at most once however often it is added; a key being processed is not
//! handed out again until `done`, and an add meanwhile makes it ready again then. Delayed
//! adds live in one ordered timer map that `pop` itself waits on — no task per delay — and
//! an earlier deadline for a key replaces a later one. Closing (by [`WorkQueue::close`] or
//! the queue's shutdown token) drops everything and makes every `pop` return None.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The queue's state.
#[derive(Default)]
struct Inner {
    /// Ready keys in the order they became ready.
    ready: VecDeque<String>,
    /// The keys in `ready`, to coalesce adds.
    queued: HashSet<String>,
    /// Keys handed out and not yet `done`.
    processing: HashSet<String>,
    /// Keys added while being processed: ready again at `done`.
    dirty: HashSet<String>,
    /// Delayed keys by deadline (with a sequence number to keep entries apart).
    timers: BTreeMap<(Instant, u64), String>,
    /// The deadline entry of every delayed key.
    deadlines: HashMap<String, (Instant, u64)>,
    /// Next timer sequence number.
    sequence: u64,
    /// Set once closed: nothing is handed out any more.
    closed: bool,
}

impl Inner {
    /// Makes `key` ready (or dirty while processed), dropping a pending delay of it.
    fn make_ready(&mut self, key: &str) -> bool {
        if let Some(at) = self.deadlines.remove(key) {
            self.timers.remove(&at);
        }
        if self.processing.contains(key) {
            self.dirty.insert(key.to_string());
            return false;
        }
        if self.queued.insert(key.to_string()) {
            self.ready.push_back(key.to_string());
        }
        true
    }

    /// Moves every key whose deadline passed to ready.
    fn promote_expired(&mut self, now: Instant) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.deadlines.remove(&key);
            self.make_ready(&key);
        }
    }
}

/// A keyed work queue shared by producers (event handlers) and workers; cheap to clone.
#[derive(Clone)]
pub struct WorkQueue {
    /// The shared state.
    inner: Arc<Mutex<Inner>>,
    /// Wakes waiting `pop`s when something became ready, a deadline moved, or it closed.
    wake: Arc<Notify>,
    /// Closes the queue when cancelled.
    shutdown: CancellationToken,
}

impl Default for WorkQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl WorkQueue {
    /// An empty queue, closed only by [`WorkQueue::close`].
    pub fn new() -> Self {
        Self::with_shutdown(CancellationToken::new())
    }

    /// An empty queue that closes when `shutdown` is cancelled.
    pub fn with_shutdown(shutdown: CancellationToken) -> Self {
        WorkQueue {
            inner: Arc::new(Mutex::new(Inner::default())),
            wake: Arc::new(Notify::new()),
            shutdown,
        }
    }

    /// Queues `key` now; a no-op when it is already queued.
    pub fn add(&self, key: &str) {
        let mut inner = self.lock();
        if inner.closed {
            return;
        }
        if inner.make_ready(key) {
            drop(inner);
            self.wake.notify_waiters();
        }
    }

    /// Queues `key` once `delay` has passed; a no-op when it is already ready or due earlier.
    pub fn add_after(&self, key: &str, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let at = Instant::now() + delay;
        let mut inner = self.lock();
        if inner.closed || inner.queued.contains(key) {
            return;
        }
        if let Some(current) = inner.deadlines.get(key).copied() {
            if current.0 <= at {
                return;
            }
            inner.timers.remove(&current);
        }
        let entry = (at, inner.sequence);
        inner.sequence = inner.sequence.wrapping_add(1);
        inner.timers.insert(entry, key.to_string());
        inner.deadlines.insert(key.to_string(), entry);
        drop(inner);
        // A waiting pop may now have an earlier deadline to sleep until.
        self.wake.notify_waiters();
    }

    /// Marks `key` finished and queues it again after `delay`, even if it was added meanwhile
    /// (that add is folded into the delayed one).
    pub fn requeue_after(&self, key: &str, delay: Duration) {
        {
            let mut inner = self.lock();
            inner.processing.remove(key);
            inner.dirty.remove(key);
        }
        self.add_after(key, delay);
    }

    /// Takes the oldest ready key, waiting for one; None once the queue is closed.
    pub async fn pop(&self) -> Option<String> {
        loop {
            let mut woken = pin!(self.wake.notified());
            woken.as_mut().enable();
            let next_deadline = {
                let mut inner = self.lock();
                if self.shutdown.is_cancelled() {
                    Self::close_locked(&mut inner);
                }
                if inner.closed {
                    return None;
                }
                inner.promote_expired(Instant::now());
                if let Some(key) = inner.ready.pop_front() {
                    inner.queued.remove(&key);
                    inner.processing.insert(key.clone());
                    return Some(key);
                }
                inner.timers.first_key_value().map(|(at, _)| at.0)
            };
            let sleep = async {
                match next_deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = woken => {}
                () = sleep => {}
                () = self.shutdown.cancelled() => {}
            }
        }
    }

    /// Marks `key` finished; if it was added meanwhile, it is ready again.
    pub fn done(&self, key: &str) {
        let mut inner = self.lock();
        inner.processing.remove(key);
        if inner.dirty.remove(key) && !inner.closed {
            inner.make_ready(key);
            drop(inner);
            self.wake.notify_waiters();
        }
    }

    /// Keys ready to be handed out.
    pub fn len(&self) -> usize {
        self.lock().ready.len()
    }

    /// True when no key is ready.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keys waiting for their delay.
    pub fn delayed(&self) -> usize {
        self.lock().timers.len()
    }

    /// Closes the queue: everything queued or delayed is dropped and every `pop` returns None.
    pub fn close(&self) {
        Self::close_locked(&mut self.lock());
        self.wake.notify_waiters();
    }

    /// Closes the queue under its lock.
    fn close_locked(inner: &mut Inner) {
        inner.closed = true;
        inner.ready.clear();
        inner.queued.clear();
        inner.dirty.clear();
        inner.timers.clear();
        inner.deadlines.clear();
    }

    /// Takes the lock; every critical section leaves the state consistent, so poisoning is moot.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pops with a deadline, so a broken queue fails the test instead of hanging it.
    async fn pop(q: &WorkQueue) -> Option<String> {
        tokio::time::timeout(Duration::from_secs(60), q.pop())
            .await
            .expect("pop timed out")
    }

    #[tokio::test]
    async fn adds_of_one_key_coalesce() {
        let q = WorkQueue::new();
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.len(), 2);
        assert_eq!(pop(&q).await.as_deref(), Some("a"));
        assert_eq!(pop(&q).await.as_deref(), Some("b"));
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn a_key_in_progress_is_handed_out_again_only_after_done() {
        let q = WorkQueue::new();
        q.add("a");
        let key = pop(&q).await.unwrap();
        q.add("a");
        q.add("a");
        assert!(q.is_empty(), "a is dirty while processed, not ready");
        let second = tokio::time::timeout(Duration::from_millis(20), q.pop()).await;
        assert!(second.is_err(), "pop must wait while a is processed");
        q.done(&key);
        assert_eq!(pop(&q).await.as_deref(), Some("a"));
        q.done("a");
        assert!(q.is_empty(), "the two adds were one");
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_keys_come_out_in_deadline_order_and_earlier_deadlines_win() {
        let q = WorkQueue::new();
        let start = Instant::now();
        q.add_after("late", Duration::from_secs(30));
        q.add_after("early", Duration::from_secs(10));
        q.add_after("moved", Duration::from_secs(50));
        q.add_after("moved", Duration::from_secs(20));
        q.add_after("moved", Duration::from_secs(40));
        assert_eq!(q.delayed(), 3);
        let mut seen = Vec::new();
        for _ in 0..3 {
            let key = pop(&q).await.unwrap();
            seen.push((key.clone(), start.elapsed().as_secs()));
            q.done(&key);
        }
        assert_eq!(
            seen,
            vec![
                ("early".to_string(), 10),
                ("moved".to_string(), 20),
                ("late".to_string(), 30)
            ]
        );
        assert_eq!(q.delayed(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_add_makes_a_delayed_key_ready_at_once_and_a_waiting_pop_sees_new_deadlines() {
        let q = WorkQueue::new();
        q.add_after("a", Duration::from_secs(100));
        q.add("a");
        assert_eq!(q.delayed(), 0);
        assert_eq!(pop(&q).await.as_deref(), Some("a"));
        q.done("a");

        let start = Instant::now();
        q.add_after("slow", Duration::from_secs(100));
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move { q.pop().await })
        };
        tokio::task::yield_now().await;
        q.add_after("fast", Duration::from_secs(5));
        assert_eq!(waiter.await.unwrap().as_deref(), Some("fast"));
        assert_eq!(start.elapsed().as_secs(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn requeue_after_folds_a_concurrent_add_into_the_delay() {
        let q = WorkQueue::new();
        q.add("a");
        let key = pop(&q).await.unwrap();
        q.add("a");
        let start = Instant::now();
        q.requeue_after(&key, Duration::from_secs(3));
        assert!(q.is_empty());
        assert_eq!(pop(&q).await.as_deref(), Some("a"));
        assert_eq!(start.elapsed().as_secs(), 3);
    }

    #[tokio::test]
    async fn shutdown_closes_the_queue_and_wakes_every_pop() {
        let shutdown = CancellationToken::new();
        let q = WorkQueue::with_shutdown(shutdown.clone());
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let q = q.clone();
                tokio::spawn(async move { q.pop().await })
            })
            .collect();
        q.add_after("later", Duration::from_secs(3600));
        tokio::task::yield_now().await;
        shutdown.cancel();
        for waiter in waiters {
            let got = tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(got, None);
        }
        q.add("x");
        assert_eq!(pop(&q).await, None, "a closed queue hands out nothing");
        assert_eq!(q.delayed(), 0, "the delayed key was dropped, no timer left");
    }
}
