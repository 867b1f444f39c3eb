//! The config file: `NAME=value` lines read before the command line is parsed, set as
//! environment variables, and named in the message when one of their values is refused.

use std::path::Path;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::CommandFactory;

use super::Cli;

/// One `NAME=value` line of a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigLine {
    pub name: String,
    pub value: String,
    /// 1-based.
    pub line: usize,
}

/// The lines of a config file that set a variable (those the environment did not
/// already set).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigFile {
    pub path: String,
    pub applied: Vec<ConfigLine>,
}

/// Variables a config file may set besides the settings' own: the log filter and the
/// directory of the PostgreSQL server binaries.
const OTHER_VARIABLES: [&str; 2] = ["RUST_LOG", "DELTRAN_PG_BIN"];

/// Whether `name` is the variable of a setting (or one of [`OTHER_VARIABLES`]).
fn is_known_variable(name: &str) -> bool {
    OTHER_VARIABLES.contains(&name)
        || Cli::command()
            .get_subcommands()
            .flat_map(|command| command.get_arguments())
            .any(|arg| arg.get_env().is_some_and(|env| env == name))
}

/// Parses a config file's text: `NAME=value` lines, blank lines and `#` comments. An
/// error names the file and the line.
pub fn parse_config_text(
    path: &str,
    text: &str,
    is_known: impl Fn(&str) -> bool,
) -> Result<Vec<ConfigLine>, String> {
    let mut lines: Vec<ConfigLine> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(format!(
                "{path}:{number}: expected NAME=value, found `{line}`"
            ));
        };
        let (name, value) = (name.trim(), value.trim());
        if !is_known(name) {
            return Err(format!(
                "{path}:{number}: `{name}` is not the variable of any setting \
                 (`deltran serve --help` lists them)"
            ));
        }
        if let Some(earlier) = lines.iter().find(|l| l.name == name) {
            return Err(format!(
                "{path}:{number}: {name} is already set on line {}",
                earlier.line
            ));
        }
        lines.push(ConfigLine {
            name: name.to_string(),
            value: value.to_string(),
            line: number,
        });
    }
    Ok(lines)
}

/// Reads `--config FILE` (or `DELTRAN_CONFIG`) before the command line is parsed and
/// sets each `NAME=value` not already in the environment; clap then checks the values
/// like any other variable. Must run before any thread starts, since it changes the
/// process environment. An error names the file (and the line).
pub fn load_config_file(args: &[String]) -> Result<Option<ConfigFile>, String> {
    let from_flag = args.iter().enumerate().find_map(|(i, a)| {
        a.strip_prefix("--config=").map(str::to_string).or_else(|| {
            (a == "--config")
                .then(|| args.get(i + 1).cloned())
                .flatten()
        })
    });
    let Some(path) = from_flag.or_else(|| std::env::var("DELTRAN_CONFIG").ok()) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(Path::new(&path))
        .map_err(|e| format!("cannot read config file {path}: {e}"))?;
    let mut applied = Vec::new();
    for line in parse_config_text(&path, &text, is_known_variable)? {
        if std::env::var_os(&line.name).is_none() {
            // Safe here: called from main before any other thread exists.
            std::env::set_var(&line.name, &line.value);
            applied.push(line);
        }
    }
    Ok(Some(ConfigFile { path, applied }))
}

/// For a refused value that did not come from the command line, where it came from:
/// the config file's line or the environment variable (clap's message names only the
/// flag).
pub fn value_origin(
    error: &clap::Error,
    args: &[String],
    file: Option<&ConfigFile>,
) -> Option<String> {
    if !matches!(
        error.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) {
        return None;
    }
    let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let flag = arg.split_whitespace().next()?;
    let long = flag.strip_prefix("--")?;
    if args
        .iter()
        .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    {
        return None;
    }
    let command = Cli::command();
    let env = command
        .get_subcommands()
        .flat_map(|c| c.get_arguments())
        .find(|a| a.get_long() == Some(long))?
        .get_env()?
        .to_string_lossy()
        .into_owned();
    if let Some(line) = file.and_then(|f| f.applied.iter().find(|l| l.name == env)) {
        let path = &file?.path;
        return Some(format!(
            "note: the value comes from `{}={}` on line {} of {path}",
            line.name, line.value, line.line
        ));
    }
    std::env::var_os(&env)
        .is_some()
        .then(|| format!("note: the value comes from the environment variable {env}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn config_file_errors_name_the_file_and_the_line() {
        let known = |name: &str| name.starts_with("DELTRAN_");
        let lines = parse_config_text(
            "x.conf",
            "# comment\n\nDELTRAN_HTTP_WORKERS = 4\nDELTRAN_LISTEN=0.0.0.0:80\n",
            known,
        )
        .unwrap();
        assert_eq!(
            lines,
            vec![
                ConfigLine {
                    name: "DELTRAN_HTTP_WORKERS".into(),
                    value: "4".into(),
                    line: 3
                },
                ConfigLine {
                    name: "DELTRAN_LISTEN".into(),
                    value: "0.0.0.0:80".into(),
                    line: 4
                },
            ]
        );
        let error = parse_config_text("x.conf", "\nDELTRAN_HTTP_WORKERS 4\n", known).unwrap_err();
        assert!(
            error.starts_with("x.conf:2: expected NAME=value"),
            "{error}"
        );
        let error = parse_config_text("x.conf", "DELTRAN_X=1\nTYPO=2\n", known).unwrap_err();
        assert!(error.starts_with("x.conf:2: `TYPO` is not"), "{error}");
        let error = parse_config_text("x.conf", "DELTRAN_X=1\nDELTRAN_X=2\n", known).unwrap_err();
        assert_eq!(error, "x.conf:2: DELTRAN_X is already set on line 1");
    }

    #[test]
    fn the_known_variables_are_the_settings_and_the_log_filter() {
        for name in [
            "DELTRAN_BATCH_SIZE_MAX",
            "DELTRAN_DATA_DIR",
            "DATABASE_URL",
            "RUST_LOG",
            "DELTRAN_PG_BIN",
        ] {
            assert!(is_known_variable(name), "{name}");
        }
        assert!(!is_known_variable("DELTRAN_BATCH_SIZE"));
    }

    #[test]
    fn a_refused_value_from_the_config_file_names_its_line() {
        let error = Cli::try_parse_from(["deltran", "serve", "--batch-size-max", "0"]).unwrap_err();
        let file = ConfigFile {
            path: "/etc/deltran.conf".into(),
            applied: vec![ConfigLine {
                name: "DELTRAN_BATCH_SIZE_MAX".into(),
                value: "0".into(),
                line: 7,
            }],
        };
        let args = ["deltran", "serve"].map(String::from);
        assert_eq!(
            value_origin(&error, &args, Some(&file)).as_deref(),
            Some("note: the value comes from `DELTRAN_BATCH_SIZE_MAX=0` on line 7 of /etc/deltran.conf")
        );
        // Given on the command line: clap's message says it all.
        let args = ["deltran", "serve", "--batch-size-max", "0"].map(String::from);
        assert_eq!(value_origin(&error, &args, Some(&file)), None);
    }
}
