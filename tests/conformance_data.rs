//! Makes a missing conformance data set visible in the test result itself.
//!
//! The expression, scoping and Graph-shape conformance tests read Microsoft's documented
//! examples from `CTSYNC_CONFORMANCE_DIR` (default `../shared/conformance`), which is never
//! copied into the repository. Without it those tests pass having checked nothing, and libtest
//! has no way for a running test to say "skipped". So this binary has its own small harness
//! (`harness = false`, speaking libtest's command line as nextest and `cargo test` use it)
//! and decides at listing time:
//!
//! - data present: one passing test per data file, which checks that the file is there and is
//!   JSON;
//! - data missing: one **ignored** test whose name says so and names the path looked at, e.g.
//!   `skipped: no conformance data at /src/shared/conformance (set CTSYNC_CONFORMANCE_DIR)`.
//!   nextest counts it in the summary (`… passed, 1 skipped`) and prints it as `SKIP` with
//!   `--status-level skip`; `cargo test` lists it as `ignored`. Run on purpose
//!   (`--run-ignored only`), it fails with the same explanation.

use std::path::PathBuf;
use std::process::ExitCode;

/// The data files the conformance tests read.
const FILES: &[&str] = &[
    "expression-vectors.json",
    "scoping-vectors.json",
    "graph-v1-csdl-subset.json",
];

/// The folder of Graph documentation examples (`tests/emulator/conformance.rs`).
const EXAMPLES: &str = "graph-examples";

/// Where the conformance tests look, resolved the same way they do.
fn conformance_dir() -> PathBuf {
    std::env::var_os("CTSYNC_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance"))
}

struct Test {
    name: String,
    ignored: bool,
    run: Box<dyn Fn() -> Result<(), String>>,
}

fn tests() -> Vec<Test> {
    let mut tests = data_tests();
    tests.push(Test {
        name: "harness::missing_data_is_listed_as_a_skip_naming_the_path".into(),
        ignored: false,
        run: Box::new(missing_data_is_listed_as_a_skip),
    });
    tests
}

/// Lists this very binary against a folder that does not exist, as nextest would.
fn missing_data_is_listed_as_a_skip() -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let missing = std::env::temp_dir().join("ctsync-no-conformance-data-here");
    let list = |extra: &[&str]| -> Result<String, String> {
        let out = std::process::Command::new(&exe)
            .args(["--list", "--format", "terse"])
            .args(extra)
            .env("CTSYNC_CONFORMANCE_DIR", &missing)
            .output()
            .map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let expected = format!(
        "skipped: no conformance data at {} (set CTSYNC_CONFORMANCE_DIR): test",
        missing.display()
    );
    let ignored = list(&["--ignored"])?;
    if !ignored.lines().any(|l| l == expected) {
        return Err(format!("--ignored listing lacks `{expected}`:\n{ignored}"));
    }
    let all = list(&[])?;
    if all.lines().any(|l| l.starts_with("present::")) {
        return Err(format!("data tests listed without data:\n{all}"));
    }
    Ok(())
}

fn data_tests() -> Vec<Test> {
    let dir = conformance_dir();
    if !dir.is_dir() {
        let shown = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
        let name = format!(
            "skipped: no conformance data at {} (set CTSYNC_CONFORMANCE_DIR)",
            shown.display()
        );
        let message = format!(
            "{name}: the expression, scoping and Graph-shape conformance tests passed without \
             checking anything"
        );
        return vec![Test {
            name,
            ignored: true,
            run: Box::new(move || Err(message.clone())),
        }];
    }
    let mut tests: Vec<Test> = FILES
        .iter()
        .map(|file| {
            let path = dir.join(file);
            Test {
                name: format!("present::{file}"),
                ignored: false,
                run: Box::new(move || {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    serde_json::from_str::<serde_json::Value>(&text)
                        .map(drop)
                        .map_err(|e| format!("{}: not JSON: {e}", path.display()))
                }),
            }
        })
        .collect();
    let examples = dir.join(EXAMPLES);
    tests.push(Test {
        name: format!("present::{EXAMPLES}"),
        ignored: false,
        run: Box::new(move || {
            let count = std::fs::read_dir(&examples)
                .map_err(|e| format!("{}: {e}", examples.display()))?
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .count();
            if count == 0 {
                return Err(format!("{}: no *.json examples", examples.display()));
            }
            Ok(())
        }),
    });
    tests
}

/// The part of libtest's command line that nextest and `cargo test` use.
#[derive(Default)]
struct Args {
    list: bool,
    ignored: bool,
    include_ignored: bool,
    exact: bool,
    filters: Vec<String>,
    skips: Vec<String>,
}

fn parse_args() -> Args {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--list" => args.list = true,
            "--ignored" => args.ignored = true,
            "--include-ignored" => args.include_ignored = true,
            "--exact" => args.exact = true,
            "--skip" => args.skips.extend(it.next()),
            // Options with a value this harness does not need.
            "--format" | "--test-threads" | "--color" | "-Z" | "--logfile" => {
                it.next();
            }
            other if other.starts_with('-') => {}
            filter => args.filters.push(filter.to_owned()),
        }
    }
    args
}

fn selected(args: &Args, test: &Test) -> bool {
    let matches = |pattern: &String| {
        if args.exact {
            test.name == *pattern
        } else {
            test.name.contains(pattern.as_str())
        }
    };
    let by_kind = if args.include_ignored {
        true
    } else {
        test.ignored == args.ignored
    };
    by_kind
        && (args.filters.is_empty() || args.filters.iter().any(matches))
        && !args.skips.iter().any(|s| test.name.contains(s.as_str()))
}

fn main() -> ExitCode {
    let args = parse_args();
    let tests = tests();
    if args.list {
        // With `--ignored`, libtest lists only the ignored tests; nextest relies on that.
        for test in tests.iter().filter(|t| !args.ignored || t.ignored) {
            println!("{}: test", test.name);
        }
        return ExitCode::SUCCESS;
    }
    let chosen: Vec<&Test> = tests.iter().filter(|t| selected(&args, t)).collect();
    let ignored = tests
        .iter()
        .filter(|t| t.ignored && !chosen.iter().any(|c| c.name == t.name))
        .count();
    println!("\nrunning {} tests", chosen.len());
    for test in tests.iter().filter(|t| t.ignored && !selected(&args, t)) {
        println!("test {} ... ignored", test.name);
    }
    let mut failed = Vec::new();
    for test in &chosen {
        match (test.run)() {
            Ok(()) => println!("test {} ... ok", test.name),
            Err(message) => {
                println!("test {} ... FAILED", test.name);
                eprintln!("---- {} ----\n{message}", test.name);
                failed.push(test.name.clone());
            }
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed; {ignored} ignored\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        chosen.len() - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(101)
    }
}
