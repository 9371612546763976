//! Serving the component over HTTP/1.1, as `spin up` does: what
//! `ldap-sync-serve` runs, in the library so that the tests can run it too.
//!
//! Requests are served **in parallel**, as Spin serves them: every
//! connection is its own tokio task, and every request runs in a fresh
//! instance of its own (see [`Host`]), on whichever worker thread of the
//! (multi-threaded) runtime is free. Nothing holds a lock across a request:
//! the compiled component is shared read-only, and the key-value store
//! serialises only its individual operations (each one its own SQLite
//! transaction, as in Spin's SQLite store).
//!
//! Each request goes through [`Host::send_from`] with the peer's address, so
//! the component sees it in `spin-client-addr`. Request bodies are read whole
//! before the component runs.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::Host;

/// Accepts connections on `listener` and serves each on its own task until
/// accepting fails. Run it on a multi-threaded runtime for requests to run
/// on several threads at once.
pub async fn serve(listener: TcpListener, host: Arc<Host>) -> anyhow::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let host = Arc::clone(&host);
        tokio::task::spawn(async move {
            let service = service_fn(move |req| {
                let host = Arc::clone(&host);
                async move { handle(&host, peer, req).await }
            });
            if let Err(e) = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service).await {
                eprintln!("ldap-sync-serve: error serving {peer}: {e}");
            }
        });
    }
}

async fn handle(host: &Host, peer: SocketAddr, req: hyper::Request<Incoming>) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let result = match body.collect().await {
        Ok(body) => {
            let req = http::Request::from_parts(parts, body.to_bytes().to_vec());
            host.send_from(peer, req).await
        }
        Err(e) => Err(anyhow::Error::from(e).context("reading the request body")),
    };
    let (status, headers, body) = match result {
        Ok(res) => (res.status, res.headers, res.body),
        Err(e) => {
            eprintln!("ldap-sync-serve: error processing request: {e:#}");
            (500, http::HeaderMap::new(), Vec::new())
        }
    };
    let mut res = hyper::Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    *res.headers_mut() = headers;
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What lets requests run in parallel: a shared `Host` is `Send + Sync`,
    /// and the future of one request can move to any worker thread
    /// (`tokio::spawn` requires `Send + 'static`).
    #[test]
    fn a_request_can_run_on_any_thread() {
        fn send_sync<T: Send + Sync>() {}
        fn spawnable<F: std::future::Future + Send + 'static>(_: F) {}
        send_sync::<Host>();
        let run = |host: Arc<Host>| async move { host.send(http::Request::get("/").body(Vec::new())?).await };
        let _ = |host: Arc<Host>| spawnable(run(host));
        let _ = |listener: TcpListener, host: Arc<Host>| spawnable(serve(listener, host));
    }
}
