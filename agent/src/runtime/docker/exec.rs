//! Commands run in containers (`docker exec`), with a timeout and a cap on kept output.

use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures::StreamExt;
use tokio::time::Instant;

use super::errors::map_error;
use crate::runtime::{EXEC_OUTPUT_LIMIT, ExecResult, RuntimeError};

/// How often the exit code is polled after the output ended.
const EXIT_POLL: Duration = Duration::from_millis(10);

/// Output kept up to a limit; the rest is counted but dropped.
#[derive(Debug, Default)]
pub(super) struct CappedOutput {
    /// The kept bytes.
    bytes: Vec<u8>,
    /// Whether anything was dropped.
    truncated: bool,
}

impl CappedOutput {
    /// Appends `chunk`, keeping at most `limit` bytes in total.
    pub(super) fn push(&mut self, chunk: &[u8], limit: usize) {
        let room = limit.saturating_sub(self.bytes.len());
        if chunk.len() > room {
            self.truncated = true;
        }
        self.bytes
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
    }

    /// The kept output as text (invalid UTF-8 replaced) and whether it was cut.
    pub(super) fn finish(self) -> (String, bool) {
        (
            String::from_utf8_lossy(&self.bytes).into_owned(),
            self.truncated,
        )
    }
}

/// The bytes of one output frame, whichever stream it came from.
pub(super) fn frame_bytes(frame: &LogOutput) -> &[u8] {
    match frame {
        LogOutput::StdOut { message }
        | LogOutput::StdErr { message }
        | LogOutput::StdIn { message }
        | LogOutput::Console { message } => message,
    }
}

/// Runs `command` in container `id`, waiting up to `timeout` for it to exit.
pub(super) async fn exec(
    docker: &Docker,
    id: &str,
    command: &[String],
    timeout: Duration,
) -> Result<ExecResult, RuntimeError> {
    let operation = || format!("exec {command:?} in container {id}");
    let timed_out = || RuntimeError::ExecTimeout {
        container: id.to_string(),
        command: command.to_vec(),
        timeout,
    };
    let deadline = Instant::now() + timeout;
    let run = async {
        let created = docker
            .create_exec(
                id,
                CreateExecOptions {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(command.to_vec()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| map_error(operation(), e))?;
        let started = docker
            .start_exec(&created.id, Some(StartExecOptions::default()))
            .await
            .map_err(|e| map_error(operation(), e))?;
        let mut output = CappedOutput::default();
        if let StartExecResults::Attached {
            output: mut stream, ..
        } = started
        {
            while let Some(frame) = stream.next().await {
                let frame = frame.map_err(|e| map_error(operation(), e))?;
                output.push(frame_bytes(&frame), EXEC_OUTPUT_LIMIT);
            }
        }
        // The stream ends when the process closes its output; the exit code follows shortly.
        loop {
            let inspected = docker
                .inspect_exec(&created.id)
                .await
                .map_err(|e| map_error(operation(), e))?;
            if inspected.running != Some(true) {
                let (output, truncated) = output.finish();
                return Ok(ExecResult {
                    exit_code: inspected.exit_code.unwrap_or(-1),
                    output,
                    truncated,
                });
            }
            tokio::time::sleep(EXIT_POLL).await;
        }
    };
    tokio::time::timeout_at(deadline, run)
        .await
        .map_err(|_| timed_out())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_output_keeps_the_start() {
        let mut out = CappedOutput::default();
        out.push(b"hello ", 8);
        out.push(b"world", 8);
        assert_eq!(out.finish(), ("hello wo".to_string(), true));
        let mut out = CappedOutput::default();
        out.push(b"ok", 8);
        assert_eq!(out.finish(), ("ok".to_string(), false));
    }
}
