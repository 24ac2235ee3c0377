//! The tables the bench prints: one per backend (every path with its rate, p50 and p99,
//! the raw ceilings of the same run, peak memory), then one comparing the backends.

use std::time::Duration;

use crate::load::Run;

/// One line of a table.
pub struct Row {
    pub path: String,
    /// Requests, events or rows measured.
    pub n: usize,
    pub rate: f64,
    pub unit: &'static str,
    pub p50: Option<Duration>,
    pub p99: Option<Duration>,
}

impl Row {
    /// A closed-loop run, with its latencies.
    pub fn run(path: impl Into<String>, run: &Run, unit: &'static str) -> Row {
        Row {
            path: path.into(),
            n: run.n,
            rate: run.rate(),
            unit,
            p50: Some(run.quantile(0.50)),
            p99: Some(run.quantile(0.99)),
        }
    }

    /// A throughput without per-request latencies.
    pub fn rate(path: impl Into<String>, n: usize, rate: f64, unit: &'static str) -> Row {
        Row {
            path: path.into(),
            n,
            rate,
            unit,
            p50: None,
            p99: None,
        }
    }
}

/// Everything one backend's run produced.
pub struct Report {
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// What was run: counts, clients, ledgers.
    pub setup: String,
    pub rows: Vec<Row>,
    pub ceilings: Vec<Row>,
    /// `(process, peak RSS in MiB)`.
    pub memory: Vec<(String, f64)>,
}

impl Report {
    /// Every row with its label: the paths, then the ceilings.
    fn labelled(&self) -> impl Iterator<Item = (String, &Row)> {
        let paths = self.rows.iter().map(|r| (r.path.clone(), r));
        let ceilings = self
            .ceilings
            .iter()
            .map(|r| (format!("ceiling: {}", r.path), r));
        paths.chain(ceilings)
    }

    fn memory_cell(&self) -> String {
        let parts: Vec<String> = self
            .memory
            .iter()
            .map(|(name, mib)| format!("{name} {mib:.0} MiB"))
            .collect();
        parts.join(", ")
    }
}

/// `12345.6` → `"12,346"`.
pub fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(
        || "–".into(),
        |d| format!("{:.1} ms", d.as_secs_f64() * 1e3),
    )
}

/// The markdown table of one backend.
pub fn print(report: &Report) {
    println!("\n### {} ({})\n", report.backend, report.setup);
    println!("| path | count | rate | p50 | p99 |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (path, row) in report.labelled() {
        println!(
            "| {path} | {} | {} {} | {} | {} |",
            thousands(row.n as f64),
            thousands(row.rate),
            row.unit,
            ms(row.p50),
            ms(row.p99)
        );
    }
    println!("| peak RSS (VmHWM) | {} | | | |", report.memory_cell());
}

/// One table with a column per backend: the rate (and p99) of every path.
pub fn print_comparison(reports: &[Report]) {
    let Some(first) = reports.first() else {
        return;
    };
    let names: Vec<&str> = reports.iter().map(|r| r.backend.as_str()).collect();
    println!("\n### Summary ({})\n", first.setup);
    println!("| path | {} |", names.join(" | "));
    println!("| --- |{}", " ---: |".repeat(names.len()));
    let columns: Vec<Vec<(String, &Row)>> =
        reports.iter().map(|r| r.labelled().collect()).collect();
    for (i, (path, _)) in columns[0].iter().enumerate() {
        let cells: Vec<String> = columns
            .iter()
            .map(|rows| match rows.get(i) {
                Some((_, row)) => match row.p99 {
                    Some(p99) => format!(
                        "{} {} (p99 {})",
                        thousands(row.rate),
                        row.unit,
                        ms(Some(p99))
                    ),
                    None => format!("{} {}", thousands(row.rate), row.unit),
                },
                None => String::new(),
            })
            .collect();
        println!("| {path} | {} |", cells.join(" | "));
    }
    let memory: Vec<String> = reports.iter().map(Report::memory_cell).collect();
    println!("| peak RSS (VmHWM) | {} |", memory.join(" | "));
}
