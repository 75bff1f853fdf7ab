//! `rampart`: the single binary. `serve` runs the authorization server; `client`, `key`,
//! `api-key` and `user` manage the same data directory, also while `serve` runs; `policy`
//! checks and explains the gateway's Cedar policies.

#![forbid(unsafe_code)]

mod cli;
mod cli_policy;
mod cli_user;
mod demo;
mod dev_tls;
mod gateway;
mod listener;
mod serve;
mod settings;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: under gateway load, glibc's arena locks, chunk
/// consolidation and the futex waits they cause took about a sixth of the process's CPU
/// (profile in docs/benchmarks.md); with mimalloc the gateway spends ~20 % less CPU per request.
/// Built with `no_thp`: on transparent huge pages its arenas made 10,000 idle connections cost
/// 425 MiB instead of 288 MiB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Rampart: identity, tokens and the gateway of a microservice system, in one binary.
#[derive(Parser, Debug)]
#[command(name = "rampart", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options shared by every command that opens the data directory.
#[derive(clap::Args, Debug, Clone)]
pub struct DataArgs {
    /// Configuration file (TOML).
    #[arg(long, value_name = "FILE", env = "RAMPART_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory; overrides `server.data_dir`.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the authorization server (HTTPS).
    Serve {
        #[command(flatten)]
        data: DataArgs,
        /// Listen address; overrides `server.listen`. Port 0 picks a free port.
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<std::net::SocketAddr>,
        /// Also run a gateway, an echo service behind it and demo clients, and print curl
        /// commands to try them.
        #[arg(long)]
        demo: bool,
    },
    /// Run the API gateway alone (needs a `[gateway]` section in the config).
    Gateway {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(cli::ClientCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Key(cli::KeyCommand),
    /// Manage API keys (verified by introspection).
    #[command(subcommand, name = "api-key")]
    ApiKey(cli::ApiKeyCommand),
    /// Manage the people who sign in (users, their second factors and sessions).
    #[command(subcommand)]
    User(cli_user::UserCommand),
    /// Check Cedar policies and explain the gateway's decisions (no server needed).
    #[command(subcommand)]
    Policy(cli_policy::PolicyCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Policy(command) = cli.command {
        // Pure computation on files: no runtime needed.
        return cli_policy::policy(command).unwrap_or_else(|message| {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        });
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve {
                data,
                listen,
                demo: false,
            } => serve::run(data, listen).await,
            Command::Serve {
                data,
                listen,
                demo: true,
            } => demo::run(data, listen).await,
            Command::Gateway { data } => serve::run_gateway(data).await,
            Command::Client(command) => cli::client(command).await,
            Command::Key(command) => cli::key(command).await,
            Command::ApiKey(command) => cli::api_key(command).await,
            Command::User(command) => cli_user::user(command).await,
            // Handled before the runtime was started.
            Command::Policy(_) => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};
    use crate::{cli, cli_user};

    /// Ids are random base64url, so one in 64 starts with `-`; each command that takes an
    /// id must take it as its value, and still see the flags after it.
    #[test]
    fn ids_starting_with_a_hyphen_are_values() {
        let id = "-HURCUSrcXY75NeCXkycHg";
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("rampart").chain(args.iter().copied()))
                .unwrap_or_else(|e| panic!("{args:?}: {e}"))
                .command
        };
        for sub in [
            "show",
            "disable",
            "enable",
            "delete",
            "reset-mfa",
            "sessions",
            "revoke-session",
        ] {
            let Command::User(command) = parse(&["user", sub, id, "--json"]) else {
                panic!("{sub}: not a user command");
            };
            let (value, json) = match command {
                cli_user::UserCommand::Show { user, json, .. }
                | cli_user::UserCommand::Disable { user, json, .. }
                | cli_user::UserCommand::Enable { user, json, .. }
                | cli_user::UserCommand::Delete { user, json, .. }
                | cli_user::UserCommand::ResetMfa { user, json, .. }
                | cli_user::UserCommand::Sessions { user, json, .. } => (user, json),
                cli_user::UserCommand::RevokeSession {
                    session_id, json, ..
                } => (session_id, json),
                other => panic!("{sub}: {other:?}"),
            };
            assert_eq!((value.as_str(), json), (id, true), "user {sub}");
        }
        let Command::User(cli_user::UserCommand::SetPassword {
            user,
            password_stdin: true,
            ..
        }) = parse(&["user", "set-password", id, "--password-stdin"])
        else {
            panic!("user set-password");
        };
        assert_eq!(user, id);

        for sub in ["revoke", "delete"] {
            let Command::ApiKey(
                cli::ApiKeyCommand::Revoke { key_id, json, .. }
                | cli::ApiKeyCommand::Delete { key_id, json, .. },
            ) = parse(&["api-key", sub, id, "--json"])
            else {
                panic!("api-key {sub}");
            };
            assert_eq!((key_id.as_str(), json), (id, true), "api-key {sub}");
        }

        for sub in ["show", "rotate-secret", "delete"] {
            let client_id = match parse(&["client", sub, id]) {
                Command::Client(
                    cli::ClientCommand::Show { client_id, .. }
                    | cli::ClientCommand::RotateSecret { client_id, .. }
                    | cli::ClientCommand::Delete { client_id, .. },
                ) => client_id,
                other => panic!("client {sub}: {other:?}"),
            };
            assert_eq!(client_id, id, "client {sub}");
        }
    }

    #[test]
    fn policy_explain_takes_ids_starting_with_a_hyphen() {
        let id = "-HURCUSrcXY75NeCXkycHg";
        let parsed = Cli::try_parse_from([
            "rampart",
            "policy",
            "explain",
            "--route",
            "r",
            "--subject",
            id,
            "--client-id",
            id,
            "--json",
        ]);
        let Ok(Cli {
            command: Command::Policy(crate::cli_policy::PolicyCommand::Explain(args)),
        }) = parsed
        else {
            panic!("{parsed:?}");
        };
        assert_eq!(args.subject.as_deref(), Some(id));
        assert_eq!(args.client_id.as_deref(), Some(id));
        assert!(args.json);
    }

    /// Accepting hyphen values must not turn the known flags into ids.
    #[test]
    fn flags_before_the_id_stay_flags() {
        let parsed = Cli::try_parse_from(["rampart", "user", "show", "--json", "alice"]);
        let Ok(Cli {
            command: Command::User(cli_user::UserCommand::Show { user, json, .. }),
        }) = parsed
        else {
            panic!("{parsed:?}");
        };
        assert_eq!((user.as_str(), json), ("alice", true));
    }
}
