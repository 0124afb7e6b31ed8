//! `ctsync status|pause|start|restart|run-now`: clients of a running daemon's admin API.

use std::path::PathBuf;
use std::process::ExitCode;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

/// Where the daemon's admin API is and how to authenticate.
#[derive(Debug, clap::Args)]
pub struct Connection {
    /// The daemon's admin API.
    #[arg(
        long,
        default_value = "http://127.0.0.1:8080",
        env = "CTSYNC_ADMIN_URL"
    )]
    pub admin_url: String,
    /// A file holding the admin bearer token.
    #[arg(long, conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// The admin bearer token (prefer --token-file: arguments show in process lists).
    #[arg(long, env = "CTSYNC_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// Only this pair.
    #[arg(long)]
    pub pair: Option<String>,
    /// `text` for people, `json` for scripts.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
}

#[derive(Debug, clap::Args)]
pub struct PairArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// The pair (job) to act on, by its metadata.name.
    #[arg(long)]
    pub pair: String,
}

#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, clap::Args)]
pub struct RestartArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// The pair (job) to restart, by its metadata.name.
    #[arg(long)]
    pub pair: String,
    /// Graph's resetScope (`Watermark, Escrows, QuarantineState, ForceDeletes, Full`); empty =
    /// the portal's restart (Watermark, Escrows, QuarantineState).
    #[arg(long, default_value = "")]
    pub reset_scope: String,
    /// Let the deletes the deletion guard staged through (adds ForceDeletes).
    #[arg(long)]
    pub force_deletes: bool,
    /// Reset everything (resetScope Full).
    #[arg(long)]
    pub full: bool,
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<SecretString>,
}

impl Client {
    fn new(connection: &Connection) -> Result<Client, String> {
        let token = match (&connection.token_file, &connection.token) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read token file {}: {e}", path.display()))?;
                Some(SecretString::from(text.trim().to_owned()))
            }
            (None, Some(token)) => Some(SecretString::from(token.trim().to_owned())),
            (None, None) => None,
        };
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Client {
            http,
            base: connection.admin_url.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// Sends the request; Ok(body) on success, Err(message) otherwise.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Option<Value>, String> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose_secret());
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("cannot reach the admin API at {}: {e}", self.base))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| format!("cannot read the admin API's answer: {e}"))?;
        let value: Option<Value> = serde_json::from_str(&text).ok();
        if status.is_success() {
            return Ok(value);
        }
        let message = value
            .as_ref()
            .and_then(|v| v.get("error"))
            .map(|e| {
                format!(
                    "{}: {}",
                    e.get("code").and_then(Value::as_str).unwrap_or("Error"),
                    e.get("message").and_then(Value::as_str).unwrap_or("")
                )
            })
            .unwrap_or(text);
        Err(format!("admin API answered {status}: {message}"))
    }
}

/// `ctsync health`: exit 0 when the daemon's `/healthz` answers, 1 otherwise. The container
/// image's HEALTHCHECK (the image has no curl).
pub async fn health(args: HealthArgs) -> anyhow::Result<ExitCode> {
    let client = match Client::new(&args.connection) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ctsync: {e}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    match client.call(reqwest::Method::GET, "/healthz", None).await {
        Ok(_) => {
            println!("ok: {} is alive", client.base);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(fail(&e)),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("ctsync: {message}");
    ExitCode::FAILURE
}

pub async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let client = match Client::new(&args.connection) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ctsync: {e}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let path = match &args.pair {
        Some(pair) => format!("/v1/jobs/{}", encode(pair)),
        None => "/v1/jobs".to_owned(),
    };
    let body = match client.call(reqwest::Method::GET, &path, None).await {
        Ok(body) => body.unwrap_or(Value::Null),
        Err(e) => return Ok(fail(&e)),
    };
    let jobs: Vec<Value> = match (&args.pair, body.get("value")) {
        (None, Some(Value::Array(list))) => list.clone(),
        _ => vec![body],
    };
    if args.format == "json" {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "value": jobs })).unwrap_or_default()
        );
    } else {
        for job in &jobs {
            print!("{}", job_text(job));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One job for people: status code, reason, quarantine, last execution, staged deletes.
fn job_text(job: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let status = &job["status"];
    let mut out = format!(
        "{}: {}{}\n",
        s(&job["id"]),
        s(&status["code"]),
        status["reason"]
            .as_str()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    let schedule = &job["schedule"];
    if let Some(interval) = schedule["interval"].as_str() {
        let configured = schedule["configuredInterval"]
            .as_str()
            .map(|c| format!(" (set by run --interval; the pair file says {c})"))
            .unwrap_or_default();
        out.push_str(&format!("  schedule: every {interval}{configured}\n"));
    }
    let last = &status["lastExecution"];
    if last.is_object() {
        out.push_str(&format!(
            "  last execution: {} {} (exported {}, escrowed {})\n",
            s(&last["timeEnded"]),
            s(&last["state"]),
            last["countExported"],
            last["countEscrowed"]
        ));
        if let Some(error) = last.get("error").filter(|e| e.is_object()) {
            out.push_str(&format!(
                "  error: {}: {}\n",
                s(&error["code"]),
                s(&error["message"])
            ));
        }
    }
    let full = &status["fullSync"];
    if full.is_object() {
        out.push_str(&format!(
            "  full reconcile: last {}, next {} (every {} s)\n",
            s(&full["last"]),
            s(&full["next"]),
            full["intervalSeconds"]
        ));
    }
    let q = &status["quarantine"];
    if q.is_object() {
        out.push_str(&format!(
            "  quarantine: {} since {}, next attempt {}, series began {} ({} re-evaluations)\n",
            s(&q["reason"]),
            s(&q["currentBegan"]),
            s(&q["nextAttempt"]),
            s(&q["seriesBegan"]),
            q["seriesCount"]
        ));
    }
    let staged = &status["stagedDeletes"];
    if staged.is_object() {
        out.push_str(&format!(
            "  deletion guard: {} deletes, {} disables staged; approve with `ctsync restart --pair {} --force-deletes`\n",
            staged["deletes"],
            staged["disables"],
            s(&job["id"])
        ));
    }
    out
}

/// Percent-encodes a pair name for a path segment.
fn encode(pair: &str) -> String {
    url::form_urlencoded::byte_serialize(pair.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

async fn post(connection: &Connection, pair: &str, action: &str, body: Option<Value>) -> ExitCode {
    let client = match Client::new(connection) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ctsync: {e}");
            return ExitCode::from(super::EXIT_USAGE);
        }
    };
    let path = format!("/v1/jobs/{}/{action}", encode(pair));
    match client.call(reqwest::Method::POST, &path, body).await {
        Ok(_) => {
            println!("{pair}: {action} accepted");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

pub async fn pause(args: PairArgs) -> anyhow::Result<ExitCode> {
    Ok(post(&args.connection, &args.pair, "pause", None).await)
}

pub async fn start(args: PairArgs) -> anyhow::Result<ExitCode> {
    Ok(post(&args.connection, &args.pair, "start", None).await)
}

pub async fn run_now(args: PairArgs) -> anyhow::Result<ExitCode> {
    Ok(post(&args.connection, &args.pair, "run-now", None).await)
}

pub async fn restart(args: RestartArgs) -> anyhow::Result<ExitCode> {
    let scope = reset_scope(&args.reset_scope, args.force_deletes, args.full);
    let body = json!({"criteria": {"resetScope": scope}});
    Ok(post(&args.connection, &args.pair, "restart", Some(body)).await)
}

/// The resetScope the flags ask for; `--force-deletes` alone is just ForceDeletes.
fn reset_scope(given: &str, force_deletes: bool, full: bool) -> String {
    if full {
        return "Full".into();
    }
    let mut parts: Vec<&str> = given
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if force_deletes && !parts.iter().any(|p| p.eq_ignore_ascii_case("ForceDeletes")) {
        parts.push("ForceDeletes");
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_flags_make_graph_reset_scopes() {
        assert_eq!(reset_scope("", false, false), "");
        assert_eq!(reset_scope("", true, false), "ForceDeletes");
        assert_eq!(
            reset_scope("Watermark, Escrows", true, false),
            "Watermark,Escrows,ForceDeletes"
        );
        assert_eq!(reset_scope("Watermark", false, true), "Full");
    }

    #[test]
    fn pair_names_are_encoded_for_paths() {
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
        assert_eq!(encode("contoso-to-fabrikam"), "contoso-to-fabrikam");
    }
}
