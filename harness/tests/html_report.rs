//! The HTML report of a run with one deliberately failing scenario, opened in headless
//! Chromium: a person finds the failing row, its violation, its checks and its sequence chart
//! with the broken rule marked, and the same report rendered again from the saved JSON. A screenshot of
//! the report is kept at `target/harness/html-report.png`.

use fantoccini::Locator;
use harness::browser::webdriver::{DriverProcess, Session};
use harness::contract::Engine;
use std::path::Path;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_report_shows_a_failing_scenario_its_violation_and_its_timeline() {
    if !harness::browser::webdriver::driver_available_for_tests(Engine::Chromium) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (scenarios, snapshots) = (work.path().join("scenarios"), work.path().join("snapshots"));
    let baseline =
        std::fs::read_to_string(harness::scenario::default_root().join("channels/baseline.toml"))
            .unwrap();
    let failing = baseline
        .replace(
            "description = \"",
            "description = \"Deliberately wrong expectation: ",
        )
        .replace("chat = \"resumed\"", "chat = \"error-shown\"");
    for (dir, name, text) in [
        ("channels", "baseline", &baseline),
        ("broken", "expects-error", &failing),
    ] {
        std::fs::create_dir_all(scenarios.join(dir)).unwrap();
        std::fs::write(scenarios.join(dir).join(format!("{name}.toml")), text).unwrap();
        std::fs::create_dir_all(snapshots.join(dir)).unwrap();
        for layer in ["", ".reference"] {
            std::fs::copy(
                harness::check::snapshot::default_root()
                    .join(format!("channels/baseline{layer}.snap")),
                snapshots.join(dir).join(format!("{name}{layer}.snap")),
            )
            .unwrap();
        }
    }
    let report_dir = work.path().join("report");
    let output = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["run", "--seed", "51"])
        .arg("--scenarios")
        .arg(&scenarios)
        .arg("--snapshots")
        .arg(&snapshots)
        .arg("--artifacts")
        .arg(work.path().join("artifacts"))
        .arg("--html")
        .arg(&report_dir)
        .arg("--json")
        .arg(work.path().join("results.json"))
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );

    // The saved JSON renders again, later: `harness report`.
    let rendered_again = work.path().join("again");
    let junit = work.path().join("junit.xml");
    let again = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("report")
        .arg(work.path().join("results.json"))
        .arg("--html")
        .arg(&rendered_again)
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    let report = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!((report.tests, report.failures), (2, 1), "{xml}");

    let driver = DriverProcess::spawn(Engine::Chromium).unwrap();
    let session = Session::start(Engine::Chromium, &driver.url).await.unwrap();
    let client = &session.client;
    let url = format!("file://{}", report_dir.join("index.html").display());
    client.goto(&url).await.unwrap();
    let row = client
        .find(Locator::Css(
            "tr.unexpected[data-scenario='broken/expects-error']",
        ))
        .await
        .expect("the failing scenario's row is marked");
    let row_text = row.text().await.unwrap();
    assert!(
        row_text.contains("fail") && row_text.contains("chromium"),
        "{row_text}"
    );
    let passing = client
        .find(Locator::Css(
            "tr.expected[data-scenario='channels/baseline']",
        ))
        .await;
    assert!(passing.is_ok(), "the passing scenario's row is there too");
    let run = "section[data-scenario='broken/expects-error']";
    let violation = text_of(client, &format!("{run} [data-testid=violation]")).await;
    assert!(
        violation.contains("chat-resumed") && violation.contains("expected ErrorShown"),
        "{violation}"
    );
    // The run as a sequence chart: a lane per tab and server, arrows for what caused what,
    // the broken rule marked in red.
    let chart = format!("{run} [data-testid=sequence-chart]");
    let lanes: Vec<String> = {
        let mut names = Vec::new();
        for lane in client
            .find_all(Locator::Css(&format!("{chart} [data-testid=lane]")))
            .await
            .unwrap()
        {
            names.push(lane.text().await.unwrap());
        }
        names
    };
    for lane in [
        "user",
        "chat",
        "provider",
        "platform (server)",
        "provider (server)",
    ] {
        assert!(
            lanes.iter().any(|l| l == lane),
            "{lane} missing from {lanes:?}"
        );
    }
    for kind in ["step", "open", "delivery", "request"] {
        let arrows = client
            .find_all(Locator::Css(&format!(
                "{chart} [data-testid=arrow][data-kind={kind}]"
            )))
            .await
            .unwrap();
        assert!(!arrows.is_empty(), "no {kind} arrow in the chart");
    }
    let chart_text = client
        .find(Locator::Css(&chart))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        chart_text.contains("window.open") && chart_text.contains("POST /token"),
        "{chart_text}"
    );
    let mark = client
        .find(Locator::Css(&format!(
            "{chart} [data-testid=violation-mark][data-check=chat-resumed]"
        )))
        .await
        .expect("the broken rule is marked in the chart")
        .text()
        .await
        .unwrap();
    assert!(mark.contains("chat-resumed"), "{mark}");
    let rerun = text_of(client, &format!("{run} [data-testid=rerun]")).await;
    assert!(
        rerun.contains("--scenario 'broken/expects-error' --seed 51"),
        "{rerun}"
    );
    let shots = client
        .find_all(Locator::Css(&format!("{run} img[data-testid=screenshot]")))
        .await
        .unwrap();
    assert!(
        !shots.is_empty(),
        "the failed run's screenshots are in the report"
    );
    // The checks as a table, the failed one first, with its status.
    let first_check = text_of(client, &format!("{run} [data-testid=check]")).await;
    assert!(
        first_check.contains("chat-resumed") && first_check.contains("fail"),
        "{first_check}"
    );
    let png = client.screenshot().await.unwrap();
    let kept = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/harness");
    std::fs::create_dir_all(&kept).unwrap();
    std::fs::write(kept.join("html-report.png"), png).unwrap();
    // The report rendered again from the JSON shows the same failure.
    let url = format!("file://{}", rendered_again.join("index.html").display());
    client.goto(&url).await.unwrap();
    let again_check = client
        .find(Locator::Css(&format!("{run} [data-testid=check]")))
        .await
        .expect("the re-rendered report has the failing run's checks")
        .text()
        .await
        .unwrap();
    assert_eq!(again_check, first_check);
    session.close().await.unwrap();
}

/// The text of the first element `css` finds.
async fn text_of(client: &fantoccini::Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}
