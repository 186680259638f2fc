//! The Storage trait and its embedded (redb) and etcd backends.
