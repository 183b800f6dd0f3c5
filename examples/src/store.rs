//! The demos' command line: which store to run on, from `--store <url>` or the
//! `EVENTSRC_STORE` environment variable, opened with [`eventsrc::Store::open`].

use std::fmt;

/// The environment variable the demos read a store URL from when no `--store` is given.
pub const STORE_ENV: &str = "EVENTSRC_STORE";

/// Where a demo's store URL came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlSource {
    /// The `--store` option.
    Flag,
    /// The [`STORE_ENV`] environment variable.
    Env,
    /// Neither was given: the demo's default.
    Default,
}

impl fmt::Display for UrlSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag => f.write_str("from --store"),
            Self::Env => write!(f, "from {STORE_ENV}"),
            Self::Default => write!(
                f,
                "the default; change it with --store <url> or {STORE_ENV}"
            ),
        }
    }
}

/// What a demo binary was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// `--help` or `-h`: print [`Invocation::usage`] and stop.
    Help,
    /// Run on the store at `url`.
    Run {
        /// The store URL, not yet parsed.
        url: String,
        /// Where it came from.
        source: UrlSource,
    },
}

/// A command line a demo does not understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// `--store` was the last argument.
    #[error("`--store` needs a URL, e.g. `--store sqlite://eventsrc-demo.db`")]
    MissingUrl,
    /// An argument that is not `--store`, `--store=<url>` or `--help`.
    #[error("unexpected argument `{0}`: the demos take `--store <url>` and `--help`")]
    Unexpected(String),
}

impl Invocation {
    /// Reads a demo's command line: `args` without the program name, and the value of
    /// [`STORE_ENV`] (empty counts as unset). `--store <url>` (or `--store=<url>`) wins over the
    /// environment, which wins over `default`.
    ///
    /// ```
    /// use eventsrc_examples::store::{Invocation, UrlSource};
    ///
    /// let args = ["--store", "memory:"].map(String::from);
    /// let invocation = Invocation::parse(args, Some("sqlite://a.db".into()), "sqlite://b.db")?;
    /// assert_eq!(invocation, Invocation::Run { url: "memory:".into(), source: UrlSource::Flag });
    /// # Ok::<(), eventsrc_examples::store::UsageError>(())
    /// ```
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env: Option<String>,
        default: &str,
    ) -> Result<Self, UsageError> {
        let mut flag = None;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--help" || arg == "-h" {
                return Ok(Self::Help);
            } else if arg == "--store" {
                flag = Some(args.next().ok_or(UsageError::MissingUrl)?);
            } else if let Some(url) = arg.strip_prefix("--store=") {
                flag = Some(url.to_owned());
            } else {
                return Err(UsageError::Unexpected(arg));
            }
        }
        let env = env.filter(|url| !url.trim().is_empty());
        Ok(match (flag, env) {
            (Some(url), _) => Self::Run {
                url,
                source: UrlSource::Flag,
            },
            (None, Some(url)) => Self::Run {
                url,
                source: UrlSource::Env,
            },
            (None, None) => Self::Run {
                url: default.to_owned(),
                source: UrlSource::Default,
            },
        })
    }

    /// Reads this process's arguments and environment.
    pub fn from_env(default: &str) -> Result<Self, UsageError> {
        let env = std::env::var(STORE_ENV).ok();
        Self::parse(std::env::args().skip(1), env, default)
    }

    /// The help text of the demo `program`, whose store defaults to `default`.
    pub fn usage(program: &str, default: &str) -> String {
        format!(
            "usage: {program} [--store <url>]\n\n\
             Runs the demo on the store <url> names (default: {default}); the environment\n\
             variable {STORE_ENV} sets it too, and --store wins over it.\n\n\
             Store URLs:\n\
             \x20 memory:                    in process memory, gone when the demo ends\n\
             \x20 sqlite://path/to/file.db   a SQLite file (relative to the current directory;\n\
             \x20                            sqlite:///absolute/path.db for an absolute path)\n\
             \x20 sqlite::memory:            a SQLite database in memory\n\
             \x20 postgres://user:password@host:5432/database[?schema=name]\n\
             \x20                            a schema (default eventsrc) in a PostgreSQL database,\n\
             \x20                            created if missing; postgresql:// works too\n"
        )
    }

    /// What every demo does first: read `--store`/[`STORE_ENV`], print the usage and return
    /// `None` for `--help`, else the parsed store URL and where it came from.
    pub fn store(
        program: &str,
        default: &str,
    ) -> Result<Option<(eventsrc::StoreUrl, UrlSource)>, Box<dyn std::error::Error>> {
        match Self::from_env(default)? {
            Self::Help => {
                print!("{}", Self::usage(program, default));
                Ok(None)
            }
            Self::Run { url, source } => Ok(Some((url.parse()?, source))),
        }
    }
}

/// A demo's exit: success, or its error printed as `error: ...` with a failure code.
pub fn exit_code(outcome: Result<(), Box<dyn std::error::Error>>) -> std::process::ExitCode {
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| (*arg).to_owned()).collect()
    }

    fn run(url: &str, source: UrlSource) -> Invocation {
        let url = url.to_owned();
        Invocation::Run { url, source }
    }

    #[test]
    fn the_flag_wins_over_the_environment_which_wins_over_the_default() {
        let default = "sqlite://eventsrc-demo.db";
        let env = || Some("sqlite://from-env.db".to_owned());
        let cases = [
            (
                args(&["--store", "memory:"]),
                env(),
                run("memory:", UrlSource::Flag),
            ),
            (
                args(&["--store=memory:"]),
                env(),
                run("memory:", UrlSource::Flag),
            ),
            (
                args(&[]),
                env(),
                run("sqlite://from-env.db", UrlSource::Env),
            ),
            (
                args(&[]),
                Some(" ".to_owned()),
                run(default, UrlSource::Default),
            ),
            (args(&[]), None, run(default, UrlSource::Default)),
            (
                args(&["--store", "a:", "--store", "b:"]),
                None,
                run("b:", UrlSource::Flag),
            ),
            (args(&["--help"]), env(), Invocation::Help),
            (args(&["--store", "memory:", "-h"]), None, Invocation::Help),
        ];
        for (args, env, expected) in cases {
            let invocation = Invocation::parse(args.clone(), env, default);
            assert_eq!(invocation, Ok(expected), "{args:?}");
        }
    }

    #[test]
    fn a_command_line_the_demos_do_not_take_is_a_usage_error() {
        let parse = |list: &[&str]| Invocation::parse(args(list), None, "memory:");
        assert_eq!(parse(&["--store"]), Err(UsageError::MissingUrl));
        assert_eq!(
            parse(&["sqlite://x.db"]),
            Err(UsageError::Unexpected("sqlite://x.db".to_owned()))
        );
        let usage = Invocation::usage("leads", "sqlite://eventsrc-demo.db");
        assert!(usage.contains("--store <url>") && usage.contains(STORE_ENV));
    }
}
