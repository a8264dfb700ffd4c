//! The cluster page (`GET /`) in a real headless browser: Debian's chromium driven through
//! chromedriver's WebDriver protocol. Five of our agents; the page must list all five, turn a
//! killed agent's row `failed` within the failure-detection time, and draw five points on its
//! map. A screenshot goes to `target/page.png`. Ignored by a plain `cargo test`: `make browser`
//! runs it where chromium and chromedriver are installed (`.ci/run` installs them).

#[path = "../../../tests/common/reference.rs"]
mod reference;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use reference::{free_port, wait_until, Agent};
use serde_json::{json, Value};

fn ours() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_serf"))
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// chromedriver on a loopback port, killed when dropped.
struct Driver {
    child: Child,
    base: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start() -> Driver {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver (make browser checks that it is installed)");
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let up = wait_until(Duration::from_secs(20), || {
            ureq::get(&format!("{}/status", driver.base)).call().is_ok()
        });
        assert!(up, "chromedriver did not answer");
        driver
    }

    /// A headless chromium session.
    fn session(&self) -> Session<'_> {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900"],
            },
        }}});
        let answer = post(&format!("{}/session", self.base), &caps);
        let id = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_string();
        Session { driver: self, id }
    }
}

/// The chromium binary (Debian installs it as `chromium`).
fn chromium() -> String {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("/usr/bin/chromium")
        .to_string()
}

fn post(url: &str, body: &Value) -> Value {
    let answer: Value = ureq::post(url)
        .timeout(Duration::from_secs(60))
        .send_json(body.clone())
        .unwrap_or_else(|e| panic!("POST {url}: {e}"))
        .into_json()
        .expect("a JSON answer");
    answer["value"].clone()
}

struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = ureq::delete(&format!("{}/session/{}", self.driver.base, self.id)).call();
    }
}

impl Session<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.driver.base, self.id)
    }

    fn open(&self, page: &str) {
        post(&self.url("/url"), &json!({ "url": page }));
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    fn eval(&self, script: &str) -> Value {
        post(
            &self.url("/execute/sync"),
            &json!({ "script": script, "args": [] }),
        )
    }

    fn screenshot(&self, to: &Path) {
        let answer: Value = ureq::get(&self.url("/screenshot"))
            .call()
            .expect("screenshot")
            .into_json()
            .expect("a JSON answer");
        let png = base64::engine::general_purpose::STANDARD
            .decode(answer["value"].as_str().expect("base64 PNG"))
            .expect("a PNG");
        std::fs::write(to, png).expect("write the screenshot");
    }
}

/// Each member row's name and status as the page shows them.
const ROWS: &str = "return Array.from(document.querySelectorAll('#members tr'))
    .map(r => [r.children[0].textContent, r.children[2].textContent]);";

fn rows(session: &Session<'_>) -> Vec<(String, String)> {
    session
        .eval(ROWS)
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    (
                        r[0].as_str().unwrap_or("").into(),
                        r[1].as_str().unwrap_or("").into(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
#[ignore = "needs chromium and chromedriver: make browser"]
fn the_page_shows_the_cluster_live() {
    let started = Instant::now();
    let http = loopback();
    let first = Agent::start_binary(
        ours(),
        "page-0",
        loopback(),
        &[&format!("-http-addr={http}")],
    );
    let mut agents = vec![first];
    for i in 1..5 {
        let a = Agent::start_binary(
            ours(),
            &format!("page-{i}"),
            loopback(),
            &[&format!("-tag=rack=r{}", i % 2)],
        );
        a.cli(&["join", &agents[0].gossip.to_string()])
            .expect("join");
        agents.push(a);
    }
    assert!(wait_until(Duration::from_secs(15), || agents[0]
        .alive_count()
        == 5));

    let driver = Driver::start();
    let session = driver.session();
    session.open(&format!("http://{http}/"));
    let listed = wait_until(Duration::from_secs(20), || {
        rows(&session).iter().filter(|(_, s)| s == "alive").count() == 5
    });
    assert!(
        listed,
        "the page never listed five alive members: {:?}",
        rows(&session)
    );
    let drawn = wait_until(Duration::from_secs(30), || {
        session.eval("return document.querySelectorAll('#map circle').length;") == json!(5)
    });
    assert!(drawn, "the map never drew five points");
    // Kill one agent: its row turns failed, without reloading the page, within the
    // detection time (the lan profile needs a few seconds; 30 s bounds it).
    let killed = Instant::now();
    agents[3].kill();
    let failed = wait_until(Duration::from_secs(30), || {
        rows(&session)
            .iter()
            .any(|(n, s)| n == "page-3" && s == "failed")
    });
    assert!(failed, "page-3 never turned failed: {:?}", rows(&session));
    let screenshot = reference::repo_root().join("target/page.png");
    session.screenshot(&screenshot);
    // The event comes through the event stream, after the agent's coalescing of member events.
    let events = || session.eval("return document.getElementById('events').textContent;");
    let listed = wait_until(Duration::from_secs(15), || {
        events()
            .as_str()
            .is_some_and(|t| t.contains("member-failed: page-3"))
    });
    assert!(listed, "the event list lacks the failure: {}", events());
    println!(
        "browser: 5 rows and 5 points drawn; page-3 shown failed {:.1} s after kill -9; \
         whole test {:.1} s; screenshot {}",
        killed.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64(),
        screenshot.display()
    );
}
