//! Creating and updating the streams and durable consumers stockledger owns, in one place,
//! so that every one of them gets the same replica count (`STOCKLEDGER_STREAM_REPLICAS`,
//! [`crate::BusConfig::replicas`]) and a refusal is reported the same way.
//!
//! **What an update can change.** JetStream changes a stream's limits, its duplicate window
//! and its replica count in place (on a cluster, R1 → R3 adds two copies and catches them
//! up while the stream keeps serving; R3 → R1 drops two). It refuses to change a stream's
//! storage type or retention policy; a single server accepts a replica count above 1 into
//! the configuration but keeps one copy, which is reported as a refusal too.
//! Such a refusal is reported as [`BusError::Refused`] naming the stream, the replica count
//! asked for and the server's reason, and a role retrying its provisioning logs it once
//! (`retry::until_provisioned`): the operator changes the setting back, or moves the stream
//! by hand (`nats stream backup`/`restore`, docs/deploy.md). A durable consumer's replicas
//! are updated the same way.

use async_nats::jetstream::context::CreateStreamErrorKind;
use async_nats::jetstream::stream::ConsumerErrorKind;
use async_nats::jetstream::{consumer, stream};

use crate::{Bus, BusError, InContext, PullConsumer};

/// Whether an existing stream is brought to this release's settings or left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Update it (limits, replicas) to the settings given.
    Update,
    /// Keep it as it is (a process that does not own the stream's limits).
    Keep,
}

/// A refusal when the server answered no (`refused`), else unavailable: no answer may
/// pass when tried again.
fn classify(
    refused: bool,
    context: String,
    e: impl std::error::Error + Send + Sync + 'static,
) -> BusError {
    let described = InContext::new(context, e);
    if refused {
        BusError::refused(described)
    } else {
        BusError::unavailable(described)
    }
}

/// A single server accepts any replica count into the configuration and keeps one copy
/// (its answer names no cluster): that is a refusal too, since the redundancy asked for does
/// not exist.
fn clustered_as_asked(
    context: &str,
    asked: usize,
    cluster: Option<&async_nats::jetstream::stream::ClusterInfo>,
) -> Result<(), BusError> {
    if asked <= 1 || cluster.is_some_and(|c| c.name.is_some()) {
        return Ok(());
    }
    Err(BusError::refused(format!(
        "{context}: this NATS server is not part of a JetStream cluster, so it keeps one copy, \
         not {asked} (set STOCKLEDGER_STREAM_REPLICAS=1, or run a cluster of at least {asked} \
         nodes)"
    )))
}

impl Bus {
    /// Creates the stream `config` names, or updates it ([`Existing`]), with this bus's
    /// replica count.
    pub(crate) async fn put_stream(
        &self,
        mut config: stream::Config,
        existing: Existing,
    ) -> Result<(), BusError> {
        config.num_replicas = self.config.replicas;
        let context = format!(
            "stream {} (replicas {}, STOCKLEDGER_STREAM_REPLICAS)",
            config.name, config.num_replicas
        );
        match existing {
            Existing::Update => {
                let asked = config.num_replicas;
                let info = self.js.create_or_update_stream(config).await.map_err(|e| {
                    let refused = matches!(e.kind(), CreateStreamErrorKind::JetStream(_));
                    classify(refused, context.clone(), e)
                })?;
                clustered_as_asked(&context, asked, info.cluster.as_ref())
            }
            Existing::Keep => self
                .js
                .get_or_create_stream(config)
                .await
                .map(drop)
                .map_err(|e| {
                    let refused = matches!(e.kind(), CreateStreamErrorKind::JetStream(_));
                    classify(refused, context, e)
                }),
        }
    }

    /// Creates or updates the durable pull consumer `config` on `stream_name`, with this
    /// bus's replica count.
    pub(crate) async fn put_consumer(
        &self,
        stream_name: String,
        mut config: consumer::pull::Config,
    ) -> Result<PullConsumer, BusError> {
        config.num_replicas = self.config.replicas;
        let stream = self
            .js
            .get_stream(&stream_name)
            .await
            .map_err(|e| classify(false, format!("stream {stream_name}"), e))?;
        let context = format!(
            "consumer {} on {stream_name} (replicas {}, STOCKLEDGER_STREAM_REPLICAS)",
            config.durable_name.as_deref().unwrap_or("?"),
            config.num_replicas
        );
        let asked = config.num_replicas;
        let consumer = stream.create_consumer(config).await.map_err(|e| {
            let refused = matches!(e.kind(), ConsumerErrorKind::JetStream(_));
            classify(refused, context.clone(), e)
        })?;
        clustered_as_asked(&context, asked, consumer.cached_info().cluster.as_ref())?;
        Ok(consumer)
    }
}
