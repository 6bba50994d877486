//! The rule crate's one error type: what went wrong (`kind`), where in the
//! query text (`pos`, a byte offset), and a message that says what was expected.

use std::fmt;

/// What kind of problem a query has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The text is not EQL (or KQL): a token or construct is out of place.
    Syntax,
    /// Valid syntax that cannot be compiled: a bad regex, an unknown function,
    /// join keys that do not line up.
    Compile,
    /// Valid EQL this engine deliberately does not run (samples, pipes, ...).
    Unsupported,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Syntax => "syntax error",
            ErrorKind::Compile => "error",
            ErrorKind::Unsupported => "unsupported",
        })
    }
}

/// An error at a byte offset of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub pos: usize,
    pub message: String,
}

impl Error {
    pub fn syntax(pos: usize, message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Syntax,
            pos,
            message: message.into(),
        }
    }

    pub fn compile(pos: usize, message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Compile,
            pos,
            message: message.into(),
        }
    }

    pub fn unsupported(pos: usize, message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Unsupported,
            pos,
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}: {}", self.kind, self.pos, self.message)
    }
}

impl std::error::Error for Error {}
