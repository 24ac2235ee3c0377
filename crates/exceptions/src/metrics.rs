//! The exception process's `/metrics`, `/healthz` and `/readyz`, served on their own port
//! by the shared ops server (`service::ops`): the queue's gauges, read at each scrape, and
//! the readiness answer (`operator::gauges`).

use service::shutdown::CancellationToken;
use tokio::net::TcpListener;

pub use operator::gauges::Gauges;

/// Serves the ops endpoints on `listener` until `stop`.
pub async fn serve(
    listener: TcpListener,
    gauges: Gauges,
    stop: CancellationToken,
) -> Result<(), service::ops::OpsError> {
    let (registry, probe) = gauges.ops();
    service::ops::serve(listener, registry, probe, stop).await
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
