//! PostgreSQL unreachable for a while (a TCP proxy in front of it is stopped, then started
//! again on the same port): the job pauses — nothing is written, `/readyz` says why — and
//! resumes when the database is back, with no state lost.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::pg::PgSchema;
use super::world::*;

/// Forwards 127.0.0.1:port to the test database's server until stopped.
struct Proxy {
    port: u16,
    upstream: String,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(port: u16, upstream: String) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("proxy binds");
        let port = listener.local_addr().unwrap().port();
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let inner = tasks.clone();
        let up = upstream.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let up = up.clone();
                let conn = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&up).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                inner.lock().unwrap().push(conn);
            }
        });
        tasks.lock().unwrap().push(accept);
        Proxy {
            port,
            upstream,
            tasks,
        }
    }

    /// Closes the listener and every forwarded connection: the database is unreachable.
    fn stop(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

async fn readyz(client: &reqwest::Client, admin: &str) -> (u16, Value) {
    match client.get(format!("http://{admin}/readyz")).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_pause_while_postgres_is_unreachable_and_resume_after() {
    let Some(db) = PgSchema::new("outage") else {
        return;
    };
    let parsed: tokio_postgres::Config = db.url.parse().expect("test URL");
    let host = match parsed.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".into(),
    };
    let upstream = format!(
        "{host}:{}",
        parsed.get_ports().first().copied().unwrap_or(5432)
    );
    let proxy = Proxy::start(0, upstream).await;
    let user = parsed.get_user().unwrap_or("postgres");
    let dbname = parsed.get_dbname().unwrap_or("test");
    let url = format!("postgres://{user}@127.0.0.1:{}/{dbname}", proxy.port);

    let world = World::start(seed(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(CONTOSO, vec![user_of("ann"), user_of("bob")])],
    ))
    .await;
    let file = world.pair_file("outage", CONTOSO, FABRIKAM, "  scope: { mode: all }\n");
    let admin = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let log = std::fs::File::create(world.dir.path().join("daemon.log")).unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("ctsync"))
        .args(["run", "--interval", "1s", "--no-reload", "--open-reads"])
        .args(["--admin-listen", &admin, "--config"])
        .arg(&file)
        .args(["--store", &url, "--store-schema", &db.schema])
        .args(["--replica-id", "solo", "--lease-duration", "3s"])
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("daemon starts");
    let http = reqwest::Client::new();
    let wait = |what: &'static str, limit: u64| {
        let start = Instant::now();
        move || {
            assert!(
                start.elapsed() < Duration::from_secs(limit),
                "timed out: {what}"
            )
        }
    };

    let check = wait("first sync", 120);
    while world.b2b_users(FABRIKAM).await.len() != 2 {
        check();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body) = readyz(&http, &admin).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["replica"], "solo");
    assert_eq!(body["leasesHeld"], json!(["outage"]));
    // The status page shows who holds which pair.
    let page = http
        .get(format!("http://{admin}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<h2>Leases</h2>") && page.contains("<td>outage</td><td>solo</td>"),
        "{page}"
    );

    // The database goes away.
    proxy.stop();
    let check = wait("readiness to report the store", 30);
    let reason = loop {
        let (status, body) = readyz(&http, &admin).await;
        if status == 503 {
            break body.to_string();
        }
        check();
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(reason.contains("StoreUnavailable"), "{reason}");
    let ann = world.source_id(CONTOSO, "ann@contoso.com").await;
    world
        .patch(CONTOSO, &ann, json!({"jobTitle": "during the outage"}))
        .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let target = world.b2b_user(FABRIKAM, "ann").await.expect("ann");
    assert_ne!(
        target.job_title.as_deref(),
        Some("during the outage"),
        "nothing is written while the store is unreachable"
    );

    // It comes back on the same address: the job resumes and carries the change over.
    let _proxy = Proxy::start(proxy.port, proxy.upstream.clone()).await;
    let check = wait("resume", 60);
    loop {
        let t = world.b2b_user(FABRIKAM, "ann").await.expect("ann");
        if t.job_title.as_deref() == Some("during the outage") {
            break;
        }
        check();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let check = wait("ready again", 30);
    while readyz(&http, &admin).await.0 != 200 {
        check();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().unwrap();
    assert_eq!(world.b2b_users(FABRIKAM).await.len(), 2, "no duplicate");
    let log = std::fs::read_to_string(world.dir.path().join("daemon.log")).unwrap();
    assert!(log.contains("store unreachable"), "the log says why");
}

fn user_of(alias: &str) -> Value {
    user(alias, "contoso.com", json!({}))
}
