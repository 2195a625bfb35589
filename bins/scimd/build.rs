//! Records the commit scimd is built from, for `scimd --version` and the start-up log:
//! `git rev-parse --short HEAD`, or "unknown" outside a git checkout (a crates.io tarball).

use std::path::Path;
use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=SCIMD_COMMIT={commit}");
    // Rebuild when HEAD moves: a checkout changes .git/HEAD, a commit changes the branch's ref.
    // In a worktree .git is a file naming the real git directory; ask git where HEAD lives.
    for what in ["HEAD", "packed-refs"] {
        if let Some(path) = git_path(what) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    if let Some(reference) = Command::new("git")
        .args(["symbolic-ref", "-q", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        && let Some(path) = git_path(reference.trim())
    {
        println!("cargo:rerun-if-changed={path}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// The file git keeps `what` in, when it exists (packed refs have none).
fn git_path(what: &str) -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--git-path", what])
        .output()
        .ok()
        .filter(|out| out.status.success())?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    Path::new(&path).exists().then_some(path)
}
