//! Why a tabular sample could not be read or fed to a model.

/// Why a tabular sample could not be read or fed to a model: a message
/// that names the file, row and column where it can.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TabularError {
    message: String,
}

impl TabularError {
    /// An error saying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        TabularError {
            message: message.into(),
        }
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A [`TabularError`] whose message is `format!` of the arguments.
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::TabularError::new(format!($($arg)*))
    };
}

/// Returns early with an [`err!`] error.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::error::err!($($arg)*))
    };
}

pub(crate) use {bail, err};
