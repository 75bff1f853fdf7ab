//! `rampart user ...`: the people who sign in, managed directly on the data directory (also
//! while `serve` runs on it). The same operations as `/admin/v1/users`.
//!
//! Passwords are read from standard input only (`--password-stdin`), never from the command
//! line, where other users of the machine and the shell history would see them.

use std::io::{BufRead, IsTerminal, Read};

use clap::Subcommand;
use rampart_crypto::SecretString;
use rampart_idp::endpoints::admin_users::{
    SessionView, UserDetailView, UserView, live_sessions, user_detail,
};
use rampart_idp::unix_now;
use rampart_idp::users::{NewUser, UserDirectory, UserError};

use crate::DataArgs;
use crate::serve::{DataDir, open_data_dir};

/// Longest line read as a password (the policy allows less; this only bounds the read).
const MAX_PASSWORD_LINE: u64 = 64 * 1024;

/// `rampart user ...`.
#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input.
    Create {
        #[command(flatten)]
        data: DataArgs,
        /// Login name (lower-cased).
        #[arg(long)]
        username: String,
        /// E-mail address (stored encrypted; found through a keyed index).
        #[arg(long)]
        email: String,
        /// Full name.
        #[arg(long)]
        name: Option<String>,
        /// Phone number.
        #[arg(long)]
        phone: Option<String>,
        /// A role (the `roles` claim); repeatable.
        #[arg(long = "role", value_name = "R")]
        roles: Vec<String>,
        /// A group (the `groups` claim); repeatable.
        #[arg(long = "group", value_name = "G")]
        groups: Vec<String>,
        /// Read the password from the first line of standard input (required: a password
        /// is never accepted as an argument).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List {
        #[command(flatten)]
        data: DataArgs,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Show one user, their second factors and number of sessions.
    Show {
        #[command(flatten)]
        data: DataArgs,
        /// User id, username or e-mail address.
        #[arg(allow_hyphen_values = true)]
        user: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: they cannot sign in, their sessions end and their refresh tokens are
    /// revoked.
    Disable {
        #[command(flatten)]
        data: DataArgs,
        /// User id, username or e-mail address.
        #[arg(allow_hyphen_values = true)]
        user: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Enable a disabled user.
    Enable {
        #[command(flatten)]
        data: DataArgs,
        /// User id, username or e-mail address.
        #[arg(allow_hyphen_values = true)]
        user: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Delete a user and everything that belongs to them.
    Delete {
        #[command(flatten)]
        data: DataArgs,
        /// User id, username or e-mail address.
        #[arg(allow_hyphen_values = true)]
        user: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Set a user's password (read from standard input); signs them out everywhere.
    SetPassword {
        #[command(flatten)]
        data: DataArgs,
        /// User id, username or e-mail address.
        #[arg(allow_hyphen_values = true)]
        user: String,
        /// Read the password from the first line of standard input (required).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Remove every second factor of a user (TOTP, recovery codes, passkeys).
    ResetMfa {
        #[command(flatten)]
        data: DataArgs,
        /// User id, username or e-mail address.
        #[arg(allow_hyphen_values = true)]
        user: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// List a user's browser sessions (unexpired), newest first.
    Sessions {
        #[command(flatten)]
        data: DataArgs,
        /// User id, username or e-mail address.
        #[arg(allow_hyphen_values = true)]
        user: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// End one session and revoke the refresh tokens that came from it.
    RevokeSession {
        #[command(flatten)]
        data: DataArgs,
        /// The session id (from `user sessions`).
        #[arg(allow_hyphen_values = true)]
        session_id: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a user command.
pub async fn user(command: UserCommand) -> Result<(), String> {
    match command {
        UserCommand::Create {
            data,
            username,
            email,
            name,
            phone,
            roles,
            groups,
            password_stdin: _,
            json,
        } => {
            // Read before opening anything, so a missing password fails fast.
            let password = read_password_stdin()?;
            with_directory(&data, async |users| {
                let new = NewUser {
                    username,
                    email,
                    name,
                    phone,
                    roles,
                    groups,
                    password,
                };
                let user = users.create(new, unix_now()).await.map_err(user_error)?;
                let view = UserView::from(&user);
                if json {
                    crate::cli::print_json(&view)?;
                } else {
                    println!("user_id:  {}", view.user_id);
                    println!("username: {}", view.username);
                }
                Ok(())
            })
            .await
        }
        UserCommand::List { data, json } => {
            with_directory(&data, async |users| {
                let list = users.list().await.map_err(user_error)?;
                let views: Vec<UserView> = list.iter().map(UserView::from).collect();
                if json {
                    crate::cli::print_json(&views)?;
                } else {
                    for v in &views {
                        println!(
                            "{}\t{}\t{}\t{}\t{}",
                            v.user_id,
                            v.username,
                            v.email,
                            if v.disabled { "disabled" } else { "active" },
                            v.roles.join(",")
                        );
                    }
                }
                Ok(())
            })
            .await
        }
        UserCommand::Show { data, user, json } => {
            with_directory(&data, async |users| {
                let found = users.find(&user).await.map_err(user_error)?;
                let detail = user_detail(users, &found, unix_now())
                    .await
                    .map_err(user_error)?;
                if json {
                    crate::cli::print_json(&detail)?;
                } else {
                    print_user(&detail);
                }
                Ok(())
            })
            .await
        }
        UserCommand::Disable { data, user, json } => set_disabled(&data, &user, true, json).await,
        UserCommand::Enable { data, user, json } => set_disabled(&data, &user, false, json).await,
        UserCommand::Delete { data, user, json } => {
            with_directory(&data, async |users| {
                let found = users.find(&user).await.map_err(user_error)?;
                let id = found.record.user_id;
                users.delete(&id).await.map_err(user_error)?;
                done(json, "deleted", &id)
            })
            .await
        }
        UserCommand::SetPassword {
            data,
            user,
            password_stdin: _,
            json,
        } => {
            let password = read_password_stdin()?;
            with_directory(&data, async |users| {
                let found = users.find(&user).await.map_err(user_error)?;
                let id = found.record.user_id;
                users
                    .set_password(&id, &password, unix_now())
                    .await
                    .map_err(user_error)?;
                done(json, "password_set", &id)
            })
            .await
        }
        UserCommand::ResetMfa { data, user, json } => {
            with_directory(&data, async |users| {
                let found = users.find(&user).await.map_err(user_error)?;
                let id = found.record.user_id;
                users.reset_mfa(&id).await.map_err(user_error)?;
                done(json, "mfa_reset", &id)
            })
            .await
        }
        UserCommand::Sessions { data, user, json } => {
            with_directory(&data, async |users| {
                let sessions = live_sessions(users, &user, unix_now())
                    .await
                    .map_err(user_error)?;
                let views: Vec<SessionView> = sessions.iter().map(SessionView::from).collect();
                if json {
                    crate::cli::print_json(&views)?;
                } else {
                    for s in &views {
                        println!(
                            "{}\t{}\t{}\tlast seen {}\texpires {}",
                            s.session_id,
                            s.amr.join(","),
                            s.acr,
                            format_time(s.last_seen_at),
                            format_time(s.expires_at)
                        );
                    }
                }
                Ok(())
            })
            .await
        }
        UserCommand::RevokeSession {
            data,
            session_id,
            json,
        } => {
            with_directory(&data, async |users| {
                match users.revoke_session(&session_id, unix_now()).await {
                    Ok(()) => done(json, "revoked", &session_id),
                    Err(UserError::NotFound) => Err("no such session".to_owned()),
                    Err(e) => Err(user_error(e)),
                }
            })
            .await
        }
    }
}

/// Opens the data directory and the user directory, runs `f`, and closes the store
/// whatever the outcome.
async fn with_directory(
    data: &DataArgs,
    f: impl AsyncFnOnce(&UserDirectory) -> Result<(), String>,
) -> Result<(), String> {
    let dir = open_data_dir(data).await?;
    let result = match open_directory(&dir) {
        Ok(users) => f(&users).await,
        Err(e) => Err(e),
    };
    dir.store.close().await;
    result
}

fn open_directory(dir: &DataDir) -> Result<UserDirectory, String> {
    let config = dir.settings.idp_config(String::new());
    UserDirectory::open_configured(dir.store.clone(), &dir.master, &config.people)
        .map_err(|e| format!("password hasher: {e}"))
}

async fn set_disabled(
    data: &DataArgs,
    who: &str,
    disabled: bool,
    json: bool,
) -> Result<(), String> {
    with_directory(data, async |users| {
        let found = users.find(who).await.map_err(user_error)?;
        let id = found.record.user_id;
        users
            .set_disabled(&id, disabled, unix_now())
            .await
            .map_err(user_error)?;
        done(json, if disabled { "disabled" } else { "enabled" }, &id)
    })
    .await
}

/// Prints `WHAT ID`, or `{"WHAT": ID}` with `--json`.
fn done(json: bool, what: &str, id: &str) -> Result<(), String> {
    if json {
        crate::cli::print_json(&serde_json::json!({ what: id }))
    } else {
        println!("{} {id}", what.replace('_', " "));
        Ok(())
    }
}

/// The error's one-line message (it names the field and never echoes a password).
fn user_error(e: UserError) -> String {
    e.to_string()
}

/// Reads the password from the first line of standard input, without its line ending.
fn read_password_stdin() -> Result<SecretString, String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password (one line; the input is visible, prefer a pipe): ");
    }
    let mut line = Vec::new();
    stdin
        .lock()
        .take(MAX_PASSWORD_LINE)
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("password: cannot read standard input: {e}"))?;
    let complete = line.last() == Some(&b'\n');
    if !complete && line.len() as u64 >= MAX_PASSWORD_LINE {
        wipe(&mut line);
        return Err(format!(
            "password: the line on standard input is longer than {MAX_PASSWORD_LINE} bytes"
        ));
    }
    if complete {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    if line.is_empty() {
        return Err(
            "password: standard input is empty (--password-stdin reads the password from its first line)"
                .to_owned(),
        );
    }
    match String::from_utf8(line) {
        Ok(text) => Ok(SecretString::from(text)),
        Err(e) => {
            let mut bytes = e.into_bytes();
            wipe(&mut bytes);
            Err("password: not valid UTF-8".to_owned())
        }
    }
}

/// Overwrites a buffer that held a password.
fn wipe(bytes: &mut [u8]) {
    for b in bytes.iter_mut() {
        // A volatile write would be stronger; this runs once in a short-lived process.
        *b = 0;
    }
    std::hint::black_box(bytes);
}

fn print_user(detail: &UserDetailView) {
    let v = &detail.user;
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let or_dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".to_owned());
    println!("user_id:        {}", v.user_id);
    println!("username:       {}", v.username);
    println!("email:          {}", v.email);
    println!("email_verified: {}", yes_no(v.email_verified));
    println!("name:           {}", or_dash(&v.name));
    println!("phone:          {}", or_dash(&v.phone));
    println!("roles:          {}", v.roles.join(" "));
    println!("groups:         {}", v.groups.join(" "));
    println!("disabled:       {}", yes_no(v.disabled));
    println!("created:        {}", format_time(v.created_at));
    println!("updated:        {}", format_time(v.updated_at));
    let m = &detail.mfa;
    let totp = if m.totp_confirmed {
        "confirmed"
    } else if m.totp_pending {
        "pending (not confirmed)"
    } else {
        "none"
    };
    println!("totp:           {totp}");
    println!("recovery_codes: {} left", m.recovery_codes_left);
    println!("passkeys:       {}", m.passkeys);
    println!("sessions:       {}", detail.sessions);
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
fn format_time(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::format_time;

    #[test]
    fn times() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_time(1_709_210_096), "2024-02-29T12:34:56Z");
    }
}
