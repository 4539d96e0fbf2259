//! One process at a time in a run folder: a lock file created atomically beside the run.
//!
//! Why: a study spread over a cluster (`digits study --shard`) has many processes writing into
//! one shared `runs/` folder, and two of them — a resubmitted task beside the one it replaces,
//! two tasks given the same shard — could otherwise train the same run at once and write over
//! each other's checkpoints.
//!
//! The lock is the file [`LOCK_FILE`] in the run folder, made with `O_CREAT | O_EXCL` (atomic on
//! local file systems and on NFS v3 and later), holding the holder's host, pid and start time.
//! While it is held a thread touches it every [`HEARTBEAT`]. Another process that finds it:
//! - waits, polling, while the holder lives: on the same host, while its pid exists; on
//!   another host, while the file was touched within [`STALE_AFTER`];
//! - otherwise says so in a line and takes it over. Taking over goes through a second
//!   exclusive file, so that of two processes finding the same stale lock only one removes it,
//!   and it removes it only if it still names the holder it found gone.
//!
//! A lock is removed by its holder when dropped, and only while it still names that holder.
//! A holder killed outright (`scancel`, the OOM killer) leaves its file behind; that is the
//! stale case above, reported and taken over, never deleted while its holder lives.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The lock's file name inside the run folder.
pub const LOCK_FILE: &str = "run.lock";
/// How often a holder touches its lock.
pub const HEARTBEAT: Duration = Duration::from_secs(30);
/// A lock of another host untouched this long has lost its holder (twenty heartbeats: a
/// shared file system's attribute cache and a busy node both delay a touch by seconds, never
/// by minutes).
pub const STALE_AFTER: Duration = Duration::from_secs(600);
/// How often a waiting process looks again.
const POLL: Duration = Duration::from_millis(500);

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    /// Seconds since the Unix epoch when the lock was taken.
    pub since: u64,
}

impl Holder {
    /// This process, now.
    fn me() -> Holder {
        Holder {
            host: host_name(),
            pid: std::process::id(),
            since: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} on {}", self.pid, self.host)
    }
}

/// A held lock; dropping it releases the folder.
pub struct RunLock {
    path: PathBuf,
    holder: Holder,
    stop: Arc<AtomicBool>,
    heartbeat: Option<JoinHandle<()>>,
}

/// What a process finds in a lock file that is not its own.
enum Found {
    /// Its holder lives (or may): wait. `None`: the file names no one yet (its holder is
    /// writing it, or died doing so less than [`STALE_AFTER`] ago).
    Alive(Option<Holder>),
    /// Its holder is gone: take it over. `None`: the file names no one (a holder killed while
    /// writing it) and has not been touched for [`STALE_AFTER`].
    Gone(Option<Holder>),
}

impl RunLock {
    /// Lock `dir` (made if missing), waiting while another live process holds it. `say`
    /// receives one line (without the folder's name) when the wait begins and one when a stale lock is taken over.
    pub fn acquire(dir: &Path, say: &mut dyn FnMut(&str)) -> Result<RunLock> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(LOCK_FILE);
        let mut waiting_on: Option<Option<Holder>> = None;
        loop {
            if let Some(lock) = Self::try_create(&path)? {
                return Ok(lock);
            }
            match inspect(&path)? {
                None => continue, // released between the two looks
                Some(Found::Alive(holder)) => {
                    if waiting_on.as_ref() != Some(&holder) {
                        let who = describe(holder.as_ref());
                        say(&format!("held by {who}: waiting for it"));
                        waiting_on = Some(holder);
                    }
                    std::thread::sleep(POLL);
                }
                Some(Found::Gone(holder)) => {
                    let who = describe(holder.as_ref());
                    if take_over(&path, holder.as_ref())? {
                        say(&format!(
                            "its lock's holder ({who}) is gone: taking it over"
                        ));
                    }
                }
            }
        }
    }

    /// The lock at `path`, if no one holds it.
    fn try_create(path: &Path) -> Result<Option<RunLock>> {
        let mut file = match OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let holder = Holder::me();
        let text = serde_json::to_string(&holder).expect("a holder serialises");
        file.write_all(text.as_bytes())
            .and_then(|_| file.sync_all())
            .map_err(|e| Error::io(path, e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let heartbeat = Some(start_heartbeat(path.to_path_buf(), stop.clone()));
        Ok(Some(RunLock {
            path: path.to_path_buf(),
            holder,
            stop,
            heartbeat,
        }))
    }

    /// Who holds this lock: this process.
    pub fn holder(&self) -> &Holder {
        &self.holder
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.heartbeat.take() {
            h.thread().unpark();
            let _ = h.join();
        }
        // Only a lock that still names this process is removed: one taken over (this process
        // was thought gone) belongs to its new holder.
        if read_holder(&self.path).as_ref() == Some(&self.holder) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Touch `path` every [`HEARTBEAT`] until `stop`.
fn start_heartbeat(path: PathBuf, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    std::thread::spawn(move || loop {
        std::thread::park_timeout(HEARTBEAT);
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if let Ok(f) = File::options().write(true).open(&path) {
            let _ = f.set_modified(SystemTime::now());
        }
    })
}

/// The holder named in the lock file at `path`, if it reads as one.
fn read_holder(path: &Path) -> Option<Holder> {
    let text = fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// What the lock file at `path` says, or `None` when it is gone.
fn inspect(path: &Path) -> Result<Option<Found>> {
    let age = match fs::metadata(path).and_then(|m| m.modified()) {
        Ok(t) => SystemTime::now().duration_since(t).unwrap_or_default(),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let found = match read_holder(path) {
        Some(h) if holder_lives(&h, age) => Found::Alive(Some(h)),
        Some(h) => Found::Gone(Some(h)),
        // Empty or torn: its writer died between creating and writing it, or is writing it
        // now; only age tells the two apart.
        None if age < STALE_AFTER => Found::Alive(None),
        None => Found::Gone(None),
    };
    Ok(Some(found))
}

/// A lock's holder in a line: `pid N on HOST`, or what a nameless lock file means.
fn describe(holder: Option<&Holder>) -> String {
    holder.map_or("a process that left no name in the lock".to_string(), |h| {
        h.to_string()
    })
}

/// Whether `h`, whose lock was last touched `age` ago, may still be running.
fn holder_lives(h: &Holder, age: Duration) -> bool {
    if h.host == host_name() {
        pid_exists(h.pid)
    } else {
        age < STALE_AFTER
    }
}

/// Remove the lock at `path` if it still names `gone`; `true` when this process removed it.
/// A second exclusive file makes the look and the removal one step among processes.
fn take_over(path: &Path, gone: Option<&Holder>) -> Result<bool> {
    let guard = path.with_extension("lock.takeover");
    match OpenOptions::new().write(true).create_new(true).open(&guard) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            // Another process is taking over; its guard outlives it only if it died in these
            // few lines, and then only the guard's age can free it.
            let old = fs::metadata(&guard)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|a| a > HEARTBEAT);
            if old {
                let _ = fs::remove_file(&guard);
            } else {
                std::thread::sleep(POLL);
            }
            return Ok(false);
        }
        Err(e) => return Err(Error::io(&guard, e)),
    }
    let removed = read_holder(path).as_ref() == gone && fs::remove_file(path).is_ok();
    fs::remove_file(&guard).map_err(|e| Error::io(&guard, e))?;
    Ok(removed)
}

/// This machine's name, as `hostname` prints it.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Whether a process `pid` exists on this machine (one of another user's counts).
fn pid_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 checks existence and permission only; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("digits-lock-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn write_lock(dir: &Path, h: &Holder) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join(LOCK_FILE), serde_json::to_string(h).unwrap()).unwrap();
    }

    /// A pid that is not running here: a child that has exited and been reaped.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn a_lock_is_released_when_dropped_and_can_be_taken_again() {
        let dir = temp_dir("release");
        let mut lines = Vec::new();
        let lock = RunLock::acquire(&dir, &mut |l| lines.push(l.to_string())).unwrap();
        assert_eq!(
            read_holder(&dir.join(LOCK_FILE)).as_ref(),
            Some(lock.holder())
        );
        drop(lock);
        assert!(!dir.join(LOCK_FILE).exists());
        drop(RunLock::acquire(&dir, &mut |l| lines.push(l.to_string())).unwrap());
        assert!(lines.is_empty(), "{lines:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_second_process_waits_while_the_holder_lives() {
        let dir = temp_dir("wait");
        // A live holder of this host: a child process that sleeps.
        let mut child = std::process::Command::new("sleep")
            .arg("2")
            .spawn()
            .unwrap();
        let holder = Holder {
            host: host_name(),
            pid: child.id(),
            since: 0,
        };
        // Reaped as soon as it exits: a zombie's pid still exists.
        let reaper = std::thread::spawn(move || child.wait());
        write_lock(&dir, &holder);
        let mut lines = Vec::new();
        let started = std::time::Instant::now();
        // The child exits after 2 s; its lock is then stale and taken over.
        let lock = RunLock::acquire(&dir, &mut |l| lines.push(l.to_string())).unwrap();
        reaper.join().unwrap().unwrap();
        assert!(started.elapsed() >= Duration::from_millis(1500));
        assert!(lines[0].contains("waiting"), "{lines:?}");
        assert!(lines.last().unwrap().contains("is gone"), "{lines:?}");
        assert_eq!(lock.holder().pid, std::process::id());
        drop(lock);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lock_whose_holder_is_gone_is_reported_and_taken_over() {
        let dir = temp_dir("stale");
        let gone = Holder {
            host: host_name(),
            pid: dead_pid(),
            since: 1,
        };
        write_lock(&dir, &gone);
        let mut lines = Vec::new();
        let lock = RunLock::acquire(&dir, &mut |l| lines.push(l.to_string())).unwrap();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains(&gone.to_string()), "{lines:?}");
        assert_eq!(lock.holder().pid, std::process::id());
        drop(lock);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn another_hosts_lock_lives_until_it_goes_untouched() {
        let h = Holder {
            host: format!("{}-elsewhere", host_name()),
            pid: 1,
            since: 0,
        };
        assert!(holder_lives(&h, Duration::from_secs(5)));
        assert!(!holder_lives(&h, STALE_AFTER + Duration::from_secs(1)));
    }

    #[test]
    fn a_taken_over_lock_is_not_removed_by_its_old_holder() {
        let dir = temp_dir("takenover");
        let lock = RunLock::acquire(&dir, &mut |_| {}).unwrap();
        let other = Holder {
            host: host_name(),
            pid: std::process::id(),
            since: lock.holder().since + 1,
        };
        write_lock(&dir, &other);
        drop(lock);
        assert_eq!(read_holder(&dir.join(LOCK_FILE)), Some(other));
        fs::remove_dir_all(&dir).unwrap();
    }
}
