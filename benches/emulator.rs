//! Emulator throughput over loopback: a 999-user page read, a user PATCH and an invitation
//! (the create path of a sync), against a 10,000-user tenant. Criterion reports elements/s = requests/s.
//! Run: `cargo bench --bench emulator`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ctsync::emulator::seed::{AppSeed, ServicePrincipalSeed, TenantSeed, UserSeed};
use ctsync::emulator::{EmulatorOptions, Seed, spawn};
use serde_json::{Map, Value, json};

const TENANT: &str = "22222222-0000-0000-0000-000000000002";
const APP: &str = "aaaaaaaa-1111-1111-1111-111111111111";
const USERS: usize = 10_000;

fn seed() -> Seed {
    let users = (0..USERS)
        .map(|i| {
            let mut p = Map::new();
            p.insert(
                "userPrincipalName".into(),
                json!(format!("user{i:05}@fabrikam.com")),
            );
            p.insert("displayName".into(), json!(format!("User {i}")));
            p.insert("mail".into(), json!(format!("user{i:05}@fabrikam.com")));
            p.insert("department".into(), json!("Sales"));
            UserSeed {
                manager: None,
                properties: p,
            }
        })
        .collect();
    Seed {
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
            users,
            ..TenantSeed::default()
        }],
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let handle = rt
        .block_on(spawn(
            seed(),
            EmulatorOptions {
                throttling: false,
                ..EmulatorOptions::default()
            },
        ))
        .expect("emulator starts");
    let base = handle.base_url();
    let http = reqwest::Client::new();
    let token: String = rt.block_on(async {
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
    });
    let user_id = handle.directory().tenants[TENANT]
        .users
        .keys()
        .next()
        .cloned()
        .expect("a user");

    let mut group = c.benchmark_group("emulator");
    group.throughput(Throughput::Elements(1));
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
    let patch = format!("{base}/v1.0/users/{user_id}");
    let mut n = 0u64;
    group.bench_function("patch_user", |b| {
        b.iter(|| {
            n += 1;
            rt.block_on(async {
                let resp = http
                    .patch(&patch)
                    .bearer_auth(&token)
                    .json(&json!({"jobTitle": format!("t{n}")}))
                    .send()
                    .await
                    .expect("patch");
                assert_eq!(resp.status().as_u16(), 204);
            })
        })
    });
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
    group.finish();
    rt.block_on(handle.shutdown()).expect("shutdown");
}

criterion_group!(benches, bench);
criterion_main!(benches);
