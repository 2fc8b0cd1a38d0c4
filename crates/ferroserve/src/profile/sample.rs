//! Reads a sample row by row into a [`ProfileBuilder`], feeding the model
//! along the way, with a progress bar on stderr (hidden when stderr is not
//! a terminal).

use anyhow::{bail, Context};
use ferroserve_monitor::profile::{
    Cell, FeatureKind, ProfileBuilder, ProfileOptions, ReferenceProfile,
};
use ferroserve_tabular::{Feature, ProgressUnit, SampleReader};
use indicatif::{ProgressBar, ProgressStyle};

use super::predict::Predictor;

/// Rows between two updates of the progress bar.
const PROGRESS_EVERY: u64 = 256;

/// Profiles the `features` of every row `reader` yields (and the
/// predictions of `predictor`, if any); `file` names the sample in errors.
pub fn profile(
    reader: &mut dyn SampleReader,
    file: &str,
    features: &[Feature],
    mut predictor: Option<Predictor>,
    options: ProfileOptions,
) -> anyhow::Result<ReferenceProfile> {
    let mut builder =
        ProfileBuilder::new(features.iter().map(Feature::spec).collect())?.with_options(options);
    if let Some(predictor) = &predictor {
        builder = builder.with_prediction(predictor.spec());
    }
    let picks: Vec<usize> = features.iter().map(|f| f.index).collect();
    let bar = progress_bar(reader);
    let mut cells = Vec::with_capacity(picks.len());
    while reader.next_row(&picks, &mut cells)? {
        parse_numbers(features, &mut cells, &*reader)?;
        builder
            .push_row(&cells)
            .with_context(|| reader.location())?;
        if let Some(predictor) = predictor.as_mut() {
            predictor.push(&cells, &|| reader.location())?;
            if predictor.is_full() {
                push_predictions(&mut builder, predictor)?;
            }
        }
        if builder.rows() % PROGRESS_EVERY == 0 {
            bar.set_position(reader.progress());
        }
    }
    if let Some(predictor) = predictor.as_mut() {
        push_predictions(&mut builder, predictor)?;
    }
    bar.finish_and_clear();
    if builder.rows() == 0 {
        bail!("{file} has no data rows");
    }
    builder.finish().with_context(|| file.to_owned())
}

/// Turns the text of declared-numeric features into numbers, so that a
/// cell that is not one is reported with its line and column (and parsed
/// once).
fn parse_numbers(
    features: &[Feature],
    cells: &mut [Cell],
    reader: &dyn SampleReader,
) -> anyhow::Result<()> {
    for (feature, cell) in features.iter().zip(cells.iter_mut()) {
        if feature.kind != Some(FeatureKind::Numeric) {
            continue;
        }
        if let Cell::Text(text) = cell {
            let Ok(x) = text.trim().parse::<f64>() else {
                bail!(
                    "{}, column `{}`: {text:?} is not a number, but the feature schema \
                     declares the feature numeric",
                    reader.location(),
                    feature.name
                );
            };
            *cell = Cell::Number(x);
        }
    }
    Ok(())
}

fn push_predictions(builder: &mut ProfileBuilder, predictor: &mut Predictor) -> anyhow::Result<()> {
    for prediction in predictor.run()? {
        builder.push_prediction(&prediction)?;
    }
    Ok(())
}

/// A bar counting bytes or rows, as the reader does.
fn progress_bar(reader: &dyn SampleReader) -> ProgressBar {
    let template = match reader.progress_unit() {
        ProgressUnit::Bytes => "profiling [{bar:40}] {bytes}/{total_bytes} ({eta} left)",
        ProgressUnit::Rows => "profiling [{bar:40}] {human_pos}/{human_len} rows ({eta} left)",
    };
    let bar = ProgressBar::new(reader.progress_total());
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    bar
}
