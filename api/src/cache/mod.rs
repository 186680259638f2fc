//! Store, Reflector and FIFO: the client-side watch cache controllers and the scheduler use.
//!
//! A [`watcher`] lists then watches one kind, resuming after disconnects and relisting on
//! 410; a [`reflector`] writes its events into a [`Store`] (one [`Writer`], many cheap read
//! handles, with secondary indexes such as pods by node); a [`Fifo`] queues the keys a
//! controller must look at, coalescing repeated updates.

mod fifo;
mod reflector;

mod watcher;

pub use crate::runtime::reflector::{IndexFn, Store, Writer};
pub use fifo::Fifo;
pub use reflector::reflector;
pub use watcher::{Event, WatcherConfig, WatcherError, watcher};
