//! The pure planner (`ctsync::plan::plan`) at 100,000 and 1,000,000 source users: a fresh state
//! (every user is created, the initial cycle) and a full reconcile of linked, unchanged users
//! (every user is a skip). Run with `cargo bench --bench planner`; `-- fresh/100k` picks one.
//!
//! Besides criterion's times, each case prints the memory it holds per user, measured by a
//! counting allocator: the input (what the engine hands the planner) and the peak the planner
//! adds on top of it while planning (the plan it returns included).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ctsync::plan::{
    AllowedActions, Anchor, DeletionGuardSettings, DeprovisionAction, DesiredAttributes,
    ManagedUser, ManagerReference, Membership, PlanInput, PlanSettings, ScopeVerdict,
    SourceCoverage, SourceReadKind, SourceUser, plan,
};
use serde_json::{Value, json};

/// Counts live and peak heap bytes, so the bench can say what planning holds per user.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            let live = if new_size >= layout.size() {
                LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed)
                    + (new_size - layout.size())
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed)
                    - (layout.size() - new_size)
            };
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const TENANT: &str = "5c000000-0000-4000-8000-00000000000a";
const ANCHOR_ATTRIBUTE: &str = "extension_0123456789abcdef0123456789abcdef_ctsyncAnchor";
const DEPARTMENTS: [&str; 8] = [
    "Sales",
    "Engineering",
    "Finance",
    "Marketing",
    "Operations",
    "Legal",
    "Support",
    "Research",
];
const CITIES: [(&str, &str); 4] = [
    ("Seattle", "US"),
    ("London", "GB"),
    ("Paris", "FR"),
    ("Munich", "DE"),
];

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_default()
}

fn object_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

/// What the default mapping set makes of a generated user (17 attributes, a manager).
fn source_user(i: usize) -> SourceUser {
    let upn = format!("user{i}@contoso-bench.onmicrosoft.com");
    let (city, country) = CITIES[i % CITIES.len()];
    let always = [
        ("accountEnabled", json!(true)),
        ("city", json!(city)),
        ("companyName", json!("Contoso")),
        ("country", json!(country)),
        ("department", json!(DEPARTMENTS[i % DEPARTMENTS.len()])),
        ("displayName", json!(format!("User {i}"))),
        ("employeeId", json!(format!("{}", 1_000_000 + i))),
        ("givenName", json!("Adele")),
        ("jobTitle", json!("Engineer")),
        ("mail", json!(upn)),
        ("mailNickname", json!(format!("user{i}"))),
        ("postalCode", json!("98052")),
        ("preferredLanguage", json!("en-US")),
        ("showInAddressList", json!(true)),
        ("state", json!("WA")),
        ("streetAddress", json!("1 Main St")),
        ("surname", json!(format!("Surname{i}"))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    SourceUser {
        object_id: object_id(i),
        user_principal_name: Some(upn),
        deleted: false,
        account_enabled: true,
        membership: Membership::InternalMember,
        scope: ScopeVerdict::InScope,
        desired: DesiredAttributes {
            always,
            on_create: [("userType".to_owned(), json!("Member"))]
                .into_iter()
                .collect(),
        },
        manager: if i == 0 {
            ManagerReference::Clear
        } else {
            ManagerReference::Set {
                source_object_id: object_id(i / 10),
            }
        },
        matching: Vec::new(),
        mapping_error: None,
    }
}

/// The store's record of `user` after it was created and exported as it is now.
fn managed(i: usize, user: &SourceUser) -> ManagedUser {
    let anchor = Anchor::new(TENANT, &user.object_id);
    let mut last = user.desired.always.clone();
    last.extend(user.desired.on_create.clone());
    last.insert(ANCHOR_ATTRIBUTE.to_owned(), json!(anchor.as_str()));
    if i > 0 {
        last.insert(
            "manager".to_owned(),
            Value::String(Anchor::new(TENANT, &object_id(i / 10)).to_string()),
        );
    }
    ManagedUser {
        anchor,
        target_id: format!("7a000000-0000-4000-8000-{i:012}"),
        last_exported: last,
        disabled_before_scope_exit: false,
        soft_deleted_by_us_at: None,
    }
}

fn input(users: usize, linked: bool) -> PlanInput {
    let source_users: Vec<SourceUser> = (0..users).map(source_user).collect();
    let managed = if linked {
        source_users
            .iter()
            .enumerate()
            .map(|(i, u)| managed(i, u))
            .collect()
    } else {
        Vec::new()
    };
    PlanInput {
        pair: "contoso-to-fabrikam".into(),
        source_tenant_id: TENANT.into(),
        now: now(),
        settings: PlanSettings {
            anchor_attribute: ANCHOR_ATTRIBUTE.into(),
            deprovision: DeprovisionAction::SoftDelete,
            allowed: AllowedActions::default(),
            drift_correction: false,
            deletion_guard: DeletionGuardSettings::default(),
        },
        source_read: SourceCoverage {
            kind: SourceReadKind::Full,
            complete: true,
        },
        inbound_sync_allowed: true,
        approved_deletes: Default::default(),
        source_users,
        managed,
        live_managed: None,
        pending_creates: Vec::new(),
        target_users: Vec::new(),
        target_read_complete: false,
        escrowed: Vec::new(),
    }
}

/// Builds the input and plans it once, printing the bytes held per user.
fn measure_memory(name: &str, users: usize, linked: bool) -> PlanInput {
    let before = LIVE.load(Ordering::Relaxed);
    let input = input(users, linked);
    let after_input = LIVE.load(Ordering::Relaxed);
    PEAK.store(after_input, Ordering::Relaxed);
    let plan = plan(&input);
    let peak = PEAK.load(Ordering::Relaxed);
    let held = LIVE.load(Ordering::Relaxed);
    let per_user = |bytes: usize| bytes as f64 / users as f64;
    eprintln!(
        "planner/{name}: input {:.0} B/user, planning peak {:.0} B/user above the input, \
         plan kept {:.0} B/user ({} entries)",
        per_user(after_input - before),
        per_user(peak - after_input),
        per_user(held - after_input),
        plan.entries().len()
    );
    drop(plan);
    input
}

fn bench_planner(c: &mut Criterion) {
    let mut group = c.benchmark_group("planner");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    for (name, users, linked) in [
        ("fresh/100k", 100_000, false),
        ("linked-unchanged/100k", 100_000, true),
        ("fresh/1M", 1_000_000, false),
    ] {
        let input = measure_memory(name, users, linked);
        group.throughput(Throughput::Elements(users as u64));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| black_box(plan(black_box(&input))))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_planner);
criterion_main!(benches);
