//! `offerloop policy init|decide|learn|evaluate` as a process: model files, JSONL in and out, located
//! errors, atomic replacement.

use std::path::Path;

use serde_json::{Value, json};

use crate::{offerloop, repo, text};

/// Writes `lines` as JSON Lines.
fn write_jsonl(path: &Path, lines: &[Value]) {
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, body).unwrap();
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A work directory with the minimal use case (`offer` {none, pct10} × `channel` {email, sms}; SMS only
/// with `sms_ok`; no SMS discount) and a uniform model of it.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("tests/fixtures/valid/minimal.toml"),
        dir.path().join("uc.toml"),
    )
    .unwrap();
    let out = offerloop(
        &[
            "policy",
            "init",
            "--use-case",
            "uc.toml",
            "--algorithm",
            "uniform",
            "--out",
            "model.json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("wrote model.json"),
        "{}",
        text(&out.stdout)
    );
    dir
}

fn contexts(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let plan = ["gold", "silver"][i % 2];
            json!({"customer_id": format!("c{i:03}"), "day": 0,
                   "features": {"plan": plan, "sms_ok": i % 3 == 0, "unused": i}})
        })
        .collect()
}

fn model(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("model.json")).unwrap()).unwrap()
}

fn decide(dir: &Path, out: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "policy",
        "decide",
        "--model",
        "model.json",
        "--contexts",
        "day.jsonl",
        "--out",
        out,
    ];
    args.extend(extra);
    offerloop(&args, dir)
}

/// No temporary files are left behind in `dir`.
fn assert_no_temp_files(dir: &Path) {
    let leftovers: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn policy_init_writes_a_self_contained_versioned_model() {
    let dir = setup();
    let m = model(dir.path());
    assert_eq!(m["format"], 1);
    assert_eq!(m["use_case_file"], "uc.toml");
    assert_eq!(
        m["use_case"].as_str().unwrap(),
        std::fs::read_to_string(dir.path().join("uc.toml")).unwrap()
    );
    assert_eq!(m["rounds"], 0);
    assert_eq!(m["snapshot"]["algorithm"], "uniform");
    // Refuses to overwrite a model (and its learning) unless forced.
    let again = offerloop(
        &[
            "policy",
            "init",
            "--use-case",
            "uc.toml",
            "--algorithm",
            "uniform",
            "--out",
            "model.json",
        ],
        dir.path(),
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("already exists; pass --force"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn policy_init_reports_an_invalid_use_case_as_validate_does() {
    let dir = tempfile::tempdir().unwrap();
    let bad = repo().join("tests/fixtures/invalid/many-problems.toml");
    std::fs::copy(&bad, dir.path().join("bad.toml")).unwrap();
    let init = offerloop(
        &["policy", "init", "--use-case", "bad.toml", "--out", "m.json"],
        dir.path(),
    );
    let validate = offerloop(&["validate", "bad.toml"], dir.path());
    assert_eq!(init.status.code(), Some(1));
    assert_eq!(text(&init.stderr), text(&validate.stderr));
    assert!(!dir.path().join("m.json").exists());
    let unknown = offerloop(
        &[
            "policy",
            "init",
            "--use-case",
            "bad.toml",
            "--algorithm",
            "thompson",
            "--out",
            "m.json",
        ],
        dir.path(),
    );
    assert_eq!(unknown.status.code(), Some(2), "a usage error, as clap reports them");
    assert!(
        text(&unknown.stderr).contains("unknown algorithm `thompson`"),
        "{}",
        text(&unknown.stderr)
    );
}

#[test]
fn policy_init_decide_learn_decide_round_trip() {
    let dir = setup();
    let d = dir.path();
    let input = contexts(60);
    write_jsonl(&d.join("day.jsonl"), &input);

    let out = decide(d, "decisions.jsonl", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).starts_with("decided 60 customers → decisions.jsonl (model version uniform/0, round 0)"),
        "{}",
        text(&out.stderr)
    );
    let decisions = read_jsonl(&d.join("decisions.jsonl"));
    assert_eq!(decisions.len(), input.len());
    // Keys in a fixed order, the action's dimensions in the use case's order.
    let first = std::fs::read_to_string(d.join("decisions.jsonl")).unwrap();
    assert!(
        first.starts_with(r#"{"customer_id":"c000","action":{"offer":"#)
            && first.lines().next().unwrap().contains(r#"","channel":""#),
        "{first}"
    );
    for (i, (c, dec)) in input.iter().zip(&decisions).enumerate() {
        assert_eq!(dec["customer_id"], c["customer_id"], "input order");
        let action = dec["action"].as_object().unwrap();
        assert_eq!(action.len(), 2);
        let (offer, channel) = (action["offer"].as_str().unwrap(), action["channel"].as_str().unwrap());
        assert!(["none", "pct10"].contains(&offer) && ["email", "sms"].contains(&channel));
        assert!(!(offer == "pct10" && channel == "sms"), "excluded by a rule");
        if i % 3 != 0 {
            assert_eq!(channel, "email", "SMS only with consent");
        }
        let p = dec["propensity"].as_f64().unwrap();
        assert!(p > 0.0 && p <= 1.0, "{p}");
        // Uniform: 1 / eligible count (3 with SMS consent, 2 without).
        assert_eq!(p, if i % 3 == 0 { 1.0 / 3.0 } else { 0.5 });
        assert_eq!(dec["model_version"], "uniform/0");
    }

    // The same model and input decide identically.
    let again = decide(d, "again.jsonl", &[]);
    assert!(again.status.success());
    assert_eq!(
        std::fs::read(d.join("decisions.jsonl")).unwrap(),
        std::fs::read(d.join("again.jsonl")).unwrap()
    );

    // Learn from the decisions' rewards.
    let feedback: Vec<Value> = input
        .iter()
        .zip(&decisions)
        .map(|(c, dec)| {
            json!({"customer_id": c["customer_id"], "features": c["features"], "action": dec["action"],
                   "propensity": dec["propensity"], "reward": if dec["action"]["offer"] == "pct10" { 1 } else { 0 }})
        })
        .collect();
    write_jsonl(&d.join("feedback.jsonl"), &feedback);
    let learn = offerloop(
        &[
            "policy",
            "learn",
            "--model",
            "model.json",
            "--feedback",
            "feedback.jsonl",
        ],
        d,
    );
    assert!(learn.status.success(), "{}", text(&learn.stderr));
    assert_eq!(
        text(&learn.stderr),
        "learned 60 records from feedback.jsonl → model.json (model version uniform/1, round 1)\n"
    );
    let m = model(d);
    assert_eq!(m["rounds"], 1);
    assert_no_temp_files(d);

    // The next decisions come from the new model, in the next round.
    let next = decide(d, "next.jsonl", &[]);
    assert!(next.status.success(), "{}", text(&next.stderr));
    assert!(
        text(&next.stderr).contains("(model version uniform/1, round 1)"),
        "{}",
        text(&next.stderr)
    );
    let next = read_jsonl(&d.join("next.jsonl"));
    assert_eq!(next.len(), 60);
    assert!(next.iter().all(|l| l["model_version"] == "uniform/1"));
    assert_ne!(
        next.iter().map(|l| &l["action"]).collect::<Vec<_>>(),
        decisions.iter().map(|l| &l["action"]).collect::<Vec<_>>(),
        "another round draws anew"
    );
    // `--round` replays a round.
    let replay = decide(d, "replay.jsonl", &["--round", "0"]);
    assert!(replay.status.success());
    let replay = read_jsonl(&d.join("replay.jsonl"));
    assert_eq!(
        replay.iter().map(|l| &l["action"]).collect::<Vec<_>>(),
        decisions.iter().map(|l| &l["action"]).collect::<Vec<_>>()
    );
}

#[test]
fn policy_learn_that_fails_leaves_the_model_byte_identical() {
    let dir = setup();
    let d = dir.path();
    let before = std::fs::read(d.join("model.json")).unwrap();
    let good = json!({"customer_id": "c1", "features": {"plan": "gold", "sms_ok": true},
                      "action": {"offer": "none", "channel": "sms"}, "propensity": 0.5, "reward": 1.0});
    let bad = json!({"customer_id": "c2", "features": {"plan": "gold", "sms_ok": true},
                     "action": {"offer": "pct15", "channel": "sms"}, "propensity": 0.5, "reward": 1.0});
    write_jsonl(&d.join("feedback.jsonl"), &[good.clone(), good.clone(), bad]);
    let learn = offerloop(
        &[
            "policy",
            "learn",
            "--model",
            "model.json",
            "--feedback",
            "feedback.jsonl",
        ],
        d,
    );
    assert_eq!(learn.status.code(), Some(1));
    assert_eq!(
        text(&learn.stderr),
        "error: feedback.jsonl:3: `action`: unknown option `pct15` in dimension `offer` (options: none, pct10)\n"
    );
    assert_eq!(std::fs::read(d.join("model.json")).unwrap(), before);
    assert_no_temp_files(d);

    // With --skip-bad the good lines are learned and the bad one counted.
    let learn = offerloop(
        &[
            "policy",
            "learn",
            "--model",
            "model.json",
            "--feedback",
            "feedback.jsonl",
            "--skip-bad",
        ],
        d,
    );
    assert!(learn.status.success(), "{}", text(&learn.stderr));
    let stderr = text(&learn.stderr);
    assert!(stderr.starts_with("learned 2 records from feedback.jsonl"), "{stderr}");
    assert!(
        stderr.contains("warning: skipped feedback.jsonl:3: `action`: unknown option `pct15`"),
        "{stderr}"
    );
    assert!(stderr.ends_with("skipped 1 bad line (--skip-bad)\n"), "{stderr}");
    assert_eq!(model(d)["rounds"], 1);
}

#[test]
fn policy_decide_names_the_file_and_line_of_a_malformed_line() {
    let dir = setup();
    let d = dir.path();
    let mut lines: Vec<String> = contexts(4).iter().map(ToString::to_string).collect();
    lines[1] = r#"{"features": {"plan": "gold"}}"#.to_owned();
    lines.insert(2, String::new()); // blank lines are skipped but counted
    lines[3] = r#"{"customer_id": "c9", "features": {"plan": "gold", "sms_ok": "yes"}}"#.to_owned();
    lines.push("not json".to_owned());
    std::fs::write(d.join("day.jsonl"), lines.join("\n") + "\n").unwrap();

    let out = decide(d, "decisions.jsonl", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "error: day.jsonl:2: missing `customer_id`\n");
    assert!(!d.join("decisions.jsonl").exists(), "nothing half-written");
    assert_no_temp_files(d);

    let out = decide(d, "decisions.jsonl", &["--skip-bad"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("decided 2 customers → decisions.jsonl"), "{stderr}");
    assert!(
        stderr.contains("warning: skipped day.jsonl:2: missing `customer_id`\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning: skipped day.jsonl:4: feature `sms_ok` expects boolean, got text \"yes\"\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning: skipped day.jsonl:6: invalid JSON: "),
        "{stderr}"
    );
    assert!(stderr.ends_with("skipped 3 bad lines (--skip-bad)\n"), "{stderr}");
    let ids: Vec<String> = read_jsonl(&d.join("decisions.jsonl"))
        .iter()
        .map(|l| l["customer_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["c000", "c003"]);
}

#[test]
fn policy_decide_refuses_a_model_of_another_format() {
    let dir = setup();
    let d = dir.path();
    let mut m = model(d);
    m["format"] = json!(99);
    std::fs::write(d.join("model.json"), m.to_string()).unwrap();
    write_jsonl(&d.join("day.jsonl"), &contexts(1));
    let out = decide(d, "decisions.jsonl", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("model.json: model file format 99 cannot be read by this build (it reads format 1)"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn policy_decide_reads_the_bench_harness_customers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let uc = repo().join("examples/bench-harness.toml");
    let out = offerloop(
        &[
            "policy",
            "init",
            "--use-case",
            uc.to_str().unwrap(),
            "--algorithm",
            "uniform",
            "--out",
            "model.json",
        ],
        d,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A line as the bench harness writes it (sim.py `records()`): numbers and strings, plus `day`.
    let customer = json!({"customer_id": "c003_00042", "day": 3, "features": {
        "tenure_days": 713, "recency_days": 12, "frequency_90d": 3, "monetary_avg": 54.2318,
        "email_open_rate": 0.31, "push_enabled": 1, "sms_opt_in": 0, "age": 41, "cart_abandon_7d": 0,
        "app_sessions_30d": 9, "loyalty_member": 1, "region": "west", "device": "ios",
        "acquisition": "paid_social", "fav_category": "home"}});
    write_jsonl(&d.join("day.jsonl"), &[customer]);
    let out = decide(d, "decisions.jsonl", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = std::fs::read_to_string(d.join("decisions.jsonl")).unwrap();
    let at = |key: &str| line.find(&format!("\"{key}\":")).unwrap();
    assert!(at("offer") < at("channel") && at("channel") < at("send_time"), "{line}");
    let decision: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(decision["propensity"], 1.0 / 36.0);
}

#[test]
fn policy_learn_and_decide_with_beta_ts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(repo().join("tests/fixtures/valid/minimal.toml"), d.join("uc.toml")).unwrap();
    let init = offerloop(
        &[
            "policy",
            "init",
            "--use-case",
            "uc.toml",
            "--algorithm",
            "beta_ts",
            "--out",
            "model.json",
        ],
        d,
    );
    assert!(init.status.success(), "{}", text(&init.stderr));
    let input = contexts(40);
    write_jsonl(&d.join("day.jsonl"), &input);
    for day in 0..3 {
        let out = decide(d, "decisions.jsonl", &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let decisions = read_jsonl(&d.join("decisions.jsonl"));
        assert_eq!(decisions.len(), 40);
        let feedback: Vec<Value> = input
            .iter()
            .zip(&decisions)
            .map(|(c, dec)| {
                let p = dec["propensity"].as_f64().unwrap();
                assert!(p > 0.0 && p <= 1.0, "{p}");
                let reward = i32::from(dec["action"]["channel"] == "sms");
                json!({"customer_id": c["customer_id"], "features": c["features"], "action": dec["action"],
                       "propensity": p, "reward": reward})
            })
            .collect();
        write_jsonl(&d.join("feedback.jsonl"), &feedback);
        let learn = offerloop(
            &[
                "policy",
                "learn",
                "--model",
                "model.json",
                "--feedback",
                "feedback.jsonl",
            ],
            d,
        );
        assert!(learn.status.success(), "{}", text(&learn.stderr));
        assert_eq!(model(d)["rounds"], day + 1);
    }
    assert_eq!(model(d)["snapshot"]["algorithm"], "beta_ts");
}

/// The line of the table that starts with `estimator`, as (value, ci_low, ci_high, ess, n).
fn estimate(stdout: &str, estimator: &str) -> Option<Vec<f64>> {
    stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(estimator))
        .map(|l| l.split_whitespace().skip(1).map(|x| x.parse().unwrap()).collect())
}

#[test]
fn policy_evaluate_without_a_model_uses_the_logged_target_propensities() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Half the logs have weight 2 (target 0.5, logged 0.25) and reward 1, half weight 0.5 and reward 0.
    let logs: Vec<Value> = (0..200)
        .map(|i| {
            let (target, reward) = if i % 2 == 0 { (0.5, 1.0) } else { (0.125, 0.0) };
            json!({"customer_id": format!("c{i}"), "features": {}, "action": {"offer": "none"},
                   "propensity": 0.25, "reward": reward, "target_propensity": target, "position": 1})
        })
        .collect();
    write_jsonl(&d.join("logs.jsonl"), &logs);
    let out = offerloop(&["policy", "evaluate", "--logs", "logs.jsonl"], d);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let ips = estimate(&stdout, "ips").unwrap_or_else(|| panic!("{stdout}"));
    let snips = estimate(&stdout, "snips").unwrap_or_else(|| panic!("{stdout}"));
    // IPS = mean(w·r) = (2·1 + 0.5·0) / 2 = 1; SNIPS = Σw·r / Σw = 2 / 2.5 = 0.8.
    assert!((ips[0] - 1.0).abs() < 1e-9, "{stdout}");
    assert!((snips[0] - 0.8).abs() < 1e-9, "{stdout}");
    assert_eq!(ips[4], 200.0);
    assert!(
        estimate(&stdout, "dm").is_none() && estimate(&stdout, "dr").is_none(),
        "{stdout}"
    );
    assert!(stdout.contains("pass --model"), "{stdout}");

    let json_out = offerloop(&["policy", "evaluate", "--logs", "logs.jsonl", "--json"], d);
    assert!(json_out.status.success());
    let doc: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert_eq!(doc["n"], 200);
    assert_eq!(doc["estimates"][0]["estimator"], "ips");

    // Without a model, a line without its target propensity is an error naming the line.
    let mut logs = logs;
    logs[4].as_object_mut().unwrap().remove("target_propensity");
    write_jsonl(&d.join("logs.jsonl"), &logs);
    let out = offerloop(&["policy", "evaluate", "--logs", "logs.jsonl"], d);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: logs.jsonl:5: missing `target_propensity` (pass --model to compute it from a model)\n"
    );
    let out = offerloop(&["policy", "evaluate", "--logs", "logs.jsonl", "--skip-bad"], d);
    assert!(out.status.success());
    assert!(
        text(&out.stderr).ends_with("skipped 1 bad line (--skip-bad)\n"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("from 199 logged decisions"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn policy_evaluate_a_uniform_model_on_uniform_logs_estimates_the_mean_reward() {
    let dir = setup();
    let d = dir.path();
    let input = contexts(300);
    write_jsonl(&d.join("day.jsonl"), &input);
    let out = decide(d, "decisions.jsonl", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let decisions = read_jsonl(&d.join("decisions.jsonl"));
    let mut total = 0.0;
    let logs: Vec<Value> = input
        .iter()
        .zip(&decisions)
        .enumerate()
        .map(|(i, (c, dec))| {
            let reward = if dec["action"]["offer"] == "pct10" {
                2.0
            } else {
                (i % 3) as f64 * 0.5
            };
            total += reward;
            json!({"customer_id": c["customer_id"], "features": c["features"], "action": dec["action"],
                   "propensity": dec["propensity"], "reward": reward})
        })
        .collect();
    let mean = total / logs.len() as f64;
    write_jsonl(&d.join("logs.jsonl"), &logs);
    let out = offerloop(
        &["policy", "evaluate", "--model", "model.json", "--logs", "logs.jsonl"],
        d,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("off-policy estimates of model.json (uniform/0, round 0) from 300 logged decisions"),
        "{stdout}"
    );
    // The target is the logging policy: every weight is 1, so IPS is the mean reward.
    let ips = estimate(&stdout, "ips").unwrap_or_else(|| panic!("{stdout}"));
    assert!((ips[0] - mean).abs() < 1e-9, "IPS {} vs mean {mean}\n{stdout}", ips[0]);
    for e in ["snips", "dm", "dr", "sndr"] {
        let row = estimate(&stdout, e).unwrap_or_else(|| panic!("no {e}: {stdout}"));
        assert!(
            (row[0] - mean).abs() < 0.25 * mean.max(0.1),
            "{e} {} vs mean {mean}\n{stdout}",
            row[0]
        );
        assert!(row[1] <= row[0] + 1e-9 && row[0] <= row[2] + 1e-9, "{e}: CI {stdout}");
    }
}

#[test]
fn policy_decide_names_the_line_of_a_customer_with_no_eligible_action() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Email only without SMS consent, SMS only with it: a customer whose consent is unknown gets nothing.
    let source = std::fs::read_to_string(repo().join("tests/fixtures/valid/minimal.toml")).unwrap()
        + "\n[[eligibility]]\ndimension = \"channel\"\noption = \"email\"\nwhen = { feature = \"sms_ok\", eq = false }\n";
    let source = source
        .replace("[holdout]", "[holdout]\ncontrol = \"no_message\"")
        .replace(
            "  [holdout.business_as_usual]\n  offer = \"none\"\n  channel = \"email\"\n",
            "",
        );
    std::fs::write(d.join("uc.toml"), source).unwrap();
    let init = offerloop(
        &[
            "policy",
            "init",
            "--use-case",
            "uc.toml",
            "--algorithm",
            "uniform",
            "--out",
            "model.json",
        ],
        d,
    );
    assert!(init.status.success(), "{}", text(&init.stderr));
    let lines = [
        json!({"customer_id": "a", "features": {"sms_ok": true}}),
        json!({"customer_id": "b", "features": {"plan": "gold"}}),
        json!({"customer_id": "c", "features": {"sms_ok": false}}),
    ];
    write_jsonl(&d.join("day.jsonl"), &lines);
    let out = decide(d, "decisions.jsonl", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("error: day.jsonl:2: customer `b`: no eligible joint action"),
        "{}",
        text(&out.stderr)
    );
    assert!(!d.join("decisions.jsonl").exists());
    let out = decide(d, "decisions.jsonl", &["--skip-bad"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ids: Vec<Value> = read_jsonl(&d.join("decisions.jsonl"))
        .iter()
        .map(|l| l["customer_id"].clone())
        .collect();
    assert_eq!(ids, [json!("a"), json!("c")]);
}
