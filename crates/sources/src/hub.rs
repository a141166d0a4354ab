//! Model downloads from the Hugging Face Hub (`atalaya models download NAME`).
//!
//! The Hub serves a repository's file at `{endpoint}/{repo}/resolve/{revision}/{file}`
//! (large files answer with a redirect to their CDN, which the client follows); a missing file
//! is a 404 with `X-Error-Code: EntryNotFound`, a missing or private repository a 401 or 404
//! with `RepoNotFound`. `HF_ENDPOINT` moves the endpoint and `HF_TOKEN` is sent as a bearer
//! token, as the Hub's own client does. Nothing in Atalaya needs this: a model directory
//! copied by hand works the same.
//!
//! Each file is streamed to `NAME.part` and renamed when complete, so an interrupted download
//! never leaves a truncated file that looks whole.

use std::path::{Path, PathBuf};

use crate::SourceError;

/// The Hub's public endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

const VENUE: &str = "huggingface";

/// The files of a BERT-family model directory: each inner list is one file and its
/// alternatives, first found wins; the weights are required in one of their two forms.
const FILES: &[(&[&str], bool)] = &[
    (&["config.json"], true),
    (&["tokenizer.json"], true),
    (&["model.safetensors", "pytorch_model.bin"], true),
];

/// What a download did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Downloaded {
    /// Files written, with their sizes.
    pub written: Vec<(String, u64)>,
    /// Files already present and kept.
    pub kept: Vec<String>,
}

/// Downloads `repo` (`owner/name`) at `revision` into `dir`: `config.json`, `tokenizer.json`,
/// and `model.safetensors` (or `pytorch_model.bin` when the repository has no safetensors).
/// Files already in `dir` are kept unless `force`. `progress(file, done, total)` is called as
/// bytes arrive.
pub async fn download_model(
    endpoint: &str,
    token: Option<&str>,
    repo: &str,
    revision: &str,
    dir: &Path,
    force: bool,
    progress: &mut (dyn FnMut(&str, u64, Option<u64>) + Send),
) -> Result<Downloaded, SourceError> {
    let bad = |message: String| SourceError::Venue {
        venue: VENUE,
        message,
        transient: false,
    };
    let valid = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let parts: Vec<&str> = repo.split('/').collect();
    if parts.len() != 2 || !parts.iter().all(|p| valid(p)) {
        return Err(bad(format!(
            "{repo:?} is not a Hub model name: expected owner/name, e.g. sentence-transformers/all-MiniLM-L6-v2"
        )));
    }
    if !valid(revision) {
        return Err(bad(format!("{revision:?} is not a revision name")));
    }
    let client = crate::http_client(VENUE)?;
    std::fs::create_dir_all(dir)
        .map_err(|e| bad(format!("cannot create {}: {e}", dir.display())))?;
    let mut done = Downloaded::default();
    for (names, required) in FILES {
        let mut found = false;
        for name in names.iter() {
            let path = dir.join(name);
            if path.exists() && !force {
                done.kept.push((*name).to_owned());
                found = true;
                break;
            }
            let url = format!(
                "{}/{repo}/resolve/{revision}/{name}",
                endpoint.trim_end_matches('/')
            );
            match fetch(&client, &url, token, &path, name, progress).await? {
                Some(size) => {
                    done.written.push(((*name).to_owned(), size));
                    found = true;
                    break;
                }
                None => continue,
            }
        }
        if !found && *required {
            return Err(bad(format!(
                "{repo}@{revision} has none of {} (is it a BERT-family model?)",
                names.join(", ")
            )));
        }
    }
    Ok(done)
}

/// One file; `Ok(None)` when the Hub says the file does not exist.
async fn fetch(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    path: &Path,
    name: &str,
    progress: &mut (dyn FnMut(&str, u64, Option<u64>) + Send),
) -> Result<Option<u64>, SourceError> {
    let err = |message: String, transient: bool| SourceError::Venue {
        venue: VENUE,
        message,
        transient,
    };
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let mut resp = req
        .send()
        .await
        .map_err(|e| err(format!("GET {url}: {e}"), true))?;
    let status = resp.status();
    let code = resp
        .headers()
        .get("x-error-code")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if status == reqwest::StatusCode::NOT_FOUND && code == "EntryNotFound" {
        return Ok(None);
    }
    if code == "RepoNotFound" || code == "GatedRepo" || status.as_u16() == 401 {
        return Err(err(
            format!(
                "{url}: {status} {code}: the repository does not exist, or it is private or gated (set HF_TOKEN)"
            ),
            false,
        ));
    }
    if !status.is_success() {
        return Err(err(
            format!("GET {url}: {status}"),
            status.is_server_error() || status.as_u16() == 429,
        ));
    }
    let total = resp.content_length();
    let part = PathBuf::from(format!("{}.part", path.display()));
    let io = |e: std::io::Error| err(format!("{}: {e}", part.display()), false);
    let mut file = std::fs::File::create(&part).map_err(io)?;
    let mut written = 0u64;
    progress(name, 0, total);
    loop {
        let chunk = resp
            .chunk()
            .await
            .map_err(|e| err(format!("GET {url}: body: {e}"), true));
        let chunk = match chunk {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                return Err(e);
            }
        };
        std::io::Write::write_all(&mut file, &chunk).map_err(io)?;
        written += chunk.len() as u64;
        progress(name, written, total);
    }
    if let Some(t) = total
        && t != written
    {
        let _ = std::fs::remove_file(&part);
        return Err(err(
            format!("GET {url}: {written} of {t} bytes arrived"),
            true,
        ));
    }
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&part, path).map_err(io)?;
    Ok(Some(written))
}
