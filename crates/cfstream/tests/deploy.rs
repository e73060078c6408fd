//! The examples in `deploy/` run what they say: each one's arguments are
//! parsed by the real `cfstream` (clap stops at the first argument it does
//! not know, so a trailing unknown flag is reached only when every argument
//! before it parsed, values included), each asks `--shard auto` with the
//! engine's own task count, and each names the image of this version.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn deploy(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(name)
}

fn yaml(name: &str) -> Value {
    serde_norway::from_str(&std::fs::read_to_string(deploy(name)).unwrap()).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// The `name` of each entry of a list (environment variables, secrets).
fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect()
}

/// `cfstream ARGS` parses: the error is about the sentinel after them.
fn assert_parses(example: &str, args: &[String]) {
    let out = Command::new(assert_cmd::cargo::cargo_bin("cfstream"))
        .env_clear()
        .args(args)
        .arg("--not-a-flag-zz")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unexpected argument '--not-a-flag-zz'"),
        "{example}: cfstream {args:?} does not parse:\n{stderr}"
    );
    assert!(
        args.iter().any(|a| a == "--shard=auto"),
        "{example}: {args:?}"
    );
    assert!(
        args.iter().any(|a| a == "--log-format=json"),
        "{example}: {args:?}"
    );
}

fn assert_image(example: &str, image: &str, registry: &str) {
    assert_eq!(
        image,
        format!("{registry}/cfstream:{}", env!("CARGO_PKG_VERSION")),
        "{example}: the image of this version, in the documented placeholder registry"
    );
}

#[test]
fn the_kubernetes_indexed_job() {
    let job = yaml("export-indexed-job.yaml");
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let args = strings(&container["args"]);
    assert_parses("export-indexed-job.yaml", &args);
    // Kubernetes gives no count: --shards is the Job's completions.
    let completions = job["spec"]["completions"].as_u64().unwrap();
    assert!(
        args.contains(&format!("--shards={completions}")),
        "{args:?}"
    );
    assert_image(
        "export-indexed-job.yaml",
        container["image"].as_str().unwrap(),
        "registry.example",
    );
}

#[test]
fn the_aws_batch_job_definition() {
    let def: Value =
        serde_json::from_slice(&std::fs::read(deploy("aws-batch-job-definition.json")).unwrap())
            .unwrap();
    let container = &def["containerProperties"];
    let args = strings(&container["command"]);
    assert_parses("aws-batch-job-definition.json", &args);
    // AWS Batch gives the count (AWS_BATCH_JOB_ARRAY_SIZE): no --shards to
    // keep in step with the submitted array size.
    assert!(!args.iter().any(|a| a.starts_with("--shards")), "{args:?}");
    assert_eq!(
        names(&container["secrets"]),
        ["CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID"]
    );
    assert!(def["retryStrategy"]["attempts"].as_u64().unwrap() > 1);
    assert_image(
        "aws-batch-job-definition.json",
        container["image"].as_str().unwrap(),
        "123456789012.dkr.ecr.us-east-1.amazonaws.com",
    );
}

#[test]
fn the_cloud_run_job() {
    let job = yaml("cloud-run-job.yaml");
    let spec = &job["spec"]["template"]["spec"];
    let container = &spec["template"]["spec"]["containers"][0];
    let args = strings(&container["args"]);
    assert_parses("cloud-run-job.yaml", &args);
    assert!(!args.iter().any(|a| a.starts_with("--shards")), "{args:?}");
    assert!(spec["taskCount"].as_u64().unwrap() > 1);
    assert_eq!(
        names(&container["env"]),
        ["CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID"]
    );
    assert_image(
        "cloud-run-job.yaml",
        container["image"].as_str().unwrap(),
        "us-docker.pkg.dev/PROJECT_ID/cfstream",
    );
}

#[test]
fn a_wrong_argument_is_caught() {
    let out = Command::new(assert_cmd::cargo::cargo_bin("cfstream"))
        .env_clear()
        .args(["export", "--all", "--type=sometimes", "--not-a-flag-zz"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("unexpected argument '--not-a-flag-zz'")
    );
}
