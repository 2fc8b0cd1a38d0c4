//! Checks every statistic against the scipy/numpy values committed in
//! `testdata/drift/reference.json` (made by `make_reference.py` there).

use serde::Deserialize;

use super::*;

const TOLERANCE: f64 = 1e-6;

#[derive(Deserialize)]
struct Reference {
    histogram: Vec<HistogramCase>,
    psi: Vec<PsiCase>,
    ks_2samp: Vec<KsTwoSampleCase>,
    ks_reference: Vec<KsReferenceCase>,
    jensen_shannon: Vec<JsCase>,
}

#[derive(Deserialize)]
struct HistogramCase {
    name: String,
    values: Vec<f64>,
    edges: Vec<f64>,
    counts: Vec<u64>,
}

#[derive(Deserialize)]
struct PsiCase {
    name: String,
    expected: Vec<f64>,
    actual: Vec<f64>,
    psi: f64,
}

#[derive(Deserialize)]
struct KsTwoSampleCase {
    name: String,
    a: Vec<f64>,
    b: Vec<f64>,
    statistic: f64,
    p_value: f64,
    method: String,
}

#[derive(Deserialize)]
struct KsReferenceCase {
    name: String,
    quantiles: Vec<f64>,
    sample: Vec<f64>,
    reference_count: u64,
    statistic: f64,
    p_value: f64,
}

#[derive(Deserialize)]
struct JsCase {
    name: String,
    p: Vec<f64>,
    q: Vec<f64>,
    distance: f64,
}

fn reference() -> Reference {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/drift/reference.json"
    );
    let text = std::fs::read_to_string(path).expect("testdata/drift/reference.json is committed");
    serde_json::from_str(&text).expect("reference.json matches make_reference.py")
}

fn assert_close(what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= TOLERANCE,
        "{what}: got {got:e}, scipy says {want:e} (diff {:e})",
        (got - want).abs()
    );
}

#[test]
fn histogram_matches_numpy_on_clipped_values() {
    let cases = reference().histogram;
    assert!(!cases.is_empty());
    for case in cases {
        let counts = histogram(&case.values, &case.edges).expect(&case.name);
        assert_eq!(counts, case.counts, "{}", case.name);
    }
}

#[test]
fn psi_matches_evidently() {
    let cases = reference().psi;
    assert!(!cases.is_empty());
    for case in cases {
        let got = psi(&case.expected, &case.actual).expect(&case.name);
        assert_close(&case.name, got, case.psi);
    }
}

/// Checks a KS result against scipy's statistic and p-value.
fn assert_ks(name: &str, got: &KsResult, statistic: f64, p_value: f64) {
    assert_close(&format!("{name} statistic"), got.statistic, statistic);
    assert_close(&format!("{name} p-value"), got.p_value, p_value);
}

#[test]
fn ks_two_sample_matches_scipy_ks_2samp() {
    let cases = reference().ks_2samp;
    assert!(cases.iter().any(|c| c.method == "exact"));
    assert!(cases.iter().any(|c| c.method == "asymp"));
    for case in cases {
        let got = ks_two_sample(&case.a, &case.b).expect(&case.name);
        assert_ks(&case.name, &got, case.statistic, case.p_value);
    }
}

#[test]
fn ks_against_reference_matches_numpy_interp_and_kstwobign() {
    let cases = reference().ks_reference;
    assert!(!cases.is_empty());
    for case in cases {
        let got = ks_against_reference(&case.quantiles, &case.sample, case.reference_count)
            .expect(&case.name);
        assert_ks(&case.name, &got, case.statistic, case.p_value);
    }
}

#[test]
fn jensen_shannon_matches_scipy() {
    let cases = reference().jensen_shannon;
    assert!(!cases.is_empty());
    for case in cases {
        let got = jensen_shannon_distance(&case.p, &case.q).expect(&case.name);
        assert_close(&case.name, got, case.distance);
    }
}
