//! Running child processes so that an interrupt can stop them: every running child is
//! registered, and the SIGINT/SIGTERM handler kills them all.
//!
//! SIGKILL runs no handler, so two more things make children die with ocib:
//! - each child gets `PR_SET_PDEATHSIG(SIGKILL)`. The kernel sends it when the *thread* that
//!   forked the child exits, not the process; here the thread that spawns a child always
//!   waits for it before returning (`output`, `run_test`), so that thread outlives the
//!   child unless the whole process dies. After the prctl the child checks that its parent
//!   is still ocib, in case ocib died before the prctl took effect.
//! - PDEATHSIG is not inherited by grandchildren (`go` runs `compile`, `bash -c` runs
//!   `sleep`), so a guard process forked on first use holds the read end of a pipe and the
//!   list of running children's process groups; when ocib dies the pipe reaches end of file
//!   and the guard kills those groups.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::os::unix::process::CommandExt;
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
            // process group each child leads (see `supervise`).
            unsafe {
                libc::kill(-(pid as i32), libc::SIGKILL);
            }
        }
    });
}

/// The write end of the guard's pipe (close-on-exec, so children do not hold it open), if the
/// guard could be started.
fn guard() -> Option<i32> {
    static GUARD: OnceLock<Option<i32>> = OnceLock::new();
    *GUARD.get_or_init(start_guard)
}

fn start_guard() -> Option<i32> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two fds into the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return None;
    }
    let [read_end, write_end] = fds;
    // SAFETY: the child only makes async-signal-safe system calls (see `guard_main`), as
    // required after fork in a multi-threaded process.
    match unsafe { libc::fork() } {
        0 => unsafe { guard_main(read_end) },
        -1 => {
            // SAFETY: closing fds we own.
            unsafe {
                libc::close(read_end);
                libc::close(write_end);
            }
            None
        }
        _ => {
            // SAFETY: the read end belongs to the guard now.
            unsafe { libc::close(read_end) };
            Some(write_end)
        }
    }
}

/// Tells the guard a child's process group started (`pgid > 0`) or ended (`-pgid`). One
/// 4-byte write is atomic on a pipe. A failed write (no guard) only loses the guard's help.
fn tell_guard(value: i32) {
    if let Some(fd) = guard() {
        let bytes = value.to_ne_bytes();
        // SAFETY: writing 4 bytes from a live buffer to a pipe we own.
        let _ = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    }
}

/// The guard: waits for end of file on `read_end` (every write end closed: ocib exited or
/// was killed), then kills the process groups still registered. Only async-signal-safe calls,
/// no allocation.
unsafe fn guard_main(read_end: i32) -> ! {
    // SAFETY (whole body): plain system calls on fds and buffers owned by this process.
    unsafe {
        // Ctrl-C and friends are for ocib, which stops its children itself.
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGPIPE] {
            libc::signal(sig, libc::SIG_IGN);
        }
        // Hold no other file: not the workspace lock, not ocib's stdout, and not a pipe end of
        // a child another thread was spawning at the fork (its reader would never see EOF).
        let first_err = read_end > 0 && libc::syscall(libc::SYS_close_range, 0u32, (read_end - 1) as u32, 0) != 0;
        let rest_err = libc::syscall(libc::SYS_close_range, (read_end + 1) as u32, u32::MAX, 0) != 0;
        if first_err || rest_err {
            for fd in 0..4096 {
                if fd != read_end {
                    libc::close(fd);
                }
            }
        }
        let mut groups = [0i32; 1024];
        let mut count = 0usize;
        let mut buf = [0u8; 4096];
        let mut filled = 0usize;
        loop {
            let n = libc::read(read_end, buf.as_mut_ptr().add(filled).cast(), buf.len() - filled);
            if n == 0 {
                break;
            }
            if n < 0 {
                if *libc::__errno_location() == libc::EINTR {
                    continue;
                }
                break;
            }
            filled += n as usize;
            let whole = filled / 4 * 4;
            for rec in buf[..whole].chunks_exact(4) {
                let v = i32::from_ne_bytes([rec[0], rec[1], rec[2], rec[3]]);
                if v > 0 && count < groups.len() {
                    groups[count] = v;
                    count += 1;
                } else if v < 0
                    && let Some(i) = groups[..count].iter().position(|&g| g == -v)
                {
                    count -= 1;
                    groups[i] = groups[count];
                }
            }
            buf.copy_within(whole..filled, 0);
            filled -= whole;
        }
        for &g in &groups[..count] {
            libc::kill(-g, libc::SIGKILL);
        }
        libc::_exit(0)
    }
}

/// Sets up `cmd` so its process can be stopped: it leads its own process group (killed as a
/// whole on interrupt), and dies with ocib even when ocib is SIGKILLed (see the module docs).
fn supervise(cmd: &mut Command) {
    cmd.process_group(0);
    let parent = std::process::id() as libc::pid_t;
    // Start the guard before forking the child, so the child cannot inherit the guard's
    // pipe half-made.
    let _ = guard();
    // SAFETY: the hook runs between fork and exec and only makes async-signal-safe calls.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // ocib died before the prctl: nothing would deliver the signal.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// Tells the observer of the action this thread runs (if any) that it spawns `argv`.
fn report_spawn(argv: &[String], env: &BTreeMap<String, String>, cwd: &Path) {
    super::events::on_spawn(super::events::SpawnedCommand { argv: argv.to_vec(), env: env.clone(), cwd: cwd.to_path_buf() });
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
    report_spawn(argv, env, cwd);
    let mut cmd = Command::new(program);
    cmd.args(args).env_clear().envs(env).current_dir(cwd).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    supervise(&mut cmd);
    let mut child = cmd.spawn().with_context(|| format!("cannot run '{program}'"))?;
    let pid = child.id();
    tell_guard(pid as i32);
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
    tell_guard(-(pid as i32));
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
pub fn run_test(
    argv: &[String],
    env: &BTreeMap<String, String>,
    cwd: &Path,
    log_file: &Path,
    timeout: std::time::Duration,
) -> Result<TestExit> {
    let Some((program, args)) = argv.split_first() else { bail!("internal: empty command") };
    let log = std::fs::File::create(log_file).with_context(|| format!("creating {}", log_file.display()))?;
    report_spawn(argv, env, cwd);
    let mut cmd = Command::new(program);
    cmd.args(args).env_clear().envs(env).current_dir(cwd).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    supervise(&mut cmd);
    let mut child = cmd.spawn().with_context(|| format!("cannot run '{program}'"))?;
    let pid = child.id();
    tell_guard(pid as i32);
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
    tell_guard(-(pid as i32));
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
