//! Store, Reflector and FIFO: the client-side watch cache.
