//! The `--html` report: self-contained, a timeline per trace.

use super::console::rerun_command;
use super::escape;
use crate::check::verdict::ScenarioResult;
use std::fmt::Write as _;

/// How a chart's row of text fits `width` pixels: cut with an ellipsis (the whole text is the
/// row's tooltip).
fn fitted(text: &str, width: f64) -> String {
    let room = ((width / 6.4) as usize).max(8);
    if text.chars().count() <= room {
        return text.to_owned();
    }
    let cut: String = text.chars().take(room - 1).collect();
    format!("{cut}…")
}

/// The tab a violation's detail names (`tab chat: ...`), if it names one.
fn lane_of(detail: &str) -> Option<&str> {
    let rest = detail.split("tab ").nth(1)?;
    rest.split(|c: char| c.is_whitespace() || c == ':' || c == ',')
        .next()
        .filter(|tab| !tab.is_empty())
}

/// The run as a sequence chart (inline SVG): a lane for the user, every tab, the platform's
/// server and the provider's; time runs down; an arrow for each step, `window.open`, channel
/// delivery (from the tab that sent it) and request the provider received. Each violation is
/// marked in red on the lane it names, with the rule it breaks. Fits 1400 px.
fn sequence_chart(out: &mut String, index: usize, r: &ScenarioResult) {
    use crate::check::timeline::lanes;
    if r.timeline.is_empty() {
        return;
    }
    let lanes = lanes(&r.timeline);
    // The rows: every moment, and each violation right after the last moment of the lane it
    // shows on (a missing delivery as a red dashed arrow), or at the end where it names none.
    enum Row<'a> {
        Moment(&'a crate::check::timeline::Moment),
        Violation(&'a str, &'a crate::check::invariants::Violation),
    }
    let mut rows: Vec<Row> = r.timeline.iter().map(Row::Moment).collect();
    let mut unplaced: Vec<Row> = Vec::new();
    for violation in &r.violations {
        let lane = violation
            .mark
            .as_ref()
            .map(|mark| mark.from.as_str())
            .or_else(|| lane_of(&violation.detail))
            .unwrap_or("user");
        let last = rows.iter().rposition(|row| match row {
            Row::Moment(m) => m.from == lane || m.to.as_deref() == Some(lane),
            Row::Violation(..) => false,
        });
        match (violation.mark.is_some(), last) {
            (true, Some(at)) => rows.insert(at + 1, Row::Violation(lane, violation)),
            _ => unplaced.push(Row::Violation(lane, violation)),
        }
    }
    rows.extend(unplaced);
    let marked_lanes: Vec<&str> = rows
        .iter()
        .filter_map(|row| match row {
            Row::Violation(lane, _) => Some(*lane),
            Row::Moment(_) => None,
        })
        .collect();
    let width = 1320.0;
    let column = (width / lanes.len() as f64).clamp(110.0, 260.0);
    let x = |lane: &str| {
        let at = lanes.iter().position(|l| l == lane).unwrap_or(0);
        10.0 + column * at as f64 + column / 2.0
    };
    let (header, row) = (34.0, 24.0);
    let rows_count = rows.len();
    let height = header + row * rows_count as f64 + 16.0;
    let chart_width = 20.0 + column * lanes.len() as f64;
    let _ = write!(
        out,
        "<svg data-testid=\"sequence-chart\" role=\"img\" viewBox=\"0 0 {chart_width:.0} {height:.0}\" width=\"{chart_width:.0}\" style=\"max-width:100%;height:auto;font:11px system-ui,sans-serif\">\
         <defs><marker id=\"arrow-{index}\" viewBox=\"0 0 8 8\" refX=\"8\" refY=\"4\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L8,4 L0,8 z\" fill=\"#444\"/></marker></defs>"
    );
    for lane in &lanes {
        let lx = x(lane);
        let colour = if marked_lanes.contains(&lane.as_str()) {
            "#a50e0e"
        } else {
            "#222"
        };
        let _ = write!(
            out,
            "<text data-testid=\"lane\" x=\"{lx:.0}\" y=\"16\" text-anchor=\"middle\" font-weight=\"bold\" fill=\"{colour}\">{}</text>\
             <line x1=\"{lx:.0}\" y1=\"24\" x2=\"{lx:.0}\" y2=\"{height:.0}\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/>",
            escape(&fitted(lane, column))
        );
    }
    for (number, entry) in rows.iter().enumerate() {
        let y = header + row * number as f64 + row / 2.0;
        match entry {
            Row::Moment(moment) => {
                let colour = match moment.kind.as_str() {
                    "delivery" => "#1a5fb4",
                    "request" => "#666",
                    "open" => "#813d9c",
                    "navigation" => "#26a269",
                    _ => "#222",
                };
                let tooltip = format!("+{} ms: {}", moment.at_ms, moment.text);
                match &moment.to {
                    Some(to) if to != &moment.from => {
                        let (x1, x2) = (x(&moment.from), x(to));
                        let span = (x2 - x1).abs().max(column);
                        let _ = write!(
                            out,
                            "<g data-testid=\"arrow\" data-kind=\"{kind}\"><title>{tip}</title>\
                             <line x1=\"{x1:.0}\" y1=\"{y:.0}\" x2=\"{x2:.0}\" y2=\"{y:.0}\" stroke=\"{colour}\" stroke-width=\"1.4\" marker-end=\"url(#arrow-{index})\"/>\
                             <text x=\"{mid:.0}\" y=\"{ty:.0}\" text-anchor=\"middle\" fill=\"{colour}\">{text}</text></g>",
                            kind = escape(&moment.kind),
                            tip = escape(&tooltip),
                            mid = (x1 + x2) / 2.0,
                            ty = y - 3.0,
                            text = escape(&fitted(&moment.text, span)),
                        );
                    }
                    _ => {
                        let lx = x(&moment.from);
                        let _ = write!(
                            out,
                            "<g data-testid=\"note\" data-kind=\"{kind}\"><title>{tip}</title>\
                             <circle cx=\"{lx:.0}\" cy=\"{y:.0}\" r=\"3\" fill=\"{colour}\"/>\
                             <text x=\"{tx:.0}\" y=\"{ty:.0}\" fill=\"{colour}\">{text}</text></g>",
                            kind = escape(&moment.kind),
                            tip = escape(&tooltip),
                            tx = lx + 6.0,
                            ty = y + 4.0,
                            text = escape(&fitted(&moment.text, column * 1.6)),
                        );
                    }
                }
            }
            Row::Violation(lane, violation) => {
                let lane: &str = lane;
                let lx = x(lane);
                let rule = crate::check::invariants::rule(&violation.invariant)
                    .map(|rule| rule.summary)
                    .unwrap_or("");
                let text = format!("✗ {}: {}", violation.invariant, violation.detail);
                if let Some(mark) = &violation.mark
                    && let Some(to) = &mark.to
                {
                    // The delivery that should have been: a red dashed arrow.
                    let (x1, x2) = (x(&mark.from), x(to));
                    let label = format!("✗ {}: {}", violation.invariant, mark.what);
                    let _ = write!(
                        out,
                        "<g data-testid=\"violation-mark\" data-check=\"{id}\" data-missing=\"true\"><title>{tip}</title>\
                         <line x1=\"{x1:.0}\" y1=\"{y:.0}\" x2=\"{x2:.0}\" y2=\"{y:.0}\" stroke=\"#a50e0e\" stroke-width=\"2\" stroke-dasharray=\"6 4\" marker-end=\"url(#arrow-{index})\"/>\
                         <text x=\"{mid:.0}\" y=\"{ty:.0}\" text-anchor=\"middle\" fill=\"#a50e0e\" font-weight=\"bold\">{label}</text></g>",
                        id = escape(&violation.invariant),
                        tip = escape(&format!("{text} (the rule: {rule})")),
                        mid = (x1 + x2) / 2.0,
                        ty = y - 3.0,
                        label = escape(&fitted(&label, (x2 - x1).abs().max(column))),
                    );
                    continue;
                }
                let _ = write!(
                    out,
                    "<g data-testid=\"violation-mark\" data-check=\"{id}\"><title>{tip}</title>\
                     <rect x=\"{rx:.0}\" y=\"{ry:.0}\" width=\"12\" height=\"12\" fill=\"#a50e0e\"/>\
                     <text x=\"{tx:.0}\" y=\"{ty:.0}\" fill=\"#a50e0e\" font-weight=\"bold\">{text}</text></g>",
                    id = escape(&violation.invariant),
                    tip = escape(&format!("{text} (the rule: {rule})")),
                    rx = lx - 6.0,
                    ry = y - 6.0,
                    tx = lx + 10.0,
                    ty = y + 4.0,
                    text = escape(&fitted(&text, chart_width - lx - 20.0)),
                );
            }
        }
    }
    out.push_str("</svg>");
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
        for note in &r.notes {
            let _ = write!(
                out,
                "<p data-testid=\"note\">Note (not part of the verdict): {}</p>",
                escape(note)
            );
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
            escape(
                &r.rerun
                    .clone()
                    .unwrap_or_else(|| rerun_command(&r.scenario, r.seed))
            )
        );
        sequence_chart(&mut out, index, r);
        if !r.trace.is_empty() {
            let _ = write!(
                out,
                "<details><summary>The normative trace, as its snapshot holds it</summary><pre data-testid=\"trace\">{}</pre></details>",
                escape(&r.trace)
            );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_delivery_is_a_red_dashed_arrow_after_the_last_moment_of_its_tab() {
        let result: ScenarioResult = serde_json::from_value(serde_json::json!({
            "scenario": "channels/no-broadcast-channel", "engine": "chromium",
            "outcome": "fail", "expected": "pass", "duration_ms": 900, "seed": 1,
            "checks": [{"id": "channels-complete", "status": "fail"}],
            "violations": [{
                "invariant": "channels-complete",
                "detail": "tab provider (/auth/connector-callback): the callback did not write alumia:connector-oauth to localStorage",
                "mark": {"from": "provider", "to": "chat", "what": "no storage write"}
            }],
            "timeline": [
                {"at_ms": 0, "from": "user", "to": "chat", "text": "1. open-chat main in [chat]", "kind": "step"},
                {"at_ms": 40, "from": "provider", "text": "loads [PLATFORM]/auth/connector-callback", "kind": "navigation"},
                {"at_ms": 60, "from": "platform (server)", "to": "provider (server)", "text": "GET /api/files -> 200", "kind": "request"}
            ]
        }))
        .unwrap();
        let page = html(&[result], 1);
        let chart = &page[page.find("<svg").unwrap()..page.find("</svg>").unwrap()];
        let missing = chart
            .find("data-missing=\"true\"")
            .expect("the missing delivery is drawn");
        assert!(chart[missing..].contains("no storage write"), "{chart}");
        assert!(
            chart[missing..].contains("stroke-dasharray=\"6 4\""),
            "{chart}"
        );
        // Right after the callback's page loaded, before the later request.
        let loaded = chart.find("connector-callback").unwrap();
        let request = chart.find("GET /api/files").unwrap();
        assert!(loaded < missing && missing < request, "{chart}");
    }
}
