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

/// A demo's command line: `--store <url>`, `--help`, and the demo's own options `X`
/// ([`NoOptions`] for most; the leads demo adds `--rebuild`). Read through [`Invocation`], which
/// adds the environment and the default.
#[derive(Debug, Clone, PartialEq, Eq, clap::Parser)]
#[command(args_override_self = true)]
pub struct DemoArgs<X: clap::Args = NoOptions> {
    /// The store URL, when `--store` was given (the last one, if given more than once).
    #[arg(long, value_name = "url")]
    pub store: Option<String>,
    /// The demo's own options.
    #[command(flatten)]
    pub options: X,
}

/// The options of a demo that takes none beyond `--store`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::Args)]
pub struct NoOptions {}

/// What a demo binary was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation<X = NoOptions> {
    /// `--help` or `-h`: print this text ([`Invocation::usage`]) and stop.
    Help(String),
    /// Run on the store at `url`.
    Run {
        /// The store URL, not yet parsed.
        url: String,
        /// Where it came from.
        source: UrlSource,
        /// The demo's own options.
        options: X,
    },
}

/// A command line a demo does not understand, as clap reports it: what is wrong, the usage
/// line and a pointer to `--help`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UsageError {
    /// What kind of mistake it is.
    pub kind: clap::error::ErrorKind,
    /// clap's report, without its leading `error: `.
    pub message: String,
}

impl From<clap::Error> for UsageError {
    fn from(error: clap::Error) -> Self {
        let rendered = error.render().to_string();
        let message = rendered
            .strip_prefix("error: ")
            .unwrap_or(&rendered)
            .trim_end();
        Self {
            kind: error.kind(),
            message: message.to_owned(),
        }
    }
}

impl<X: clap::Args + clap::FromArgMatches> Invocation<X> {
    /// Reads the command line of the demo `program`: `args` without the program name, and the
    /// value of [`STORE_ENV`] (empty counts as unset). `--store <url>` (or `--store=<url>`) wins
    /// over the environment, which wins over `default`.
    ///
    /// ```
    /// use eventsrc_examples::store::{Invocation, NoOptions, UrlSource};
    ///
    /// let args = ["--store", "memory:"].map(String::from);
    /// let invocation =
    ///     Invocation::<NoOptions>::parse("cart", args, Some("sqlite://a.db".into()), "sqlite://b.db")?;
    /// let url = "memory:".to_owned();
    /// assert_eq!(invocation, Invocation::Run { url, source: UrlSource::Flag, options: NoOptions {} });
    /// # Ok::<(), eventsrc_examples::store::UsageError>(())
    /// ```
    pub fn parse(
        program: &'static str,
        args: impl IntoIterator<Item = String>,
        env: Option<String>,
        default: &str,
    ) -> Result<Self, UsageError> {
        let command_line = std::iter::once(program.to_owned()).chain(args);
        let matches = match Self::command(program, default).try_get_matches_from(command_line) {
            Ok(matches) => matches,
            Err(help) if help.kind() == clap::error::ErrorKind::DisplayHelp => {
                return Ok(Self::Help(help.render().to_string()));
            }
            Err(error) => return Err(error.into()),
        };
        let DemoArgs { store, options } =
            <DemoArgs<X> as clap::FromArgMatches>::from_arg_matches(&matches)?;
        let env = env.filter(|url| !url.trim().is_empty());
        let (url, source) = match (store, env) {
            (Some(url), _) => (url, UrlSource::Flag),
            (None, Some(url)) => (url, UrlSource::Env),
            (None, None) => (default.to_owned(), UrlSource::Default),
        };
        Ok(Self::Run {
            url,
            source,
            options,
        })
    }

    /// Reads this process's arguments and environment.
    pub fn from_env(program: &'static str, default: &str) -> Result<Self, UsageError> {
        let env = std::env::var(STORE_ENV).ok();
        Self::parse(program, std::env::args().skip(1), env, default)
    }

    /// The clap command of the demo `program`, whose store defaults to `default`.
    pub fn command(program: &'static str, default: &str) -> clap::Command {
        use clap::CommandFactory;
        // No about text: the derive would take this crate's rustdoc of `DemoArgs` for it.
        DemoArgs::<X>::command()
            .name(program)
            .bin_name(program)
            .about(None::<&str>)
            .long_about(None::<&str>)
            .mut_arg("store", |store| {
                store.help(format!(
                    "The store to run on (default: {default}); the environment variable \
                     {STORE_ENV} sets it too, and --store wins over it"
                ))
            })
            .after_help(STORE_URLS)
    }

    /// The help text of the demo `program`, whose store defaults to `default`.
    pub fn usage(program: &'static str, default: &str) -> String {
        Self::command(program, default).render_help().to_string()
    }

    /// What every demo does first: read `--store`/[`STORE_ENV`] and its own options, print the
    /// help and return `None` for `--help`, else the parsed store URL, where it came from and
    /// the options.
    pub fn read(
        program: &'static str,
        default: &str,
    ) -> Result<Option<Demo<X>>, Box<dyn std::error::Error>> {
        match Self::from_env(program, default)? {
            Self::Help(help) => {
                print!("{help}");
                Ok(None)
            }
            Self::Run {
                url,
                source,
                options,
            } => Ok(Some(Demo {
                url: url.parse()?,
                source,
                options,
            })),
        }
    }
}

/// What a demo runs with: [`Invocation::Run`] with its URL parsed.
#[derive(Debug, Clone)]
pub struct Demo<X = NoOptions> {
    /// The store to open.
    pub url: eventsrc::StoreUrl,
    /// Where the URL came from.
    pub source: UrlSource,
    /// The demo's own options.
    pub options: X,
}

impl Invocation {
    /// [`Invocation::read`] for a demo without options of its own: the store URL and where it
    /// came from.
    pub fn store(
        program: &'static str,
        default: &str,
    ) -> Result<Option<(eventsrc::StoreUrl, UrlSource)>, Box<dyn std::error::Error>> {
        Ok(Self::read(program, default)?.map(|demo| (demo.url, demo.source)))
    }
}

/// The store URLs every demo takes, at the end of its help.
const STORE_URLS: &str = "Store URLs:
  memory:                    in process memory, gone when the demo ends
  sqlite://path/to/file.db   a SQLite file (relative to the current directory;
                             sqlite:///absolute/path.db for an absolute path)
  sqlite::memory:            a SQLite database in memory
  postgres://user:password@host:5432/database[?schema=name]
                             a schema (default eventsrc) in a PostgreSQL database,
                             created if missing; postgresql:// works too";

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
    use clap::error::ErrorKind;

    use super::*;

    fn args(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| (*arg).to_owned()).collect()
    }

    fn run(url: &str, source: UrlSource) -> Invocation {
        let url = url.to_owned();
        let options = NoOptions {};
        Invocation::Run {
            url,
            source,
            options,
        }
    }

    fn parse(list: &[&str], env: Option<String>) -> Result<Invocation, UsageError> {
        Invocation::parse("cart", args(list), env, "sqlite://eventsrc-demo.db")
    }

    #[test]
    fn the_flag_wins_over_the_environment_which_wins_over_the_default() {
        let default = "sqlite://eventsrc-demo.db";
        let env = || Some("sqlite://from-env.db".to_owned());
        let cases = [
            (
                &["--store", "memory:"][..],
                env(),
                run("memory:", UrlSource::Flag),
            ),
            (&["--store=memory:"], env(), run("memory:", UrlSource::Flag)),
            (&[], env(), run("sqlite://from-env.db", UrlSource::Env)),
            (&[], Some(" ".to_owned()), run(default, UrlSource::Default)),
            (&[], None, run(default, UrlSource::Default)),
            (
                &["--store", "a:", "--store", "b:"],
                None,
                run("b:", UrlSource::Flag),
            ),
        ];
        for (list, env, expected) in cases {
            assert_eq!(parse(list, env), Ok(expected), "{list:?}");
        }
    }

    #[test]
    fn help_wins_over_everything_else_and_names_the_store_options() {
        for list in [&["--help"][..], &["-h"], &["--store", "memory:", "-h"]] {
            let Ok(Invocation::Help(help)) = parse(list, None) else {
                panic!("{list:?} did not ask for help");
            };
            assert!(help.starts_with("Usage: cart [OPTIONS]"), "{help}");
            assert!(help.contains("--store <url>"), "{help}");
            assert!(
                help.contains("default: sqlite://eventsrc-demo.db"),
                "{help}"
            );
            assert!(help.contains(STORE_ENV), "{help}");
            assert!(help.contains("postgres://user:password@host"), "{help}");
        }
        assert_eq!(
            Invocation::<NoOptions>::usage("cart", "sqlite://eventsrc-demo.db"),
            match parse(&["--help"], None) {
                Ok(Invocation::Help(help)) => help,
                other => panic!("{other:?}"),
            }
        );
    }

    #[test]
    fn a_command_line_the_demos_do_not_take_is_a_usage_error() {
        let missing = parse(&["--store"], None).unwrap_err();
        assert_eq!(missing.kind, ErrorKind::InvalidValue);
        assert!(missing.message.contains("--store <url>"), "{missing}");
        let unexpected = parse(&["sqlite://x.db"], None).unwrap_err();
        assert_eq!(unexpected.kind, ErrorKind::UnknownArgument);
        assert!(
            unexpected.message.contains("'sqlite://x.db'"),
            "{unexpected}"
        );
        assert!(
            unexpected.message.contains("Usage: cart [OPTIONS]"),
            "{unexpected}"
        );
        // Printed after `error: ` by `exit_code`, so clap's own prefix is dropped.
        assert!(
            !unexpected.to_string().starts_with("error:"),
            "{unexpected}"
        );
        let rebuild = parse(&["--rebuild"], None).unwrap_err();
        assert_eq!(rebuild.kind, ErrorKind::UnknownArgument);
    }

    /// A demo with an option of its own, like the leads demo's `--rebuild`.
    #[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
    struct Rebuild {
        /// Rebuild after the story.
        #[arg(long)]
        rebuild: bool,
    }

    #[test]
    fn a_demo_adds_its_own_options_beside_the_store() {
        let parse =
            |list: &[&str]| Invocation::<Rebuild>::parse("leads", args(list), None, "memory:");
        let run = |url: &str, source, rebuild| {
            let url = url.to_owned();
            let options = Rebuild { rebuild };
            Ok(Invocation::Run {
                url,
                source,
                options,
            })
        };
        assert_eq!(parse(&[]), run("memory:", UrlSource::Default, false));
        assert_eq!(
            parse(&["--rebuild"]),
            run("memory:", UrlSource::Default, true)
        );
        assert_eq!(
            parse(&["--rebuild", "--store", "sqlite::memory:"]),
            run("sqlite::memory:", UrlSource::Flag, true)
        );
        let Ok(Invocation::Help(help)) = parse(&["--help"]) else {
            panic!("--help did not ask for help");
        };
        assert!(
            help.contains("--rebuild") && help.contains("Rebuild after the story"),
            "{help}"
        );
        assert!(help.contains("--store <url>"), "{help}");
    }
}
