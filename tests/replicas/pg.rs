//! A PostgreSQL schema of its own for each test, in `CTSYNC_TEST_POSTGRES_URL` (dropped when
//! the test ends); tests report a skip when the variable is unset.

pub const URL_VAR: &str = "CTSYNC_TEST_POSTGRES_URL";

pub struct PgSchema {
    pub url: String,
    pub schema: String,
}

impl PgSchema {
    /// None, with a visible note, without a test database.
    pub fn new(test: &str) -> Option<PgSchema> {
        let url = match std::env::var(URL_VAR) {
            Ok(url) if !url.is_empty() => url,
            _ => {
                eprintln!("SKIPPED {test}: {URL_VAR} is not set");
                return None;
            }
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let mut schema = format!("ctr_{}_{nanos:x}_{test}", std::process::id()).to_lowercase();
        schema.truncate(63);
        Some(PgSchema { url, schema })
    }

    /// `--store URL --store-schema NAME`.
    pub fn args(&self) -> [String; 4] {
        [
            "--store".into(),
            self.url.clone(),
            "--store-schema".into(),
            self.schema.clone(),
        ]
    }

    /// A plain connection with this schema first on the search path.
    #[allow(dead_code)] // used by the lease tests
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("connect to the test database");
        tokio::spawn(conn);
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {0}; SET search_path = {0}",
                self.schema
            ))
            .await
            .expect("schema");
        client
    }

    pub async fn store(&self) -> ctsync::store::PostgresStore {
        ctsync::store::PostgresStore::connect(&ctsync::store::PostgresOptions {
            url: secrecy::SecretString::from(self.url.clone()),
            schema: Some(self.schema.clone()),
        })
        .await
        .expect("store")
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// Kills the daemons a test started when the test ends, however it ends: a failed assertion
/// must not leave a replica running, or frozen by SIGSTOP with its connections open (the
/// schema's drop would wait on its locks). Declare it after the `PgSchema`, so it runs first.
pub struct Reaper(pub Vec<u32>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in &self.0 {
            for sig in ["-CONT", "-KILL"] {
                let _ = std::process::Command::new("kill")
                    .args([sig, &pid.to_string()])
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
    }
}
