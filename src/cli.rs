//! The command line: clap commands, and turning flags + `migagent.toml` into options. Nothing else.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::advice::llm::{LlmSettings, ResponseMode};
use crate::advice::{self, AdviseOptions};
use crate::config::{self, FileConfig, PgVersion};
use crate::escape;
use crate::files::{self, Existing};
use crate::init::{self, InitOptions};
use crate::migration::git::{self, HistoryEdits};
use crate::migration::{DiscoverOptions, Tool};
use crate::report::{self, Format};
use crate::review::{self, InputNotice, Review, ReviewOptions, DEFAULT_MAX_FILE_SIZE};
use crate::rules::{self, RuleSettings, Severity};
use crate::shadow::cluster::OsUser;
use crate::shadow::session::{
    ShadowMode, ShadowOptions, DEFAULT_CONCURRENCY, DEFAULT_MAX_SIZE, DEFAULT_STATEMENT_TIMEOUT,
    TRUST_CONFIG_EXTENSIONS,
};
use crate::shadow::trace::TraceChanges;
use crate::sql;
use crate::stats::{self, Stats};

/// Exit code: nothing at or above the `--fail-on` threshold.
pub const EXIT_OK: u8 = 0;
/// Exit code: findings at or above the threshold.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code: could not review (usage error, unreadable input, unavailable feature requested).
pub const EXIT_ERROR: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "migagent",
    version,
    about = "Reviews PostgreSQL schema migrations before they merge",
    long_about = "Reviews PostgreSQL schema migrations before they merge: long-held locks, table \
                  rewrites, blocking index builds and destructive changes, found from the SQL and the \
                  schema its history builds."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Review migrations and exit non-zero on findings at or above --fail-on (the CI job).
    Review(Box<ReviewArgs>),
    /// List the rules, or print one rule's documentation.
    Rules {
        /// A rule id, e.g. set-not-null.
        rule: Option<String>,
    },
    /// Draft the down migration and prove it with a rollback drill.
    Rollback {
        migration: PathBuf,
        /// Write the down migration next to the up migration.
        #[arg(long)]
        write: bool,
    },
    /// Explain a risky migration in a conversation.
    Chat {
        migration: PathBuf,
        /// Answer one question and exit.
        #[arg(long)]
        ask: Option<String>,
    },
    /// Write a read-only snapshot of table sizes from a real database, for severity grading.
    Stats {
        /// The database, e.g. postgres://user@host:5432/app (connected to read-only).
        #[arg(long, value_name = "URL")]
        url: String,
        /// Write the JSON here instead of to stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Write migagent.toml for the migrations found here, and an example GitHub Actions workflow.
    Init {
        /// Replace migagent.toml and the workflow when they exist.
        #[arg(long)]
        force: bool,
        /// Write only migagent.toml.
        #[arg(long)]
        no_workflow: bool,
    },
}

#[derive(Debug, Args)]
struct ReviewArgs {
    /// Migration files or directories. A file is reviewed with every migration sorting before it in
    /// its directory as history; a directory reviews all its migrations.
    paths: Vec<PathBuf>,
    /// Report format. `github` also appends the Markdown report to $GITHUB_STEP_SUMMARY when it is set.
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json", "sarif", "github", "markdown"])]
    format: Option<String>,
    /// Also write the report in FORMAT to FILE, e.g. `--report-file sarif=migagent.sarif` (repeatable).
    #[arg(long, value_name = "FORMAT=FILE", value_parser = parse_report_file)]
    report_file: Vec<(Format, PathBuf)>,
    /// Link rules to their documents at URL/<rule>.md in the Markdown and SARIF reports
    /// [env: MIGAGENT_RULES_URL].
    #[arg(long, value_name = "URL")]
    rules_url: Option<String>,
    /// Exit 1 when a finding has this severity or higher.
    #[arg(long, value_name = "LEVEL", value_parser = ["error", "warning", "info", "never"])]
    fail_on: Option<String>,
    /// Shadow database: auto (migagent's own throwaway PostgreSQL when its binaries are found), off,
    /// require (auto, and a history it cannot apply fails the run instead of being reviewed
    /// statically), or a postgres:// URL of a server where migagent may create (and drop) its own
    /// databases [env: MIGAGENT_SHADOW_URL].
    #[arg(long, value_name = "auto|off|require|URL")]
    shadow: Option<String>,
    /// Directory holding PostgreSQL's initdb, pg_ctl and postgres, for the ephemeral shadow.
    #[arg(long, value_name = "DIR")]
    pg_bin: Option<PathBuf>,
    /// Apply the whole history on the shadow instead of starting from a cached copy.
    #[arg(long)]
    no_cache: bool,
    /// Accept a --shadow URL role that can reach beyond its databases (a superuser, a member of
    /// pg_execute_server_program or pg_read/write_server_files): the migrations under review can then
    /// run programs on that server. Only for a server that holds nothing else.
    #[arg(long)]
    shadow_superuser: bool,
    /// Let migagent's own shadow install this extension as superuser when a migration creates it
    /// (repeatable): trusted extensions need nothing, others are an admin's decision, as on a managed
    /// database.
    #[arg(long, value_name = "NAME")]
    shadow_extension: Vec<String>,
    /// Stop a statement on migagent's own shadow after this long, e.g. `90s`, `5min` (default 5min).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    statement_timeout: Option<Duration>,
    /// Cap on migagent's own shadow's size, e.g. `2GB` (the default), `500MB`; a statement's temporary
    /// files may take a quarter of it.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    shadow_max_size: Option<u64>,
    /// How many drafts are validated at once on the shadow, each in a copy of the database of its
    /// own (default 4).
    #[arg(long, value_name = "N")]
    shadow_concurrency: Option<usize>,
    /// Read what each statement changed in the schema, shown under it in the trace: auto (when the
    /// run reviews at most 20 migrations: about 2 ms of the shadow's per statement), always, never.
    #[arg(long, value_name = "auto|always|never")]
    trace_changes: Option<TraceChanges>,
    /// LLM advice: auto (on when an endpoint is configured), off (nothing is sent anywhere), on.
    #[arg(long, value_name = "auto|off|on", value_parser = ["auto", "off", "on"])]
    llm: Option<String>,
    /// The OpenAI-compatible API base, e.g. https://api.openai.com/v1
    /// [env: MIGAGENT_LLM_BASE_URL, OPENAI_BASE_URL].
    #[arg(long, value_name = "URL")]
    llm_base_url: Option<String>,
    /// The model (Azure: the deployment) [env: MIGAGENT_LLM_MODEL].
    #[arg(long, value_name = "NAME")]
    llm_model: Option<String>,
    /// Seconds one LLM request may take (default 120).
    #[arg(long, value_name = "SECONDS")]
    llm_timeout: Option<u64>,
    /// Advice (the LLM's and the built-in fixers' drafts, validated on the shadow) for migrations
    /// with a finding of this severity or higher (default warning, and none for a run reviewing more
    /// than 20 migrations); never: findings and the trace only, no LLM request, no drafts, no copies
    /// of the shadow database to validate them on.
    #[arg(long, value_name = "LEVEL", value_parser = ["error", "warning", "info", "never"])]
    advise_on: Option<String>,
    /// How many times a draft of the LLM's that the validator rejected goes back to it with the
    /// reasons, for a corrected one (default 2; 0: never).
    #[arg(long, value_name = "N")]
    repair_rounds: Option<u32>,
    /// Directory of prompt templates (system.hbs, user.hbs, repair.hbs, correct.hbs) replacing the
    /// embedded ones.
    #[arg(long, value_name = "DIR")]
    prompts: Option<PathBuf>,
    /// Table sizes (from `migagent stats`) for severity grading.
    #[arg(long, value_name = "FILE")]
    stats: Option<PathBuf>,
    /// Target PostgreSQL version, `15` or with its minor `14.2` (default: the shadow server's, else 15).
    #[arg(long, value_name = "N[.M]")]
    pg_version: Option<PgVersion>,
    /// Configuration file (default: migagent.toml in this or a parent directory).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Migration tool, instead of detecting the layout.
    #[arg(long, value_name = "NAME")]
    tool: Option<String>,
    /// Review only the last N migrations of each directory.
    #[arg(long, value_name = "N")]
    latest: Option<usize>,
    /// Review only migrations added or changed since this git ref.
    #[arg(long, value_name = "GIT_REF")]
    base: Option<String>,
    /// Colour: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// A user-facing error: printed as `error: …`, exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if error.use_stderr() => {
            // A usage error quotes the arguments, which a CI job may take from the pull request.
            escape::eprint(error.render().to_string().trim_end());
            return ExitCode::from(EXIT_ERROR);
        }
        Err(help) => {
            let _ = help.print();
            return ExitCode::from(EXIT_OK);
        }
    };
    let result = match cli.command {
        Command::Review(args) => run_review(*args),
        Command::Rules { rule } => run_rules(rule.as_deref()),
        Command::Rollback { .. } => not_yet("migagent rollback"),
        Command::Chat { .. } => not_yet("migagent chat"),
        Command::Stats { url, output } => run_stats(&url, output.as_deref()),
        Command::Init { force, no_workflow } => run_init(InitOptions { force, no_workflow }),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(UsageError(message)) => {
            // Messages can quote the repository (a line of migagent.toml in a parse error).
            escape::eprint(&format!("error: {message}"));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn not_yet(what: &str) -> Result<u8, UsageError> {
    Err(UsageError(format!(
        "{what} is not available in this version of migagent yet; `migagent review`, `migagent rules`, `migagent stats` and `migagent init` are"
    )))
}

/// Reads table sizes over a read-only connection and writes the stats JSON.
fn run_stats(url: &str, output: Option<&Path>) -> Result<u8, UsageError> {
    let stats = Stats::fetch(url).map_err(|e| UsageError(format!("migagent stats: {e}")))?;
    let json = stats.to_json();
    match output {
        Some(path) => std::fs::write(path, json).map_err(|e| {
            UsageError(format!(
                "migagent stats: cannot write {}: {e}",
                path.display()
            ))
        })?,
        None => print_stdout(&json),
    }
    Ok(EXIT_OK)
}

fn run_rules(rule: Option<&str>) -> Result<u8, UsageError> {
    let mut out = String::new();
    match rule {
        Some(id) => {
            let rule = rules::find(id).ok_or_else(|| {
                UsageError(format!(
                    "unknown rule `{id}`; `migagent rules` lists the {} rules",
                    rules::ALL.len()
                ))
            })?;
            out.push_str(rule.doc);
        }
        None => {
            let width = rules::ALL.iter().map(|r| r.id.len()).max().unwrap_or(0);
            for rule in rules::ALL {
                out.push_str(&format!(
                    "{:width$}  {:14}  {:7}  {}\n",
                    rule.id,
                    rule.category.name(),
                    rule.default_severity.name(),
                    rule.summary,
                ));
            }
            out.push_str("\n`migagent rules <id>` prints a rule's documentation.\n");
        }
    }
    print_stdout(&out);
    Ok(EXIT_OK)
}

fn run_init(options: InitOptions) -> Result<u8, UsageError> {
    let said = init::init(Path::new("."), options)
        .map_err(|e| UsageError(format!("migagent init: {e}")))?;
    print_stdout(&said);
    Ok(EXIT_OK)
}

/// Everything `review` needs, resolved from flags, the config file and defaults.
struct ReviewPlan {
    paths: Vec<PathBuf>,
    format: Format,
    report_files: Vec<(Format, PathBuf)>,
    rules_url: Option<String>,
    fail_on: Option<Severity>,
    color: bool,
    working_dir: PathBuf,
    options: ReviewOptions,
    /// `--base` found no changed migration: this says so instead of a review.
    nothing_changed: Option<String>,
}

fn run_review(args: ReviewArgs) -> Result<u8, UsageError> {
    let plan = plan_review(args)?;
    let review = match &plan.nothing_changed {
        Some(message) => Review {
            notices: vec![InputNotice {
                path: PathBuf::from("--base"),
                message: message.clone(),
            }],
            ..Review::default()
        },
        None => sql::nesting::on_tree_stack(|| review::review(&plan.paths, &plan.options)),
    };
    let exit = exit_code(&review, plan.fail_on);
    let context = report::Context {
        exit_code: exit,
        color: plan.color,
        rules_url: plan.rules_url.as_deref(),
        working_dir: &plan.working_dir,
    };
    print_report(&review, plan.format, &context);
    if plan.format == Format::Github {
        append_step_summary(&report::render(&review, Format::Markdown, &context));
    }
    for (format, path) in &plan.report_files {
        let plain = report::Context {
            color: false,
            ..context
        };
        files::write_atomically(
            path,
            report::render(&review, *format, &plain).as_bytes(),
            Existing::Replace,
        )
        .map_err(|e| {
            UsageError(format!(
                "--report-file: cannot write {}: {e}",
                path.display()
            ))
        })?;
    }
    // The process ends once the report is out: freeing every statement and finding of a long review
    // one by one would only delay the exit (run_review is the command's last step).
    std::mem::forget(review);
    Ok(exit)
}

/// `sarif=migagent.sarif` → the format and the file.
fn parse_report_file(value: &str) -> Result<(Format, PathBuf), String> {
    let (name, file) = value
        .split_once('=')
        .filter(|(_, file)| !file.is_empty())
        .ok_or_else(|| format!("`{value}`: give FORMAT=FILE, e.g. sarif=migagent.sarif"))?;
    let format = Format::from_name(name).ok_or_else(|| {
        format!("`{name}` is not a format; use text, json, sarif, github or markdown")
    })?;
    Ok((format, PathBuf::from(file)))
}

/// With `--format github` inside GitHub Actions: the Markdown report goes to the job's summary page
/// too. A summary that cannot be written is worth a warning, not a failed review.
fn append_step_summary(markdown: &str) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return;
    };
    let appended = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .and_then(|mut file| file.write_all(markdown.as_bytes()));
    if let Err(error) = appended {
        escape::eprint(&format!(
            "warning: cannot append the report to $GITHUB_STEP_SUMMARY ({}): {error}",
            escape::path(Path::new(&path))
        ));
    }
}

/// 2 when an input could not be reviewed; else 1 when a finding reaches the threshold.
fn exit_code(review: &Review, fail_on: Option<Severity>) -> u8 {
    if !review.problems.is_empty() {
        EXIT_ERROR
    } else if fail_on.is_some_and(|threshold| review.max_severity().is_some_and(|s| s >= threshold))
    {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }
}

/// What `migagent review` will do, from its flags, the environment and migagent.toml (flags win);
/// a `UsageError` names the setting that is wrong and what it takes.
fn plan_review(args: ReviewArgs) -> Result<ReviewPlan, UsageError> {
    let cwd = std::env::current_dir()
        .map_err(|e| UsageError(format!("cannot read the working directory: {e}")))?;
    let (config, config_file_dir) = load_config(args.config.as_deref(), &cwd)?;
    let config_dir = config_file_dir.clone().unwrap_or_else(|| cwd.clone());
    let severities = rule_severities(&config)?;
    let advise = plan_advice(
        &args,
        config.llm.clone().unwrap_or_default(),
        &config_dir,
        &cwd,
    )?;
    let format = output_format(args.format.as_ref().or(config.format.as_ref()))?;
    let fail_on = fail_on_level(args.fail_on.as_ref().or(config.fail_on.as_ref()))?;
    let shadow_config = config.shadow.clone().unwrap_or_default();
    let (shadow_mode, shadow_required) = shadow_mode(args.shadow.clone(), &shadow_config)?;
    let stats = match &args.stats {
        Some(path) => Some(Stats::load(path).map_err(UsageError)?),
        None => None,
    };
    let tool = named_tool(args.tool.as_ref().or(config.tool.as_ref()))?;
    let plain_per_file_transaction = per_file_transaction(config.transaction.as_deref())?;
    let listed = listed_paths(&args, &config, &config_dir, &cwd)?;
    let selection = select_changed(args.base.as_deref(), &cwd, listed)?;
    let shadow = plan_shadow(
        &args,
        shadow_mode,
        &shadow_config,
        Places {
            cwd: &cwd,
            config_dir: &config_dir,
            config_file_dir: config_file_dir.as_deref(),
        },
        &selection.paths,
        args.pg_version.or(config.pg_version),
    )?;
    let max_file_size = max_file_size(config.max_file_size)?;
    let color = use_color(args.color);
    let rules_url = args
        .rules_url
        .or_else(|| env_value(&["MIGAGENT_RULES_URL"]));
    Ok(ReviewPlan {
        paths: selection.paths,
        format,
        report_files: args.report_file,
        rules_url,
        fail_on,
        color,
        working_dir: cwd,
        options: ReviewOptions {
            discover: DiscoverOptions {
                tool,
                latest: args.latest,
                plain_per_file_transaction,
            },
            max_file_size,
            pg_version_from_shadow: args.pg_version.is_none() && config.pg_version.is_none(),
            rule_settings: args.pg_version.or(config.pg_version).map_or_else(
                RuleSettings::default,
                |version| RuleSettings {
                    pg_version: version.major,
                    pg_minor: version.minor,
                },
            ),
            severities,
            stats,
            shadow,
            small_table_rows: config
                .small_table_rows
                .unwrap_or(stats::DEFAULT_SMALL_TABLE_ROWS),
            advise,
            edited_history: selection.edited_history,
            shadow_required,
            trace_version: None,
        },
        nothing_changed: selection.nothing_changed,
    })
}

/// `--format` or `format =`; text when neither is given.
fn output_format(name: Option<&String>) -> Result<Format, UsageError> {
    let name = name.map_or("text", String::as_str);
    Format::from_name(name).ok_or_else(|| {
        UsageError(format!(
            "unknown format `{name}`; use text, json, sarif, github or markdown"
        ))
    })
}

/// `--fail-on` or `fail-on =`; error when neither is given, `None` for `never`.
fn fail_on_level(name: Option<&String>) -> Result<Option<Severity>, UsageError> {
    match name.map_or("error", String::as_str) {
        "never" => Ok(None),
        name => Severity::from_name(name).map(Some).ok_or_else(|| {
            UsageError(format!(
                "unknown fail-on level `{name}`; use error, warning, info or never"
            ))
        }),
    }
}

/// The shadow's mode from `--shadow`, `MIGAGENT_SHADOW_URL` or `[shadow] mode` (auto when none is
/// set), and whether a history the shadow cannot apply fails the run.
fn shadow_mode(
    flag: Option<String>,
    shadow_config: &config::ShadowConfig,
) -> Result<(ShadowMode, bool), UsageError> {
    let name = flag
        .or_else(|| env_value(&["MIGAGENT_SHADOW_URL"]))
        .or_else(|| shadow_config.mode.clone())
        .unwrap_or_else(|| "auto".into());
    // `require`: migagent's own shadow, and a history it cannot apply fails the run.
    let required = name == "require" || shadow_config.required.unwrap_or(false);
    let mode = match name.as_str() {
        "require" => ShadowMode::Auto,
        other => ShadowMode::parse(other).map_err(UsageError)?,
    };
    Ok((mode, required))
}

/// `--tool` or `tool =`; `None` lets discovery detect the layout.
fn named_tool(name: Option<&String>) -> Result<Option<Tool>, UsageError> {
    let Some(name) = name else {
        return Ok(None);
    };
    Tool::from_name(name).map(Some).ok_or_else(|| {
        let names: Vec<&str> = Tool::ALL.iter().map(|t| t.name()).collect();
        UsageError(format!(
            "unknown tool `{name}`; use one of {}",
            names.join(", ")
        ))
    })
}

/// `transaction =` in migagent.toml: whether a plain SQL file is applied in one transaction.
fn per_file_transaction(setting: Option<&str>) -> Result<bool, UsageError> {
    match setting {
        None | Some("per-statement") => Ok(false),
        Some("per-file") => Ok(true),
        Some(other) => Err(UsageError(format!(
            "transaction = \"{other}\" in migagent.toml: use \"per-statement\" or \"per-file\""
        ))),
    }
}

/// The files and directories given on the command line, else `paths =` of migagent.toml.
fn listed_paths(
    args: &ReviewArgs,
    config: &FileConfig,
    config_dir: &Path,
    cwd: &Path,
) -> Result<Vec<PathBuf>, UsageError> {
    let paths: Vec<PathBuf> = if args.paths.is_empty() {
        config
            .paths
            .iter()
            .flatten()
            .map(|p| relative_to(config_dir, cwd, p.clone()))
            .collect()
    } else {
        args.paths.clone()
    };
    if paths.is_empty() {
        return Err(UsageError(
            "no migrations to review: give files or directories (`migagent review db/migrations`), or set `paths` in migagent.toml".into(),
        ));
    }
    Ok(paths)
}

/// What a review covers: the listed paths, or with `--base` the migrations changed since the
/// merge base, and the history edited since.
struct Selection {
    paths: Vec<PathBuf>,
    edited_history: Option<HistoryEdits>,
    /// Set when `--base` finds nothing to review: the run says so and exits 0.
    nothing_changed: Option<String>,
}

fn select_changed(
    base: Option<&str>,
    cwd: &Path,
    listed: Vec<PathBuf>,
) -> Result<Selection, UsageError> {
    let Some(base) = base else {
        return Ok(Selection {
            paths: listed,
            edited_history: None,
            nothing_changed: None,
        });
    };
    let changes = git::changes_since(cwd, base, &listed).map_err(UsageError)?;
    let nothing_changed = (changes.changed.is_empty() && changes.edited.migrations.is_empty())
        .then(|| {
            format!(
                "no migration changed since {base} (merge base {}): nothing to review",
                changes.edited.merge_base
            )
        });
    Ok(Selection {
        paths: changes.changed,
        edited_history: Some(changes.edited),
        nothing_changed,
    })
}

/// Where relative paths of the command line and of migagent.toml start from.
#[derive(Clone, Copy)]
struct Places<'a> {
    cwd: &'a Path,
    /// migagent.toml's directory, else the working directory.
    config_dir: &'a Path,
    /// migagent.toml's directory when there is one.
    config_file_dir: Option<&'a Path>,
}

/// The shadow's options from flags and `[shadow]`, refusing what would run the repository's own
/// programs or settings with more trust than they earned.
fn plan_shadow(
    args: &ReviewArgs,
    mode: ShadowMode,
    shadow_config: &config::ShadowConfig,
    places: Places,
    paths: &[PathBuf],
    pg_version: Option<PgVersion>,
) -> Result<ShadowOptions, UsageError> {
    // Only migagent's own cluster runs programs from a bin directory.
    let runs_own_cluster = !matches!(mode, ShadowMode::Off | ShadowMode::Url(_));
    let pg_bin = match (&args.pg_bin, &shadow_config.pg_bin) {
        (_, _) if !runs_own_cluster => None,
        (Some(flag), _) => Some(flag.clone()),
        (None, Some(configured)) => {
            require_config_pg_bin_opt_in(configured)?;
            Some(relative_to(
                places.config_dir,
                places.cwd,
                configured.clone(),
            ))
        }
        (None, None) => installed_pg_bin(pg_version),
    };
    let untrusted_dirs = if runs_own_cluster {
        repository_trees(places.cwd, places.config_file_dir, paths)
    } else {
        Vec::new()
    };
    if let Some(pg_bin) = &pg_bin {
        refuse_programs_of_the_repository_as_root(pg_bin, &untrusted_dirs)?;
    }
    // Without a shadow nothing runs as anyone, so the line does not matter there.
    let config_superuser_opted_in =
        !matches!(mode, ShadowMode::Off) && config_superuser(shadow_config.superuser)?;
    Ok(ShadowOptions {
        mode,
        pg_bin,
        cache: !args.no_cache && shadow_config.cache.unwrap_or(true),
        superuser: args.shadow_superuser || config_superuser_opted_in,
        extensions: args
            .shadow_extension
            .iter()
            .chain(shadow_config.extensions.iter().flatten())
            .map(|name| name.to_ascii_lowercase())
            .collect(),
        untrusted_dirs,
        config_extensions: config_extensions_to_vet(
            &args.shadow_extension,
            shadow_config.extensions.as_deref(),
        ),
        statement_timeout: match (args.statement_timeout, &shadow_config.statement_timeout) {
            (Some(flag), _) => flag,
            (None, Some(configured)) => parse_duration(configured).map_err(|e| {
                UsageError(format!("migagent.toml, [shadow] statement-timeout: {e}"))
            })?,
            (None, None) => DEFAULT_STATEMENT_TIMEOUT,
        },
        max_size: match (args.shadow_max_size, &shadow_config.max_size) {
            (Some(flag), _) => flag,
            (None, Some(configured)) => parse_size(configured)
                .map_err(|e| UsageError(format!("migagent.toml, [shadow] max-size: {e}")))?,
            (None, None) => DEFAULT_MAX_SIZE,
        },
        concurrency: args
            .shadow_concurrency
            .or(shadow_config.concurrency)
            .unwrap_or(DEFAULT_CONCURRENCY)
            .max(1),
        trace_changes: match (args.trace_changes, &shadow_config.trace_changes) {
            (Some(flag), _) => flag,
            (None, Some(configured)) => configured
                .parse()
                .map_err(|e| UsageError(format!("migagent.toml, [shadow] trace-changes: {e}")))?,
            (None, None) => TraceChanges::Auto,
        },
    })
}

/// `max-file-size =` of migagent.toml, at most what the lexer reads of a text.
fn max_file_size(configured: Option<u64>) -> Result<u64, UsageError> {
    let bytes = configured.unwrap_or(DEFAULT_MAX_FILE_SIZE);
    if bytes > sql::lex::MAX_TEXT_BYTES as u64 {
        return Err(UsageError(format!(
            "max-file-size = {bytes} in migagent.toml: migagent reads a migration file of at most {} bytes (4 GiB); set a smaller limit",
            sql::lex::MAX_TEXT_BYTES
        )));
    }
    Ok(bytes)
}

/// `--color`: `auto` colors a terminal unless `NO_COLOR` is set.
fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// The first non-empty value of the environment variables.
fn env_value(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

/// Header names that carry credentials: those belong in the environment, never in migagent.toml.
fn is_credential_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "authorization" || ["key", "token", "secret"].iter().any(|w| name.contains(w))
}

/// The advise stage's options from flags, the environment (strongest after flags) and `[llm]`.
fn plan_advice(
    args: &ReviewArgs,
    llm: config::LlmConfig,
    config_dir: &Path,
    cwd: &Path,
) -> Result<AdviseOptions, UsageError> {
    let advise_on = match args.advise_on.clone().or(llm.advise_on.clone()).as_deref() {
        None => Some(advice::advise::DEFAULT_ADVISE_ON),
        Some("never") => None,
        Some(name) => Some(Severity::from_name(name).ok_or_else(|| {
            UsageError(format!(
                "advise-on = \"{name}\": use error, warning, info or never"
            ))
        })?),
    };
    let mut options = AdviseOptions {
        advise_on,
        by_default: args.advise_on.is_none() && llm.advise_on.is_none(),
        prompts: args
            .prompts
            .clone()
            .or_else(|| llm.prompts.clone().map(|p| relative_to(config_dir, cwd, p))),
        budget_tokens: llm.budget.unwrap_or(advice::prompt::DEFAULT_BUDGET_TOKENS),
        repair_rounds: args
            .repair_rounds
            .or(llm.repair_rounds)
            .unwrap_or(advice::advise::DEFAULT_REPAIR_ROUNDS),
        ..AdviseOptions::default()
    };
    if llm.cache == Some(false) || args.no_cache {
        options.cache = None;
    }
    // A template of --prompts that does not parse is a setup error now, not a note on every
    // migration. The embedded ones are not compiled here (most of a short review's start-up): a unit
    // test renders each.
    if let Some(dir) = options.prompts.as_deref() {
        advice::prompt::Prompts::load(Some(dir)).map_err(UsageError)?;
    }
    let mode = args
        .llm
        .clone()
        .or(llm.mode.clone())
        .unwrap_or_else(|| "auto".into());
    if !matches!(mode.as_str(), "auto" | "off" | "on") {
        return Err(UsageError(format!(
            "--llm takes auto, off or on, not `{mode}`"
        )));
    }
    if mode == "off" {
        return Ok(options);
    }
    options.llm = llm_settings(args, &llm, &mode)?;
    Ok(options)
}

/// The endpoint's settings from flags, the environment and `[llm]`; `None` when no endpoint is
/// configured and `mode` is `auto`.
fn llm_settings(
    args: &ReviewArgs,
    llm: &config::LlmConfig,
    mode: &str,
) -> Result<Option<LlmSettings>, UsageError> {
    let base_url = args
        .llm_base_url
        .clone()
        .or_else(|| env_value(&["MIGAGENT_LLM_BASE_URL", "OPENAI_BASE_URL"]))
        .or(llm.base_url.clone());
    let Some(base_url) = base_url else {
        if mode == "on" {
            return Err(UsageError(
                "--llm on: no LLM endpoint is configured; set --llm-base-url, MIGAGENT_LLM_BASE_URL \
                 (or OPENAI_BASE_URL) or base-url in [llm] of migagent.toml, e.g. \
                 https://api.openai.com/v1, or use --llm off"
                    .into(),
            ));
        }
        return Ok(None);
    };
    let model = args
        .llm_model
        .clone()
        .or_else(|| env_value(&["MIGAGENT_LLM_MODEL"]))
        .or(llm.model.clone())
        .ok_or_else(|| {
            UsageError(
                "an LLM endpoint is configured but no model: set --llm-model, MIGAGENT_LLM_MODEL \
                 or model in [llm] of migagent.toml (Azure: the deployment), or use --llm off"
                    .into(),
            )
        })?;
    let key = match &llm.api_key_env {
        Some(variable) => env_value(&[variable.as_str()]),
        None => env_value(&["MIGAGENT_LLM_API_KEY", "OPENAI_API_KEY"]),
    };
    let mut settings = LlmSettings::new(base_url, model, key);
    settings.azure_api_version = llm.azure_api_version.clone();
    settings.headers = llm_headers(llm)?;
    if let Some(name) = &llm.response_format {
        settings.mode = ResponseMode::from_name(name).ok_or_else(|| {
            UsageError(format!(
                "response-format = \"{name}\" in [llm]: use json_schema, json_object or plain"
            ))
        })?;
    }
    if let Some(seconds) = args.llm_timeout.or(llm.timeout) {
        settings.request_timeout = Duration::from_secs(seconds.max(1));
    }
    if let Some(seconds) = llm.connect_timeout {
        settings.connect_timeout = Duration::from_secs(seconds.max(1));
    }
    settings.retries = llm.retries.unwrap_or(settings.retries);
    settings.concurrency = llm.concurrency.unwrap_or(settings.concurrency).max(1);
    settings.max_completion_tokens = llm
        .max_completion_tokens
        .unwrap_or(settings.max_completion_tokens);
    // Headers that cannot be sent are a setup error now.
    advice::llm::Llm::new(settings.clone()).map_err(UsageError)?;
    Ok(Some(settings))
}

/// Extra headers of `[llm]` (never credentials) and of `MIGAGENT_LLM_HEADERS`, in that order.
fn llm_headers(llm: &config::LlmConfig) -> Result<Vec<(String, String)>, UsageError> {
    if let Some(name) = llm.headers.keys().find(|name| is_credential_header(name)) {
        return Err(UsageError(format!(
            "headers in [llm] of migagent.toml: `{name}` looks like a credential, and migagent.toml \
             must never hold one; put it in MIGAGENT_LLM_HEADERS (`Name: value` lines) instead"
        )));
    }
    let mut headers: Vec<(String, String)> = llm.headers.clone().into_iter().collect();
    if let Some(extra) = env_value(&["MIGAGENT_LLM_HEADERS"]) {
        for line in extra.lines().filter(|l| !l.trim().is_empty()) {
            let (name, value) = line.split_once(':').ok_or_else(|| {
                UsageError("MIGAGENT_LLM_HEADERS: each line must be `Name: value`".into())
            })?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    Ok(headers)
}

/// The configuration file given, or the nearest one, or none; with the directory it lives in (`None`
/// without a file).
fn load_config(
    explicit: Option<&Path>,
    cwd: &Path,
) -> Result<(FileConfig, Option<PathBuf>), UsageError> {
    let path = match explicit {
        Some(path) => Some(path.to_owned()),
        None => config::find(cwd),
    };
    let Some(path) = path else {
        return Ok((FileConfig::default(), None));
    };
    let config = config::load(&path).map_err(|e| UsageError(e.to_string()))?;
    let dir = path.parent().map_or_else(|| cwd.to_owned(), Path::to_owned);
    Ok((config, Some(dir)))
}

/// `text` (trimmed) as its leading digits and the unit after them; `expected` completes "… is not".
fn number_and_unit<'t>(text: &'t str, expected: &str) -> Result<(u64, &'t str), String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number = digits
        .parse()
        .map_err(|_| format!("`{}` is not {expected}", escape::text(text)))?;
    Ok((number, unit.trim()))
}

/// A duration as `500ms`, `90s`, `5min`, `1h`, or a number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = number_and_unit(text, "a duration; write e.g. 90s, 5min or 1h")?;
    let out_of_range = || format!("`{}` is out of range", escape::text(text));
    let duration = match unit {
        "ms" => Duration::from_millis(number),
        "" | "s" => Duration::from_secs(number),
        "min" | "m" => Duration::from_secs(number.checked_mul(60).ok_or_else(out_of_range)?),
        "h" => Duration::from_secs(number.checked_mul(3600).ok_or_else(out_of_range)?),
        _ => {
            return Err(format!(
                "`{}` has an unknown unit; write e.g. 500ms, 90s, 5min or 1h",
                escape::text(text)
            ))
        }
    };
    if duration.is_zero() {
        return Err(
            "a statement timeout of 0 would never stop a statement; give a positive duration"
                .into(),
        );
    }
    Ok(duration)
}

/// A size as `2GB`, `500MB`, `64kB` (powers of 1024, as PostgreSQL reads them), or bytes.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = number_and_unit(text, "a size; write e.g. 2GB or 500MB")?;
    let factor: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1 << 10,
        "mb" | "m" => 1 << 20,
        "gb" | "g" => 1 << 30,
        "tb" | "t" => 1 << 40,
        _ => {
            return Err(format!(
                "`{}` has an unknown unit; write e.g. 500MB or 2GB",
                escape::text(text)
            ))
        }
    };
    match number.checked_mul(factor) {
        Some(size) if size >= 1 << 20 => Ok(size),
        _ => Err(format!(
            "`{}` is out of range; give at least 1MB, e.g. 2GB",
            escape::text(text)
        )),
    }
}

/// Set (to `1`) by a CI job, never by the repository, to let `[shadow] pg-bin` of migagent.toml name
/// the PostgreSQL programs migagent runs.
const TRUST_CONFIG_PG_BIN: &str = "MIGAGENT_TRUST_CONFIG_PG_BIN";

/// `[shadow] pg-bin` from migagent.toml is used only when the environment opts in to it. A pull
/// request can edit migagent.toml: honoured without the opt-in, the line would let it choose the
/// programs migagent runs.
fn require_config_pg_bin_opt_in(configured: &Path) -> Result<(), UsageError> {
    if std::env::var(TRUST_CONFIG_PG_BIN).as_deref() == Ok("1") {
        return Ok(());
    }
    Err(UsageError(format!(
        "migagent.toml sets `[shadow] pg-bin = \"{}\"`, which migagent does not use on the file's word: \
         a pull request can edit migagent.toml to make migagent run programs of its choosing. Pass \
         `--pg-bin DIR` in the CI job instead, or set {TRUST_CONFIG_PG_BIN}=1 in the job's environment \
         (not in the repository) to use the configured directory; or remove the line, and migagent \
         finds PostgreSQL on PATH",
        escape::path(configured)
    )))
}

/// Set (to `1`) by a CI job, never by the repository, to let `[shadow] superuser = true` of
/// migagent.toml apply migrations as a superuser.
const TRUST_CONFIG_SUPERUSER: &str = "MIGAGENT_TRUST_CONFIG_SUPERUSER";

/// `[shadow] superuser = true` from migagent.toml, honoured only when the environment opts in to it:
/// a pull request that could switch it on would lift the sandbox its own migrations run in (a
/// superuser runs `COPY … FROM PROGRAM`, reads and writes the server's files).
fn config_superuser(configured: Option<bool>) -> Result<bool, UsageError> {
    if configured != Some(true) {
        return Ok(false);
    }
    if std::env::var(TRUST_CONFIG_SUPERUSER).as_deref() == Ok("1") {
        return Ok(true);
    }
    Err(UsageError(format!(
        "migagent.toml sets `[shadow] superuser = true`, which migagent does not use on the file's word: \
         a pull request can edit migagent.toml, and as a superuser the migrations under review can run \
         programs and read files on the shadow's machine. Pass `--shadow-superuser` in the CI job \
         instead, or set {TRUST_CONFIG_SUPERUSER}=1 in the job's environment (not in the repository); \
         or remove the line, and migagent applies migrations as a role without superuser"
    )))
}

/// The extensions only migagent.toml allows, which the shadow installs only when PostgreSQL trusts
/// them, unless the job's environment opts in to the file's word ([`TRUST_CONFIG_EXTENSIONS`]). Those
/// `--shadow-extension` names as well are the job's own choice.
fn config_extensions_to_vet(flag: &[String], configured: Option<&[String]>) -> Vec<String> {
    if std::env::var(TRUST_CONFIG_EXTENSIONS).as_deref() == Ok("1") {
        return Vec::new();
    }
    configured
        .unwrap_or_default()
        .iter()
        .map(|name| name.to_ascii_lowercase())
        .filter(|name| !flag.iter().any(|chosen| chosen.eq_ignore_ascii_case(name)))
        .collect()
}

/// The directories a pull request controls: the git work trees holding the working directory, the
/// configuration file and each reviewed path; a configuration directory or reviewed path outside any
/// work tree counts by itself.
fn repository_trees(cwd: &Path, config_dir: Option<&Path>, paths: &[PathBuf]) -> Vec<PathBuf> {
    let work_tree = |dir: &Path| -> Option<PathBuf> {
        dir.ancestors()
            .find(|a| a.join(".git").exists())
            .map(Path::to_owned)
    };
    let mut trees: Vec<PathBuf> = work_tree(cwd).into_iter().collect();
    for named in config_dir
        .into_iter()
        .chain(paths.iter().map(PathBuf::as_path))
    {
        let Ok(path) = std::fs::canonicalize(cwd.join(named)) else {
            continue;
        };
        let dir = if path.is_dir() {
            path
        } else {
            path.parent().map_or(path.clone(), Path::to_owned)
        };
        trees.push(work_tree(&dir).unwrap_or(dir));
    }
    trees
}

/// Where Debian and Ubuntu install each PostgreSQL version's programs, side by side.
const INSTALLED_VERSIONS: &str = "/usr/lib/postgresql";

/// With `--pg-version N` and no `--pg-bin`: the programs of PostgreSQL N when that version is
/// installed beside others, so the shadow runs the version production runs.
fn installed_pg_bin(version: Option<PgVersion>) -> Option<PathBuf> {
    let dir = Path::new(INSTALLED_VERSIONS)
        .join(version?.major.to_string())
        .join("bin");
    dir.join("postgres").is_file().then_some(dir)
}

/// The programs migagent's own shadow runs from `--pg-bin`.
const PG_PROGRAMS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

/// As root, migagent runs `postgres --version` itself and starts the server through `pg_ctl`: a program
/// inside the repository under review (which a pull request can replace) would run with root's rights.
fn refuse_programs_of_the_repository_as_root(
    pg_bin: &Path,
    trees: &[PathBuf],
) -> Result<(), UsageError> {
    if !OsUser::current().is_ok_and(|user| user.uid == 0) {
        return Ok(());
    }
    let programs = std::iter::once(pg_bin.to_owned())
        .chain(PG_PROGRAMS.iter().map(|program| pg_bin.join(program)));
    for program in programs {
        let Ok(resolved) = std::fs::canonicalize(&program) else {
            continue;
        };
        if let Some(tree) = trees.iter().find(|tree| resolved.starts_with(tree)) {
            return Err(UsageError(format!(
                "--pg-bin {}: {} is inside the repository under review ({}), and migagent, running as \
                 root, would run it as root: a pull request can replace it. Point --pg-bin at a \
                 PostgreSQL installed outside the checkout, or run migagent as an unprivileged user",
                escape::path(pg_bin),
                escape::path(&program),
                escape::path(tree)
            )));
        }
    }
    Ok(())
}

/// `[rules]` of the config: `rule-id = "off" | "info" | "warning" | "error"`, or the same for a whole
/// category (`hygiene = "off"`); a rule's own line wins over its category's.
fn rule_severities(
    config: &FileConfig,
) -> Result<std::collections::HashMap<String, Option<Severity>>, UsageError> {
    let mut by_category = Vec::new();
    let mut by_rule = std::collections::HashMap::new();
    for (key, setting) in &config.rules {
        let severity = match setting.as_str() {
            "off" => None,
            name => Some(Severity::from_name(name).ok_or_else(|| {
                UsageError(format!(
                    "migagent.toml [rules]: `{key} = \"{setting}\"`: use \"off\", \"info\", \"warning\" or \"error\""
                ))
            })?),
        };
        if rules::find(key).is_some() {
            by_rule.insert(key.clone(), severity);
        } else if let Some(category) = rules::ALL
            .iter()
            .map(|r| r.category)
            .find(|c| c.name() == key)
        {
            by_category.push((category, severity));
        } else {
            return Err(UsageError(format!(
                "migagent.toml [rules]: `{key}` is neither a rule nor a category (see `migagent rules`)"
            )));
        }
    }
    for (category, severity) in by_category {
        for rule in rules::ALL.iter().filter(|r| r.category == category) {
            by_rule.entry(rule.id.to_owned()).or_insert(severity);
        }
    }
    Ok(by_rule)
}

/// A path from the config file, relative to the config's directory, as seen from the working directory.
fn relative_to(config_dir: &Path, cwd: &Path, path: PathBuf) -> PathBuf {
    if path.is_absolute() || config_dir == cwd {
        return path;
    }
    let joined = config_dir.join(&path);
    joined
        .strip_prefix(cwd)
        .map(Path::to_owned)
        .unwrap_or(joined)
}

/// Prints the report on stdout. The text and Markdown reports show the migrations' own names and
/// SQL, none of which may run as a workflow command in a GitHub Actions log (a report redirected to a
/// file is not the log, and stays as it is). The other formats are read by tools, which wrapping
/// would break, and need none: JSON and SARIF hold their data escaped, and every line of the `github`
/// format is a command migagent chose (the runner then never tries the legacy syntax on it) or
/// migagent's own summary. A closed pipe (`migagent … | head`) is not an error.
fn print_report(review: &Review, format: Format, context: &report::Context) {
    let shows_data = matches!(format, Format::Text | Format::Markdown);
    if shows_data && escape::goes_to_actions_log(std::io::stdout()) {
        let report = report::render(review, format, context);
        return print_stdout(&escape::commands_stopped(&report, &crate::nonce::nonce()));
    }
    let mut stdout = unbuffered_stdout();
    let _ = report::write(review, format, context, &mut stdout).and_then(|()| stdout.flush());
}

/// Stdout without its line buffering, for a report that writes in large blocks (JSON and SARIF
/// buffer their own writes; the other formats are written at once): `Stdout` looks for the last
/// newline of every write, which for a report of tens of MB on one line is a scan of all of it, and
/// copies what follows into its own buffer.
fn unbuffered_stdout() -> Box<dyn Write> {
    use std::os::fd::AsFd;
    let stdout = std::io::stdout();
    // What was printed before goes first.
    let _ = stdout.lock().flush();
    match stdout.as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(stdout.lock()),
    }
}

/// Writes to stdout; a closed pipe (`migagent … | head`) is not an error.
fn print_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_read_their_units_and_refuse_the_rest() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration(" 90 "), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5min"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 fortnights").is_err());
        assert!(parse_duration("soon").is_err());
        // Too large for the unit: an error, not an overflow.
        assert!(parse_duration("18446744073709551615h").is_err());
        assert_eq!(parse_size("2GB"), Ok(2 << 30));
        assert_eq!(parse_size("500mb"), Ok(500 << 20));
        assert!(parse_size("1kB").is_err());
        assert!(parse_size("18446744073709551615TB").is_err());
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn max_file_size_stays_within_what_the_lexer_reads() {
        assert_eq!(max_file_size(None).ok(), Some(DEFAULT_MAX_FILE_SIZE));
        assert_eq!(
            max_file_size(Some(u32::MAX as u64)).ok(),
            Some(u32::MAX as u64)
        );
        let error = max_file_size(Some(u32::MAX as u64 + 1)).unwrap_err().0;
        assert!(error.contains("at most 4294967295 bytes"), "{error}");
    }

    #[test]
    fn pg_version_picks_an_installed_version_only_when_it_is_there() {
        let version = |major| Some(PgVersion { major, minor: None });
        assert_eq!(installed_pg_bin(version(999)), None);
        assert_eq!(installed_pg_bin(None), None);
        let fifteen = Path::new(INSTALLED_VERSIONS).join("15/bin");
        let expected = fifteen.join("postgres").is_file().then_some(fifteen);
        assert_eq!(installed_pg_bin(version(15)), expected);
    }
}
