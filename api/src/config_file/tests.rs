use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand};

use super::*;

const PREFIXES: EnvPrefixes = EnvPrefixes {
    current: "SKIFF_TEST_",
    legacy: "SKIFF_",
};

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::duration::parse_duration(s).map_err(|e| e.to_string())
}

/// A program shaped like the agent: scalars, a bounded number, a switch, a list, a duration.
#[derive(Debug, Parser)]
#[command(name = "prog")]
struct Cli {
    #[arg(long, env = "SKIFF_TEST_CONFIG")]
    config: Option<PathBuf>,
    #[arg(long, env = "SKIFF_TEST_LISTEN", default_value = "127.0.0.1:10250")]
    listen: String,
    #[arg(long, env = "SKIFF_TEST_MAX_PODS", default_value_t = 110,
          value_parser = clap::value_parser!(i64).range(1..))]
    max_pods: i64,
    #[arg(long, env = "SKIFF_TEST_NO_PROXY")]
    no_proxy: bool,
    #[arg(long, env = "SKIFF_TEST_ETCD_ENDPOINTS", value_delimiter = ',')]
    etcd_endpoints: Vec<String>,
    #[arg(long, env = "SKIFF_TEST_RESYNC", default_value = "2s", value_parser = parse_duration)]
    resync: Duration,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// A subcommand with a flag of its own.
    Scheduler {
        #[arg(long, env = "SKIFF_TEST_CONFIG")]
        config: Option<PathBuf>,
        #[arg(
            long,
            env = "SKIFF_TEST_SERVER",
            default_value = "http://127.0.0.1:6443"
        )]
        server: String,
    },
}

struct ConfigFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn config_file(text: &str) -> ConfigFile {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("skiff.yaml");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    ConfigFile { _dir: dir, path }
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn run(
    args: &[&str],
    environment: &BTreeMap<String, String>,
) -> Result<Resolved<Cli>, ConfigError> {
    let mut argv = vec!["prog"];
    argv.extend_from_slice(args);
    resolve::<Cli>(argv, environment, PREFIXES)
}

fn with_config<'a>(file: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--config", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    args
}

#[test]
fn built_in_defaults_apply_without_file_or_environment() {
    let cli = run(&[], &env(&[])).unwrap().value;
    assert_eq!(cli.listen, "127.0.0.1:10250");
    assert_eq!(cli.max_pods, 110);
    assert!(!cli.no_proxy);
    assert!(cli.etcd_endpoints.is_empty());
    assert_eq!(cli.resync, Duration::from_secs(2));
}

#[test]
fn the_file_overrides_defaults() {
    let file = config_file(
        "listen: 0.0.0.0:1\nmax-pods: 7\nno-proxy: true\netcd-endpoints: [http://a:1, http://b:2]\nresync: 500ms\n",
    );
    let cli = run(&with_config(&file.path, &[]), &env(&[])).unwrap().value;
    assert_eq!(cli.listen, "0.0.0.0:1");
    assert_eq!(cli.max_pods, 7);
    assert!(cli.no_proxy);
    assert_eq!(cli.etcd_endpoints, vec!["http://a:1", "http://b:2"]);
    assert_eq!(cli.resync, Duration::from_millis(500));
}

#[test]
fn environment_overrides_the_file_and_flags_override_both() {
    let file = config_file("listen: from-file:1\nmax-pods: 7\n");
    let environment = env(&[("SKIFF_TEST_LISTEN", "from-env:2")]);
    let cli = run(&with_config(&file.path, &[]), &environment)
        .unwrap()
        .value;
    assert_eq!(cli.listen, "from-env:2");
    assert_eq!(
        cli.max_pods, 7,
        "a key the environment does not set keeps the file's value"
    );

    let cli = run(
        &with_config(&file.path, &["--listen", "from-flag:3"]),
        &environment,
    )
    .unwrap()
    .value;
    assert_eq!(cli.listen, "from-flag:3");
}

#[test]
fn the_config_file_can_be_named_by_the_environment() {
    let file = config_file("max-pods: 9\n");
    let environment = env(&[("SKIFF_TEST_CONFIG", file.path.to_str().unwrap())]);
    let resolved = run(&[], &environment).unwrap();
    assert_eq!(resolved.value.max_pods, 9);
    assert_eq!(resolved.config_file.as_deref(), Some(file.path.as_path()));
}

#[test]
fn legacy_environment_names_still_work_with_a_warning_and_lose_to_new_names() {
    let resolved = run(&[], &env(&[("SKIFF_LISTEN", "old:1")])).unwrap();
    assert_eq!(resolved.value.listen, "old:1");
    assert_eq!(resolved.warnings.len(), 1);
    assert!(resolved.warnings[0].contains("SKIFF_LISTEN is deprecated; use SKIFF_TEST_LISTEN"));

    let resolved = run(
        &[],
        &env(&[("SKIFF_LISTEN", "old:1"), ("SKIFF_TEST_LISTEN", "new:2")]),
    )
    .unwrap();
    assert_eq!(resolved.value.listen, "new:2");
    assert!(resolved.warnings.is_empty());
}

#[test]
fn environment_switches_and_lists_read_as_clap_reads_them() {
    let cli = run(
        &[],
        &env(&[
            ("SKIFF_TEST_NO_PROXY", "false"),
            ("SKIFF_TEST_ETCD_ENDPOINTS", "http://a:1,http://b:2"),
        ]),
    )
    .unwrap()
    .value;
    assert!(!cli.no_proxy);
    assert_eq!(cli.etcd_endpoints, vec!["http://a:1", "http://b:2"]);
    let cli = run(&[], &env(&[("SKIFF_TEST_NO_PROXY", "1")]))
        .unwrap()
        .value;
    assert!(cli.no_proxy);
}

#[test]
fn a_bad_environment_value_fails_like_a_bad_flag() {
    let error = run(&[], &env(&[("SKIFF_TEST_MAX_PODS", "0")])).unwrap_err();
    assert!(matches!(error, ConfigError::Cli(_)), "{error}");
}

#[test]
fn subcommands_take_their_own_keys_from_the_file() {
    let file = config_file("server: http://127.0.0.1:9\n");
    let args = ["scheduler", "--config", file.path.to_str().unwrap()];
    let cli = run(&args, &env(&[])).unwrap().value;
    match cli.command {
        Some(Sub::Scheduler { server, .. }) => assert_eq!(server, "http://127.0.0.1:9"),
        None => panic!("subcommand not parsed"),
    }
}

#[test]
fn an_empty_file_changes_nothing() {
    let file = config_file("# nothing set yet\n");
    let cli = run(&with_config(&file.path, &[]), &env(&[])).unwrap().value;
    assert_eq!(cli.max_pods, 110);
}

fn error_of(text: &str) -> String {
    let file = config_file(text);
    let error = run(&with_config(&file.path, &[]), &env(&[])).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(file.path.to_str().unwrap()),
        "the error names the file: {message}"
    );
    message
}

#[test]
fn an_unknown_key_is_named_with_its_line_and_a_suggestion() {
    let message = error_of("listen: a:1\n\nmax_pods: 3\n");
    assert!(message.contains("line 3"), "{message}");
    assert!(message.contains("unknown key \"max_pods\""), "{message}");
    assert!(message.contains("did you mean \"max-pods\"?"), "{message}");
    let message = error_of("colour: blue\n");
    assert!(
        !message.contains("did you mean"),
        "no far-fetched hint: {message}"
    );
}

#[test]
fn the_config_and_help_keys_are_not_settings() {
    assert!(error_of("config: other.yaml\n").contains("unknown key \"config\""));
    assert!(error_of("help: true\n").contains("unknown key \"help\""));
}

#[test]
fn a_value_its_flag_rejects_is_named_with_line_key_and_reason() {
    let message = error_of("listen: a:1\nmax-pods: 0\n");
    assert!(message.contains("line 2"), "{message}");
    assert!(message.contains("key \"max-pods\""), "{message}");
    assert!(message.contains("0 is not in 1.."), "{message}");

    let message = error_of("resync: soon\n");
    assert!(message.contains("key \"resync\""), "{message}");
    assert!(message.contains("soon"), "{message}");
}

#[test]
fn a_list_for_a_single_value_flag_is_refused() {
    let message = error_of("listen: [a:1, b:2]\n");
    assert!(message.contains("key \"listen\""), "{message}");
    assert!(
        message.contains("expected one value, got a list"),
        "{message}"
    );
}

#[test]
fn a_switch_takes_only_true_or_false() {
    let message = error_of("no-proxy: sometimes\n");
    assert!(message.contains("key \"no-proxy\""), "{message}");
    assert!(message.contains("expected true or false"), "{message}");
}

#[test]
fn a_file_that_is_not_a_mapping_is_refused() {
    let message = error_of("- listen\n- max-pods\n");
    assert!(message.contains("not a YAML mapping"), "{message}");
    let message = error_of("listen: {nested: map}\n");
    assert!(message.contains("not a YAML mapping"), "{message}");
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let error = run(&["--config", "/nonexistent/skiff.yaml"], &env(&[])).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("/nonexistent/skiff.yaml"), "{message}");
}

#[test]
fn edit_distance_counts_single_character_edits() {
    assert_eq!(edit_distance("listen", "listen"), 0);
    assert_eq!(edit_distance("listen", "listn"), 1);
    assert_eq!(edit_distance("max-pods", "max_pods"), 1);
    assert_eq!(edit_distance("", "abc"), 3);
}
