//! The manifest directory source (`--manifest-dir`): static pods from files.
//!
//! The directory itself is watched (non-recursively, so an editor's write-temp-then-rename
//! lands as an event in it), events are debounced, and every event or periodic tick rescans
//! the whole directory. Each file is re-read only when its content changed; a file that does
//! not decode or validate is logged once per content change — one line naming the file and
//! every error — and skipped: its last good pods (if any) stay, other files are untouched.
//! Removing a file removes its pods. When two files define the same pod, the file whose name
//! sorts first wins and the other is logged as a duplicate.
//!
//! A missing or unreadable directory makes the source *unavailable*: the last known pods stay
//! (at startup, those of the checkpoint) until it can be read again. On a first start (no
//! checkpointed pods) a missing directory is created.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use sha2::{Digest, Sha256};
use skiff_api::wait::jittered_interval;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::desired::{DesiredPod, PodSource};
use super::manifest::{format_errors, is_manifest_file_name, load_manifest};
use super::merge::{SourceSender, SourceState, pod_key};

/// The name of this source in the merge and its checkpoint file.
pub const SOURCE_NAME: &str = "file";
/// How often the directory is rescanned even without events.
pub const DEFAULT_RESCAN_INTERVAL: Duration = Duration::from_secs(20);
/// Largest random stretch of one rescan interval, so agents restarted together drift apart.
const RESCAN_JITTER: f64 = 0.1;
/// How long events settle before a rescan: editors write several events per save.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(250);
/// Files larger than this are not manifests; they are reported instead of read.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// Settings of the manifest directory source.
#[derive(Debug, Clone)]
pub struct DirSourceConfig {
    /// The directory holding the manifests.
    pub dir: PathBuf,
    /// This node's name: suffix of static pod names and their `spec.nodeName`.
    pub node_name: String,
    /// Full rescan period, the safety net for missed events.
    pub rescan_interval: Duration,
    /// How long file events settle before a rescan.
    pub debounce: Duration,
}

impl DirSourceConfig {
    /// Settings for `dir` on node `node_name` with the default rescan and debounce intervals.
    pub fn new(dir: impl Into<PathBuf>, node_name: impl Into<String>) -> Self {
        DirSourceConfig {
            dir: dir.into(),
            node_name: node_name.into(),
            rescan_interval: DEFAULT_RESCAN_INTERVAL,
            debounce: DEFAULT_DEBOUNCE,
        }
    }
}

/// The running source: watches, rescans and publishes to the merge.
#[derive(Debug)]
pub struct DirSource {
    /// Its settings.
    config: DirSourceConfig,
    /// Where it publishes its pods.
    sender: SourceSender,
    /// The file cache; behind a mutex so scans can run on a blocking thread.
    scanner: Arc<Mutex<DirScanner>>,
    /// Create the directory if it is missing at startup (no checkpointed pods to protect).
    create_if_missing: bool,
}

impl DirSource {
    /// A source for `config` publishing through `sender`; `restored` is its checkpoint, whose
    /// pods count as each file's last good pods until the file is read.
    pub fn new(
        config: DirSourceConfig,
        sender: SourceSender,
        restored: Option<&SourceState>,
    ) -> Self {
        let create_if_missing = restored.is_none_or(|state| state.pods.is_empty());
        let scanner = DirScanner::new(&config.dir, &config.node_name, restored);
        DirSource {
            config,
            sender,
            scanner: Arc::new(Mutex::new(scanner)),
            create_if_missing,
        }
    }

    /// Scans at once, then on every debounced event and every rescan interval, until
    /// `shutdown`. Publishes the full set after each scan (the merge drops repeats).
    pub async fn run(mut self, shutdown: CancellationToken) {
        let dir = self.config.dir.clone();
        if self.create_if_missing && !dir.exists() {
            match std::fs::create_dir_all(&dir) {
                Ok(()) => info!(dir = %dir.display(), "created manifest directory"),
                Err(err) => {
                    warn!(dir = %dir.display(), error = %err, "could not create manifest directory, waiting for it");
                }
            }
        }
        let (trigger_tx, mut trigger_rx) = mpsc::channel::<()>(1);
        let mut watch: Option<DirWatch> = None;
        // Jittered, so agents restarted together do not rescan in step.
        let mut ticker = jittered_interval(self.config.rescan_interval, RESCAN_JITTER);
        let mut unavailable: Option<String> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
                Some(()) = trigger_rx.recv() => {}
            }
            watch = self.ensure_watch(watch, &trigger_tx);
            let scanner = self.scanner.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                scanner
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .scan()
            })
            .await;
            match outcome {
                Ok(ScanOutcome::Pods(pods)) => {
                    if unavailable.take().is_some() {
                        info!(dir = %dir.display(), "manifest directory readable again");
                    }
                    self.sender
                        .publish(SourceState {
                            pods,
                            resource_version: None,
                        })
                        .await;
                }
                Ok(ScanOutcome::Unavailable(error)) => {
                    if unavailable.as_ref() != Some(&error) {
                        warn!(
                            dir = %dir.display(),
                            error = %error,
                            pods_kept = self.sender.current().pods.len(),
                            "manifest directory unavailable, keeping the last known pods"
                        );
                    }
                    unavailable = Some(error);
                    self.sender.unavailable();
                }
                Err(err) => {
                    warn!(dir = %dir.display(), error = %err, "manifest directory scan failed")
                }
            }
        }
        debug!(dir = %dir.display(), "manifest directory source stopped");
    }

    /// Keeps a watch on the directory that exists now: a new one when it appeared or was
    /// replaced (another inode), none while it is missing.
    fn ensure_watch(
        &self,
        current: Option<DirWatch>,
        trigger: &mpsc::Sender<()>,
    ) -> Option<DirWatch> {
        let dir = &self.config.dir;
        let identity = std::fs::metadata(dir)
            .ok()
            .filter(|meta| meta.is_dir())
            .map(|meta| (meta.dev(), meta.ino()));
        let identity = identity?;
        if let Some(watch) = current
            && watch.identity == identity
        {
            return Some(watch);
        }
        let trigger = trigger.clone();
        let watched = dir.clone();
        let handler = move |result: DebounceEventResult| match result {
            Ok(events) => {
                let relevant = events.iter().any(|event| {
                    event.need_rescan()
                        || event.paths.is_empty()
                        || event
                            .paths
                            .iter()
                            .any(|path| is_relevant_path(&watched, path))
                });
                if relevant {
                    // Full means a rescan is already pending.
                    let _ = trigger.try_send(());
                }
            }
            Err(errors) => {
                for error in errors {
                    warn!(error = %error, "manifest directory watch error");
                }
                let _ = trigger.try_send(());
            }
        };
        let mut debouncer = match new_debouncer(self.config.debounce, None, handler) {
            Ok(debouncer) => debouncer,
            Err(err) => {
                warn!(dir = %dir.display(), error = %err, "could not start watching the manifest directory, relying on rescans");
                return None;
            }
        };
        if let Err(err) = debouncer.watch(dir, RecursiveMode::NonRecursive) {
            warn!(dir = %dir.display(), error = %err, "could not watch the manifest directory, relying on rescans");
            return None;
        }
        debug!(dir = %dir.display(), "watching manifest directory");
        Some(DirWatch {
            _debouncer: debouncer,
            identity,
        })
    }
}

/// A live watch on the directory.
struct DirWatch {
    /// Keeps the watch alive; dropping it stops the watcher thread.
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
    /// `(device, inode)` of the watched directory, to notice it being replaced.
    identity: (u64, u64),
}

impl std::fmt::Debug for DirWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirWatch")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// Whether an event at `path` may change what the directory `dir` holds: the directory
/// itself or a manifest file in it (not dotfiles, editor temporaries, other extensions).
fn is_relevant_path(dir: &Path, path: &Path) -> bool {
    if path == dir {
        return true;
    }
    path.file_name().is_some_and(is_manifest_file_name)
}

/// The result of one scan.
#[derive(Debug, Clone, PartialEq)]
pub enum ScanOutcome {
    /// The directory could not be listed (why); keep the last known pods.
    Unavailable(String),
    /// Every pod the directory defines now, files in name order, duplicates dropped.
    Pods(Vec<DesiredPod>),
}

/// What one scan knows of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fingerprint {
    /// The SHA-256 of its content.
    Content(String),
    /// It could not be read, with this error.
    Unreadable(String),
}

/// The cache entry of one manifest file.
#[derive(Debug, Default)]
struct FileEntry {
    /// What it held at the last read; `None` for entries restored from the checkpoint.
    fingerprint: Option<Fingerprint>,
    /// Its pods at the last good read (or from the checkpoint); kept while it is broken.
    last_good: Option<Vec<DesiredPod>>,
    /// Its current content is broken.
    failing: bool,
}

/// Scans the directory into pods, remembering each file's content and last good pods.
#[derive(Debug)]
pub struct DirScanner {
    /// The manifest directory.
    dir: PathBuf,
    /// Node name for static pod names.
    node_name: String,
    /// Every manifest file seen in the last scan (and restored ones before the first), by path.
    files: BTreeMap<PathBuf, FileEntry>,
    /// `(file, pod key)` duplicates already logged, so each is logged once.
    duplicates: BTreeSet<(PathBuf, String)>,
}

impl DirScanner {
    /// A scanner of `dir` for `node_name`; pods in `restored` become their files' last good pods.
    pub fn new(dir: &Path, node_name: &str, restored: Option<&SourceState>) -> Self {
        let mut files: BTreeMap<PathBuf, FileEntry> = BTreeMap::new();
        for desired in restored
            .map(|state| state.pods.as_slice())
            .unwrap_or_default()
        {
            if let PodSource::File(path) = &desired.source {
                files
                    .entry(path.clone())
                    .or_default()
                    .last_good
                    .get_or_insert_with(Vec::new)
                    .push(desired.clone());
            }
        }
        DirScanner {
            dir: dir.to_path_buf(),
            node_name: node_name.to_string(),
            files,
            duplicates: BTreeSet::new(),
        }
    }

    /// Lists the directory, re-reads changed files and returns every pod it defines now.
    pub fn scan(&mut self) -> ScanOutcome {
        let present = match self.list_manifest_files() {
            Ok(present) => present,
            Err(err) => return ScanOutcome::Unavailable(err.to_string()),
        };
        self.files.retain(|path, entry| {
            let keep = present.contains(path);
            if !keep && entry.fingerprint.is_some() {
                info!(file = %path.display(), "manifest file removed");
            }
            keep
        });
        for path in present {
            self.refresh(path);
        }
        ScanOutcome::Pods(self.collect_pods())
    }

    /// The manifest files in the directory now, as full paths.
    fn list_manifest_files(&self) -> std::io::Result<BTreeSet<PathBuf>> {
        let mut present = BTreeSet::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            if !is_manifest_file_name(&entry.file_name()) {
                continue;
            }
            let path = entry.path();
            // Follows symlinks: a link to a file counts, directories do not.
            if std::fs::metadata(&path).is_ok_and(|meta| meta.is_file()) {
                present.insert(path);
            }
        }
        Ok(present)
    }

    /// Re-reads `path` if its content changed since the last scan, logging the outcome once.
    fn refresh(&mut self, path: PathBuf) {
        let (fingerprint, text) = match read_manifest(&path) {
            Ok(Some(text)) => (Fingerprint::Content(content_hash(&text)), Some(text)),
            Ok(None) => {
                // Removed between listing and reading: the next scan sees it gone.
                return;
            }
            Err(error) => (Fingerprint::Unreadable(error), None),
        };
        let entry = self.files.entry(path.clone()).or_default();
        if entry.fingerprint.as_ref() == Some(&fingerprint) {
            return;
        }
        let result = match (&fingerprint, text) {
            (_, Some(text)) => load_manifest(&path, &text, &self.node_name),
            (Fingerprint::Unreadable(error), None) => Err(vec![error.clone()]),
            (Fingerprint::Content(_), None) => Err(Vec::new()),
        };
        entry.fingerprint = Some(fingerprint);
        match result {
            Ok(pods) => {
                let names: Vec<&str> = pods
                    .iter()
                    .map(|desired| desired.pod.metadata.name_or_empty())
                    .collect();
                info!(file = %path.display(), pods = ?names, "loaded manifest file");
                entry.failing = false;
                entry.last_good = Some(pods);
            }
            Err(errors) => {
                entry.failing = true;
                let kept = entry.last_good.as_ref().map_or(0, Vec::len);
                warn!(
                    file = %path.display(),
                    errors = %format_errors(&errors),
                    kept_pods = kept,
                    "skipping invalid manifest file"
                );
            }
        }
    }

    /// Every file's current (or last good) pods in file name order; a pod another file defined
    /// first is dropped and logged once.
    fn collect_pods(&mut self) -> Vec<DesiredPod> {
        let mut owners: BTreeMap<String, &Path> = BTreeMap::new();
        let mut pods = Vec::new();
        let mut duplicates = BTreeSet::new();
        for (path, entry) in &self.files {
            for desired in entry.last_good.iter().flatten() {
                let key = pod_key(desired);
                if let Some(first) = owners.get(&key) {
                    let duplicate = (path.clone(), key.clone());
                    if !self.duplicates.contains(&duplicate) {
                        warn!(
                            file = %path.display(),
                            pod = %key,
                            defined_in = %first.display(),
                            "duplicate static pod ignored: an earlier file defines it"
                        );
                    }
                    duplicates.insert(duplicate);
                    continue;
                }
                owners.insert(key, path);
                pods.push(desired.clone());
            }
        }
        self.duplicates = duplicates;
        pods
    }
}

/// The text of a manifest file, `None` if it no longer exists, or why it cannot be used
/// (too large, unreadable, not UTF-8).
fn read_manifest(path: &Path) -> Result<Option<String>, String> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(format!("read: {err}")),
    };
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| format!("read: {err}"))?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(format!(
            "file is larger than {MAX_MANIFEST_BYTES} bytes, not a manifest"
        ));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|err| format!("decode: not UTF-8: {err}"))
}

/// SHA-256 of a file's text, hex.
fn content_hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::watch;

    use super::*;
    use crate::config::{DesiredState, Merger};
    use crate::test_logs::capture_logs;

    const NODE: &str = "edge-1";

    fn good(name: &str, image: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec: {{containers: [{{name: c, image: '{image}'}}]}}\n"
        )
    }

    /// Three errors: a bad name, a repeated container name, an out-of-range port.
    const BAD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: Bad_Name
spec:
  containers:
  - name: web
    image: busybox:1
  - name: web
    image: busybox:1
    ports:
    - containerPort: 70000
"#;

    fn names(outcome: &ScanOutcome) -> Vec<String> {
        match outcome {
            ScanOutcome::Pods(pods) => pods
                .iter()
                .map(|desired| desired.pod.metadata.name_or_empty().to_owned())
                .collect(),
            ScanOutcome::Unavailable(why) => panic!("directory unavailable: {why}"),
        }
    }

    fn pods(outcome: ScanOutcome) -> Vec<DesiredPod> {
        match outcome {
            ScanOutcome::Pods(pods) => pods,
            ScanOutcome::Unavailable(why) => panic!("directory unavailable: {why}"),
        }
    }

    #[test]
    fn reads_manifests_and_ignores_everything_else() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), good("a", "busybox:1")).unwrap();
        std::fs::write(dir.path().join("b.json"), r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b"}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}"#).unwrap();
        std::fs::write(dir.path().join("c.yml"), good("c", "busybox:1")).unwrap();
        for ignored in [".d.yaml", "e.yaml~", "f.yaml.swp", "notes.txt", "4913"] {
            std::fs::write(dir.path().join(ignored), BAD).unwrap();
        }
        std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();
        let mut scanner = DirScanner::new(dir.path(), NODE, None);
        let (outcome, logs) = capture_logs(|| scanner.scan());
        assert_eq!(names(&outcome), ["a-edge-1", "b-edge-1", "c-edge-1"]);
        assert!(!logs.iter().any(|line| line.contains("WARN")), "{logs:#?}");
        let first = pods(outcome);
        assert_eq!(first[0].source, PodSource::File(dir.path().join("a.yaml")));
    }

    #[test]
    fn a_bad_file_is_one_log_line_with_every_error_once_per_content() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.yaml");
        std::fs::write(dir.path().join("good.yaml"), good("good", "busybox:1")).unwrap();
        std::fs::write(&bad, BAD).unwrap();
        let mut scanner = DirScanner::new(dir.path(), NODE, None);

        let (outcome, logs) = capture_logs(|| scanner.scan());
        assert_eq!(names(&outcome), ["good-edge-1"]);
        let warnings: Vec<&String> = logs.iter().filter(|line| line.contains("WARN")).collect();
        assert_eq!(warnings.len(), 1, "{logs:#?}");
        let line = warnings[0];
        assert!(line.contains(&format!("file={}", bad.display())), "{line}");
        for cause in [
            "metadata.name: Invalid value: \"Bad_Name-edge-1\"",
            "spec.containers[1].name: Duplicate value: \"web\"",
            "spec.containers[1].ports[0].containerPort: Invalid value: 70000",
        ] {
            assert!(line.contains(cause), "{cause} missing in {line}");
        }

        // Rescans of unchanged content log nothing.
        let (outcome, logs) = capture_logs(|| scanner.scan());
        assert_eq!(names(&outcome), ["good-edge-1"]);
        assert!(logs.is_empty(), "{logs:#?}");

        // New broken content is logged again, once.
        std::fs::write(&bad, "metadata: [").unwrap();
        let (_, logs) = capture_logs(|| scanner.scan());
        assert_eq!(
            logs.iter().filter(|line| line.contains("WARN")).count(),
            1,
            "{logs:#?}"
        );
        let (_, logs) = capture_logs(|| scanner.scan());
        assert!(logs.is_empty(), "{logs:#?}");

        // Fixing it brings its pod up.
        std::fs::write(&bad, good("fixed", "busybox:1")).unwrap();
        let (outcome, _) = capture_logs(|| scanner.scan());
        assert_eq!(names(&outcome), ["fixed-edge-1", "good-edge-1"]);
    }

    #[test]
    fn a_broken_edit_keeps_the_last_good_pods_until_fixed_or_removed() {
        let dir = tempfile::tempdir().unwrap();
        let web = dir.path().join("web.yaml");
        std::fs::write(&web, good("web", "busybox:1")).unwrap();
        let mut scanner = DirScanner::new(dir.path(), NODE, None);
        let before = pods(scanner.scan());

        std::fs::write(&web, BAD).unwrap();
        let (outcome, logs) = capture_logs(|| scanner.scan());
        assert_eq!(pods(outcome), before);
        assert!(logs[0].contains("kept_pods=1"), "{logs:#?}");

        std::fs::write(&web, good("web", "busybox:2")).unwrap();
        let after = pods(scanner.scan());
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].pod.metadata.uid, before[0].pod.metadata.uid);
        assert_eq!(after[0].pod.spec.containers[0].image, "busybox:2");

        std::fs::write(&web, BAD).unwrap();
        assert_eq!(pods(scanner.scan()), after);
        std::fs::remove_file(&web).unwrap();
        assert_eq!(pods(scanner.scan()), vec![]);
    }

    #[test]
    fn the_first_file_by_name_wins_a_duplicate_and_the_other_is_logged_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yaml"), good("web", "from-b:1")).unwrap();
        std::fs::write(dir.path().join("a.yaml"), good("web", "from-a:1")).unwrap();
        let mut scanner = DirScanner::new(dir.path(), NODE, None);
        let (outcome, logs) = capture_logs(|| scanner.scan());
        let found = pods(outcome);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].pod.spec.containers[0].image, "from-a:1");
        let warnings: Vec<&String> = logs.iter().filter(|line| line.contains("WARN")).collect();
        assert_eq!(warnings.len(), 1, "{logs:#?}");
        assert!(warnings[0].contains("duplicate"), "{}", warnings[0]);
        assert!(warnings[0].contains("b.yaml"), "{}", warnings[0]);
        let (_, logs) = capture_logs(|| scanner.scan());
        assert!(logs.is_empty(), "{logs:#?}");

        // Removing the winner lets the other file's pod in.
        std::fs::remove_file(dir.path().join("a.yaml")).unwrap();
        let found = pods(scanner.scan());
        assert_eq!(found[0].pod.spec.containers[0].image, "from-b:1");
    }

    #[test]
    fn a_missing_directory_is_unavailable_and_restored_pods_stand_in_for_unread_files() {
        let dir = tempfile::tempdir().unwrap();
        let manifests = dir.path().join("manifests");
        std::fs::create_dir(&manifests).unwrap();
        std::fs::write(manifests.join("web.yaml"), good("web", "busybox:1")).unwrap();
        std::fs::write(manifests.join("db.yaml"), good("db", "busybox:1")).unwrap();
        let mut scanner = DirScanner::new(&manifests, NODE, None);
        let known = SourceState {
            pods: pods(scanner.scan()),
            resource_version: None,
        };

        // After a restart with web.yaml broken and db.yaml gone, the checkpoint supplies
        // web's last good pod and db's pod is removed.
        std::fs::write(manifests.join("web.yaml"), BAD).unwrap();
        std::fs::remove_file(manifests.join("db.yaml")).unwrap();
        let mut restarted = DirScanner::new(&manifests, NODE, Some(&known));
        assert_eq!(names(&restarted.scan()), ["web-edge-1"]);

        std::fs::remove_dir_all(&manifests).unwrap();
        assert!(matches!(restarted.scan(), ScanOutcome::Unavailable(_)));
    }

    /// Waits until the merged state holds exactly the pods `want`.
    async fn wait_for(rx: &watch::Receiver<Arc<DesiredState>>, want: &[&str]) {
        let mut rx = rx.clone();
        let result = tokio::time::timeout(
            Duration::from_secs(10),
            rx.wait_for(|state| {
                state
                    .pods
                    .keys()
                    .map(String::as_str)
                    .eq(want.iter().copied())
            }),
        )
        .await;
        assert!(result.is_ok(), "timed out waiting for {want:?}");
    }

    #[tokio::test]
    async fn the_running_source_follows_renames_and_removals_without_waiting_for_rescans() {
        let dir = tempfile::tempdir().unwrap();
        let manifests = dir.path().join("manifests");
        let merger = Merger::new(None);
        let (sender, restored) = merger.add_source(SOURCE_NAME).unwrap();
        let mut config = DirSourceConfig::new(&manifests, NODE);
        config.rescan_interval = Duration::from_secs(3600);
        config.debounce = Duration::from_millis(50);
        let source = DirSource::new(config, sender, restored.as_ref());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(source.run(shutdown.clone()));
        let rx = merger.subscribe();
        tokio::time::timeout(Duration::from_secs(5), merger.wait_ready())
            .await
            .unwrap();
        // The missing directory was created (first start, nothing checkpointed).
        assert!(manifests.is_dir());

        let temp = manifests.join(".web.yaml.tmp");
        std::fs::write(&temp, good("web", "busybox:1")).unwrap();
        std::fs::rename(&temp, manifests.join("web.yaml")).unwrap();
        wait_for(&rx, &["default/web-edge-1"]).await;

        std::fs::remove_file(manifests.join("web.yaml")).unwrap();
        wait_for(&rx, &[]).await;

        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn a_missing_directory_at_startup_serves_the_checkpoint_and_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::checkpoint::CheckpointStore::new(&dir.path().join("data"));
        let manifests = dir.path().join("manifests");
        std::fs::create_dir(&manifests).unwrap();
        std::fs::write(manifests.join("web.yaml"), good("web", "busybox:1")).unwrap();
        let known = SourceState {
            pods: pods(DirScanner::new(&manifests, NODE, None).scan()),
            resource_version: None,
        };
        store.save(SOURCE_NAME, &known).unwrap();
        std::fs::remove_dir_all(&manifests).unwrap();

        let merger = Merger::new(Some(store));
        let (sender, restored) = merger.add_source(SOURCE_NAME).unwrap();
        let mut config = DirSourceConfig::new(&manifests, NODE);
        config.rescan_interval = Duration::from_millis(100);
        config.debounce = Duration::from_millis(50);
        let source = DirSource::new(config, sender, restored.as_ref());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(source.run(shutdown.clone()));
        tokio::time::timeout(Duration::from_secs(5), merger.wait_ready())
            .await
            .unwrap();
        assert_eq!(
            merger.current().pods.keys().collect::<Vec<_>>(),
            ["default/web-edge-1"]
        );
        assert!(!manifests.exists());

        // Once the directory is back, it is the truth again.
        std::fs::create_dir(&manifests).unwrap();
        std::fs::write(manifests.join("db.yaml"), good("db", "busybox:1")).unwrap();
        wait_for(&merger.subscribe(), &["default/db-edge-1"]).await;

        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }
}
