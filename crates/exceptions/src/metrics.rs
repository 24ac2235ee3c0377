//! The exception process's `/metrics`, `/healthz` and `/readyz`: the queue's gauges and the
//! readiness answer (`operator::gauges`), served on their own port.
//!
//! [`serve`] answers `GET /metrics` (and `GET /healthz`) on its own port with a deliberately
//! tiny HTTP/1.1 responder: one request per connection, bounded in size and time, so this
//! process needs no web framework (only the ingress knows axum).

use std::time::Duration;

use service::shutdown::CancellationToken;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The largest request head read, in bytes.
pub const REQUEST_HEAD_MAX_BYTES: usize = 8 * 1024;
/// The longest a scrape connection may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

pub use operator::gauges::Gauges;

/// Serves `/metrics` on `listener` until `stop`.
pub async fn serve(listener: TcpListener, gauges: Gauges, stop: CancellationToken) {
    loop {
        let conn = tokio::select! {
            _ = stop.cancelled() => return,
            c = listener.accept() => c,
        };
        let Ok((stream, _)) = conn else { continue };
        let gauges = gauges.clone();
        tokio::spawn(async move {
            if tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, &gauges))
                .await
                .is_err()
            {
                tracing::debug!("metrics request timed out");
            }
        });
    }
}

async fn answer(mut stream: tokio::net::TcpStream, gauges: &Gauges) {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < REQUEST_HEAD_MAX_BYTES {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let (status, body) = if line.starts_with("GET /metrics ") {
        match gauges.render(crate::now().0).await {
            Ok(text) => ("200 OK", text),
            Err(e) => ("503 Service Unavailable", format!("{e}\n")),
        }
    } else if line.starts_with("GET /healthz ") {
        ("200 OK", "ok\n".to_owned())
    } else if line.starts_with("GET /readyz ") {
        gauges.readiness().await
    } else {
        ("404 Not Found", "not found\n".to_owned())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use domain::ExceptionCode;

    /// The runbook (`docs/operations.md`) has one `### \`code\`` section per reason code
    /// the queue can hold, in the same order as [`ExceptionCode::ALL`], whose zero series
    /// the metrics render.
    #[test]
    fn the_runbook_lists_every_exception_code() {
        let doc = include_str!("../../../docs/operations.md");
        let documented: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("### `"))
            .filter_map(|l| l.split_once('`').map(|(code, _)| code))
            .collect();
        let known: Vec<&str> = ExceptionCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(documented, known);
    }
}
