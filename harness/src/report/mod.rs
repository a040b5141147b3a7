//! Reports of a run: the console lines and summary table, `--json`, `--junit` and `--html`.

mod console;
mod html;
mod json;
mod junit;

pub use console::{
    accept_command, console_line, failure_details, informative, rerun_command, summary_table,
};
pub use html::html;
pub use json::json;
pub use junit::junit;

// One escape for the JUnit XML and the HTML report: `&<>"'` as entities, valid in both.
use fake_provider::escape_html as escape;

/// The report files a run writes (`--json`, `--junit`, `--html DIR`).
#[derive(Debug, Clone, Default)]
pub struct Reports {
    pub json: Option<std::path::PathBuf>,
    pub junit: Option<std::path::PathBuf>,
    /// A folder: the report is its `index.html`.
    pub html: Option<std::path::PathBuf>,
}

impl Reports {
    /// Writes each report asked for.
    pub fn write(
        &self,
        results: &[crate::check::verdict::ScenarioResult],
        seed: u64,
        browsers: &[crate::browser::webdriver::BrowserSetup],
    ) -> anyhow::Result<()> {
        use anyhow::Context;
        if let Some(path) = &self.json {
            std::fs::write(path, json(results, seed, browsers))
                .with_context(|| format!("cannot write the JSON report {}", path.display()))?;
        }
        if let Some(dir) = &self.html {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let path = dir.join("index.html");
            std::fs::write(&path, html(results, seed))
                .with_context(|| format!("cannot write the HTML report {}", path.display()))?;
            println!("HTML report: {}", path.display());
        }
        if let Some(path) = &self.junit {
            std::fs::write(path, junit(results))
                .with_context(|| format!("cannot write the JUnit report {}", path.display()))?;
        }
        Ok(())
    }
}

/// Where `harness report` writes the HTML report unless told: `target/harness/report/`.
pub fn default_report_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/harness/report")
}

/// The results and seed of an earlier run, read back from its JSON report (`harness run
/// --json FILE`), so that its other reports can be rendered later (a CI artifact, say).
pub fn read_json(
    path: &std::path::Path,
) -> anyhow::Result<(Vec<crate::check::verdict::ScenarioResult>, u64)> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {} (hint: write one with `harness run --json FILE`)",
            path.display()
        )
    })?;
    #[derive(serde::Deserialize)]
    struct Saved {
        seed: u64,
        results: Vec<crate::check::verdict::ScenarioResult>,
    }
    let saved: Saved = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a JSON report of `harness run --json` (its `seed` and `results`)",
            path.display()
        )
    })?;
    Ok((saved.results, saved.seed))
}
