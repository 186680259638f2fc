//! Running `kubectl` against a test controlplane without touching the user's configuration.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Run `kubectl --server <server> <args…>` and return its output.
///
/// `server` is a URL (`http://127.0.0.1:PORT`) or just `host:port` (plain HTTP is assumed).
/// `KUBECONFIG` points at an empty throwaway file and the discovery cache lives in a throwaway
/// directory, so neither the user's config nor a cache from another test run is used.
/// Panics when kubectl cannot be started at all.
pub fn kubectl(server: &str, args: &[&str]) -> Output {
    run(server, args, None)
}

/// Like [`kubectl()`], with `stdin` fed to the process (for `kubectl create -f -`).
pub fn kubectl_stdin(server: &str, args: &[&str], stdin: &str) -> Output {
    run(server, args, Some(stdin))
}

/// Like [`kubectl()`], but panics (showing the command, exit status, stdout and stderr) unless
/// kubectl succeeded, and returns its stdout.
pub fn kubectl_ok(server: &str, args: &[&str]) -> String {
    let output = kubectl(server, args);
    if !output.status.success() {
        panic!(
            "`kubectl --server {} {}` failed ({}):\nstdout:\n{}\nstderr:\n{}",
            server_url(server),
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `server` as a URL: unchanged when it has a scheme, else `http://` in front.
fn server_url(server: &str) -> String {
    if server.starts_with("http://") || server.starts_with("https://") {
        server.to_owned()
    } else {
        format!("http://{server}")
    }
}

/// A `kubectl --server <server> <args…>` command whose kubeconfig (empty) and discovery cache
/// live in `home`, for running kubectl in the background (e.g. `get -w` under a
/// [`crate::ChildGuard`]). Panics when the empty kubeconfig cannot be written.
pub fn kubectl_command(server: &str, home: &Path, args: &[&str]) -> Command {
    let kubeconfig = home.join("kubeconfig");
    std::fs::write(&kubeconfig, "")
        .unwrap_or_else(|err| panic!("cannot write an empty kubeconfig: {err}"));
    let mut command = Command::new("kubectl");
    command
        .arg("--server")
        .arg(server_url(server))
        .arg("--cache-dir")
        .arg(home.join("cache"))
        .args(args)
        .env("KUBECONFIG", &kubeconfig);
    command
}

/// Start kubectl with a private kubeconfig and cache, feed `stdin`, collect the output.
fn run(server: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let home = tempfile::tempdir()
        .unwrap_or_else(|err| panic!("cannot create a temporary directory for kubectl: {err}"));
    let mut command = kubectl_command(server, home.path(), args);
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run kubectl (is it on PATH?): {err}"));
    let writer = match (stdin, child.stdin.take()) {
        (Some(input), Some(mut pipe)) => {
            let input = input.to_owned();
            // A thread, so a large input cannot deadlock against a full stdout pipe.
            Some(std::thread::spawn(move || pipe.write_all(input.as_bytes())))
        }
        _ => None,
    };
    let output = child
        .wait_with_output()
        .unwrap_or_else(|err| panic!("cannot wait for kubectl: {err}"));
    if let Some(writer) = writer {
        // kubectl may exit without reading everything (e.g. on a usage error); that shows in
        // its own output, so a broken pipe here is not worth reporting.
        let _ = writer.join();
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_get_a_scheme() {
        assert_eq!(server_url("127.0.0.1:6443"), "http://127.0.0.1:6443");
        assert_eq!(server_url("http://127.0.0.1:1"), "http://127.0.0.1:1");
        assert_eq!(server_url("https://h:1"), "https://h:1");
    }

    #[test]
    fn runs_without_any_kubeconfig() {
        // Nothing listens on a fresh port: kubectl must get as far as connecting to it, which
        // shows the empty kubeconfig and --server were accepted.
        let port = crate::free_port();
        let output = kubectl(
            &format!("127.0.0.1:{port}"),
            &["get", "pods", "--request-timeout=5s"],
        );
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
        assert!(stderr.contains("connection refused"), "{stderr}");
    }

    #[test]
    fn stdin_reaches_kubectl() {
        // `label --local` works offline, so the output can only come from the stdin manifest.
        let output = kubectl_stdin(
            "127.0.0.1:1",
            &["label", "--local", "-f", "-", "a=b", "-o", "name"],
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: from-stdin\nspec:\n  containers:\n  - name: c\n    image: x\n",
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            "pod/from-stdin"
        );
    }
}
