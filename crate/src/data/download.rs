//! Downloading one URL into a file, in process: an HTTP(S) client (`ureq` with rustls) instead
//! of `curl` or `wget`, so `digits data fetch` needs no program installed beside it.
//!
//! Built only with the `download` feature (which the `digits` command enables). Without it, a
//! library that cannot download says where the data can come from instead.

use std::path::Path;

/// Why no URL can be downloaded in a build without the `download` feature.
pub const NO_DOWNLOAD: &str = "this build of the library cannot download (its `download` feature is off); run `digits data fetch`, or set DIGITS_DATA_MIRROR to a folder of verified copies";

/// The largest body accepted: above the largest data file (MNIST's training images, 9.9 MB)
/// by far, and a bound on what a misbehaving server can write to disk.
#[cfg(feature = "download")]
const MAX_BYTES: u64 = 1 << 30;

/// Downloads `url` into the file `to` (created or truncated). Fails, in one line, on an HTTP
/// status other than success (naming it), on a body shorter than its `Content-Length`, and on
/// any network or disk error; the caller removes `to` then.
#[cfg(feature = "download")]
pub fn download(url: &str, to: &Path) -> Result<(), String> {
    use std::time::Duration;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        // Statuses are reported here, with the URL, rather than as ureq's error.
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        // A stalled transfer fails instead of hanging the fetch.
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP status {status}"));
    }
    let body = response.body_mut();
    let expected = body.content_length();
    let mut reader = body.with_config().limit(MAX_BYTES).reader();
    let mut file = std::fs::File::create(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let (got, failed) = copy_counting(&mut reader, &mut file, to)?;
    match (expected, failed) {
        // A close before the promised length is a truncation, whether the client noticed it
        // (an error) or not (an early end).
        (Some(n), _) if n != got => Err(format!("truncated: {got} of {n} bytes received")),
        (_, Some(e)) => Err(format!("reading the response: {e}")),
        _ => Ok(()),
    }
}

/// Copies `reader` into `file` until its end or a read error, returning the bytes written and
/// that error; an error writing `to` fails at once.
#[cfg(feature = "download")]
fn copy_counting(
    reader: &mut impl std::io::Read,
    file: &mut std::fs::File,
    to: &Path,
) -> Result<(u64, Option<std::io::Error>), String> {
    use std::io::Write;
    let (mut buf, mut got) = (vec![0u8; 1 << 16], 0u64);
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok((got, None)),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Ok((got, Some(e))),
        };
        file.write_all(&buf[..n])
            .map_err(|e| format!("{}: {e}", to.display()))?;
        got += n as u64;
    }
}

#[cfg(not(feature = "download"))]
pub fn download(_url: &str, _to: &Path) -> Result<(), String> {
    Err(NO_DOWNLOAD.to_string())
}

/// A local HTTP server for tests: serves fixed responses on 127.0.0.1 from a thread that
/// stops when the server is dropped, or after a minute whatever happens.
#[cfg(all(test, feature = "download"))]
pub(crate) mod test_server {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    /// A response: status line's code and reason, the `Content-Length` to claim and the
    /// body actually sent (shorter than claimed, for a truncated transfer).
    pub struct Reply {
        pub path: &'static str,
        pub status: &'static str,
        pub claimed_len: usize,
        pub body: &'static [u8],
    }

    pub struct Server {
        pub base: String,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl Server {
        /// Serve `replies` by path; any other path gets 404.
        pub fn start(replies: Vec<Reply>) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            let thread = std::thread::spawn(move || serve(listener, &replies, &flag));
            Server {
                base,
                stop,
                thread: Some(thread),
            }
        }

        pub fn url(&self, path: &str) -> String {
            format!("{}{path}", self.base)
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn serve(listener: TcpListener, replies: &[Reply], stop: &AtomicBool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, _)) => answer(stream, replies),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    /// Reads one request's head and writes the reply for its path, then closes.
    fn answer(mut stream: TcpStream, replies: &[Reply]) {
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        let path = head.split_whitespace().nth(1).unwrap_or("");
        let not_found = Reply {
            path: "",
            status: "404 Not Found",
            claimed_len: 9,
            body: b"not found",
        };
        let r = replies
            .iter()
            .find(|r| r.path == path)
            .unwrap_or(&not_found);
        let header = format!(
            "HTTP/1.1 {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            r.status, r.claimed_len
        );
        let _ = stream.write_all(header.as_bytes());
        let _ = stream.write_all(r.body);
        let _ = stream.flush();
    }
}
