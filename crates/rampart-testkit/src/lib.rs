//! Test support shared by Rampart's test suites (a dev-dependency only).
//!
//! [`RedisServer`] is a `redis-server` of a test's own on a free loopback port.
//!
//! [`postgres_database`] gives a test an empty database of its own on a throwaway
//! PostgreSQL server: one server per test process, started on first use from the
//! system's PostgreSQL binaries (Debian's `postgresql` package, which `.ci/run` installs)
//! in a temporary directory, on a free loopback port, and stopped and deleted when the
//! test process exits. There is no fallback: without PostgreSQL the tests that need it
//! fail with a message that says how to install it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod redis;

pub use redis::RedisServer;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts the server: initdb in a fresh directory (as the `postgres` user when run as
/// root, which initdb refuses), then postgres in the background. It then waits for its
/// standard input to close, which happens when the test process exits whatever way it
/// ends, and stops the server and deletes the directory.
const SUPERVISOR: &str = r#"
set -eu
bin="$1"; port="$2"
dir=$(mktemp -d "${TMPDIR:-/tmp}/rampart-test-pg.XXXXXX")
run=""
if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; run="runuser -u postgres --"; fi
if ! $run "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 \
    >"$dir/initdb.log" 2>&1; then
  cat "$dir/initdb.log" >&2; rm -rf "$dir"; exit 1
fi
$run "$bin/postgres" -D "$dir/data" -h 127.0.0.1 -p "$port" -k "$dir" \
  -c fsync=off -c max_connections=300 >"$dir/server.log" 2>&1 &
pid=$!
echo "started $dir"
read -r _ || true
# $pid may be runuser, which does not pass signals on: stop the postmaster itself.
postmaster=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)
kill -INT "${postmaster:-$pid}" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
rm -rf "$dir"
"#;

struct Server {
    port: u16,
    dir: PathBuf,
    // Held so that its standard input stays open for the life of the process.
    _supervisor: Mutex<(Child, ChildStdin)>,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static NEXT_DATABASE: AtomicU32 = AtomicU32::new(0);

/// The directory of `initdb` and `postgres`: `RAMPART_TEST_POSTGRES_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin` (Debian), else the directory of `initdb` on `PATH`.
fn binaries() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("RAMPART_TEST_POSTGRES_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find(|dir| dir.join("initdb").exists() && dir.join("postgres").exists())
        .ok_or_else(|| {
            "PostgreSQL is not installed: these tests start their own server from its \
             binaries (Debian: apt-get install postgresql; .ci/run does it), or set \
             RAMPART_TEST_POSTGRES_BIN to the directory of initdb and postgres"
                .to_owned()
        })
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

fn start() -> Result<Server, String> {
    let bin = binaries()?;
    let port = free_port()?;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(SUPERVISOR)
        .arg("rampart-test-postgres")
        .arg(&bin)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    let stdin = child.stdin.take().ok_or("no stdin")?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let Some(dir) = line.trim().strip_prefix("started ") else {
        let mut err = String::new();
        if let Some(stderr) = child.stderr.take() {
            let _ = BufReader::new(stderr).read_line(&mut err);
        }
        return Err(format!(
            "the PostgreSQL test server (binaries in {}) did not start: {err}",
            bin.display()
        ));
    };
    Ok(Server {
        port,
        dir: PathBuf::from(dir),
        _supervisor: Mutex::new((child, stdin)),
    })
}

fn server() -> &'static Server {
    match SERVER.get_or_init(start) {
        Ok(server) => server,
        Err(why) => panic!("{why}"),
    }
}

fn url(port: u16, database: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/{database}?sslmode=disable")
}

fn server_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
}

/// Creates an empty database on the test server (started on first use) and returns its
/// `postgres://` URL. Each call gives a new database, so tests do not see each other's
/// data.
///
/// # Panics
///
/// When PostgreSQL is not installed or the server does not come up: a test that needs
/// it must fail, not skip.
pub async fn postgres_database() -> String {
    let server = server();
    let admin = url(server.port, "postgres");
    let started = Instant::now();
    let mut conn = loop {
        match PgConnection::connect(&admin).await {
            Ok(conn) => break conn,
            Err(_) if started.elapsed() < START_TIMEOUT => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => panic!(
                "the PostgreSQL test server did not accept connections within {START_TIMEOUT:?}: \
                 {err}\n{}",
                server_log(&server.dir)
            ),
        }
    };
    let name = format!(
        "rampart_test_{}_{}",
        std::process::id(),
        NEXT_DATABASE.fetch_add(1, Ordering::Relaxed)
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    let _ = conn.close().await;
    url(server.port, &name)
}
