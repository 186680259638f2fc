//! One way for both binaries to take their settings from flags, the environment and a YAML
//! config file, with the precedence operators expect: flag > environment > file > built-in
//! default.
//!
//! Every long flag is a key of the file (`node-name: edge-1`, `etcd-endpoints: [a, b]`). A key
//! that names no flag, a value that does not parse, a list where one value is expected, or a
//! file that is not a YAML mapping is an error naming the file, the line and the key. Each
//! flag's environment variable carries the program's own prefix (`SKIFF_AGENT_…`,
//! `SKIFF_CONTROLPLANE_…`); the shared `SKIFF_…` name of older releases is still read, with a
//! deprecation warning, when the new one is unset.
//!
//! The environment is read through [`Environment`], so precedence is tested without touching
//! the process environment. clap still shows every variable in `--help`; the final parse runs
//! on a copy of the command whose environment lookups were resolved here.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, ArgMatches, Command, CommandFactory, FromArgMatches};
use serde::Deserialize;
use serde_saphyr::Spanned;

/// The id of the flag that names the config file; every program using this module has it.
pub const CONFIG_FLAG: &str = "config";
/// A config file larger than this is refused rather than read: it cannot be a settings file.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Why the settings could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The command line itself is wrong (or asks for `--help`/`--version`).
    #[error(transparent)]
    Cli(#[from] clap::Error),
    /// The config file could not be read.
    #[error("config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The config file is larger than [`MAX_CONFIG_BYTES`].
    #[error(
        "config file {path}: {size} bytes is more than the {MAX_CONFIG_BYTES} a config file may have"
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The config file is not YAML, or not a mapping of keys to scalars and lists.
    #[error("config file {path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with its line and column.
        message: String,
    },
    /// A key names no flag of this program.
    #[error("config file {path}, line {line}: unknown key {key:?}{hint}")]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key's line.
        line: u32,
        /// The key.
        key: String,
        /// A suggestion of the nearest known key, if any.
        hint: String,
    },
    /// A key's value is not valid for its flag.
    #[error("config file {path}, line {line}: key {key:?}: {message}")]
    Value {
        /// The file.
        path: PathBuf,
        /// The key's line.
        line: u32,
        /// The key.
        key: String,
        /// What is wrong with the value.
        message: String,
    },
}

impl ConfigError {
    /// Print the error and exit as clap does: status 0 for `--help`/`--version`, 2 otherwise.
    pub fn exit(&self) -> ! {
        match self {
            ConfigError::Cli(error) => error.exit(),
            other => {
                eprintln!("error: {other}");
                std::process::exit(2)
            }
        }
    }
}

/// Where environment variables come from: the process, or a map in tests.
pub trait Environment {
    /// The value of variable `name`, if set and valid UTF-8.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Environment for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// How a program names its environment variables.
#[derive(Debug, Clone, Copy)]
pub struct EnvPrefixes {
    /// The program's own prefix, e.g. `SKIFF_AGENT_`.
    pub current: &'static str,
    /// The shared prefix of older releases, e.g. `SKIFF_`, still read with a warning.
    pub legacy: &'static str,
}

/// The parsed settings, and the warnings to log once logging is set up.
#[derive(Debug)]
pub struct Resolved<T> {
    /// The program's settings.
    pub value: T,
    /// Deprecation notices (old environment names in use).
    pub warnings: Vec<String>,
    /// The config file read, if any.
    pub config_file: Option<PathBuf>,
}

/// Parse the process's command line and environment with a config file, for `main`.
pub fn parse<T: CommandFactory + FromArgMatches>(prefixes: EnvPrefixes) -> Resolved<T> {
    match resolve::<T>(std::env::args_os(), &ProcessEnvironment, prefixes) {
        Ok(resolved) => resolved,
        Err(error) => error.exit(),
    }
}

/// Resolve `args` (program name first) against `env` and the config file they name.
pub fn resolve<T: CommandFactory + FromArgMatches>(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    env: &dyn Environment,
    prefixes: EnvPrefixes,
) -> Result<Resolved<T>, ConfigError> {
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let command = T::command();
    let mut warnings = Vec::new();
    let mut defaults: BTreeMap<String, Vec<String>> = BTreeMap::new();

    // First pass: the subcommand in use and the config file, with environment lookups off so
    // a required flag missing from the command line does not stop us yet.
    let first = without_env(command.clone())
        .ignore_errors(true)
        .try_get_matches_from(args.clone())?;
    let (target_path, target_matches) = subcommand_path(&first);
    let target = find_subcommand(&command, &target_path);

    let config_arg = target.get_arguments().find(|a| a.get_id() == CONFIG_FLAG);
    let config_file = match target_matches.try_get_one::<PathBuf>(CONFIG_FLAG) {
        Ok(Some(path)) => Some(path.clone()),
        _ => config_arg
            .and_then(|a| a.get_env())
            .and_then(|name| {
                lookup(
                    env,
                    name.to_str().unwrap_or_default(),
                    prefixes,
                    &mut warnings,
                )
            })
            .map(PathBuf::from),
    };
    if let Some(path) = &config_file {
        for (id, values) in read_config_file(path, target)? {
            defaults.insert(id, values);
        }
    }

    // Environment beats the file: resolve every flag's variable (new name, then legacy).
    for arg in target.get_arguments() {
        let Some(name) = arg.get_env().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(value) = lookup(env, name, prefixes, &mut warnings) {
            defaults.insert(arg.get_id().to_string(), env_values(arg, &value));
        }
    }

    let mut final_command = without_env(command);
    final_command = apply_defaults(final_command, &target_path, &defaults);
    let matches = final_command.try_get_matches_from(args)?;
    let value = T::from_arg_matches(&matches)?;
    Ok(Resolved {
        value,
        warnings,
        config_file,
    })
}

/// A variable by its current name or, with a warning, by its legacy name.
fn lookup(
    env: &dyn Environment,
    name: &str,
    prefixes: EnvPrefixes,
    warnings: &mut Vec<String>,
) -> Option<String> {
    if let Some(value) = env.var(name) {
        return Some(value);
    }
    let rest = name.strip_prefix(prefixes.current)?;
    let legacy = format!("{}{rest}", prefixes.legacy);
    let value = env.var(&legacy)?;
    warnings.push(format!(
        "environment variable {legacy} is deprecated; use {name} (the old name will be removed)"
    ));
    Some(value)
}

/// An environment value as the flag's default values: split on the flag's delimiter, and
/// booleans normalised the way clap reads them from the environment.
fn env_values(arg: &Arg, value: &str) -> Vec<String> {
    if is_switch(arg) {
        let falsey = matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no" | "off" | "n" | "f"
        );
        return vec![(!falsey).to_string()];
    }
    match arg.get_value_delimiter() {
        Some(delimiter) => value.split(delimiter).map(str::to_string).collect(),
        None => vec![value.to_string()],
    }
}

/// Whether the flag takes no value (`--no-proxy`).
fn is_switch(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse)
}

/// Whether the flag takes several values.
fn is_multi(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
        || arg.get_value_delimiter().is_some()
        || arg.get_num_args().is_some_and(|n| n.max_values() > 1)
}

/// `command` (and its subcommands) with every environment lookup removed.
fn without_env(command: Command) -> Command {
    let ids: Vec<String> = command
        .get_arguments()
        .filter(|a| a.get_env().is_some())
        .map(|a| a.get_id().to_string())
        .collect();
    let mut command = command;
    for id in ids {
        command = command.mut_arg(id, |a| a.env(None));
    }
    let names: Vec<String> = command
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        command = command.mut_subcommand(name, without_env);
    }
    command
}

/// The names of the nested subcommands in use, and the innermost matches.
fn subcommand_path(matches: &ArgMatches) -> (Vec<String>, &ArgMatches) {
    let mut path = Vec::new();
    let mut current = matches;
    while let Some((name, sub)) = current.subcommand() {
        path.push(name.to_string());
        current = sub;
    }
    (path, current)
}

/// The (sub)command at `path`.
fn find_subcommand<'a>(command: &'a Command, path: &[String]) -> &'a Command {
    let mut current = command;
    for name in path {
        match current.find_subcommand(name) {
            Some(sub) => current = sub,
            None => break,
        }
    }
    current
}

/// `command` with `defaults` set on the (sub)command at `path`.
fn apply_defaults(
    command: Command,
    path: &[String],
    defaults: &BTreeMap<String, Vec<String>>,
) -> Command {
    if let Some((first, rest)) = path.split_first() {
        return command.mut_subcommand(first, |sub| apply_defaults(sub, rest, defaults));
    }
    let mut command = command;
    for (id, values) in defaults {
        let values = values.clone();
        command = command.mut_arg(id, move |arg| {
            let arg = arg.required(false);
            if values.len() == 1 {
                arg.default_value(values[0].clone())
            } else {
                arg.default_values(values)
            }
        });
    }
    command
}

/// One value of the config file: a scalar or a list of scalars.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FileValue {
    /// `key: value`.
    Scalar(Scalar),
    /// `key: [a, b]`.
    List(Vec<Scalar>),
}

/// A scalar as YAML types it; every kind becomes the text a flag would get.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Scalar {
    /// `true` / `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A number with a fraction.
    Float(f64),
    /// Anything else.
    Text(String),
}

impl Scalar {
    /// The flag text for this value.
    fn to_flag_text(&self) -> String {
        match self {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Text(s) => s.clone(),
        }
    }
}

/// Read `path` into flag id → values, checking every key and value against `command`.
fn read_config_file(
    path: &Path,
    command: &Command,
) -> Result<Vec<(String, Vec<String>)>, ConfigError> {
    let read_error = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    parse_config_text(path, &text, command)
}

/// The checked content of a config file `text` (named `path` in errors).
fn parse_config_text(
    path: &Path,
    text: &str,
    command: &Command,
) -> Result<Vec<(String, Vec<String>)>, ConfigError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let entries: BTreeMap<String, Spanned<FileValue>> =
        serde_saphyr::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: format!(
                "not a YAML mapping of flag names to values (a scalar or a list each): {e}"
            ),
        })?;
    let mut out = Vec::with_capacity(entries.len());
    for (key, spanned) in entries {
        let line = u32::try_from(spanned.referenced.line()).unwrap_or(u32::MAX);
        let Some(arg) = settable_arg(command, &key) else {
            return Err(ConfigError::UnknownKey {
                path: path.to_path_buf(),
                line,
                hint: nearest_key(command, &key)
                    .map(|k| format!(" (did you mean {k:?}?)"))
                    .unwrap_or_default(),
                key,
            });
        };
        let value_error = |message: String| ConfigError::Value {
            path: path.to_path_buf(),
            line,
            key: key.clone(),
            message,
        };
        let values: Vec<String> = match &spanned.value {
            FileValue::Scalar(scalar) => {
                if is_switch(arg) && !matches!(scalar, Scalar::Bool(_)) {
                    return Err(value_error(format!(
                        "expected true or false, got {:?}",
                        scalar.to_flag_text()
                    )));
                }
                match arg.get_value_delimiter() {
                    Some(d) if !is_switch(arg) => {
                        scalar.to_flag_text().split(d).map(str::to_string).collect()
                    }
                    _ => vec![scalar.to_flag_text()],
                }
            }
            FileValue::List(items) => {
                if !is_multi(arg) {
                    return Err(value_error(
                        "expected one value, got a list (this flag is not repeatable)".into(),
                    ));
                }
                items.iter().map(Scalar::to_flag_text).collect()
            }
        };
        check_values(arg, &values).map_err(value_error)?;
        out.push((arg.get_id().to_string(), values));
    }
    Ok(out)
}

/// The flag a config key sets: any long flag but `--config`, `--help` and `--version`.
fn settable_arg<'a>(command: &'a Command, key: &str) -> Option<&'a Arg> {
    command.get_arguments().find(|a| {
        a.get_long() == Some(key)
            && a.get_id() != CONFIG_FLAG
            && !matches!(a.get_action(), ArgAction::Help | ArgAction::Version)
            && !a.is_positional()
    })
}

/// The known key closest to `key`, for a "did you mean" hint.
fn nearest_key(command: &Command, key: &str) -> Option<String> {
    command
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|long| *long != CONFIG_FLAG && *long != "help" && *long != "version")
        .map(|long| (edit_distance(long, key), long))
        .filter(|(distance, _)| *distance <= 3)
        .min()
        .map(|(_, long)| long.to_string())
}

/// Levenshtein distance between two short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb {
                previous
            } else {
                1 + previous.min(row[j]).min(row[j + 1])
            };
            previous = current;
        }
    }
    row[b.len()]
}

/// Run `values` through the flag's own parser, so a bad file value fails with the message a
/// bad command-line value would get.
fn check_values(arg: &Arg, values: &[String]) -> Result<(), String> {
    if is_switch(arg) {
        return Ok(());
    }
    let probe_arg = arg.clone().env(None).required(false);
    let probe = Command::new("config-check")
        .no_binary_name(true)
        .arg(probe_arg);
    let long = arg.get_long().unwrap_or_default();
    let mut argv = Vec::with_capacity(values.len() * 2);
    for value in values {
        argv.push(format!("--{long}={value}"));
    }
    probe
        .try_get_matches_from(argv)
        .map(|_| ())
        .map_err(|e| clap_message(&e))
}

/// The first line of a clap error without its `error: ` prefix.
fn clap_message(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

#[cfg(test)]
mod tests;
