//! Shared by the browser tests: Debian's Chromium driven through a chromedriver that the
//! test starts (and stops on drop), trusting the server's dev certificate by its key only.
//! The tests fail, never skip, when Chromium or chromedriver is missing (`.ci/run` installs
//! them); `RAMPART_CHROMIUM` and `RAMPART_CHROMEDRIVER` override the paths.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use thirtyfour::LoggingPrefsLogLevel;
use thirtyfour::prelude::*;

/// How long chromedriver may take to listen.
const WAIT: Duration = Duration::from_secs(20);

pub fn chromium_path() -> PathBuf {
    std::env::var_os("RAMPART_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

pub fn chromedriver_path() -> PathBuf {
    std::env::var_os("RAMPART_CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver"))
}

/// A chromedriver process on a free loopback port, killed on drop (also on panic).
pub struct ChromeDriver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl ChromeDriver {
    pub fn start(dir: &Path) -> ChromeDriver {
        let driver = chromedriver_path();
        let browser = chromium_path();
        for (what, path) in [("chromium", &browser), ("chromedriver", &driver)] {
            assert!(
                path.is_file(),
                "{what} not found at {}: the browser tests need Debian's chromium and \
                 chromium-driver packages, which .ci/run installs \
                 (apt-get install chromium chromium-driver)",
                path.display()
            );
        }
        let port = free_port();
        let log = dir.join("chromedriver.log");
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", driver.display()));
        let guard = ChromeDriver { child, port, log };
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port}: {}",
                guard.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        guard
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// base64(SHA-256(SubjectPublicKeyInfo)) of the server certificate, for
/// `--ignore-certificate-errors-spki-list`: Chromium then accepts this one key, signed by a
/// CA it does not know, and no other.
pub fn server_spki_hash(data_dir: &Path) -> String {
    let pem = std::fs::read(data_dir.join("tls/server.pem")).expect("server certificate");
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).expect("PEM");
    let cert = pem.parse_x509().expect("X.509");
    let spki = cert.tbs_certificate.subject_pki.raw;
    STANDARD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki))
}

pub async fn open_browser(driver: &ChromeDriver, profile: &Path, spki: &str) -> WebDriver {
    std::fs::create_dir_all(profile).expect("profile dir");
    let mut caps = DesiredCapabilities::chrome();
    caps.set_binary(&chromium_path().to_string_lossy())
        .expect("binary");
    for arg in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1024,900",
        "--lang=en-US",
    ] {
        caps.add_arg(arg).expect("arg");
    }
    caps.add_arg(&format!("--user-data-dir={}", profile.display()))
        .expect("arg");
    caps.add_arg(&format!("--ignore-certificate-errors-spki-list={spki}"))
        .expect("arg");
    caps.set_browser_log_level(LoggingPrefsLogLevel::All)
        .expect("logging prefs");
    match WebDriver::new(driver.url(), caps).await {
        Ok(d) => d,
        Err(e) => panic!(
            "no browser session: {e}\nchromedriver log:\n{}",
            driver.log_tail()
        ),
    }
}
