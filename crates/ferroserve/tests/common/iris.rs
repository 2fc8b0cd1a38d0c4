//! The bundled iris rows and the labels a server answers online for them:
//! the reference batch-job results are held to.

use serde_json::json;

use super::{post, repo_root, Server};

/// `examples/iris/iris.csv`, header included.
pub fn iris_csv() -> String {
    std::fs::read_to_string(repo_root().join("examples/iris/iris.csv")).expect("iris.csv")
}

/// The 150 iris rows as CSV lines (four features and the species).
pub fn iris_lines() -> Vec<String> {
    iris_csv().lines().skip(1).map(str::to_owned).collect()
}

/// A CSV of `rows` data rows cycling through the iris rows (header
/// included); row `r` is replaced by `broken(r)` where that gives a line.
pub fn repeated_iris_with(rows: usize, broken: impl Fn(usize) -> Option<String>) -> String {
    let iris = iris_lines();
    let mut text = String::with_capacity(rows * 20);
    text.push_str("sepal_length,sepal_width,petal_length,petal_width,species\n");
    for row in 1..=rows {
        match broken(row) {
            Some(line) => text.push_str(&line),
            None => text.push_str(&iris[(row - 1) % iris.len()]),
        }
        text.push('\n');
    }
    text
}

/// A CSV of `rows` data rows cycling through the iris rows.
pub fn repeated_iris(rows: usize) -> String {
    repeated_iris_with(rows, |_| None)
}

/// The 150 iris rows' four features.
pub fn iris_rows() -> Vec<Vec<f32>> {
    iris_csv()
        .lines()
        .skip(1)
        .map(|line| {
            line.split(',')
                .take(4)
                .map(|v| v.parse().expect("number"))
                .collect()
        })
        .collect()
}

/// The labels `server` answers online for `rows`.
pub fn online_labels(server: &Server, rows: &[Vec<f32>]) -> Vec<i64> {
    let data: Vec<f32> = rows.iter().flatten().copied().collect();
    let (status, answer) = post(
        &format!("{}/v2/models/iris/infer", server.base),
        &json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [rows.len(), 4], "data": data}],
                "outputs": [{"name": "label"}]}),
    );
    assert_eq!(status, 200, "{answer}");
    answer["outputs"][0]["data"]
        .as_array()
        .expect("labels")
        .iter()
        .map(|v| v.as_i64().expect("integer label"))
        .collect()
}
