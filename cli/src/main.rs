//! `gantry`: a one-process dev cluster (`gantry dev`), a client for apps, jobs, tasks and agents,
//! and a preflight of agent and master hosts (`gantry doctor`).

mod apps;
mod client;
mod deployments;
mod dev;
mod doctor;
mod jobs;
mod lb;
mod leader;
mod logs;
mod table;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "gantry",
    version,
    about = "Gantry: run services and jobs on a GPU cluster"
)]
struct Cli {
    /// Where the masters are: a URL, several (repeated or comma-separated: the first that
    /// answers, or the leader a standby names), or zk://host:2181[,host:2181]/path (the leader
    /// ZooKeeper names). `gantry lb` follows whichever of a list answers, or ZooKeeper's leader.
    #[arg(
        long,
        global = true,
        env = "GANTRY_MASTER",
        default_value = doctor::DEFAULT_MASTER,
        value_delimiter = ','
    )]
    master: Vec<String>,
    /// CA certificates (PEM) an https:// master's certificate must be signed by, instead of the
    /// public webpki roots.
    #[arg(long, global = true, env = "GANTRY_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// HTTP Basic credentials for the master, USER:PASSWORD.
    #[arg(
        long,
        global = true,
        env = "GANTRY_CREDENTIALS",
        hide_env_values = true
    )]
    credentials: Option<String>,
    /// A bearer token for the master (e.g. the contents of <state-dir>/admin-token).
    #[arg(long, global = true, env = "GANTRY_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a master and one local agent in this process, on embedded SQLite.
    Dev(dev::DevArgs),
    /// Marathon apps (long-running services): deploy, show, scale, restart, roll back, delete.
    #[command(subcommand, alias = "app")]
    Apps(apps::AppsCommand),
    /// Deployments in progress: list them, cancel one.
    #[command(subcommand, alias = "deployment")]
    Deployments(deployments::DeploymentsCommand),
    /// Tasks: list them, print their output.
    #[command(subcommand, alias = "task")]
    Tasks(TasksCommand),
    /// Chronos jobs (batch runs on a schedule or after other jobs).
    #[command(subcommand, alias = "job")]
    Jobs(jobs::JobsCommand),
    /// Agents.
    #[command(subcommand)]
    Agents(ListOnly),
    /// Preflight checks of an agent or master host: each ✓/!/✗ with the fix; exit 1 on a failure.
    #[command(subcommand)]
    Doctor(doctor::DoctorCommand),
    /// A marathon-lb-style load balancer: HAProxy configured from the masters' apps and tasks.
    Lb(lb::LbArgs),
}

#[derive(Subcommand)]
enum TasksCommand {
    /// List them.
    List,
    /// Print a task's stdout (or --stderr) through the master; --follow until it ends.
    Log(logs::LogArgs),
}

#[derive(Subcommand)]
enum ListOnly {
    /// List them.
    List,
}

fn main() -> anyhow::Result<()> {
    gantry_agentd::executor::run_if_requested();
    doctor::run_unshare_if_requested();
    let cli = Cli::parse();
    let cmd = match cli.command {
        Command::Dev(args) => return dev::run(args),
        other => other,
    };
    let masters = leader::parse(&cli.master);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let cmd = match cmd {
        Command::Doctor(d) => {
            // The doctor checks one master: ZooKeeper's leader, or the first URL as given (a
            // malformed one is the doctor's to explain).
            let master =
                match &masters {
                    Ok(zk @ gantry_daemon::masters::Masters::Zk(_)) => rt.block_on(
                        leader::resolve(zk, &client::Auth::None, cli.ca_file.as_deref()),
                    )?,
                    _ => cli.master.first().cloned().unwrap_or_default(),
                };
            let target = doctor::MasterTarget {
                url: &master,
                ca_file: cli.ca_file.as_deref(),
            };
            let code = doctor::run(d, target, cli.json)?;
            std::process::exit(code);
        }
        other => other,
    };
    let masters = masters?;
    let auth = match (cli.credentials, cli.api_token) {
        (Some(c), _) => match c.split_once(':') {
            Some((u, p)) => client::Auth::Basic(u.to_string(), p.to_string()),
            None => anyhow::bail!("--credentials must be USER:PASSWORD"),
        },
        (None, Some(t)) => client::Auth::Bearer(t),
        (None, None) => client::Auth::None,
    };
    let cmd = match cmd {
        Command::Lb(args) => {
            drop(rt);
            return lb::run(args, masters, auth, cli.ca_file.as_deref());
        }
        other => other,
    };
    let master = rt.block_on(leader::resolve(&masters, &auth, cli.ca_file.as_deref()))?;
    let c = client::Client::new(&master, cli.json, auth, cli.ca_file.as_deref())?;
    rt.block_on(async move {
        match cmd {
            Command::Apps(cmd) => apps::run(&c, cmd).await,
            Command::Deployments(cmd) => deployments::run(&c, cmd).await,
            Command::Tasks(TasksCommand::List) => c.tasks_list().await,
            Command::Tasks(TasksCommand::Log(args)) => {
                logs::print_task_log(&c, args.task_id(), args.options()).await
            }
            Command::Jobs(cmd) => jobs::run(&c, cmd).await,
            Command::Agents(ListOnly::List) => c.agents_list().await,
            Command::Dev(_) | Command::Doctor(_) | Command::Lb(_) => Ok(()),
        }
    })
}

/// Where `gantry dev` keeps its state by default: as root, `/var/lib/gantry/dev`, since tasks run
/// as `nobody` and must enter their sandboxes (a home directory is often 0700); as anyone else,
/// `~/.gantry/dev` (tasks then run as that user).
fn default_dev_dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/gantry/dev");
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".gantry/dev")
}
