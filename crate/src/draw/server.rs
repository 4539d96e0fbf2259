//! The page's web server: axum's router on hyper's HTTP/1 server, on a tokio runtime of two
//! worker threads (the work is inference, done on blocking threads, not I/O).
//!
//! - `GET /`, `/page.css`, `/page.js`: the page, compiled into the binary (no CDN, nothing
//!   read from disk).
//! - `POST /api/draw`: a drawing as JSON (`{"pixels": [...]}`, 28×28 or 280×280 ink levels,
//!   see [`Drawing`]); `POST /api/photo`: a PNG or JPEG file's bytes. Both answer with a
//!   [`Reading`] as JSON.
//!
//! Safety, for a page that listens on a port: a body above [`BODY_LIMIT`] is refused while
//! it is read; a photo must start as a PNG or JPEG does and is refused from its header above
//! [`MAX_PIXELS`](crate::data::raw::MAX_PIXELS); the JSON is strictly typed (unknown fields,
//! missing values, `null`s and strings are refused, and so is a number too large for `f32`,
//! which would be infinity; JSON has no NaN), and every value must lie in [0, 1]. Every refusal is a 4xx with one line of
//! JSON, `{"error": "..."}`. Nothing is written to disk.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::reading::{read_drawing, read_photo, Drawing, Reading};
use crate::predict::Model;
use crate::{Error, Result};

/// Largest request body taken, in bytes: a 280×280 drawing as JSON is far less, and a phone
/// photo saved as JPEG fits.
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;
/// Worker threads of the runtime: enough to read requests while inference runs elsewhere.
const WORKERS: usize = 2;
/// Blocking threads answering at once; more requests wait their turn.
const INFERENCE_THREADS: usize = 4;

const PAGE: &str = include_str!("page/index.html");
const CSS: &str = include_str!("page/page.css");
const JS: &str = include_str!("page/page.js");

/// A listening socket for the page: `host:port` (port 0 picks a free one). Ports below 1024
/// are refused whoever runs it: they are for system services, not a drawing page.
pub fn bind(host: IpAddr, port: u16) -> Result<TcpListener> {
    if (1..1024).contains(&port) {
        return Err(Error::invalid(format!(
            "--port {port} is a privileged port (below 1024); pass --port 8080, or any port from 1024 to 65535 (0 picks a free one)"
        )));
    }
    let addr = SocketAddr::new(host, port);
    TcpListener::bind(addr).map_err(|e| {
        Error::invalid(format!(
            "cannot listen on {addr}: {e}; pass another --port (0 picks a free one)"
        ))
    })
}

/// A server ready to run: its socket and the models it answers with.
pub struct Server {
    listener: TcpListener,
    models: Arc<Vec<Model>>,
}

impl Server {
    pub fn new(listener: TcpListener, models: Vec<Model>) -> Self {
        Server {
            listener,
            models: Arc::new(models),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(|e| Error::invalid(format!("cannot read the server's address: {e}")))
    }
}

/// Serves the page until the process ends (or the socket fails).
pub fn serve(server: Server) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .max_blocking_threads(INFERENCE_THREADS)
        .thread_name("digits-draw")
        .enable_all()
        .build()
        .map_err(|e| Error::invalid(format!("cannot start the server's threads: {e}")))?;
    let failed = |e: std::io::Error| Error::invalid(format!("the server stopped: {e}"));
    server.listener.set_nonblocking(true).map_err(failed)?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(server.listener).map_err(failed)?;
        axum::serve(listener, router(server.models))
            .await
            .map_err(failed)
    })
}

/// The page's routes (see the module documentation).
pub fn router(models: Arc<Vec<Model>>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", PAGE) }),
        )
        .route(
            "/page.css",
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route(
            "/page.js",
            get(|| async { asset("text/javascript; charset=utf-8", JS) }),
        )
        .route("/api/draw", post(draw))
        .route("/api/photo", post(photo))
        .fallback(|| async { refuse(StatusCode::NOT_FOUND, "no such page; open / to draw") })
        .method_not_allowed_fallback(|| async {
            refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "wrong method: GET the page, POST to /api/draw or /api/photo",
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(models)
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// A refusal: `status` and one line of JSON, `{"error": message}`.
fn refuse(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message }).to_string() + "\n";
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The refusal of a body that was too large or broke off.
fn refused(e: BytesRejection) -> Response {
    match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "the request is larger than {} MB; send a smaller photo (shrink it first)",
                BODY_LIMIT >> 20
            ),
        ),
        status => refuse(status, &e.body_text()),
    }
}

/// A handler's answer: its reading, or a refusal (a 4xx and one line of JSON) when the request
/// could not be read.
type Answer = std::result::Result<Response, Response>;

async fn draw(
    State(models): State<Arc<Vec<Model>>>,
    bytes: std::result::Result<Bytes, BytesRejection>,
) -> Answer {
    let bytes = bytes.map_err(refused)?;
    let drawing: Drawing = serde_json::from_slice(&bytes).map_err(|e| {
        refuse(
            StatusCode::BAD_REQUEST,
            &format!("not a drawing ({e}); send {{\"pixels\": [784 or 78400 numbers in [0, 1]]}}"),
        )
    })?;
    Ok(answer(move || read_drawing(&drawing, &models)).await)
}

async fn photo(
    State(models): State<Arc<Vec<Model>>>,
    bytes: std::result::Result<Bytes, BytesRejection>,
) -> Answer {
    let bytes = bytes.map_err(refused)?;
    if !is_png_or_jpeg(&bytes) {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not a PNG or JPEG file (by its first bytes); send a photo saved as PNG or JPEG",
        ));
    }
    Ok(answer(move || read_photo(&bytes, &models)).await)
}

/// Whether `bytes` start as a PNG or a JPEG file does (whatever the request claims).
pub fn is_png_or_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x89PNG\r\n\x1a\n") || bytes.starts_with(&[0xff, 0xd8, 0xff])
}

/// Runs `read` on a blocking thread (inference must not hold up the threads that read
/// requests) and answers with its reading, or 422 and its one-line error.
async fn answer(read: impl FnOnce() -> Result<Reading> + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(read).await {
        Ok(Ok(reading)) => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&reading).expect("readings serialise"),
        )
            .into_response(),
        Ok(Err(e)) => refuse(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
        Err(e) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("the models failed on this image ({e}); please report it"),
        ),
    }
}
