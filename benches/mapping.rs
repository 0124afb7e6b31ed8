//! Mapping and scoping throughput: the default CTS mapping set and a typical scoping filter over
//! 100,000 source users. Run with `cargo bench --bench mapping`.

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ctsync::expr::EvalContext;
use ctsync::mapping::{MapMode, MappingSet, SourceAttributes};
use ctsync::scope::{self, Assignment, CompiledFilters, Membership, ScopeSetting, ScopingFilter};
use serde_json::{Map, Value, json};

const USERS: usize = 100_000;

fn users() -> Vec<Map<String, Value>> {
    (0..USERS)
        .map(|i| {
            let department = ["Sales", "Engineering", "HR", "Legal"][i % 4];
            let user = json!({
                "id": format!("00000000-0000-0000-0000-{i:012}"),
                "accountEnabled": i % 50 != 0,
                "displayName": format!("User {i}"),
                "givenName": "Given",
                "surname": format!("Surname{i}"),
                "mail": format!("user{i}@contoso.com"),
                "mailNickname": format!("user{i}"),
                "userPrincipalName": format!("user{i}@contoso.com"),
                "userType": "Member",
                "department": department,
                "jobTitle": if i % 3 == 0 { Value::Null } else { json!("Engineer") },
                "companyName": "Contoso",
                "employeeId": format!("{}", 1_000_000 + i),
                "streetAddress": "1 Main St",
                "city": "Redmond",
                "state": "WA",
                "postalCode": "98052",
                "country": "US",
                "preferredLanguage": "en-US",
                "manager": if i == 0 { Value::Null } else { json!({"id": format!("m{}", i / 10)}) },
            });
            match user {
                Value::Object(map) => map,
                _ => unreachable!("json! object literal"),
            }
        })
        .collect()
}

fn bench_default_mappings(c: &mut Criterion) {
    let users = users();
    let set = MappingSet::cts_default();
    let mut group = c.benchmark_group("mapping");
    group.sample_size(10);
    group.throughput(Throughput::Elements(USERS as u64));
    group.bench_function("default set, 100k users", |b| {
        b.iter(|| {
            let mut random = || 7_u64;
            let is_unique = |_: &str| true;
            let mut ctx = EvalContext {
                now: Utc
                    .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                    .single()
                    .unwrap_or_default(),
                random: &mut random,
                is_unique: &is_unique,
            };
            for user in &users {
                black_box(set.map_user(&SourceAttributes::new(user), MapMode::Create, &mut ctx));
            }
        })
    });
    group.finish();
}

fn bench_scoping(c: &mut Criterion) {
    let users = users();
    let filters: Vec<ScopingFilter> = serde_json::from_value(json!([
        {"title": "Engineers", "clauses": [
            {"attribute": "department", "operator": "EQUALS", "value": "Engineering"},
            {"attribute": "employeeId", "operator": "REGEX MATCH", "value": "(1[0-9][0-9][0-9][0-9][0-9][0-9])"},
            {"attribute": "jobTitle", "operator": "IS NOT NULL"}]},
        {"title": "Sales", "clauses": [
            {"attribute": "department", "operator": "EQUALS", "value": "Sales"}]}
    ]))
    .expect("filters parse");
    let compiled = CompiledFilters::compile(&filters).expect("filters compile");
    let mut group = c.benchmark_group("scoping");
    group.sample_size(10);
    group.throughput(Throughput::Elements(USERS as u64));
    group.bench_function("two filters, 100k users", |b| {
        b.iter(|| {
            for user in &users {
                let source = SourceAttributes::new(user);
                black_box(scope::decide(
                    ScopeSetting::All,
                    Assignment::Direct,
                    Membership::of(&source),
                    &source,
                    &compiled,
                ));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_default_mappings, bench_scoping);
criterion_main!(benches);
