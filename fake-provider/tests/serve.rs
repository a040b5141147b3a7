//! The `fake-provider serve` binary: starts standalone, and refuses unpaired client flags.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn serve_prints_its_urls_and_answers_on_them() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-provider"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--client-id",
            "files-client",
            "--client-secret",
            "files-secret-value",
            "--redirect-uri",
            "http://127.0.0.1:9/oauth/redirect",
            "--faults-json",
            r#"{"coop_on_redirect":"same-origin"}"#,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let address = first
        .strip_prefix("fake-provider listening on ")
        .unwrap()
        .to_owned();
    let authorize = lines.nth(1).unwrap().unwrap();
    assert!(authorize.contains("/authorize"), "{authorize}");
    let response = raw_http::get_status(&format!("http://{address}/authorize?client_id=nobody"));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(response, 400, "an unknown client gets the error page");
}

#[test]
fn serve_refuses_a_client_id_without_its_secret_and_redirect_uri() {
    let output = Command::new(env!("CARGO_BIN_EXE_fake-provider"))
        .args([
            "serve",
            "--client-id",
            "a",
            "--client-id",
            "b",
            "--client-secret",
            "s",
            "--redirect-uri",
            "http://127.0.0.1:9/cb",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("2 --client-id, 1 --client-secret and 1 --redirect-uri"),
        "{stderr}"
    );
}

#[test]
fn serve_names_a_malformed_fault_set() {
    let output = Command::new(env!("CARGO_BIN_EXE_fake-provider"))
        .args([
            "serve",
            "--client-id",
            "a",
            "--client-secret",
            "s",
            "--redirect-uri",
            "http://127.0.0.1:9/cb",
            "--faults-json",
            r#"{"coop_everywhere":true}"#,
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--faults-json") && stderr.contains("coop_everywhere"),
        "{stderr}"
    );
}

mod raw_http {
    /// A GET over a plain TCP socket: the status code only.
    pub fn get_status(url: &str) -> u16 {
        use std::io::{Read, Write};
        let url = url::Url::parse(url).unwrap();
        let mut stream =
            std::net::TcpStream::connect((url.host_str().unwrap(), url.port().unwrap())).unwrap();
        let target = format!("{}?{}", url.path(), url.query().unwrap_or(""));
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response.split(' ').nth(1).unwrap().parse().unwrap()
    }
}
