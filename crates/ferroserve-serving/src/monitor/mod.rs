//! Model monitoring: statistics that compare live traffic against the
//! reference profile of a model version (input drift, for now).

pub mod drift;
pub mod profile;
