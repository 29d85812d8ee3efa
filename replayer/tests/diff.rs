//! `replay diff` on scenario runs: planted regressions are found with their evidence and ranked
//! above noise; green runs that vary by ±20% produce no regression against each other; the
//! outputs are snapshot-tested and the JUnit output parses as JUnit.

use pipetape_replayer::analysis::diff::{self, BaselineRun, Kind, Report, Thresholds};
use pipetape_replayer::analysis::fold::{Fold, RunModel};
use pipetape_replayer::analysis::metrics::{self, MetricSet};
use pipetape_replayer::render::diff as render;
use pipetape_testkit::scenario::Variant;

fn fold(v: &Variant, id: &str) -> RunModel {
    let (recs, start) = v.records(id);
    let mut f = Fold::new(id.into(), start);
    for r in recs {
        f.push(r);
    }
    f.finish()
}

fn metrics_of(v: &Variant, id: &str) -> (MetricSet, RunModel) {
    let m = fold(v, id);
    (metrics::extract(&m), m)
}

fn green(seed: u64) -> Variant {
    Variant {
        jitter: 0.2,
        seed,
        day: seed as u32,
        ..Variant::green()
    }
}

/// Diff of `v` against `n` jittered green runs.
fn diff_against_greens(v: &Variant, n: u64) -> Report {
    let base: Vec<BaselineRun> = (1..=n)
        .map(|s| BaselineRun {
            metrics: metrics_of(&green(s), &format!("g{s}")).0,
            log: None,
        })
        .collect();
    let (run, model) = metrics_of(v, "run");
    diff::compare(&run, Some(&model), &base, Thresholds::default())
}

fn planted(mut v: Variant) -> Variant {
    v.jitter = 0.2;
    v.seed = 99;
    v.day = 30;
    v
}

fn find<'a>(r: &'a Report, metric: &str) -> &'a diff::Finding {
    r.regressions
        .iter()
        .find(|f| f.metric == metric)
        .unwrap_or_else(|| {
            panic!(
                "{metric} not reported; regressions: {:?}",
                r.regressions.iter().map(|f| &f.metric).collect::<Vec<_>>()
            )
        })
}

fn rank_of(r: &Report, metric: &str) -> usize {
    r.regressions
        .iter()
        .position(|f| f.metric == metric)
        .unwrap()
}

/// A metric's key from its stored name.
fn key(name: &str) -> metrics::MetricKey {
    name.parse().unwrap()
}

#[test]
fn metrics_line_up_across_runs_and_key_generated_names_by_workload() {
    let (a, _) = metrics_of(&green(1), "a");
    let (b, _) = metrics_of(&green(2), "b");
    let names = |m: &MetricSet| m.metrics.keys().map(|k| k.to_string()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b));
    for k in [
        "step:build/build-images",
        "gate:registry-mirror-ready",
        "ready:DaemonSet/ameide/registry-mirror",
        "ready:ExternalSecret/orders/orders-db-credentials",
        "helm:keycloak/keycloak",
        "test:orders/creates an order",
    ] {
        assert!(
            a.metrics.contains_key(&key(k)),
            "{k} missing from {:?}",
            names(&a)
        );
    }
    // No pod or ReplicaSet name (with its generated hash) is a metric of its own.
    assert!(
        names(&a).iter().all(|n| !n.contains("5f7c9d8b4")),
        "{:?}",
        names(&a)
    );
    let (red, _) = metrics_of(&Variant::red(), "r");
    assert_eq!(
        red.metrics[&key("restarts:Deployment/keycloak/keycloak")].value,
        4.0
    );
    assert_eq!(
        red.metrics[&key("ready:ExternalSecret/orders/orders-db-credentials")].status,
        "not_ready"
    );
}

#[test]
fn ten_green_runs_varying_by_20_percent_show_no_regression_against_green_5() {
    let runs: Vec<MetricSet> = (1..=10)
        .map(|s| metrics_of(&green(s), &format!("g{s}")).0)
        .collect();
    for (i, run) in runs.iter().enumerate() {
        // The five runs before it (wrapping), as `green:5` would pick.
        let base: Vec<BaselineRun> = (1..=5)
            .map(|k| BaselineRun {
                metrics: runs[(i + 10 - k) % 10].clone(),
                log: None,
            })
            .collect();
        let r = diff::compare(run, None, &base, Thresholds::default());
        assert!(
            r.regressions.is_empty(),
            "run {i}: {:?}",
            r.regressions
                .iter()
                .map(|f| format!("{} {}", f.metric, f.summary))
                .collect::<Vec<_>>()
        );
        assert!(r.missing.is_empty() && r.new.is_empty() && r.not_run.is_empty());
    }
}

#[test]
fn a_gate_three_times_slower_is_reported_with_its_timing() {
    let r = diff_against_greens(
        &planted(Variant {
            slow_mirror: true,
            ..Variant::default()
        }),
        5,
    );
    let f = find(&r, "gate:registry-mirror-ready");
    assert_eq!(f.kind, Kind::Slower);
    let b = f.baseline.as_ref().unwrap();
    assert_eq!(b.n, 5);
    assert!(f.current.value > 2.0 * b.median, "{}", f.summary);
    assert!(f.summary.contains("median of 5"), "{}", f.summary);
    // The DaemonSet is the same slowdown seen from the cluster.
    assert_eq!(
        find(&r, "ready:DaemonSet/ameide/registry-mirror").kind,
        Kind::Slower
    );
    // Nothing else moved beyond the noise.
    assert!(
        r.regressions.len() <= 3,
        "{:?}",
        r.regressions.iter().map(|f| &f.metric).collect::<Vec<_>>()
    );
}

#[test]
fn an_external_secret_ready_90s_later_is_reported_with_its_condition() {
    let r = diff_against_greens(
        &planted(Variant {
            late_secret: true,
            ..Variant::default()
        }),
        5,
    );
    let f = find(&r, "ready:ExternalSecret/orders/orders-api-keys");
    assert_eq!(f.kind, Kind::Slower);
    assert!(f.delta > 80.0 && f.delta < 100.0, "delta {}", f.delta);
    // The gate waiting for it is slower too, and ranked with it above anything else.
    find(&r, "gate:externalsecrets-ready");
    assert!(rank_of(&r, "ready:ExternalSecret/orders/orders-api-keys") < 2);
}

#[test]
fn a_secret_that_flapped_is_reported_with_the_reason() {
    let r = diff_against_greens(
        &planted(Variant {
            flapping_secret: true,
            ..Variant::default()
        }),
        5,
    );
    let f = find(&r, "ready:ExternalSecret/catalog/catalog-db-credentials");
    assert_eq!(f.kind, Kind::Flapped);
    assert!(
        f.evidence.iter().any(|e| e.contains("token expired")),
        "{:?}",
        f.evidence
    );
}

#[test]
fn a_new_crash_loop_is_reported_first_with_its_restarts_warnings_and_log() {
    let r = diff_against_greens(
        &planted(Variant {
            crashloop: true,
            ..Variant::default()
        }),
        3,
    );
    let f = find(&r, "ready:Deployment/catalog/catalog-api");
    assert_eq!(f.kind, Kind::Broke);
    assert_eq!(rank_of(&r, "ready:Deployment/catalog/catalog-api"), 0);
    assert!(
        f.evidence.iter().any(|e| e.contains("CrashLoop")),
        "{:?}",
        f.evidence
    );
    assert!(
        f.evidence.iter().any(|e| e.contains("(previous)")),
        "{:?}",
        f.evidence
    );
    assert!(
        f.related
            .iter()
            .any(|e| e.starts_with("restarts:Deployment/catalog/catalog-api")),
        "{:?}",
        f.related
    );
    assert!(
        f.related
            .iter()
            .any(|e| e.starts_with("warnings:BackOff/Deployment/catalog/catalog-api")),
        "{:?}",
        f.related
    );
    // The gate that timed out because of it comes after it.
    assert!(rank_of(&r, "gate:workloads-ready") > 0);
    assert!(r
        .not_run
        .iter()
        .any(|o| o.metric == "step:test/pnpm-test-integration"));
}

#[test]
fn a_new_failing_test_is_reported_with_its_failure_message() {
    let r = diff_against_greens(
        &planted(Variant {
            failing_test: true,
            ..Variant::default()
        }),
        3,
    );
    let f = find(&r, "test:orders/rejects an unpaid order");
    assert_eq!(f.kind, Kind::Broke);
    assert!(f.summary.contains("failed"), "{}", f.summary);
    assert!(
        f.evidence
            .iter()
            .any(|e| e.contains("expected status 402, got 200")),
        "{:?}",
        f.evidence
    );
    find(&r, "step:test/pnpm-test-integration");
}

#[test]
fn a_helm_release_that_failed_is_reported_with_its_description() {
    let r = diff_against_greens(
        &planted(Variant {
            helm_failed: true,
            ..Variant::default()
        }),
        3,
    );
    let f = find(&r, "helm:ameide/platform-config");
    assert_eq!(f.kind, Kind::Broke);
    assert_eq!(f.current.status, "failed");
    assert!(
        f.evidence
            .iter()
            .any(|e| e.contains("context deadline exceeded")),
        "{:?}",
        f.evidence
    );
    // The release broke before the step that ran helmfile reported it.
    assert!(rank_of(&r, "helm:ameide/platform-config") < rank_of(&r, "step:infra/helmfile-sync"));
    // What the run never reached is "not run", not a regression.
    assert!(r
        .regressions
        .iter()
        .all(|f| !f.metric.to_string().starts_with("test:") && f.metric != "gate:workloads-ready"));
}

#[test]
fn every_planted_regression_at_once_is_reported_and_ranked_above_noise() {
    let v = planted(Variant {
        slow_mirror: true,
        late_secret: true,
        flapping_secret: true,
        failing_test: true,
        ..Variant::default()
    });
    let r = diff_against_greens(&v, 5);
    let names: Vec<String> = r.regressions.iter().map(|f| f.metric.to_string()).collect();
    for m in [
        "test:orders/rejects an unpaid order",
        "gate:registry-mirror-ready",
        "ready:ExternalSecret/orders/orders-api-keys",
        "ready:ExternalSecret/catalog/catalog-db-credentials",
    ] {
        assert!(names.iter().any(|n| n == m), "{m} not in {names:?}");
    }
    // Broken things first, then slowdowns by time lost, then the rest.
    let kinds: Vec<Kind> = r.regressions.iter().map(|f| f.kind).collect();
    let tier = |k: &Kind| match k {
        Kind::Broke => 0,
        Kind::Slower => 1,
        _ => 2,
    };
    assert!(
        kinds.windows(2).all(|w| tier(&w[0]) <= tier(&w[1])),
        "{kinds:?}"
    );
    let slower: Vec<f64> = r
        .regressions
        .iter()
        .filter(|f| f.kind == Kind::Slower)
        .map(|f| f.delta)
        .collect();
    assert!(slower.windows(2).all(|w| w[0] >= w[1]), "{slower:?}");
}

#[test]
fn the_red_scenario_against_green() {
    let (_, r, _) = red_against_green();
    insta::assert_snapshot!("red_vs_green_text", render::text(&r));
    insta::assert_snapshot!(
        "red_vs_green_json",
        serde_json::to_string_pretty(&r).unwrap()
    );
    insta::assert_snapshot!("red_vs_green_github", render::github(&r));
    let junit = render::junit(&r);
    insta::assert_snapshot!("red_vs_green_junit", junit);
    check_junit(&junit, r.regressions.len());
}

/// Parses JUnit XML with a real XML parser and checks its shape: testsuites > testsuite >
/// testcase, with `tests` and `failures` counts that match the cases.
fn check_junit(xml: &str, failures: usize) {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<String> = Vec::new();
    let mut cases = 0;
    let mut failed = 0;
    let mut declared = (None, None);
    loop {
        match r.read_event().expect("JUnit output is well-formed XML") {
            Event::Eof => break,
            ev @ (Event::Start(_) | Event::Empty(_)) => {
                let (Event::Start(e) | Event::Empty(e)) = &ev else {
                    unreachable!()
                };
                let name = e.local_name().as_ref().to_string();
                let parent = stack.last().map(String::as_str);
                match name.as_str() {
                    "testsuites" => assert_eq!(parent, None),
                    "testsuite" => {
                        assert_eq!(parent, Some("testsuites"));
                        for a in e.attributes().flatten() {
                            let v = a
                                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .unwrap()
                                .parse::<usize>()
                                .ok();
                            match a.key.as_ref() {
                                "tests" => declared.0 = v,
                                "failures" => declared.1 = v,
                                _ => {}
                            }
                        }
                    }
                    "testcase" => {
                        assert_eq!(parent, Some("testsuite"));
                        cases += 1;
                    }
                    "failure" => {
                        assert_eq!(parent, Some("testcase"));
                        failed += 1;
                    }
                    _ => {}
                }
                if matches!(ev, Event::Start(_)) {
                    stack.push(name);
                }
            }
            Event::End(_) => {
                stack.pop();
            }
            _ => {}
        }
    }
    assert_eq!(failed, failures);
    assert_eq!(declared, (Some(cases.max(1)), Some(failures)));
}

// ---- issue 11: triage truth -------------------------------------------------------------

/// Regression (issue 11): ExternalSecrets are created with no status and rated ready only at
/// their first Ready=True; a green run's secrets were "ready in 0 ms".
#[test]
fn secrets_and_certificates_are_ready_after_their_real_delay_not_at_creation() {
    let (m, _) = metrics_of(&Variant::green(), "g");
    let mut checked = 0;
    for (name, metric) in &m.metrics {
        if name.to_string().starts_with("ready:ExternalSecret/")
            || name.to_string().starts_with("ready:Certificate/")
        {
            assert_eq!(metric.status, "ready", "{name}");
            assert!(metric.value >= 2.0, "{name} ready in {}s", metric.value);
            assert!(!metric.flapped, "{name}");
            checked += 1;
        }
    }
    // Six ExternalSecrets and two Certificates.
    assert_eq!(checked, 8, "{:?}", m.metrics.keys().collect::<Vec<_>>());
    let issuer = &m.metrics[&key("ready:ClusterIssuer/ameide-ca")];
    assert_eq!(issuer.status, "ready");
    assert!(issuer.value > 0.5);
}

/// Regression (issue 11): when the External Secrets operator starts 90 s late, every secret
/// stays without a status; they were all "ready" at once. Now each is a slower finding with
/// its delay, and the operator's Deployment is slower too.
#[test]
fn a_slow_operator_makes_every_secret_slower_by_its_delay() {
    let r = diff_against_greens(
        &planted(Variant {
            slow_operator: true,
            ..Variant::default()
        }),
        5,
    );
    for es in [
        "orders/orders-db-credentials",
        "orders/orders-api-keys",
        "catalog/catalog-db-credentials",
        "keycloak/keycloak-admin",
        "gateway/gateway-oidc-client",
        "postgres/postgres-superuser",
    ] {
        let f = find(&r, &format!("ready:ExternalSecret/{es}"));
        assert_eq!(f.kind, Kind::Slower, "{es}: {}", f.summary);
        assert!(f.delta > 75.0 && f.delta < 105.0, "{es}: delta {}", f.delta);
        assert!(!f.current.flapped, "{es}");
    }
    assert!(r.regressions.iter().all(|f| f.kind != Kind::Flapped));
    assert_eq!(
        find(&r, "ready:Deployment/external-secrets/external-secrets").kind,
        Kind::Slower
    );
}

/// Regression (issue 11): Helm marks revision 1 superseded a few milliseconds after revision
/// 2 deploys; the release's status was taken from that last record.
#[test]
fn a_helm_release_upgraded_to_revision_2_is_deployed_at_revision_2() {
    let (m, model) = metrics_of(&Variant::green(), "g");
    let vault = &m.metrics[&key("helm:vault/vault")];
    assert_eq!(vault.status, "deployed");
    assert!(vault.detail.starts_with("revision 2,"), "{}", vault.detail);
    let rel = &model.helm_releases()[&("vault", "vault")];
    assert_eq!(rel.history.last().unwrap().1.status, "superseded");
    let (_, cur) = rel.current().unwrap();
    assert_eq!((cur.revision, cur.status.as_str()), (2, "deployed"));
    // No green baseline shows it as a regression either.
    let r = diff_against_greens(&green(42), 5);
    assert!(r.regressions.iter().all(|f| f.metric != "helm:vault/vault"));
}

/// Regression (issue 11): a step that ran the whole time and failed at the end ranked above
/// the cluster cause that broke it; causes now rank by when they went bad.
#[test]
fn the_cause_ranks_before_the_step_that_failed_because_of_it() {
    use pipetape_store::model::{Action, Outcome};
    use pipetape_testkit::scenario::Builder;
    fn run(broken: bool, id: &str) -> (MetricSet, RunModel) {
        let mut b = Builder::new("p", 1_800_000_000_000_000_000);
        b.step(
            "test",
            "suite",
            1.0,
            300.0,
            if broken { 1 } else { 0 },
            &["running", if broken { "FAILED" } else { "ok" }],
        );
        b.external_secret(50.0, Action::Added, "ns", "creds", "", "", "");
        if broken {
            b.external_secret(
                60.0,
                Action::Modified,
                "ns",
                "creds",
                "False",
                "SecretSyncedError",
                "denied",
            );
        } else {
            b.external_secret(
                55.0,
                Action::Modified,
                "ns",
                "creds",
                "True",
                "SecretSynced",
                "",
            );
        }
        let outcome = if broken {
            Outcome::Failed
        } else {
            Outcome::Passed
        };
        let recs = b.finish(id, outcome, i32::from(broken), None);
        let mut f = Fold::new(id.into(), 1_800_000_000_000_000_000);
        for r in recs {
            f.push(r);
        }
        let m = f.finish();
        (metrics::extract(&m), m)
    }
    let base = vec![BaselineRun {
        metrics: run(false, "g").0,
        log: None,
    }];
    let (cur, model) = run(true, "r");
    let r = diff::compare(&cur, Some(&model), &base, Thresholds::default());
    let es = rank_of(&r, "ready:ExternalSecret/ns/creds");
    let step = rank_of(&r, "step:test/suite");
    assert!(
        es < step,
        "{:?}",
        r.regressions.iter().map(|f| &f.metric).collect::<Vec<_>>()
    );
    // It went bad when it turned Ready=False (60 s), not when it was created (50 s).
    assert!((find(&r, "ready:ExternalSecret/ns/creds").current.at_s - 60.0).abs() < 0.01);
}

/// Regression (issue 11): warnings about a flapping secret were a finding of their own.
#[test]
fn warnings_of_a_flapping_secret_fold_into_its_finding() {
    let r = diff_against_greens(
        &planted(Variant {
            flapping_secret: true,
            ..Variant::default()
        }),
        5,
    );
    let f = find(&r, "ready:ExternalSecret/catalog/catalog-db-credentials");
    assert!(
        f.related.iter().any(|x| x
            .starts_with("warnings:UpdateFailed/ExternalSecret/catalog/catalog-db-credentials")),
        "{:?}",
        f.related
    );
    assert!(r.regressions.iter().all(|f| !f
        .metric
        .to_string()
        .starts_with("warnings:UpdateFailed/ExternalSecret/catalog")));
}

/// Regression (issue 11): a slow DaemonSet's evidence was only its first Warning event. Now it
/// quotes the custom condition the preflight gate waited for and the pods not ready.
#[test]
fn a_slow_daemonset_quotes_the_condition_the_gate_waited_for_and_its_pods() {
    let r = diff_against_greens(
        &planted(Variant {
            slow_mirror: true,
            ..Variant::default()
        }),
        5,
    );
    let f = find(&r, "ready:DaemonSet/ameide/registry-mirror");
    let has = |s: &str| f.evidence.iter().any(|e| e.contains(s));
    assert!(
        has("condition RegistryMirrorReady=False (CacheWarming)")
            && has("[the gate waited for it]"),
        "{:?}",
        f.evidence
    );
    assert!(has("held back by: "), "{:?}", f.evidence);
    assert!(has("pod registry-mirror-"), "{:?}", f.evidence);
}

/// Regression (issue 11): each crashed instance was followed live and read again as
/// `previous`, so its lines were stored twice and the evidence quoted an earlier attempt.
#[test]
fn a_crashed_instance_is_stored_once_and_the_evidence_quotes_the_last_crash() {
    let (_, m) = metrics_of(&Variant::red(), "r");
    let (ns, pod, c) = ("keycloak", "keycloak-7b9f6c5d8-q2m4n", "keycloak");
    assert!(m.logs.keys().all(|k| !k.previous), "no second copy");
    let starts = m.instance_starts(ns, pod, c);
    assert!(starts.len() >= 4, "{starts:?}");
    let all = m
        .logs
        .iter()
        .find(|(k, _)| k.pod == pod)
        .map(|(_, l)| l.len())
        .unwrap();
    // Each instance logs its three start-up lines once.
    assert_eq!(all, 3 * (starts.len() - 1));
    // The previous log at the end is the last crashed instance: its lines come after the
    // boundary of the instance before it.
    let prev = m.previous_log(ns, pod, c, m.info.end_ns).unwrap().unwrap();
    assert_eq!(prev.len(), 3);
    assert!(prev.iter().next().unwrap().0 >= starts[starts.len() - 2]);
    let r = diff_against_greens(&Variant::red(), 1);
    let f = find(&r, "ready:Deployment/keycloak/keycloak");
    let quoted: Vec<&String> = f
        .evidence
        .iter()
        .filter(|e| e.contains("(previous)"))
        .collect();
    assert_eq!(quoted.len(), 2, "{:?}", f.evidence);
}

/// Issue 20: a finding whose timing rests on when the recorder observed something (a gate,
/// an object without a time of its own) and falls in a watch gap says so and ranks after the
/// findings that can be trusted; one dated by the cluster's clock is untouched by the gap.
#[test]
fn a_finding_timed_inside_a_watch_gap_is_marked_low_confidence() {
    let base: Vec<BaselineRun> = (1..=3)
        .map(|s| BaselineRun {
            metrics: metrics_of(&green(s), &format!("g{s}")).0,
            log: None,
        })
        .collect();
    let (mut run, model) = metrics_of(
        &planted(Variant {
            slow_mirror: true,
            late_secret: true,
            ..Variant::default()
        }),
        "run",
    );
    let gate_at = run.metrics[&key("gate:registry-mirror-ready")].at_s;
    run.gaps.push(metrics::GapSpan {
        from_s: gate_at - 2.0,
        to_s: gate_at + 1.0,
        resource: "daemonsets.apps".into(),
    });
    let r = diff::compare(&run, Some(&model), &base, Thresholds::default());
    let gate = find(&r, "gate:registry-mirror-ready");
    let why = gate.low_confidence.as_deref().unwrap();
    assert!(why.contains("watch gap of daemonsets.apps"), "{why}");
    assert!(gate.evidence.iter().any(|e| e.contains("confidence low")));
    let ds = find(&r, "ready:DaemonSet/ameide/registry-mirror");
    assert_eq!(ds.current.clock, "cluster");
    assert!(ds.low_confidence.is_none(), "dated by the cluster's clock");
    // Among the slower findings, the doubtful one comes last.
    let slower: Vec<&diff::Finding> = r
        .regressions
        .iter()
        .filter(|f| f.kind == Kind::Slower)
        .collect();
    assert!(slower.len() >= 3);
    assert_eq!(slower.last().unwrap().metric, "gate:registry-mirror-ready");
}

#[test]
fn github_annotations_stop_at_ten_per_level_and_say_how_many_were_left_out() {
    let (_, mut r, _) = red_against_green();
    // Every regression was annotated: nothing for the summary.
    assert!(render::github_left_out(&r).is_empty());
    let broke = r
        .regressions
        .iter()
        .find(|f| f.kind == Kind::Broke)
        .unwrap()
        .clone();
    let other = r
        .regressions
        .iter()
        .find(|f| f.kind != Kind::Broke)
        .unwrap()
        .clone();
    let copies = |f: &diff::Finding, label: &str, n: usize| {
        (0..n)
            .map(|i| {
                let mut c = f.clone();
                c.summary = format!("{label} #{i}");
                c
            })
            .collect::<Vec<_>>()
    };
    r.regressions = copies(&broke, "broke", 14);
    r.regressions.extend(copies(&other, "other", 12));
    let gh = render::github(&r);
    assert_eq!(
        gh.lines().filter(|l| l.starts_with("::error")).count(),
        10,
        "{gh}"
    );
    assert_eq!(
        gh.lines().filter(|l| l.starts_with("::warning")).count(),
        10,
        "{gh}"
    );
    // The first in rank are kept.
    assert!(gh.contains("broke #9") && !gh.contains("broke #10"), "{gh}");
    assert!(gh.contains("other #9") && !gh.contains("other #10"), "{gh}");
    let notice = gh.lines().find(|l| l.starts_with("::notice")).unwrap();
    assert!(
        notice.contains("6 more regressions not annotated"),
        "{notice}"
    );
    assert!(notice.contains("4 broken and 2 other"), "{notice}");
    let md = render::github_left_out(&r);
    assert!(
        md.starts_with("### pipetape diff: 6 regressions not annotated"),
        "{md}"
    );
    for left in ["broke #10", "broke #13", "other #10", "other #11"] {
        assert!(md.contains(left), "{left} in {md}");
    }
    assert!(!md.contains("broke #9") && !md.contains("other #9"), "{md}");
}

#[test]
fn codequality_issues_have_gitlab_fields_and_fingerprints_stable_across_runs() {
    let (g, _) = metrics_of(&Variant::green(), "green0000000001");
    let report = |id: &str| {
        let (run, model) = metrics_of(&Variant::red(), id);
        diff::compare(
            &run,
            Some(&model),
            &[BaselineRun {
                metrics: g.clone(),
                log: None,
            }],
            Thresholds::default(),
        )
    };
    let (a, b) = (report("red00000000002"), report("red00000000003"));
    let parse = |r: &Report| -> Vec<serde_json::Value> {
        serde_json::from_str(&render::codequality(r, "ci/.gitlab-ci.yml")).unwrap()
    };
    let (ia, ib) = (parse(&a), parse(&b));
    assert_eq!(ia.len(), a.regressions.len());
    assert!(!ia.is_empty());
    let severities = ["info", "minor", "major", "critical", "blocker"];
    for (issue, f) in ia.iter().zip(&a.regressions) {
        for field in ["description", "check_name", "fingerprint", "severity"] {
            assert!(issue[field].is_string(), "{field} in {issue}");
        }
        assert!(severities.contains(&issue["severity"].as_str().unwrap()));
        assert_eq!(issue["location"]["path"], "ci/.gitlab-ci.yml");
        assert_eq!(issue["location"]["lines"]["begin"], 1);
        assert!(issue["description"].as_str().unwrap().contains(&f.summary));
        if f.kind == Kind::Broke {
            assert_eq!(issue["severity"], "critical", "{issue}");
        }
    }
    // The same problems in another run: the same fingerprints, each unique.
    let fp = |v: &[serde_json::Value]| {
        let mut x: Vec<String> = v
            .iter()
            .map(|i| i["fingerprint"].as_str().unwrap().to_string())
            .collect();
        x.sort();
        x
    };
    assert_eq!(fp(&ia), fp(&ib));
    let mut uniq = fp(&ia);
    uniq.dedup();
    assert_eq!(uniq.len(), ia.len());
    assert!(fp(&ia).iter().all(|f| f.len() == 32));
}

/// The red run against green: its model, its diff (with the description `replay diff` gives
/// such a baseline), and the green baseline.
fn red_against_green() -> (RunModel, Report, Vec<BaselineRun>) {
    let (g, _) = metrics_of(&Variant::green(), "green0000000001");
    let (run, model) = metrics_of(&Variant::red(), "red00000000002");
    let baselines = vec![BaselineRun {
        metrics: g,
        log: None,
    }];
    let mut r = diff::compare(&run, Some(&model), &baselines, Thresholds::default());
    r.baseline_description = "last green run of full-stack-integration on branch main".into();
    (model, r, baselines)
}

/// What the summary is made of, for the red run against green.
fn summary_input<'a>(
    model: &'a RunModel,
    r: &'a Report,
    baselines: &'a [BaselineRun],
) -> pipetape_replayer::render::html::Input<'a> {
    pipetape_replayer::render::html::Input {
        model,
        damage: &[],
        run_ref: "red00000000002",
        baseline: Some((r, baselines)),
        no_baseline_reason: None,
    }
}

#[test]
fn the_job_summary_of_the_red_run() {
    use pipetape_replayer::render::summary;
    let (model, r, baselines) = red_against_green();
    let input = summary_input(&model, &r, &baselines);
    let md = summary::markdown(&input, summary::BUDGET);
    insta::assert_snapshot!("red_summary_markdown", md);
    assert_eq!(summary::buildkite_style(&input), "error");
}

#[test]
fn the_html_report_draws_the_chain_from_its_root() {
    let (model, r, baselines) = red_against_green();
    let html = pipetape_replayer::render::html::html(&summary_input(&model, &r, &baselines));
    let at = html
        .find("How they connect, from the root cause")
        .expect("the chains section");
    let chain = &html[at..];
    let root = chain
        .find("ExternalSecret orders/orders-db-credentials")
        .unwrap();
    let link = chain.find("is waited on by").unwrap();
    let gate = chain.find("gate externalsecrets-ready").unwrap();
    assert!(
        root < link && link < gate,
        "{}",
        &chain[..2000.min(chain.len())]
    );
    assert!(chain.contains("class=\"cn finding\""));
    // Before the ranked list: the reader meets the root first.
    assert!(at < html.find("<ol class=\"reg\"").unwrap());
}

#[test]
fn the_codequality_report_of_the_red_run() {
    let (_, r, _) = red_against_green();
    insta::assert_snapshot!(
        "red_vs_green_codequality",
        render::codequality(&r, ".gitlab-ci.yml")
    );
}

#[test]
fn a_huge_run_summary_stays_under_the_cap_and_says_what_it_left_out() {
    use pipetape_replayer::render::summary;
    let (mut model, mut r, baselines) = red_against_green();
    let first = r.regressions[0].clone();
    r.regressions = (0..500)
        .map(|i| {
            let mut f = first.clone();
            f.summary = format!("regression number {i} <b>not html</b> | not a cell");
            f
        })
        .collect();
    let mut xml = String::from("<testsuites><testsuite name=\"integration\">");
    for i in 0..10_000 {
        xml.push_str(&format!(
            "<testcase name=\"case-{i}\" time=\"0.1\"><failure message=\"expected 200, got 503 for request {i}\">trace</failure></testcase>"
        ));
    }
    xml.push_str("</testsuite></testsuites>");
    model.artifacts.push((
        1_000_000_000,
        pipetape_store::model::Artifact {
            name: "junit".into(),
            path: "reports/junit.xml".into(),
            media_type: "application/xml".into(),
            size: xml.len() as u64,
            truncated: false,
            data: xml.into_bytes(),
        },
    ));
    let input = summary_input(&model, &r, &baselines);
    for budget in [summary::BUDGET, 64 * 1024] {
        let md = summary::markdown(&input, budget);
        assert!(md.len() <= budget, "{} > {budget}", md.len());
        assert!(md.len() < summary::SYSTEM_LIMIT);
        assert!(md.contains("### Regressions (500)"), "{}", &md[..400]);
        assert!(
            md.contains("more regressions left out") || md.contains("regressions left out"),
            "the cut is said"
        );
        assert!(md.contains("failed tests left out"), "the cut is said");
        // Never cut inside markup: every table row is whole, and the closing block is there.
        for line in md.lines().filter(|l| l.starts_with('|')) {
            assert!(line.ends_with('|'), "a cut row: {line}");
        }
        assert!(md.trim_end().ends_with("```"), "{}", &md[md.len() - 200..]);
        assert!(!md.contains("<b>"), "no raw HTML reaches the page");
        assert!(md.contains("\\| not a cell"));
    }
}

/// Issue 18: "What changed" links an input change to the regression it touches, and says so
/// when nothing the run was made of changed.
#[test]
fn a_new_image_digest_is_linked_to_the_crash_loop_it_brought() {
    let (g, _) = metrics_of(&Variant::green(), "green0000000001");
    let v = Variant {
        new_image_digest: true,
        ..Variant::red()
    };
    let (run, model) = metrics_of(&v, "red00000000002");
    let baselines = vec![BaselineRun {
        metrics: g,
        log: None,
    }];
    let r = diff::compare(&run, Some(&model), &baselines, Thresholds::default());
    let w = r
        .what_changed
        .as_ref()
        .expect("both runs recorded their inputs");
    let first = &w.changes[0];
    assert_eq!(first.key, "digest:Deployment/keycloak/keycloak/keycloak");
    assert_ne!(first.before, first.after);
    assert!(first.after.as_deref().unwrap().starts_with("sha256:"));
    assert_eq!(first.findings[0], "ready:Deployment/keycloak/keycloak");
    // The commits in between, with their subjects, from the recorded history.
    let commits = w.commits.as_ref().unwrap();
    assert_eq!(commits.len(), 3);
    assert!(commits[0].id.starts_with("9f2c1e7d4b"));
    assert!(commits[1].subject.contains("move db credentials"));
    let text = render::text(&r);
    let at = text.find("What changed since baseline run").unwrap();
    assert!(
        text[at..].contains("image digest of Deployment/keycloak/keycloak (keycloak): sha256:"),
        "{text}"
    );
    assert!(text[at..].contains("[#1 ready:Deployment/keycloak/keycloak"));
    // Before the ranked list, after the chains.
    assert!(at < text.find("  1. ").unwrap());
    // The HTML report and the job summary say it too.
    let input = summary_input(&model, &r, &baselines);
    let html = pipetape_replayer::render::html::html(&input);
    let at = html
        .find("What changed since baseline run")
        .expect("html section");
    assert!(html[at..].contains("image digest of Deployment/keycloak/keycloak (keycloak)"));
    let md = pipetape_replayer::render::summary::markdown(
        &input,
        pipetape_replayer::render::summary::BUDGET,
    );
    assert!(md.contains("### What changed since baseline run"), "{md}");
    assert!(
        md.contains("  - 5b3e8a1c070e orders: move db credentials"),
        "{md}"
    );
}

#[test]
fn a_chart_bump_is_linked_to_the_release_that_failed() {
    let (g, _) = metrics_of(&Variant::green(), "green0000000001");
    let v = Variant {
        helm_failed: true,
        chart_bump: true,
        ..Variant::green()
    };
    let (run, model) = metrics_of(&v, "helm0000000003");
    let baselines = vec![BaselineRun {
        metrics: g,
        log: None,
    }];
    let r = diff::compare(&run, Some(&model), &baselines, Thresholds::default());
    let w = r.what_changed.as_ref().unwrap();
    // The chart (and its app version, which moved with it), linked, lead.
    let c = w
        .changes
        .iter()
        .position(|c| c.key == "chart:ameide/platform-config")
        .expect("the chart change");
    assert!(c < 2, "{w:?}");
    let c = &w.changes[c];
    assert_eq!(c.before.as_deref(), Some("platform-config 1.4.0"));
    assert_eq!(c.after.as_deref(), Some("platform-config 1.4.1"));
    assert!(
        c.findings
            .iter()
            .any(|f| f == "helm:ameide/platform-config"),
        "{c:?}"
    );
    // Same commit: no commit line; the images of apps the run never deployed are no change.
    assert_eq!(w.commit.0, w.commit.1);
    assert!(
        !w.changes.iter().any(|c| c.key.starts_with("image:")),
        "{w:?}"
    );
}

#[test]
fn infrastructure_noise_comes_with_no_input_change() {
    let (g, _) = metrics_of(&Variant::green(), "green0000000001");
    let v = Variant {
        slow_mirror: true,
        ..Variant::green()
    };
    let (run, model) = metrics_of(&v, "slow0000000004");
    let baselines = vec![BaselineRun {
        metrics: g,
        log: None,
    }];
    let r = diff::compare(&run, Some(&model), &baselines, Thresholds::default());
    assert!(!r.regressions.is_empty(), "the slow mirror is a regression");
    let w = r.what_changed.as_ref().unwrap();
    assert!(w.nothing(), "{w:?}");
    let text = render::text(&r);
    assert!(
        text.contains("Nothing the run was made of changed"),
        "{text}"
    );
}
