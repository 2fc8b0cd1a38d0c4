//! Tabular samples (CSV, JSON lines, Parquet) for batch inference and
//! profiling: files read row by row, the columns that are the model's
//! features, and rows encoded into the model's input tensors.

pub mod columns;
mod error;
pub mod feed;
pub mod read;

pub use columns::{select, Excluded, Feature};
pub use error::TabularError;
pub use feed::{feeds, Feed, RowEncoder};
pub use read::{open, Format, ProgressUnit, SampleReader};
