//! A local anvil node for tests: found, started on a free port of
//! 127.0.0.1, and stopped when dropped (also when a test panics).
//!
//! The binary is `$PAREVM_ANVIL`, else the one `tools/anvil` pins
//! (`npm ci --prefix tools/anvil`, which `.ci/run` does), else `anvil` on
//! the `PATH`. Its output goes to a log file, read for the line
//! `Listening on 127.0.0.1:PORT` (anvil is asked for port 0 and picks a
//! free one), and shown in the error when it does not start.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long anvil may take to listen (it takes well under a second).
const STARTUP: Duration = Duration::from_secs(30);

/// A running anvil, killed on drop.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    url: String,
    log: PathBuf,
}

/// Where anvil is, if anywhere.
pub fn anvil_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PAREVM_ANVIL") {
        return Some(PathBuf::from(path));
    }
    let pinned =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/anvil/node_modules/.bin/anvil");
    if pinned.is_file() {
        return Some(pinned);
    }
    let on_path = std::env::var_os("PATH")?;
    std::env::split_paths(&on_path)
        .map(|dir| dir.join("anvil"))
        .find(|candidate| candidate.is_file())
}

impl Anvil {
    /// Starts anvil with `args` (besides the host and port), logging to a
    /// file in `dir`.
    ///
    /// # Errors
    /// A message when anvil is not installed, does not start, or exits.
    pub fn start(args: &[&str], dir: &Path) -> Result<Self, String> {
        let binary = anvil_binary().ok_or_else(|| {
            "anvil not found: run `npm ci --prefix tools/anvil` (or set PAREVM_ANVIL)".to_string()
        })?;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let log = dir.join("anvil.log");
        let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("{}: cannot start: {e}", binary.display()))?;
        let mut anvil = Self {
            child,
            url: String::new(),
            log,
        };
        anvil.url = anvil.wait_for_port()?;
        Ok(anvil)
    }

    fn wait_for_port(&mut self) -> Result<String, String> {
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(address) = text
                .lines()
                .find_map(|line| line.trim().strip_prefix("Listening on "))
            {
                return Ok(format!("http://{}", address.trim()));
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("anvil exited ({status}):\n{text}"));
            }
            if started.elapsed() > STARTUP {
                return Err(format!("anvil did not listen within {STARTUP:?}:\n{text}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The JSON-RPC endpoint (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What anvil wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
