//! Atalaya's text analysis.
//!
//! * [`sentiment`]: a lexicon model with VADER's rules (Hutto & Gilbert, 2014) over VADER's
//!   lexicon, FinVADER's finance lexicons and a crypto-slang lexicon this project owns;
//! * [`transformer`]: BERT-family models (a checkpoint's own classifier, or an embedding model
//!   with a [`head`] trained here), run by [`bert`]'s packed encoder over weights read with
//!   candle;
//! * [`ensemble`]: lexicon, transformer and a crypto-keyword signal, weighted;
//! * [`eval`]: accuracy, macro-F1 and the confusion matrix on labelled CSV (`text,label`).
//!
//! Synchronous and allocation-light: one headline is scored in a few microseconds.

pub mod bert;
pub mod ensemble;
pub mod eval;
pub mod finetune;
pub mod head;
pub mod index;
pub mod sentiment;
pub mod transformer;

/// Text-analysis failures.
#[derive(Debug, thiserror::Error)]
pub enum MlError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line of a lexicon or data file is malformed.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// A model directory could not be used.
    #[error("model {path}: {message}")]
    Model {
        /// The directory or file.
        path: String,
        /// What was wrong.
        message: String,
    },
}
