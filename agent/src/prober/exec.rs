//! The exec prober: the command runs in the container through the runtime; exit code 0 is
//! healthy. The timeout is enforced twice: the runtime is asked to give up after it, and the
//! call is abandoned here after it too, whichever comes first; both read "timed out after 1s".

use std::future::Future;
use std::time::Duration;

use skiff_api::types::ExecAction;

use super::{ProbeOutcome, fmt_duration, snippet};
use crate::runtime::{ContainerRuntime, ExecResult, RuntimeError};

/// How much of a failing command's output goes into the failure message.
const OUTPUT_IN_MESSAGE: usize = 256;

/// Why an exec probe failed; its message is the probe's failure reason.
#[derive(Debug, thiserror::Error)]
pub enum ExecProbeError {
    /// The probe has an empty command.
    #[error("exec probe has no command")]
    NoCommand,
    /// The command did not finish within the timeout.
    #[error("timed out after {}", fmt_duration(*.0))]
    Timeout(Duration),
    /// The runtime could not run the command (container gone or stopped, engine down).
    #[error("{0}")]
    Runtime(RuntimeError),
    /// The command ended with a non-zero exit code.
    #[error("command {command:?} exited with code {exit_code}{}", output_suffix(.output))]
    ExitCode {
        /// The command line.
        command: Vec<String>,
        /// Its exit code.
        exit_code: i64,
        /// The start of its output, for the message.
        output: String,
    },
}

/// `": <output>"` for non-empty output, else nothing.
fn output_suffix(output: &str) -> String {
    if output.is_empty() {
        String::new()
    } else {
        format!(": {output}")
    }
}

/// One probe: run the action's command in `container_id` within `timeout`.
pub async fn probe<R: ContainerRuntime>(
    runtime: &R,
    container_id: &str,
    action: &ExecAction,
    timeout: Duration,
) -> ProbeOutcome {
    match run(runtime, container_id, action, timeout).await {
        Ok(()) => ProbeOutcome::Success,
        Err(e) => ProbeOutcome::Failure(e.to_string()),
    }
}

/// One probe, with the failure as an error.
pub async fn run<R: ContainerRuntime>(
    runtime: &R,
    container_id: &str,
    action: &ExecAction,
    timeout: Duration,
) -> Result<(), ExecProbeError> {
    if action.command.is_empty() {
        return Err(ExecProbeError::NoCommand);
    }
    let result = runtime.exec(container_id, &action.command, timeout);
    judge(&action.command, result, timeout).await
}

/// Awaits an exec at most `timeout` and judges its result.
async fn judge(
    command: &[String],
    exec: impl Future<Output = Result<ExecResult, RuntimeError>>,
    timeout: Duration,
) -> Result<(), ExecProbeError> {
    let result = match tokio::time::timeout(timeout, exec).await {
        Err(_) | Ok(Err(RuntimeError::ExecTimeout { .. })) => {
            return Err(ExecProbeError::Timeout(timeout));
        }
        Ok(Err(e)) => return Err(ExecProbeError::Runtime(e)),
        Ok(Ok(result)) => result,
    };
    if result.exit_code == 0 {
        Ok(())
    } else {
        Err(ExecProbeError::ExitCode {
            command: command.to_vec(),
            exit_code: result.exit_code,
            output: snippet(&result.output, OUTPUT_IN_MESSAGE).to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prober::test_server::running_container;

    fn command(args: &[&str]) -> ExecAction {
        ExecAction {
            command: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn exit_zero_is_healthy() {
        let (runtime, id) = running_container().await;
        runtime.set_exec_handler(|_, _| {
            Ok(ExecResult {
                exit_code: 0,
                output: "ok".into(),
                truncated: false,
            })
        });
        let action = command(&["cat", "/tmp/healthy"]);
        assert_eq!(
            probe(&runtime, &id, &action, SECOND).await,
            ProbeOutcome::Success
        );
        let calls = runtime.calls();
        assert!(calls.contains(&crate::runtime::fake::Call::Exec {
            id: id.clone(),
            command: action.command.clone(),
            timeout: SECOND,
        }));
    }

    #[tokio::test]
    async fn a_non_zero_exit_is_a_failure_with_the_output() {
        let (runtime, id) = running_container().await;
        runtime.set_exec_handler(|_, _| {
            Ok(ExecResult {
                exit_code: 1,
                output: "cat: can't open '/tmp/healthy'\n".into(),
                truncated: false,
            })
        });
        let outcome = probe(&runtime, &id, &command(&["cat", "/tmp/healthy"]), SECOND).await;
        assert_eq!(
            outcome,
            ProbeOutcome::Failure(
                "command [\"cat\", \"/tmp/healthy\"] exited with code 1: cat: can't open '/tmp/healthy'"
                    .into()
            )
        );
    }

    #[tokio::test]
    async fn a_runtime_timeout_is_reported_as_timed_out() {
        let (runtime, id) = running_container().await;
        runtime.set_exec_handler(|container, command| {
            Err(RuntimeError::ExecTimeout {
                container: container.into(),
                command: command.to_vec(),
                timeout: Duration::from_secs(1),
            })
        });
        let outcome = probe(&runtime, &id, &command(&["sleep", "10"]), SECOND).await;
        assert_eq!(outcome, ProbeOutcome::Failure("timed out after 1s".into()));
    }

    #[tokio::test]
    async fn an_exec_that_never_returns_is_cut_off_at_the_timeout() {
        let never = std::future::pending::<Result<ExecResult, RuntimeError>>();
        let started = std::time::Instant::now();
        let result = judge(&["sleep".into(), "10".into()], never, SECOND).await;
        assert_eq!(result.unwrap_err().to_string(), "timed out after 1s");
        assert!(started.elapsed() >= SECOND);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_stopped_container_is_a_failure() {
        let (runtime, id) = running_container().await;
        assert!(runtime.set_exited(&id, 0));
        let outcome = probe(&runtime, &id, &command(&["true"]), SECOND).await;
        let ProbeOutcome::Failure(why) = outcome else {
            panic!("expected a failure, got {outcome:?}");
        };
        assert!(why.contains("not running"), "{why}");
    }

    #[tokio::test]
    async fn an_empty_command_is_a_failure() {
        let (runtime, id) = running_container().await;
        let outcome = probe(&runtime, &id, &command(&[]), SECOND).await;
        assert_eq!(
            outcome,
            ProbeOutcome::Failure("exec probe has no command".into())
        );
        assert!(
            runtime
                .calls()
                .iter()
                .all(|c| !matches!(c, crate::runtime::fake::Call::Exec { .. }))
        );
    }
}
