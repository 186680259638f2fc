//! Running a binary (skiff-controlplane, skiff-agent, etcd …) for the length of a test, with
//! its output kept in a log file that is printed when the test fails.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::bin::bin_path;

/// How often log files and exit status are polled.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long [`ChildGuard::stop`] waits after SIGTERM before it sends SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How many log lines error messages and failure dumps show.
const TAIL_LINES: usize = 60;

/// Why managing a child process failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The log file or its directory could not be created or read.
    #[error("could not {action} for {name}: {source}")]
    Log {
        /// What was being done with the log.
        action: &'static str,
        /// Which process the log belongs to.
        name: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The program could not be started.
    #[error("could not start {program}: {source}")]
    Spawn {
        /// The program that failed to start.
        program: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// Sending a signal or waiting for the process failed.
    #[error("could not {action} {name} (pid {pid}): {detail}")]
    Control {
        /// What was attempted ("send SIGTERM to", "wait for" …).
        action: String,
        /// Which process.
        name: String,
        /// Its pid.
        pid: u32,
        /// What went wrong.
        detail: String,
    },
    /// The process exited while a test was still waiting for it to do something.
    #[error("{name} exited ({status}) while waiting for {waiting_for}; log {log_path:?}:\n{tail}")]
    Exited {
        /// Which process.
        name: String,
        /// How it exited.
        status: ExitStatus,
        /// What the test was waiting for.
        waiting_for: String,
        /// Where the full log is.
        log_path: PathBuf,
        /// The last lines of the log.
        tail: String,
    },
    /// The deadline passed before the awaited thing happened.
    #[error(
        "timed out after {timeout:?} waiting for {waiting_for} from {name}; log {log_path:?}:\n{tail}"
    )]
    TimedOut {
        /// Which process.
        name: String,
        /// What the test was waiting for.
        waiting_for: String,
        /// How long it waited.
        timeout: Duration,
        /// Where the full log is.
        log_path: PathBuf,
        /// The last lines of the log.
        tail: String,
    },
}

/// A Unix signal that tests send to processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: ask for a graceful shutdown.
    Term,
    /// SIGINT: what Ctrl-C sends.
    Int,
    /// SIGKILL: stop at once, no cleanup.
    Kill,
    /// SIGHUP: terminal hang-up / reload.
    Hup,
    /// SIGSTOP: freeze the process (simulates a hung daemon).
    Stop,
    /// SIGCONT: resume a stopped process.
    Cont,
}

impl Signal {
    /// The name `kill -s` understands.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Int => "INT",
            Signal::Kill => "KILL",
            Signal::Hup => "HUP",
            Signal::Stop => "STOP",
            Signal::Cont => "CONT",
        }
    }
}

/// A running child process that is killed when the guard is dropped.
///
/// stdout and stderr go to one log file in a temporary directory. When the guard is dropped
/// during a panic (a failing test), the tail of the log is printed and the directory is kept,
/// so the failure can be investigated.
#[derive(Debug)]
pub struct ChildGuard {
    /// Short name for messages: the program's file name.
    name: String,
    /// The process; behind a mutex so waiting and polling work through `&self`.
    child: Mutex<Child>,
    /// Its pid, kept so messages need no lock.
    pid: u32,
    /// The file receiving stdout and stderr.
    log_path: PathBuf,
    /// The directory holding the log; `None` once it has been kept or removed.
    log_dir: Option<TempDir>,
    /// Set once the process is known to have exited, so drop does not kill a reused pid.
    exited: Mutex<Option<ExitStatus>>,
}

impl ChildGuard {
    /// Start `command` with stdin closed and stdout/stderr captured into the log file.
    /// Configure arguments, environment and working directory on `command` before.
    pub fn spawn(mut command: Command) -> Result<Self, ProcessError> {
        let name = Path::new(command.get_program())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "process".to_owned());
        let log_error = |action| {
            let name = name.clone();
            move |source| ProcessError::Log {
                action,
                name,
                source,
            }
        };
        let log_dir = tempfile::Builder::new()
            .prefix(&format!("skiff-e2e-{name}-"))
            .tempdir()
            .map_err(log_error("create a log directory"))?;
        let log_path = log_dir.path().join(format!("{name}.log"));
        let stdout = File::create(&log_path).map_err(log_error("create the log file"))?;
        let stderr = stdout
            .try_clone()
            .map_err(log_error("share the log file"))?;
        command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
        let child = command.spawn().map_err(|source| ProcessError::Spawn {
            program: command.get_program().to_string_lossy().into_owned(),
            source,
        })?;
        Ok(Self {
            name,
            pid: child.id(),
            child: Mutex::new(child),
            log_path,
            log_dir: Some(log_dir),
            exited: Mutex::new(None),
        })
    }

    /// Start the workspace binary `name` (found with [`bin_path`]) with `args` and extra
    /// environment variables `envs`.
    pub fn spawn_bin(
        name: &str,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Result<Self, ProcessError> {
        let mut command = Command::new(bin_path(name));
        command.args(args);
        command.envs(envs.iter().copied());
        Self::spawn(command)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The program's file name, as used in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where stdout and stderr are written.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the process has written so far.
    pub fn log(&self) -> String {
        self.read_log_from(0)
    }

    /// The current end of the log; pass it to [`Self::wait_for_log_line_since`] to wait only
    /// for output written after this point.
    pub fn log_mark(&self) -> u64 {
        std::fs::metadata(&self.log_path)
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// The last lines of the log, for error messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log(), TAIL_LINES)
    }

    /// Wait until a log line contains `pattern` (plain substring) and return that line.
    /// Fails early when the process exits first, and at the deadline; both errors carry the
    /// log's tail.
    pub async fn wait_for_log_line(
        &self,
        pattern: &str,
        timeout: Duration,
    ) -> Result<String, ProcessError> {
        self.wait_for_log_line_since(0, pattern, timeout).await
    }

    /// Like [`Self::wait_for_log_line`], but only looks at output after `mark` (from
    /// [`Self::log_mark`]).
    pub async fn wait_for_log_line_since(
        &self,
        mark: u64,
        pattern: &str,
        timeout: Duration,
    ) -> Result<String, ProcessError> {
        let deadline = Instant::now() + timeout;
        let waiting_for = format!("a log line containing {pattern:?}");
        loop {
            if let Some(line) = self.find_line(mark, pattern) {
                return Ok(line);
            }
            if let Some(status) = self.try_wait()? {
                // The last output may have landed just before the exit.
                return match self.find_line(mark, pattern) {
                    Some(line) => Ok(line),
                    None => Err(self.exited_error(status, waiting_for)),
                };
            }
            if Instant::now() >= deadline {
                return Err(self.timed_out_error(waiting_for, timeout));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Send `signal` to the process (through the `kill` command).
    pub fn signal(&self, signal: Signal) -> Result<(), ProcessError> {
        let control_error = |detail: String| ProcessError::Control {
            action: format!("send SIG{} to", signal.name()),
            name: self.name.clone(),
            pid: self.pid,
            detail,
        };
        let output = Command::new("kill")
            .args(["-s", signal.name(), &self.pid.to_string()])
            .output()
            .map_err(|err| control_error(format!("cannot run kill: {err}")))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(control_error(
                String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            ))
        }
    }

    /// The exit status if the process has exited, without blocking.
    pub fn try_wait(&self) -> Result<Option<ExitStatus>, ProcessError> {
        let mut exited = lock(&self.exited);
        if let Some(status) = *exited {
            return Ok(Some(status));
        }
        let status = lock(&self.child)
            .try_wait()
            .map_err(|err| ProcessError::Control {
                action: "check on".to_owned(),
                name: self.name.clone(),
                pid: self.pid,
                detail: err.to_string(),
            })?;
        *exited = status;
        Ok(status)
    }

    /// Whether the process is still running.
    pub fn is_running(&self) -> bool {
        matches!(self.try_wait(), Ok(None))
    }

    /// Wait up to `timeout` for the process to exit on its own (e.g. after [`Self::signal`])
    /// and return its status.
    pub async fn wait_exit(&self, timeout: Duration) -> Result<ExitStatus, ProcessError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(self.timed_out_error("the process to exit".to_owned(), timeout));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Stop the process: SIGTERM, up to 10 s to exit, then SIGKILL. Returns how it exited.
    /// Blocks the calling thread while it waits.
    pub fn stop(&mut self) -> Result<ExitStatus, ProcessError> {
        if let Some(status) = self.try_wait()? {
            return Ok(status);
        }
        // The process may exit between the check and the signal; that is fine.
        let _ = self.signal(Signal::Term);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        self.kill()
    }

    /// SIGKILL the process and reap it.
    pub fn kill(&mut self) -> Result<ExitStatus, ProcessError> {
        if let Some(status) = self.try_wait()? {
            return Ok(status);
        }
        let mut child = lock(&self.child);
        let control_error = |action: &str, err: std::io::Error| ProcessError::Control {
            action: action.to_owned(),
            name: self.name.clone(),
            pid: self.pid,
            detail: err.to_string(),
        };
        // kill() fails only when the process was already reaped, which try_wait rules out.
        child.kill().map_err(|err| control_error("kill", err))?;
        let status = child.wait().map_err(|err| control_error("wait for", err))?;
        *lock(&self.exited) = Some(status);
        Ok(status)
    }

    /// The first line after `mark` that contains `pattern`.
    fn find_line(&self, mark: u64, pattern: &str) -> Option<String> {
        self.read_log_from(mark)
            .lines()
            .find(|line| line.contains(pattern))
            .map(str::to_owned)
    }

    /// The log from byte `offset` on; empty when it cannot be read.
    fn read_log_from(&self, offset: u64) -> String {
        let mut bytes = Vec::new();
        if let Ok(mut file) = File::open(&self.log_path)
            && file.seek(SeekFrom::Start(offset)).is_ok()
        {
            let _ = file.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The error for "exited while we were waiting".
    fn exited_error(&self, status: ExitStatus, waiting_for: String) -> ProcessError {
        ProcessError::Exited {
            name: self.name.clone(),
            status,
            waiting_for,
            log_path: self.log_path.clone(),
            tail: self.log_tail(),
        }
    }

    /// The error for "the deadline passed".
    fn timed_out_error(&self, waiting_for: String, timeout: Duration) -> ProcessError {
        ProcessError::TimedOut {
            name: self.name.clone(),
            waiting_for,
            timeout,
            log_path: self.log_path.clone(),
            tail: self.log_tail(),
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Err(err) = self.kill() {
            eprintln!("skiff-e2e: {err}");
        }
        if std::thread::panicking() {
            let kept = self.log_dir.take().map(TempDir::keep);
            eprintln!(
                "----- last lines of {} (pid {}), full log kept at {:?} -----\n{}\n----- end of {} log -----",
                self.name,
                self.pid,
                kept.map(|dir| dir.join(format!("{}.log", self.name))),
                self.log_tail(),
                self.name,
            );
        }
    }
}

/// Lock a mutex, recovering the data if another thread panicked while holding it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> ChildGuard {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        ChildGuard::spawn(command).unwrap()
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
        assert_eq!(tail("", 5), "");
    }

    #[tokio::test]
    async fn finds_log_lines_from_stdout_and_stderr() {
        let child = sh("echo starting; echo 'listening on 1234' >&2; exec sleep 30");
        let line = child
            .wait_for_log_line("listening on", Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(line, "listening on 1234");
        assert!(child.log().contains("starting"));
        assert!(child.is_running());
    }

    #[tokio::test]
    async fn since_mark_ignores_older_output() {
        let dir = tempfile::tempdir().unwrap();
        let go = dir.path().join("go");
        let child = sh(&format!(
            "echo ready; while [ ! -e '{}' ]; do sleep 0.05; done; echo ready again; exec sleep 30",
            go.display()
        ));
        child
            .wait_for_log_line("ready", Duration::from_secs(10))
            .await
            .unwrap();
        let mark = child.log_mark();
        File::create(&go).unwrap();
        let line = child
            .wait_for_log_line_since(mark, "ready", Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(line, "ready again");
    }

    #[tokio::test]
    async fn early_exit_is_reported_with_the_log() {
        let child = sh("echo 'fatal: bad flag'; exit 3");
        let err = child
            .wait_for_log_line("never printed", Duration::from_secs(10))
            .await
            .unwrap_err();
        match &err {
            ProcessError::Exited { status, tail, .. } => {
                assert_eq!(status.code(), Some(3));
                assert!(tail.contains("fatal: bad flag"));
            }
            other => panic!("unexpected error: {other}"),
        }
    }

    #[tokio::test]
    async fn timeout_is_reported() {
        let child = sh("exec sleep 30");
        let err = child
            .wait_for_log_line("never", Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(err, ProcessError::TimedOut { .. }), "{err}");
    }

    #[tokio::test]
    async fn sigterm_reaches_the_process() {
        let child =
            sh("trap 'echo got term; exit 7' TERM; echo armed; while :; do sleep 0.05; done");
        child
            .wait_for_log_line("armed", Duration::from_secs(10))
            .await
            .unwrap();
        child.signal(Signal::Term).unwrap();
        let status = child.wait_exit(Duration::from_secs(10)).await.unwrap();
        assert_eq!(status.code(), Some(7));
        assert!(child.log().contains("got term"));
    }

    #[test]
    fn stop_terminates_and_drop_kills() {
        let mut child = sh("exec sleep 30");
        let status = child.stop().unwrap();
        assert!(!status.success());
        let pid = child.pid();
        drop(child);

        let child = sh("trap '' TERM; exec sleep 30");
        let pid2 = child.pid();
        drop(child);
        for pid in [pid, pid2] {
            let alive = Command::new("kill")
                .args(["-0", &pid.to_string()])
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success();
            assert!(!alive, "pid {pid} still alive");
        }
    }

    #[test]
    fn spawn_reports_missing_programs() {
        let err = ChildGuard::spawn(Command::new("/nonexistent/skiff-x")).unwrap_err();
        assert!(matches!(err, ProcessError::Spawn { .. }), "{err}");
    }
}
