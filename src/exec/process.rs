//! Running child processes so that an interrupt can stop them: every running child is
//! registered, and the SIGINT/SIGTERM handler kills them all.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, Result, bail};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn children() -> &'static Mutex<HashSet<u32>> {
    static CHILDREN: OnceLock<Mutex<HashSet<u32>>> = OnceLock::new();
    CHILDREN.get_or_init(Default::default)
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Installs the SIGINT/SIGTERM handler: mark the build interrupted and kill running children.
/// The scheduler then stops starting actions; outputs are only ever renamed into place
/// complete, so nothing partial is left.
pub fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        INTERRUPTED.store(true, Ordering::SeqCst);
        let pids: Vec<u32> = children().lock().map(|c| c.iter().copied().collect()).unwrap_or_default();
        for pid in pids {
            // SAFETY: kill(2) has no memory-safety preconditions; a negative pid signals the
            // process group each child leads (see `process_group(0)` below).
            unsafe {
                libc::kill(-(pid as i32), libc::SIGKILL);
            }
        }
    });
}

/// Runs `argv` with exactly `env` (plus nothing from ocib's own environment), in `cwd`.
/// Its stdout and stderr are appended to `log`.
pub fn run(argv: &[String], env: &BTreeMap<String, String>, cwd: &Path, log: &mut String) -> Result<()> {
    let stdout = output(argv, env, cwd, log)?;
    log.insert_str(0, &stdout);
    Ok(())
}

/// Like [`run`], but returns stdout instead of logging it (stderr still goes to `log`).
pub fn output(argv: &[String], env: &BTreeMap<String, String>, cwd: &Path, log: &mut String) -> Result<String> {
    let Some((program, args)) = argv.split_first() else { bail!("internal: empty command") };
    if interrupted() {
        bail!("interrupted");
    }
    let mut cmd = Command::new(program);
    cmd.args(args).env_clear().envs(env).current_dir(cwd).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // Each child leads its own process group, so an interrupt can kill it and its children.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().with_context(|| format!("cannot run '{program}'"))?;
    let pid = child.id();
    if let Ok(mut c) = children().lock() {
        c.insert(pid);
    }
    // Read both pipes without deadlocking: stderr on a thread.
    let mut stderr = child.stderr.take();
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let mut out = Vec::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_end(&mut out);
    }
    let status = child.wait();
    if let Ok(mut c) = children().lock() {
        c.remove(&pid);
    }
    let err = err_thread.join().unwrap_or_default();
    log.push_str(&String::from_utf8_lossy(&err));
    let status = status.with_context(|| format!("waiting for '{program}'"))?;
    if interrupted() {
        bail!("interrupted");
    }
    if !status.success() {
        let code = status.code().map(|c| format!("exit code {c}")).unwrap_or_else(|| "killed by a signal".into());
        log.insert_str(0, &String::from_utf8_lossy(&out));
        bail!("command failed ({code}): {}", shell_join(argv));
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// How a test process ended.
pub enum TestExit {
    Code(i32),
    Signal,
    TimedOut,
}

/// Runs a test: stdout and stderr both go to `log_file`; killed (with its process group)
/// after `timeout`.
pub fn run_test(argv: &[String], env: &BTreeMap<String, String>, cwd: &Path, log_file: &Path, timeout: std::time::Duration) -> Result<TestExit> {
    let Some((program, args)) = argv.split_first() else { bail!("internal: empty command") };
    let log = std::fs::File::create(log_file).with_context(|| format!("creating {}", log_file.display()))?;
    let mut cmd = Command::new(program);
    cmd.args(args).env_clear().envs(env).current_dir(cwd).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().with_context(|| format!("cannot run '{program}'"))?;
    let pid = child.id();
    if let Ok(mut c) = children().lock() {
        c.insert(pid);
    }
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if std::time::Instant::now() >= deadline || interrupted() {
            // SAFETY: kill(2) of the process group the test leads.
            unsafe {
                libc::kill(-(pid as i32), libc::SIGKILL);
            }
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    if let Ok(mut c) = children().lock() {
        c.remove(&pid);
    }
    if interrupted() {
        bail!("interrupted");
    }
    Ok(match status {
        None => TestExit::TimedOut,
        Some(s) => match s.code() {
            Some(c) => TestExit::Code(c),
            None => TestExit::Signal,
        },
    })
}

/// A command line as a user could paste it into a shell.
pub fn shell_join(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
