//! Rows per second of the 256→1024→1024→10 MLP on each engine, at batch
//! sizes 1, 8 and 32, with one intra-op thread (the serving default).
//!
//! `cargo bench -p ferroserve-backend --bench engines`; ONNX Runtime is
//! benchmarked when its library is found (`scripts/python-env.sh runtime`).

use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput};
use ferroserve_backend::{Backend, LoadOptions, ModelSource, OrtBackend, TractBackend};
use ferroserve_core::{Tensor, TensorData};

const BATCHES: [usize; 3] = [1, 8, 32];

fn mlp_input(rows: usize) -> Tensor {
    let data = (0..rows * 256)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    Tensor::new("input", vec![rows, 256], TensorData::Fp32(data)).expect("valid input")
}

fn engines() -> Vec<Box<dyn Backend>> {
    let mut engines: Vec<Box<dyn Backend>> = Vec::new();
    match OrtBackend::new(None) {
        Ok(ort) => engines.push(Box::new(ort)),
        Err(error) => eprintln!("skipping onnxruntime: {error}"),
    }
    engines.push(Box::new(TractBackend::new()));
    engines
}

fn mlp(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/models/mlp.onnx");
    let source = ModelSource::File(path);
    let options = LoadOptions {
        intra_op_threads: 1,
        ..LoadOptions::default()
    };
    let mut group = c.benchmark_group("mlp");
    for engine in engines() {
        let model = engine.load(&source, &options).expect("the MLP loads");
        let mut runner = model.runner().expect("runner");
        for batch in BATCHES {
            let inputs = [mlp_input(batch)];
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_with_input(
                BenchmarkId::new(engine.name(), batch),
                &inputs,
                |b, inputs| b.iter(|| runner.infer(black_box(inputs)).expect("runs")),
            );
        }
    }
    group.finish();
}

fn main() {
    // Written out rather than with `criterion_group!`, whose generated public
    // function would need a doc comment.
    let mut criterion = Criterion::default().configure_from_args();
    mlp(&mut criterion);
    criterion.final_summary();
}
