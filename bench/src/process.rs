//! Daemons a benchmark starts (etcd, skiff-controlplane, skiff-agent): output into a log file,
//! readiness over HTTP, resident memory from /proc, and SIGTERM-then-SIGKILL when dropped.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How often readiness and exit are polled.
const POLL: Duration = Duration::from_millis(100);
/// How long a stopped daemon gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How many log lines an error message carries.
const TAIL_LINES: usize = 40;
/// Set to keep the daemons' log directories after the run.
pub const KEEP_LOGS_ENV: &str = "SKIFF_BENCH_KEEP_LOGS";

/// Why starting, watching or measuring a daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The log directory or file could not be created.
    #[error("could not create the log file for {name}: {source}")]
    Log {
        /// Which daemon.
        name: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The program could not be started.
    #[error("could not start {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The daemon exited while it should have been running.
    #[error("{name} exited ({status}); last lines of {log}:\n{tail}")]
    Exited {
        /// Which daemon.
        name: String,
        /// How it exited.
        status: ExitStatus,
        /// Its log file.
        log: String,
        /// The end of its log.
        tail: String,
    },
    /// The daemon did not become ready in time.
    #[error("{name} did not answer {url} within {timeout:?}; last lines of {log}:\n{tail}")]
    NotReady {
        /// Which daemon.
        name: String,
        /// What was polled.
        url: String,
        /// How long we waited.
        timeout: Duration,
        /// Its log file.
        log: String,
        /// The end of its log.
        tail: String,
    },
    /// Its memory figure could not be read from /proc.
    #[error("could not read VmRSS of {name} (pid {pid}): {detail}")]
    Rss {
        /// Which daemon.
        name: String,
        /// Its pid.
        pid: u32,
        /// What went wrong.
        detail: String,
    },
}

/// A running daemon, stopped (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct Daemon {
    /// Short name for messages, e.g. `skiff-agent`.
    name: String,
    /// The process.
    child: Child,
    /// Where stdout and stderr go.
    log_path: PathBuf,
    /// Holds the log directory; removed on drop unless logs are kept.
    log_dir: Option<TempDir>,
    /// Set once the process has been reaped, so a reused pid is never signalled.
    exited: Option<ExitStatus>,
}

impl Daemon {
    /// Starts `program` with `args` and extra environment `envs`, stdin closed and
    /// stdout/stderr into a log file in a fresh temporary directory.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(String, String)],
    ) -> Result<Self, ProcessError> {
        let log_error = |source| ProcessError::Log {
            name: name.to_string(),
            source,
        };
        let log_dir = tempfile::Builder::new()
            .prefix(&format!("skiff-bench-{name}-"))
            .tempdir()
            .map_err(log_error)?;
        let log_path = log_dir.path().join(format!("{name}.log"));
        let stdout = File::create(&log_path).map_err(log_error)?;
        let stderr = stdout.try_clone().map_err(log_error)?;
        let child = Command::new(program)
            .args(args)
            .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|source| ProcessError::Spawn {
                program: program.display().to_string(),
                source,
            })?;
        Ok(Daemon {
            name: name.to_string(),
            child,
            log_path,
            log_dir: Some(log_dir),
            exited: None,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
    }

    /// Fails with the log's tail when the daemon has exited.
    pub fn check_running(&mut self) -> Result<(), ProcessError> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        match self.exited {
            None => Ok(()),
            Some(status) => Err(ProcessError::Exited {
                name: self.name.clone(),
                status,
                log: self.log_path.display().to_string(),
                tail: self.log_tail(),
            }),
        }
    }

    /// Polls `url` until it answers 2xx; fails when the daemon exits or `timeout` passes.
    pub async fn wait_http_ok(&mut self, url: &str, timeout: Duration) -> Result<(), ProcessError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_default();
        let deadline = Instant::now() + timeout;
        loop {
            self.check_running()?;
            if let Ok(response) = http.get(url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ProcessError::NotReady {
                    name: self.name.clone(),
                    url: url.to_string(),
                    timeout,
                    log: self.log_path.display().to_string(),
                    tail: self.log_tail(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Resident set size in KiB, from `VmRSS` in /proc/<pid>/status.
    pub fn rss_kib(&mut self) -> Result<u64, ProcessError> {
        self.check_running()?;
        rss_kib_of(self.pid()).map_err(|detail| ProcessError::Rss {
            name: self.name.clone(),
            pid: self.pid(),
            detail,
        })
    }

    /// Sends SIGTERM, waits up to ten seconds, then SIGKILLs; idempotent.
    pub fn stop(&mut self) {
        if self.exited.is_some() {
            return;
        }
        if let Ok(Some(status)) = self.child.try_wait() {
            self.exited = Some(status);
            return;
        }
        // std has no SIGTERM and unsafe code is forbidden: ask kill(1).
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exited = Some(status);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        self.exited = self.child.wait().ok();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        if std::env::var_os(KEEP_LOGS_ENV).is_some_and(|v| !v.is_empty())
            && let Some(dir) = self.log_dir.take()
        {
            let kept = dir.keep();
            eprintln!(
                "skiff-bench: kept the {} log in {}",
                self.name,
                kept.display()
            );
        }
    }
}

/// `VmRSS` of process `pid` in KiB.
pub fn rss_kib_of(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    parse_vm_rss(&status).ok_or_else(|| format!("no VmRSS line in {path}"))
}

/// The `VmRSS:   1234 kB` value of a /proc/<pid>/status text.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line.split_whitespace().skip(1);
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => Some(value),
        Some(_) => None,
    }
}

/// Pid of the first process whose command name (/proc/<pid>/comm) is `comm`, if any.
pub fn pid_of_command(comm: &str) -> Option<u32> {
    let entries = std::fs::read_dir("/proc").ok()?;
    entries.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let name = std::fs::read_to_string(entry.path().join("comm")).ok()?;
        (name.trim_end() == comm).then_some(pid)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\tx\nVmPeak:\t 9 kB\nVmRSS:\t    1234 kB\nThreads: 3\n";
        assert_eq!(parse_vm_rss(status), Some(1234));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        assert_eq!(parse_vm_rss("VmRSS: 12 MB\n"), None);
    }

    #[test]
    fn own_rss_is_readable() {
        assert!(rss_kib_of(std::process::id()).unwrap() > 0);
    }

    #[tokio::test]
    async fn a_daemon_is_stopped_on_drop_and_exit_is_reported() {
        let mut sleeper = Daemon::spawn(
            "sleep",
            Path::new("sleep"),
            &["30".to_string()],
            &[("X".to_string(), "1".to_string())],
        )
        .unwrap();
        let pid = sleeper.pid();
        sleeper.check_running().unwrap();
        assert!(sleeper.rss_kib().unwrap() > 0);
        drop(sleeper);
        assert!(rss_kib_of(pid).is_err() || !Path::new(&format!("/proc/{pid}")).exists());

        let mut quick = Daemon::spawn("true", Path::new("true"), &[], &[]).unwrap();
        let err = quick
            .wait_http_ok("http://127.0.0.1:1/", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, ProcessError::Exited { .. }), "{err}");
    }
}
