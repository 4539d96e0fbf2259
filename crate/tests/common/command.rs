//! The `digits` command as the command's tests run it: the built binary, and a fresh folder
//! per test.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Run the built `digits` with `args` and collect its output.
#[allow(dead_code)] // not every test file runs the command
pub fn digits(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_digits"))
        .args(args)
        .output()
        .expect("run digits")
}

/// An empty folder for test `name` of the test file `file`, under the system's temporary
/// folder and this process's id.
pub fn fresh_dir(file: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("digits-{file}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
