//! What the CLI's end-to-end tests share.

use std::process::Command;

/// Runs the `parevm` binary with `args`: exit code, stdout, stderr.
pub(crate) fn parevm(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_parevm"))
        .args(args)
        .output()
        .expect("run parevm");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
