//! `stockctl policy show`: the stock policy in force and the history of its changes, from
//! the ledger database (`docs/trigger-matrix.md`, "Stock policy").
//!
//! `stockctl policy set POLICY --actor A --reason R`: publishes a `policy.changed` through
//! JetStream; the ledger applies it in stream order, so every event applied after it is
//! decided under the new policy, and a rebuild does the same (`docs/operations.md`,
//! "Changing the stock policy").

use clap::{Args, Subcommand};
use domain::PolicySet;
use operator::actions::ActionRequest;
use serde_json::json;

use crate::exceptions::{actor, connect, finish};
use crate::exit::{self, Exit};
use crate::reads::time;
use crate::{ctx, out, outln};

/// The policy subcommands.
#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Show the stock policy in force (per provider) and every change of it: when, by whom,
    /// why. Read-only: safe at any time, also while the services run.
    Show,
    /// Change the stock policy: `reserve_on_authorization`, `deduct_on_capture` or
    /// `deduct_on_settlement`, for every provider or per provider
    /// (`stripe=deduct_on_capture,adyen=reserve_on_authorization`). Published as a
    /// `policy.changed` event and applied by the ledger from the next event on; orders in
    /// flight keep what they reserved (docs/operations.md, "Changing the stock policy").
    /// Safe while the services run; pass the same --idempotency-key to re-run it safely.
    Set(SetArgs),
}

/// Arguments of `stockctl policy set`.
#[derive(Args)]
pub struct SetArgs {
    /// The whole policy from now on (e.g. deduct_on_capture, or
    /// reserve_on_authorization,stripe=deduct_on_capture).
    pub policy: String,
    /// Who changes it; recorded with the change.
    #[arg(long, env = "STOCKLEDGER_OPERATOR")]
    pub actor: Option<String>,
    /// Why; recorded with the change.
    #[arg(long)]
    pub reason: String,
    /// The same key makes a re-run of this change one event.
    #[arg(long)]
    pub idempotency_key: Option<String>,
}

/// Runs one policy subcommand.
pub async fn run(cmd: PolicyCommand, json: bool) -> anyhow::Result<Exit> {
    match cmd {
        PolicyCommand::Show => show(json).await,
        PolicyCommand::Set(a) => set(a, json).await,
    }
}

async fn show(json: bool) -> anyhow::Result<Exit> {
    let cfg = ctx::config()?;
    let store = ctx::store_for_reading(&cfg).await?;
    let policy = store.policy_in_force().await?;
    let changes = store.policy_changes().await?;
    if json {
        let providers: serde_json::Map<String, serde_json::Value> = policy
            .providers
            .iter()
            .map(|(p, s)| (p.to_string(), json!(s.code())))
            .collect();
        let history: Vec<serde_json::Value> = changes
            .iter()
            .map(|c| {
                json!({
                    "seq": c.seq,
                    "event_id": c.event_id,
                    "policy": c.policy,
                    "previous": c.previous,
                    "actor": c.actor,
                    "reason": c.reason,
                    "at": time(c.recorded_at),
                })
            })
            .collect();
        out::json(&json!({
            "policy": policy.to_string(),
            "default": policy.default.code(),
            "providers": providers,
            "changes": history,
        }))?;
        return Ok(Exit::Success);
    }
    outln!("policy in force   {policy}")?;
    outln!("default           {}", policy.default)?;
    for (provider, p) in &policy.providers {
        outln!("{:<17} {p}", provider.as_str())?;
    }
    if changes.is_empty() {
        outln!("never changed: the default, reserve_on_authorization, since the start")?;
        return Ok(Exit::Success);
    }
    outln!()?;
    outln!(
        "{:>4} {:<24} {:<44} {:<24} REASON",
        "SEQ",
        "AT",
        "POLICY",
        "ACTOR"
    )?;
    for c in &changes {
        outln!(
            "{:>4} {:<24} {:<44} {:<24} {}",
            c.seq,
            time(c.recorded_at),
            c.policy,
            c.actor,
            c.reason
        )?;
    }
    Ok(Exit::Success)
}

async fn set(a: SetArgs, json: bool) -> anyhow::Result<Exit> {
    let policy: PolicySet = a
        .policy
        .parse()
        .map_err(|e: domain::InvalidPolicy| exit::usage(format!("POLICY: {e}")))?;
    let req = ActionRequest {
        actor: actor(a.actor)?,
        reason: a.reason,
        evidence: None,
        idempotency_key: a.idempotency_key,
    };
    let actions = connect().await?;
    let report = actions.set_policy(&policy, &req).await;
    finish(report, json, |r| {
        format!("{}: {} ({})", r.policy, r.result, r.event_id)
    })
}
