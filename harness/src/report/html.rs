//! The `--html` report: self-contained, a timeline per trace.

use super::console::rerun_command;
use super::escape;
use crate::check::verdict::ScenarioResult;
use std::fmt::Write as _;

/// The lanes of a normalized trace: every `[tab]` line, in order, plus the provider's requests.
fn timeline(trace: &str) -> (Vec<String>, Vec<(String, String)>) {
    let mut lanes: Vec<String> = Vec::new();
    let mut rows: Vec<(String, String)> = Vec::new();
    for (section, line) in crate::check::trace::lines_by_section(trace) {
        let lane = match section {
            "provider" => "provider (server)".to_owned(),
            "steps" => "user".to_owned(),
            _ => match line.strip_prefix('[').and_then(|rest| rest.split_once(']')) {
                Some((tab, _)) => tab.to_owned(),
                None => continue,
            },
        };
        if !lanes.contains(&lane) {
            lanes.push(lane.clone());
        }
        let text = match line.strip_prefix(&format!("[{lane}] ")) {
            Some(rest) => rest.to_owned(),
            None => line.to_owned(),
        };
        rows.push((lane, text));
    }
    (lanes, rows)
}

/// The checks as a table, failed ones first: status, and why one did not apply.
fn checks_table(out: &mut String, r: &ScenarioResult) {
    use crate::check::invariants::CheckStatus;
    let rank = |status: CheckStatus| match status {
        CheckStatus::Fail => 0,
        CheckStatus::Pass => 1,
        CheckStatus::NotApplicable => 2,
    };
    let mut checks: Vec<_> = r.checks.iter().collect();
    checks.sort_by_key(|c| rank(c.status));
    out.push_str(
        "<table data-testid=\"checks\"><tr><th>check</th><th>status</th><th>why not applicable, or what was not seen</th></tr>",
    );
    for check in checks {
        let status = match check.status {
            CheckStatus::Pass => "pass",
            CheckStatus::Fail => "fail",
            CheckStatus::NotApplicable => "not-applicable",
        };
        let title = crate::check::invariants::rule(&check.id)
            .map(|i| i.enforces)
            .unwrap_or("");
        let _ = write!(
            out,
            "<tr data-testid=\"check\" data-check=\"{id}\"><td title=\"{title}\">{id}</td><td class=\"{status}\">{status}</td><td>{reason}</td></tr>",
            id = escape(&check.id),
            title = escape(title),
            reason = escape(check.reason.as_deref().unwrap_or("")),
        );
    }
    out.push_str("</table>");
}

/// A self-contained HTML report: a row per scenario and engine; for each, its violations, the
/// command that reruns it, its trace as a timeline with one lane per tab, and the screenshots
/// kept for a failed run.
pub fn html(results: &[ScenarioResult], seed: u64) -> String {
    use base64::Engine as _;
    let mut out = String::new();
    let unexpected = results.iter().filter(|r| !r.as_expected()).count();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Alumia harness report</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:1.5rem}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:.3rem .5rem;vertical-align:top;font-size:.9rem}}\
         tr.unexpected td.outcome{{background:#fde2e1;font-weight:bold}}tr.expected td.outcome{{background:#e3f6e5}}\
         .violation{{color:#a50e0e}}code{{background:#f4f4f4;padding:.1rem .3rem}}img{{max-width:420px;border:1px solid #999}}\
         td.pass{{background:#e3f6e5}}td.fail{{background:#fde2e1;font-weight:bold}}td.not-applicable{{color:#666}}\
         pre.diff{{background:#fafafa;border:1px solid #ccc;padding:.4rem;white-space:pre-wrap;overflow-wrap:anywhere}}\
         .diff .removed{{background:#fde2e1;display:block}}.diff .added{{background:#e3f6e5;display:block}}\
         </style></head><body><h1>Alumia harness report</h1>\
         <p data-testid=\"summary\">{} run(s), {} unexpected, seed {seed}</p>\
         <table data-testid=\"results\"><tr><th>scenario</th><th>engine</th><th>outcome</th><th>expected</th><th>time</th></tr>",
        results.len(),
        unexpected
    );
    for (index, r) in results.iter().enumerate() {
        let class = if r.as_expected() {
            "expected"
        } else {
            "unexpected"
        };
        let _ = write!(
            out,
            "<tr class=\"{class}\" data-testid=\"result-row\" data-scenario=\"{s}\" data-engine=\"{e}\">\
             <td><a href=\"#run-{index}\">{s}</a></td><td>{e}</td><td class=\"outcome\">{o}</td><td>{x}</td><td>{t:.1} s</td></tr>",
            s = escape(&r.scenario),
            e = escape(&r.engine),
            o = r.outcome.as_str(),
            x = r.expected.as_str(),
            t = r.duration_ms as f64 / 1000.0,
        );
    }
    out.push_str("</table>");
    // What failed first: the runs that were not as expected, then the others.
    let mut order: Vec<(usize, &ScenarioResult)> = results.iter().enumerate().collect();
    order.sort_by_key(|(_, r)| r.as_expected());
    for (index, r) in order {
        let _ = write!(
            out,
            "<section id=\"run-{index}\" data-testid=\"run\" data-scenario=\"{s}\" data-engine=\"{e}\"><h2>{s} in {e}: {o}</h2>",
            s = escape(&r.scenario),
            e = escape(&r.engine),
            o = r.outcome.as_str()
        );
        if !r.violations.is_empty() {
            out.push_str("<ul data-testid=\"violations\">");
            for v in &r.violations {
                let _ = write!(
                    out,
                    "<li class=\"violation\" data-testid=\"violation\"><b>{}</b>: {}</li>",
                    escape(&v.invariant),
                    escape(&v.detail)
                );
            }
            out.push_str("</ul>");
        }
        for (path, diff) in &r.diffs {
            let _ = write!(
                out,
                "<p>The snapshot <code>{}</code> differs (- snapshot, + this run):</p><pre class=\"diff\" data-testid=\"diff\">",
                escape(path)
            );
            for line in diff.lines() {
                let class = if line.starts_with('-') {
                    "removed"
                } else if line.starts_with('+') {
                    "added"
                } else {
                    "same"
                };
                let _ = write!(out, "<span class=\"{class}\">{}</span>", escape(line));
            }
            out.push_str("</pre>");
        }
        if !r.checks.is_empty() {
            checks_table(&mut out, r);
        }
        for known in &r.known_failures {
            let _ = write!(
                out,
                "<p data-testid=\"known-failure\">Known failure: {}</p>",
                escape(known)
            );
        }
        for (number, attempt) in r.attempts.iter().enumerate() {
            let _ = write!(
                out,
                "<p data-testid=\"attempt\">Attempt {}: {} ({})</p>",
                number + 1,
                attempt.outcome.as_str(),
                escape(
                    &attempt
                        .violations
                        .iter()
                        .map(|v| v.invariant.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            );
        }
        if !r.informative.is_empty() {
            let _ = write!(
                out,
                "<details data-testid=\"informative\"><summary>Informative: {} line(s) of the transcript differ from the reference server's (not part of the verdict)</summary><pre>{}</pre></details>",
                r.informative.len(),
                escape(&r.informative.join("\n"))
            );
        }
        let _ = write!(
            out,
            "<p>Rerun: <code data-testid=\"rerun\">{}</code></p>",
            escape(&rerun_command(&r.scenario, r.seed))
        );
        // The whole transcript, the platform's conversation with the provider included
        // (the normative trace leaves it out).
        let (lanes, rows) = timeline(if r.transcript.is_empty() {
            &r.trace
        } else {
            &r.transcript
        });
        if !rows.is_empty() {
            out.push_str("<table data-testid=\"timeline\"><tr><th>#</th>");
            for lane in &lanes {
                let _ = write!(out, "<th>{}</th>", escape(lane));
            }
            out.push_str("</tr>");
            for (number, (lane, text)) in rows.iter().enumerate() {
                let _ = write!(out, "<tr><td>{}</td>", number + 1);
                for column in &lanes {
                    if column == lane {
                        let _ = write!(out, "<td>{}</td>", escape(text));
                    } else {
                        out.push_str("<td></td>");
                    }
                }
                out.push_str("</tr>");
            }
            out.push_str("</table>");
        }
        if let Some(dir) = &r.artifacts {
            let mut shots: Vec<_> = std::fs::read_dir(dir)
                .map(|entries| entries.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            shots.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|x| x == "png"));
            shots.sort();
            for shot in shots {
                if let Ok(bytes) = std::fs::read(&shot) {
                    let _ = write!(
                        out,
                        "<figure><img data-testid=\"screenshot\" alt=\"{name}\" src=\"data:image/png;base64,{data}\"><figcaption>{name}</figcaption></figure>",
                        name = escape(&shot.file_name().unwrap_or_default().to_string_lossy()),
                        data = base64::engine::general_purpose::STANDARD.encode(bytes)
                    );
                }
            }
            let _ = write!(
                out,
                "<p>Artifacts: <code>{}</code></p>",
                escape(&dir.display().to_string())
            );
        }
        out.push_str("</section>");
    }
    out.push_str("</body></html>\n");
    out
}
