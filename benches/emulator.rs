//! Emulator throughput over loopback, one client, against generated tenants of 10,000 and
//! 100,000 users: the create path of a sync (`POST /invitations`, `POST /users`), a user PATCH
//! and a 999-user page read. Criterion reports elements/s = requests/s; Graph's own limit for
//! one tenant is 150 invitations / 5 s (30/s) and 3,000 writes / 150 s (20/s), so the emulator
//! must stay above 300/s not to be the bottleneck of a benchmark.
//! Run: `cargo bench --bench emulator`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ctsync::emulator::generate::Generate;
use ctsync::emulator::seed::{AppSeed, ServicePrincipalSeed, TenantSeed};
use ctsync::emulator::{EmulatorHandle, EmulatorOptions, Seed, spawn};
use serde_json::{Value, json};

const TENANT: &str = "22222222-0000-0000-0000-000000000002";
const APP: &str = "aaaaaaaa-1111-1111-1111-111111111111";

fn seed(users: usize) -> Seed {
    let mut seed = Seed {
        apps: vec![AppSeed {
            app_id: APP.into(),
            client_secrets: vec!["s".into()],
            ..AppSeed::default()
        }],
        tenants: vec![TenantSeed {
            id: TENANT.into(),
            domains: vec!["fabrikam.onmicrosoft.com".into(), "fabrikam.com".into()],
            guest_invites_allowed: true,
            service_principals: vec![ServicePrincipalSeed {
                app_id: APP.into(),
                permissions: vec!["User.ReadWrite.All".into(), "User.Invite.All".into()],
                ..ServicePrincipalSeed::default()
            }],
            ..TenantSeed::default()
        }],
    };
    Generate::users(users)
        .apply_to(&mut seed)
        .expect("generated tenant");
    seed
}

fn token(rt: &tokio::runtime::Runtime, http: &reqwest::Client, base: &str) -> String {
    rt.block_on(async {
        let body: Value = http
            .post(format!("{base}/{TENANT}/oauth2/v2.0/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", APP),
                ("client_secret", "s"),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("token json");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    })
}

fn start(rt: &tokio::runtime::Runtime, users: usize) -> EmulatorHandle {
    rt.block_on(spawn(
        seed(users),
        EmulatorOptions {
            throttling: false,
            ..EmulatorOptions::default()
        },
    ))
    .expect("emulator starts")
}

fn bench_tenant(c: &mut Criterion, rt: &tokio::runtime::Runtime, users: usize) {
    let handle = start(rt, users);
    let base = handle.base_url();
    let http = reqwest::Client::new();
    let token = token(rt, &http, &base);
    let user_id = handle.directory().tenants[TENANT]
        .users
        .keys()
        .next()
        .cloned()
        .expect("a user");
    let label = format!("{}k", users / 1000);
    let mut group = c.benchmark_group(format!("emulator_{label}"));
    group.throughput(Throughput::Elements(1));
    let invite = format!("{base}/v1.0/invitations");
    let mut i = 0u64;
    group.bench_function("invite_user", |b| {
        b.iter(|| {
            i += 1;
            rt.block_on(async {
                let body = json!({"invitedUserEmailAddress": format!("guest{i}@partner.example"), "inviteRedirectUrl": "https://myapps.microsoft.com", "invitedUserType": "Member"});
                let resp = http.post(&invite).bearer_auth(&token).json(&body).send().await.expect("invite");
                assert_eq!(resp.status().as_u16(), 201);
            })
        })
    });
    let create = format!("{base}/v1.0/users");
    let mut n = 0u64;
    group.bench_function("create_user", |b| {
        b.iter(|| {
            n += 1;
            rt.block_on(async {
                let body = json!({
                    "accountEnabled": true,
                    "displayName": format!("Bench {n}"),
                    "mailNickname": format!("bench{n}"),
                    "userPrincipalName": format!("bench{n}@fabrikam.com"),
                    "mail": format!("bench{n}@fabrikam.com"),
                    "passwordProfile": {"password": "xWwvJ]6NMw+bWH-d", "forceChangePasswordNextSignIn": true},
                });
                let resp = http.post(&create).bearer_auth(&token).json(&body).send().await.expect("create");
                assert_eq!(resp.status().as_u16(), 201);
            })
        })
    });
    let patch = format!("{base}/v1.0/users/{user_id}");
    let mut p = 0u64;
    group.bench_function("patch_user", |b| {
        b.iter(|| {
            p += 1;
            rt.block_on(async {
                let resp = http
                    .patch(&patch)
                    .bearer_auth(&token)
                    .json(&json!({"jobTitle": format!("t{p}")}))
                    .send()
                    .await
                    .expect("patch");
                assert_eq!(resp.status().as_u16(), 204);
            })
        })
    });
    let page = format!(
        "{base}/v1.0/users?$select=id,displayName,mail,userType,accountEnabled,department&$top=999"
    );
    group.bench_function("users_page_999", |b| {
        b.iter(|| {
            rt.block_on(async {
                let resp = http
                    .get(&page)
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("page");
                assert!(resp.status().is_success());
                resp.bytes().await.expect("body")
            })
        })
    });
    group.finish();
    rt.block_on(handle.shutdown()).expect("shutdown");
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    for users in [10_000, 100_000] {
        bench_tenant(c, &rt, users);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .measurement_time(std::time::Duration::from_secs(3))
        .warm_up_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
