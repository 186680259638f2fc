//! The etcd v3 backend: every operation maps 1:1 onto an etcd range, transaction, watch or
//! compaction. Keys live under a configurable prefix, which is stripped on the way out.

mod errors;
mod keys;
mod watch;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, KvClient, TxnOp, TxnOpResponse,
    TxnResponse, WatchOptions,
};
use tracing::{debug, instrument};

use self::errors::{backend, is_compacted, is_future_revision};
use self::keys::prefix_range;
use super::{BackendError, EventStream, KeyValue, ListResult, Storage, StorageError};

/// How long `connect` waits for etcd to answer before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a watch waits for etcd to report the compaction it is about to fail with.
const COMPACTION_REPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest response we accept (lists of many objects exceed gRPC's 4 MiB default).
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// Storage on an etcd cluster; cheap to clone (clones share the connection).
#[derive(Clone)]
pub struct EtcdStorage {
    /// The connected client (boxed behind an `Arc`: it is large and clones share it anyway).
    client: Arc<Client>,
    /// Prepended to every key.
    prefix: String,
    /// The configured endpoints, for messages.
    endpoints: Vec<String>,
}

impl fmt::Debug for EtcdStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdStorage")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl EtcdStorage {
    /// Connects to etcd and checks that it answers; every key is stored under `prefix`.
    pub async fn connect(endpoints: &[String], prefix: &str) -> Result<Self, StorageError> {
        let options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let client = Client::connect(endpoints, Some(options))
            .await
            .map_err(|e| BackendError::EtcdConnect {
                endpoints: endpoints.to_vec(),
                source: Arc::new(e),
            })?;
        let storage = Self {
            client: Arc::new(client),
            prefix: prefix.to_owned(),
            endpoints: endpoints.to_vec(),
        };
        let revision = tokio::time::timeout(CONNECT_TIMEOUT, storage.current_revision())
            .await
            .map_err(|_| BackendError::EtcdTimeout {
                endpoints: endpoints.to_vec(),
                timeout: CONNECT_TIMEOUT,
            })??;
        debug!(?endpoints, prefix, revision, "connected to etcd");
        Ok(storage)
    }

    /// The prefix every key is stored under.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A KV client that accepts large responses.
    fn kv(&self) -> KvClient {
        self.client
            .kv_client()
            .max_decoding_message_size(MAX_RESPONSE_BYTES)
    }

    /// The etcd key for one of our keys.
    fn full_key(&self, key: &str) -> Vec<u8> {
        format!("{}{key}", self.prefix).into_bytes()
    }

    /// Our key for an etcd key: the prefix stripped, checked to be UTF-8.
    fn strip_key(&self, raw: &[u8]) -> Result<String, StorageError> {
        strip_prefix(&self.prefix, raw)
    }

    /// Converts an etcd key-value into ours.
    fn key_value(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue, StorageError> {
        Ok(KeyValue {
            key: self.strip_key(kv.key())?,
            value: kv.value().to_vec(),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
        })
    }

    /// Reads a key's current state from the else-branch of a failed transaction.
    fn failed_txn_current(&self, response: &TxnResponse) -> Result<Option<KeyValue>, StorageError> {
        for op in response.op_responses() {
            if let TxnOpResponse::Get(get) = op {
                return get.kvs().first().map(|kv| self.key_value(kv)).transpose();
            }
        }
        Err(BackendError::EtcdProtocol(
            "a transaction response lacks the read of the current value",
        )
        .into())
    }

    /// Whether etcd has compacted the history a watch after `after_revision` needs (the same
    /// rule etcd applies to watches: a read at `after_revision + 1` must still be possible).
    async fn history_compacted(&self, after_revision: i64) -> Result<bool, StorageError> {
        let (start, end) = prefix_range(self.prefix.as_bytes());
        let options = GetOptions::new()
            .with_range(end)
            .with_revision(after_revision + 1)
            .with_count_only();
        match self.kv().get(start, Some(options)).await {
            Ok(_) => Ok(false),
            Err(e) if is_compacted(&e) => Ok(true),
            Err(e) if is_future_revision(&e) => Ok(false),
            Err(e) => Err(backend("watch", &self.prefix)(e)),
        }
    }
}

/// Our key for an etcd key: `prefix` stripped, checked to be UTF-8.
fn strip_prefix(prefix: &str, raw: &[u8]) -> Result<String, StorageError> {
    let stripped =
        raw.strip_prefix(prefix.as_bytes())
            .ok_or_else(|| BackendError::KeyOutsidePrefix {
                key: String::from_utf8_lossy(raw).into_owned(),
                prefix: prefix.to_string(),
            })?;
    String::from_utf8(stripped.to_vec()).map_err(|source| {
        BackendError::KeyNotUtf8 {
            key: String::from_utf8_lossy(raw).into_owned(),
            source,
        }
        .into()
    })
}

/// The revision in a response header.
fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<i64, StorageError> {
    header
        .map(etcd_client::ResponseHeader::revision)
        .ok_or_else(|| BackendError::EtcdProtocol("a response without a header").into())
}

impl Storage for EtcdStorage {
    async fn get(&self, key: &str) -> Result<KeyValue, StorageError> {
        let response = self
            .kv()
            .get(self.full_key(key), None)
            .await
            .map_err(backend("get", key))?;
        match response.kvs().first() {
            Some(kv) => self.key_value(kv),
            None => Err(StorageError::NotFound {
                key: key.to_owned(),
            }),
        }
    }

    async fn list(&self, prefix: &str) -> Result<ListResult, StorageError> {
        let (start, end) = prefix_range(&self.full_key(prefix));
        let response = self
            .kv()
            .get(start, Some(GetOptions::new().with_range(end)))
            .await
            .map_err(backend("list", prefix))?;
        let items = response
            .kvs()
            .iter()
            .map(|kv| self.key_value(kv))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ListResult {
            items,
            revision: header_revision(response.header())?,
        })
    }

    #[instrument(level = "debug", skip(self, value), fields(len = value.len()))]
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<i64, StorageError> {
        let full = self.full_key(key);
        let txn = etcd_client::Txn::new()
            .when([Compare::create_revision(full.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(full, value, None)]);
        let response = self.kv().txn(txn).await.map_err(backend("create", key))?;
        if !response.succeeded() {
            return Err(StorageError::AlreadyExists {
                key: key.to_owned(),
            });
        }
        header_revision(response.header())
    }

    #[instrument(level = "debug", skip(self, value), fields(len = value.len()))]
    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected_mod_revision: i64,
    ) -> Result<i64, StorageError> {
        let full = self.full_key(key);
        let txn = etcd_client::Txn::new()
            .when([Compare::mod_revision(
                full.clone(),
                CompareOp::Equal,
                expected_mod_revision,
            )])
            .and_then([TxnOp::put(full.clone(), value, None)])
            .or_else([TxnOp::get(full, None)]);
        let response = self.kv().txn(txn).await.map_err(backend("update", key))?;
        if response.succeeded() {
            return header_revision(response.header());
        }
        match self.failed_txn_current(&response)? {
            Some(current) => Err(StorageError::Conflict {
                key: key.to_owned(),
                expected: expected_mod_revision,
                actual: current.mod_revision,
            }),
            None => Err(StorageError::NotFound {
                key: key.to_owned(),
            }),
        }
    }

    #[instrument(level = "debug", skip(self))]
    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<i64>,
    ) -> Result<(KeyValue, i64), StorageError> {
        let full = self.full_key(key);
        let guard = match expected_mod_revision {
            Some(expected) => Compare::mod_revision(full.clone(), CompareOp::Equal, expected),
            None => Compare::create_revision(full.clone(), CompareOp::Greater, 0),
        };
        let delete = etcd_client::DeleteOptions::new().with_prev_key();
        let txn = etcd_client::Txn::new()
            .when([guard])
            .and_then([TxnOp::delete(full.clone(), Some(delete))])
            .or_else([TxnOp::get(full, None)]);
        let response = self.kv().txn(txn).await.map_err(backend("delete", key))?;
        if !response.succeeded() {
            return match (self.failed_txn_current(&response)?, expected_mod_revision) {
                (Some(current), Some(expected)) => Err(StorageError::Conflict {
                    key: key.to_owned(),
                    expected,
                    actual: current.mod_revision,
                }),
                _ => Err(StorageError::NotFound {
                    key: key.to_owned(),
                }),
            };
        }
        let revision = header_revision(response.header())?;
        for op in response.op_responses() {
            if let TxnOpResponse::Delete(deleted) = op
                && let Some(kv) = deleted.prev_kvs().first()
            {
                return Ok((self.key_value(kv)?, revision));
            }
        }
        Err(BackendError::DeletedValueMissing {
            key: key.to_string(),
        }
        .into())
    }

    #[instrument(level = "debug", skip(self))]
    async fn watch(&self, prefix: &str, after_revision: i64) -> Result<EventStream, StorageError> {
        let after_revision = after_revision.max(0);
        let compacted = after_revision > 0 && self.history_compacted(after_revision).await?;
        let (start, end) = prefix_range(&self.full_key(prefix));
        let mut options = WatchOptions::new().with_range(end).with_prev_key();
        if after_revision > 0 {
            options = options.with_start_revision(after_revision + 1);
        }
        let mut stream = self
            .client
            .watch_client()
            .max_decoding_message_size(MAX_RESPONSE_BYTES)
            .watch(start, Some(options))
            .await
            .map_err(backend("watch", prefix))?;
        watch::wait_until_created(&mut stream, after_revision).await?;
        if compacted {
            let reported = tokio::time::timeout(
                COMPACTION_REPORT_TIMEOUT,
                watch::wait_for_compaction(&mut stream),
            )
            .await
            .unwrap_or(0);
            return Err(StorageError::Expired {
                requested: after_revision,
                compacted: reported,
            });
        }
        Ok(watch::event_stream(
            stream,
            self.prefix.clone(),
            after_revision,
        ))
    }

    async fn current_revision(&self) -> Result<i64, StorageError> {
        let (start, end) = prefix_range(self.prefix.as_bytes());
        let response = self
            .kv()
            .get(
                start,
                Some(GetOptions::new().with_range(end).with_count_only()),
            )
            .await
            .map_err(backend("current_revision", &self.prefix))?;
        header_revision(response.header())
    }

    #[instrument(level = "debug", skip(self))]
    async fn compact(&self, revision: i64) -> Result<(), StorageError> {
        match self.kv().compact(revision, None).await {
            Ok(_) => Ok(()),
            Err(e) if is_compacted(&e) => Ok(()),
            Err(e) if is_future_revision(&e) => Err(StorageError::FutureRevision {
                requested: revision,
                current: self.current_revision().await.unwrap_or(0),
            }),
            Err(e) => Err(backend("compact", &revision.to_string())(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_prefix_removes_exactly_the_prefix() {
        assert_eq!(
            strip_prefix("/skiff", b"/skiff/registry/pods/a").unwrap(),
            "/registry/pods/a"
        );
        assert_eq!(strip_prefix("", b"/x").unwrap(), "/x");
    }

    #[test]
    fn strip_prefix_rejects_foreign_and_non_utf8_keys() {
        assert!(strip_prefix("/skiff", b"/other/x").is_err());
        assert!(strip_prefix("/skiff", &[b'/', b's', b'k', b'i', b'f', b'f', 0xff]).is_err());
    }
}
