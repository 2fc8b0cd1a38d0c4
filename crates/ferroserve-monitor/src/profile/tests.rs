//! Tests of profile building, numpy agreement, JSON round trip and
//! validation.

use serde_json::json;

use super::*;

const TOL: f64 = 1e-9;

/// The fixed numeric sample of the numpy comparisons.
const SAMPLE: [f64; 10] = [3.5, -1.25, 7.0, 2.0, 0.1, 10.0, 4.4, 2.0, -3.3, 5.75];

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= TOL,
        "{what}: {actual} != {expected}"
    );
}

fn num(x: f64) -> Cell {
    Cell::Number(x)
}

fn text(s: &str) -> Cell {
    Cell::Text(s.to_owned())
}

/// Profile of one column holding `cells`.
fn profile_of(spec: ColumnSpec, cells: Vec<Cell>) -> Result<ReferenceProfile, ProfileError> {
    let mut builder = ProfileBuilder::new(vec![spec])?;
    for cell in cells {
        builder.push_row(&[cell])?;
    }
    builder.finish()
}

fn sample_profile() -> ReferenceProfile {
    let cells = SAMPLE.iter().map(|&x| num(x)).collect();
    profile_of(ColumnSpec::inferred("x"), cells).expect("sample profiles")
}

#[test]
fn numeric_statistics_match_numpy() {
    let profile = sample_profile();
    let feature = profile.feature("x").expect("feature x");
    assert_eq!(feature.kind(), FeatureKind::Numeric);
    let s = feature.numeric().expect("numeric");
    // x = np.array([3.5, -1.25, 7.0, 2.0, 0.1, 10.0, 4.4, 2.0, -3.3, 5.75])
    // x.mean(), x.std()
    assert_close(s.mean, 3.02, "mean");
    assert_close(s.std, 3.780621642005452, "std");
    assert_eq!((s.min, s.max), (-3.3, 10.0));
    // q = np.quantile(x, np.linspace(0, 1, 101)); [(i, q[i]) for i in idx]
    let expected_quantiles = [
        (0, -3.3),
        (1, -3.1155),
        (3, -2.7464999999999997),
        (7, -2.0084999999999997),
        (10, -1.4549999999999998),
        (25, 0.575),
        (33, 1.9430000000000003),
        (50, 2.75),
        (67, 4.440500000000001),
        (75, 5.4125),
        (90, 7.299999999999999),
        (99, 9.73),
        (100, 10.0),
    ];
    assert_eq!(s.quantiles.len(), QUANTILE_COUNT);
    for (i, q) in expected_quantiles {
        assert_close(s.quantiles[i], q, &format!("quantiles[{i}]"));
    }
    assert!(s.quantiles.windows(2).all(|w| w[0] <= w[1]));
    // np.histogram_bin_edges(x, bins=10)
    let expected_edges = [
        -3.3,
        -1.9699999999999998,
        -0.6399999999999997,
        0.6900000000000004,
        2.0200000000000005,
        3.3500000000000005,
        4.680000000000001,
        6.010000000000001,
        7.340000000000001,
        8.670000000000002,
        10.0,
    ];
    assert_eq!(s.bin_edges.len(), expected_edges.len());
    for (i, (&a, e)) in s.bin_edges.iter().zip(expected_edges).enumerate() {
        assert_close(a, e, &format!("bin_edges[{i}]"));
    }
    // np.histogram(x, bins=10)[0] / len(x)
    let expected_proportions = [0.1, 0.1, 0.1, 0.2, 0.0, 0.2, 0.1, 0.1, 0.0, 0.1];
    for (i, (&a, e)) in s
        .bin_proportions
        .iter()
        .zip(expected_proportions)
        .enumerate()
    {
        assert_close(a, e, &format!("bin_proportions[{i}]"));
    }
}

#[test]
fn constant_column_gets_numpy_unit_range() {
    let profile = profile_of(ColumnSpec::inferred("c"), vec![num(2.5), num(2.5)])
        .expect("constant column profiles");
    let s = profile.features[0].numeric().expect("numeric");
    // np.histogram_bin_edges(np.array([2.5, 2.5]), bins=10)
    let expected = [2.0, 2.1, 2.2, 2.3, 2.4, 2.5, 2.6, 2.7, 2.8, 2.9, 3.0];
    for (i, (&a, e)) in s.bin_edges.iter().zip(expected).enumerate() {
        assert_close(a, e, &format!("bin_edges[{i}]"));
    }
    assert!(s.quantiles.iter().all(|&q| q == 2.5));
    assert_eq!(s.std, 0.0);
    // Both values sit in bin [2.5, 2.6).
    assert_eq!(s.bin_proportions[5], 1.0);
    profile.validate().expect("constant profile is valid");
}

#[test]
fn kinds_are_inferred_from_all_values() {
    let columns = vec![
        ColumnSpec::inferred("numbers"),
        ColumnSpec::inferred("numeric_text"),
        ColumnSpec::inferred("mixed"),
        ColumnSpec::declared("code", FeatureKind::Categorical),
    ];
    let mut builder = ProfileBuilder::new(columns).expect("columns");
    builder
        .push_row(&[num(1.0), text(" 2.5 "), text("3"), num(7.0)])
        .expect("row 0");
    builder
        .push_row(&[num(2.0), text("NaN"), text("abc"), num(7.0)])
        .expect("row 1");
    builder
        .push_row(&[Cell::Null, text("-1e2"), num(4.0), num(0.5)])
        .expect("row 2");
    let profile = builder.finish().expect("profile");
    let kinds: Vec<FeatureKind> = profile.features.iter().map(FeatureProfile::kind).collect();
    use FeatureKind::{Categorical, Numeric};
    assert_eq!(kinds, [Numeric, Numeric, Categorical, Categorical]);
    // "NaN" text is null in a numeric column; numbers in a categorical
    // column are their text.
    let numeric_text = profile.feature("numeric_text").expect("column");
    assert_eq!((numeric_text.count, numeric_text.nulls), (2, 1));
    assert_eq!(numeric_text.numeric().expect("numeric").min, -100.0);
    let mixed = profile.feature("mixed").expect("column");
    let values: Vec<&str> = mixed
        .categorical()
        .expect("categorical")
        .categories
        .iter()
        .map(|c| c.value.as_str())
        .collect();
    assert_eq!(values, ["3", "4", "abc"]);
    let code = profile
        .feature("code")
        .expect("column")
        .categorical()
        .expect("categorical");
    assert_eq!(
        code.categories,
        [
            CategoryCount {
                value: "7".into(),
                count: 2
            },
            CategoryCount {
                value: "0.5".into(),
                count: 1
            },
        ]
    );
}

#[test]
fn nulls_and_non_finite_numbers_count_as_nulls() {
    let cells = vec![
        num(1.0),
        Cell::Null,
        num(f64::NAN),
        num(f64::INFINITY),
        num(3.0),
    ];
    let profile = profile_of(ColumnSpec::inferred("x"), cells).expect("profile");
    let f = &profile.features[0];
    assert_eq!((profile.rows, f.count, f.nulls), (5, 2, 3));
    assert_close(f.null_rate, 0.6, "null_rate");
    let s = f.numeric().expect("numeric");
    assert_eq!((s.min, s.max, s.mean), (1.0, 3.0, 2.0));
}

#[test]
fn declared_numeric_rejects_text() {
    let mut builder = ProfileBuilder::new(vec![ColumnSpec::declared("age", FeatureKind::Numeric)])
        .expect("columns");
    builder.push_row(&[num(1.0)]).expect("row 0");
    let err = builder
        .push_row(&[text("old")])
        .expect_err("text in numeric column");
    assert_eq!(
        err,
        ProfileError::NotANumber {
            column: "age".into(),
            row: 1,
            value: "old".into()
        }
    );
    assert!(err.to_string().contains("column `age`, row 1"), "{err}");
    assert_eq!(builder.rows(), 1, "a rejected row is not counted");
}

#[test]
fn categories_beyond_the_cap_fold_into_other() {
    // a×4, b×3, c×3, d×2, e×1, and a real "__other__"×1.
    let values = [
        "a",
        "b",
        "c",
        "a",
        "d",
        "b",
        "a",
        "c",
        "e",
        "d",
        "a",
        "b",
        "c",
        OTHER_CATEGORY,
    ];
    let mut builder = ProfileBuilder::new(vec![ColumnSpec::inferred("letter")])
        .expect("columns")
        .with_options(ProfileOptions {
            max_categories: 3,
            ..ProfileOptions::default()
        });
    for v in values {
        builder.push_row(&[text(v)]).expect("row");
    }
    let profile = builder.finish().expect("profile");
    let s = profile.features[0].categorical().expect("categorical");
    let got: Vec<(&str, u64)> = s
        .categories
        .iter()
        .map(|c| (c.value.as_str(), c.count))
        .collect();
    assert_eq!(got, [("a", 4), ("b", 3), ("c", 3), (OTHER_CATEGORY, 4)]);
    assert_eq!(s.distinct, 6);
    profile.validate().expect("capped profile is valid");
}

#[test]
fn builder_errors_name_row_and_column() {
    let columns = vec![ColumnSpec::inferred("a"), ColumnSpec::inferred("b")];
    let mut builder = ProfileBuilder::new(columns.clone()).expect("columns");
    builder.push_row(&[num(1.0), num(2.0)]).expect("row 0");
    let err = builder.push_row(&[num(1.0)]).expect_err("short row");
    assert_eq!(
        err,
        ProfileError::RowLength {
            row: 1,
            expected: 2,
            found: 1
        }
    );
    assert_eq!(
        err.to_string(),
        "row 1 has 1 values; expected 2 (one per column)"
    );

    assert_eq!(
        ProfileBuilder::new(columns.clone())
            .expect("columns")
            .finish(),
        Err(ProfileError::NoRows)
    );

    builder.push_row(&[Cell::Null, num(3.0)]).expect("row 1");
    let mut all_null_a = ProfileBuilder::new(columns).expect("columns");
    all_null_a.push_row(&[Cell::Null, num(1.0)]).expect("row");
    let err = all_null_a.finish().expect_err("column a is all null");
    assert_eq!(
        err,
        ProfileError::AllNull {
            column: "a".into(),
            rows: 1
        }
    );

    let dup = ProfileBuilder::new(vec![ColumnSpec::inferred("a"), ColumnSpec::inferred("a")]);
    assert_eq!(
        dup.err(),
        Some(ProfileError::DuplicateColumn { name: "a".into() })
    );
}

#[test]
fn prediction_is_profiled_and_must_pair_with_rows() {
    let mut builder = ProfileBuilder::new(vec![ColumnSpec::inferred("x")])
        .expect("columns")
        .with_prediction(ColumnSpec::inferred("label"));
    for (x, label) in [(1.0, "cat"), (2.0, "dog"), (3.0, "cat")] {
        builder.push_row(&[num(x)]).expect("row");
        builder.push_prediction(&text(label)).expect("prediction");
    }
    let profile = builder.finish().expect("profile");
    let prediction = profile.prediction.as_ref().expect("prediction profiled");
    assert_eq!(prediction.name, "label");
    assert_eq!(prediction.kind(), FeatureKind::Categorical);
    assert_eq!(
        prediction.categorical().expect("categorical").categories[0].count,
        2
    );

    let mut short = ProfileBuilder::new(vec![ColumnSpec::inferred("x")])
        .expect("columns")
        .with_prediction(ColumnSpec::inferred("score"));
    short.push_row(&[num(1.0)]).expect("row");
    assert_eq!(
        short.finish(),
        Err(ProfileError::PredictionCount {
            rows: 1,
            predictions: 0
        })
    );
    let mut without = ProfileBuilder::new(vec![ColumnSpec::inferred("x")]).expect("columns");
    assert_eq!(
        without.push_prediction(&num(1.0)),
        Err(ProfileError::NoPredictionColumn)
    );
}

#[test]
fn json_round_trip_and_shape() {
    let mut builder = ProfileBuilder::new(vec![
        ColumnSpec::inferred("x"),
        ColumnSpec::inferred("colour"),
    ])
    .expect("columns")
    .with_prediction(ColumnSpec::inferred("score"));
    for (i, &x) in SAMPLE.iter().enumerate() {
        let colour = if i % 3 == 0 { "red" } else { "blue" };
        builder.push_row(&[num(x), text(colour)]).expect("row");
        builder.push_prediction(&num(x / 10.0)).expect("prediction");
    }
    let profile = builder.finish().expect("profile");
    let value = profile.to_json();
    assert_eq!(value["format_version"], json!(1));
    assert_eq!(value["features"][0]["summary"]["kind"], json!("numeric"));
    assert_eq!(
        value["features"][1]["summary"],
        json!({
            "kind": "categorical",
            "distinct": 2,
            "categories": [{"value": "blue", "count": 6}, {"value": "red", "count": 4}],
        })
    );
    let text = serde_json::to_string(&value).expect("serialises");
    let reparsed: serde_json::Value = serde_json::from_str(&text).expect("parses");
    let back = ReferenceProfile::from_json(&reparsed).expect("valid profile");
    // Through text, serde_json may read a float one ulp off.
    assert_json_close(&back.to_json(), &value, "$");
    // Through a Value, numbers are exact.
    assert_eq!(ReferenceProfile::from_json(&value).expect("valid"), profile);
}

/// Asserts `a` and `b` are equal except for numbers within 1e-12 relative.
fn assert_json_close(a: &serde_json::Value, b: &serde_json::Value, path: &str) {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().expect("f64"), y.as_f64().expect("f64"));
            assert!(
                (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
                "{path}: {x} != {y}"
            );
        }
        (Value::Array(xs), Value::Array(ys)) => {
            assert_eq!(xs.len(), ys.len(), "{path}: lengths");
            for (i, (x, y)) in xs.iter().zip(ys).enumerate() {
                assert_json_close(x, y, &format!("{path}[{i}]"));
            }
        }
        (Value::Object(xs), Value::Object(ys)) => {
            assert_eq!(xs.len(), ys.len(), "{path}: keys");
            for (k, x) in xs {
                assert_json_close(x, &ys[k], &format!("{path}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

/// The sample profile as JSON, for tampering.
fn sample_json() -> serde_json::Value {
    sample_profile().to_json()
}

fn invalid_field(value: &serde_json::Value) -> (String, &'static str, String) {
    match ReferenceProfile::from_json(value) {
        Err(ProfileError::Invalid {
            location,
            field,
            reason,
        }) => (location, field, reason),
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

#[test]
fn validation_rejects_unsorted_edges_naming_the_feature() {
    let mut value = sample_json();
    value["features"][0]["summary"]["bin_edges"][3] = json!(100.0);
    let (location, field, reason) = invalid_field(&value);
    assert_eq!((location.as_str(), field), ("feature `x`", "bin_edges"));
    assert!(reason.contains("non-decreasing"), "{reason}");
    let err = ReferenceProfile::from_json(&value).expect_err("invalid");
    assert!(
        err.to_string()
            .starts_with("reference profile, feature `x`, field `bin_edges`"),
        "{err}"
    );
}

#[test]
fn validation_rejects_wrong_quantile_count() {
    let mut value = sample_json();
    let quantiles = value["features"][0]["summary"]["quantiles"]
        .as_array_mut()
        .expect("quantiles array");
    quantiles.pop();
    let (location, field, reason) = invalid_field(&value);
    assert_eq!((location.as_str(), field), ("feature `x`", "quantiles"));
    assert!(reason.contains("has 100 values; expected 101"), "{reason}");
}

#[test]
fn validation_smooths_ulp_inversions_but_rejects_real_ones() {
    let mut value = sample_json();
    let q50 = value["features"][0]["summary"]["quantiles"][50]
        .as_f64()
        .expect("f64");
    // One ulp below its predecessor, as a lossy float parse could leave it.
    value["features"][0]["summary"]["quantiles"][51] = json!(f64::from_bits(q50.to_bits() - 1));
    let profile = ReferenceProfile::from_json(&value).expect("ulp inversion is tolerated");
    let q = &profile.features[0].numeric().expect("numeric").quantiles;
    assert!(
        q.windows(2).all(|w| w[0] <= w[1]),
        "smoothed to non-decreasing"
    );
    assert_eq!(q[51], q50);
}

#[test]
fn validation_rejects_other_broken_fields() {
    let mut proportions = sample_json();
    proportions["features"][0]["summary"]["bin_proportions"][0] = json!(0.5);
    assert_eq!(invalid_field(&proportions).1, "bin_proportions");

    let mut quantiles = sample_json();
    quantiles["features"][0]["summary"]["quantiles"][50] = json!(-50.0);
    assert_eq!(invalid_field(&quantiles).1, "quantiles");

    let mut nulls = sample_json();
    nulls["features"][0]["nulls"] = json!(1);
    assert_eq!(invalid_field(&nulls).1, "nulls");

    let mut version = sample_json();
    version["format_version"] = json!(2);
    assert_eq!(
        ReferenceProfile::from_json(&version),
        Err(ProfileError::UnsupportedVersion {
            found: 2,
            expected: 1
        })
    );

    let mut unknown = sample_json();
    unknown["features"][0]["colour"] = json!("blue");
    let err = ReferenceProfile::from_json(&unknown).expect_err("unknown field");
    assert!(
        matches!(&err, ProfileError::Json { path, .. } if path.starts_with("features[0]")),
        "{err}"
    );
    assert!(err.to_string().contains("colour"), "{err}");
}
