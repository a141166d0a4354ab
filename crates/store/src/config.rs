use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which backend stores Atalaya's data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StoreConfig {
    /// An embedded SQLite database file (created when missing, with its parent folder).
    Sqlite {
        /// Path of the database file.
        path: PathBuf,
    },
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self::Sqlite {
            path: PathBuf::from("atalaya-data/atalaya.db"),
        }
    }
}
