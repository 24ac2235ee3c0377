//! The daily reconciliation as a job (`docs/operations.md`, "Reconciliation"): read a
//! day's facts from the store, match them with the providers' report lines
//! (`reconcile::engine`), store the run with its items and exceptions. Shared by
//! `stockctl reconcile` and the ledger's scheduled run ([`schedule`]), which reconciles the
//! previous day at `STOCKLEDGER_RECONCILE_AT` with the reports of
//! `STOCKLEDGER_RECONCILE_REPORTS_DIR`; one ledger process runs a date (its claim in
//! `reconciliation_runs`), however many run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reconcile::engine::{self, RunInput, RunResult, Settings, Tolerance};
use reconcile::reports::{ReportLine, ReportProvider};
use rust_decimal::Decimal;
use serde_json::json;
use service::shutdown::CancellationToken;
use store::{SavedRun, Store, StoreError};
use time::Date;

/// How often the scheduler looks at the clock.
pub const SCHEDULE_TICK: Duration = Duration::from_secs(20);

/// The engine's settings from the `reconcile` configuration section.
pub fn settings(c: &config::ReconcileConfig) -> Settings {
    let lag_business_days = c
        .settlement_lag
        .iter()
        .filter_map(|(p, d)| engine::parse_provider(p).map(|p| (p, *d)))
        .collect();
    let tolerance = c
        .tolerance
        .iter()
        .filter_map(|t| {
            Some((
                engine::parse_provider(&t.provider)?,
                Tolerance {
                    amount: t.amount.parse::<Decimal>().ok()?,
                    window_ms: i64::try_from(t.window.as_millis()).unwrap_or(i64::MAX / 4),
                },
            ))
        })
        .collect();
    Settings {
        cutoff_ms: c.cutoff_ms,
        lag_business_days,
        tolerance,
    }
}

/// A report file read for a run.
#[derive(Debug, Clone)]
pub struct Report {
    pub provider: ReportProvider,
    pub file: String,
    pub lines: Vec<ReportLine>,
}

/// One finished run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub run_id: String,
    pub result: RunResult,
    pub saved: SavedRun,
    /// How long reading, matching and storing took.
    pub took: Duration,
    /// Of which reading the facts and the deferred items.
    pub read: Duration,
    /// Of which matching (the engine).
    pub matching: Duration,
}

/// Reconciles `date` with `reports`, stores the run (under `claimed`, a scheduled run's
/// claimed id, or a new id) and returns it.
pub async fn reconcile_day(
    store: &Store,
    date: Date,
    reports: &[Report],
    settings: &Settings,
    now_ms: i64,
    claimed: Option<&str>,
) -> Result<Outcome, StoreError> {
    let started = std::time::Instant::now();
    let (start, end) = settings.window(date);
    let facts = store
        .recon_facts(start, end, settings.window_margin_ms())
        .await?;
    let date_text = engine::date_str(date);
    let carried = store.recon_carried(&date_text).await?;
    let read = started.elapsed();
    let lines: Vec<ReportLine> = reports.iter().flat_map(|r| r.lines.clone()).collect();
    let result = engine::run(RunInput {
        date,
        facts: &facts,
        lines: &lines,
        carried: &carried,
        now_ms,
        settings,
    });
    let matching = started.elapsed() - read;
    let run_id = claimed
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let files = json!(
        reports
            .iter()
            .map(|r| json!({
                "provider": engine::provider_name(r.provider),
                "file": r.file,
                "lines": r.lines.len(),
            }))
            .collect::<Vec<_>>()
    );
    let saved = store
        .recon_save(&run_id, claimed.is_some(), &result, &files, now_ms, now_ms)
        .await?;
    Ok(Outcome {
        run_id,
        result,
        saved,
        took: started.elapsed(),
        read,
        matching,
    })
}

/// Why a report file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ReportFileError {
    #[error("{file}: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {source}")]
    Parse {
        file: String,
        #[source]
        source: reconcile::reports::ReportError,
    },
}

/// Reads and parses one report file.
pub fn read_report(provider: ReportProvider, path: &Path) -> Result<Report, ReportFileError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ReportFileError::Read {
        file: file.clone(),
        source,
    })?;
    let lines =
        reconcile::reports::parse(provider, &bytes).map_err(|source| ReportFileError::Parse {
            file: file.clone(),
            source,
        })?;
    Ok(Report {
        provider,
        file,
        lines,
    })
}

/// The reports of `date` in `dir`: `<provider>-<YYYY-MM-DD>.csv` for each provider whose
/// file exists.
pub fn reports_in(dir: &Path, date: Date) -> Result<Vec<Report>, ReportFileError> {
    let mut out = Vec::new();
    for name in config::RECONCILE_PROVIDERS {
        let Some(provider) = engine::parse_provider(name) else {
            continue;
        };
        let path: PathBuf = dir.join(format!("{name}-{}.csv", engine::date_str(date)));
        if path.is_file() {
            out.push(read_report(provider, &path)?);
        }
    }
    Ok(out)
}

/// The scheduled run's settings.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Minutes after midnight UTC.
    pub at_minute: u32,
    pub reports_dir: Option<PathBuf>,
    pub settings: Settings,
}

impl Schedule {
    /// The schedule the configuration asks for, if any.
    pub fn from_config(c: &config::ReconcileConfig) -> Option<Schedule> {
        Some(Schedule {
            at_minute: c.at_minute?,
            reports_dir: c.reports_dir.clone(),
            settings: settings(c),
        })
    }
}

/// The date a scheduled run at `now_ms` reconciles, once the day's time has come: the
/// previous day.
pub fn due_date(at_minute: u32, now_ms: i64) -> Option<Date> {
    let today = engine::parse_date(&engine::date_from_ms(now_ms))?;
    let since_midnight = now_ms - engine::midnight_ms(today);
    if since_midnight < i64::from(at_minute) * 60_000 {
        return None;
    }
    today.previous_day()
}

/// Runs the previous day's reconciliation once a day at the scheduled time, until
/// `stop`. A date another ledger process claimed is left to it; a failed run is logged
/// (and retried by an operator with `stockctl reconcile`).
pub async fn schedule(store: Store, schedule: Schedule, stop: CancellationToken) {
    let mut done: BTreeMap<Date, ()> = BTreeMap::new();
    loop {
        let now_ms = service::clock::now().0;
        if let Some(date) = due_date(schedule.at_minute, now_ms)
            && !done.contains_key(&date)
        {
            done.insert(date, ());
            run_scheduled(&store, &schedule, date, now_ms).await;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(SCHEDULE_TICK) => {}
        }
    }
}

async fn run_scheduled(store: &Store, schedule: &Schedule, date: Date, now_ms: i64) {
    let run_id = uuid::Uuid::new_v4().to_string();
    let day = engine::date_str(date);
    match store.recon_claim_scheduled(&run_id, &day, now_ms).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(date = %day, "scheduled reconciliation already claimed");
            return;
        }
        Err(e) => {
            tracing::warn!(date = %day, error = %e, "could not claim the scheduled reconciliation");
            return;
        }
    }
    let reports = match &schedule.reports_dir {
        Some(dir) => match reports_in(dir, date) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(date = %day, error = %e, "a report could not be read; reconciling without reports is refused, run `stockctl reconcile` once it is fixed");
                return;
            }
        },
        None => Vec::new(),
    };
    match reconcile_day(
        store,
        date,
        &reports,
        &schedule.settings,
        now_ms,
        Some(&run_id),
    )
    .await
    {
        Ok(o) => {
            let s = &o.result.summary;
            tracing::info!(
                date = %day,
                run_id = %o.run_id,
                passed = s.passed,
                matched = s.total.matched,
                unmatched = s.total.unmatched,
                deferred = s.total.deferred,
                exceptions_opened = o.saved.exceptions_opened,
                took_ms = o.took.as_millis() as u64,
                "scheduled reconciliation finished"
            );
        }
        Err(e) => tracing::error!(date = %day, error = %e, "scheduled reconciliation failed"),
    }
}
