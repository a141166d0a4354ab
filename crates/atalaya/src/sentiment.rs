//! `atalaya sentiment train|eval` and `atalaya models download`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use atalaya_ml::eval::{LabelMap, Report, read_labelled};
use atalaya_ml::finetune::{FineTuneOptions, fine_tune as fine_tune_layers, is_held_out};
use atalaya_ml::head::{TrainOptions, train_head};
use atalaya_ml::sentiment::Polarity;
use atalaya_ml::transformer::{HeadFile, TransformerModel, write_model_dir, write_tuned_layers};
use indicatif::{ProgressBar, ProgressStyle};

/// The Hub name of the encoder the shipped head sits on.
pub const DEFAULT_BASE_NAME: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// Where downloaded models live: `$ATALAYA_MODELS_DIR`, else `~/.cache/atalaya/models`.
pub fn models_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ATALAYA_MODELS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/atalaya/models")
}

/// The default encoder directory: the models directory's `sentence-transformers/all-MiniLM-L6-v2`.
pub fn default_base() -> PathBuf {
    models_dir().join(DEFAULT_BASE_NAME)
}

/// A progress bar of `len` `unit`s (`texts`, `steps`), hidden unless `show`.
fn bar(len: usize, what: &str, unit: &str, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len as u64);
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{{msg}} [{{bar:30}}] {{pos}}/{{len}} {unit}, {{per_sec}}, eta {{eta}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.set_message(what.to_owned());
    pb
}

/// The `--labels` map of `train` and `eval` (the default vocabulary without it).
pub fn label_map(labels: Option<&str>) -> anyhow::Result<LabelMap> {
    labels
        .map(LabelMap::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--labels: {e}"))
        .map(Option::unwrap_or_default)
}

fn base_or_default(base: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = base.map_or_else(default_base, Path::to_path_buf);
    if !dir.join("config.json").exists() {
        anyhow::bail!(
            "no model in {} (config.json missing): download it with `atalaya models download {DEFAULT_BASE_NAME}`, or pass --base DIR with a BERT-family model directory",
            dir.display()
        );
    }
    Ok(dir)
}

/// `sentiment train`: embeds the texts, trains the head, writes the model directory. Returns
/// the summary printed.
pub fn train(
    data: &Path,
    labels: Option<&str>,
    out: &Path,
    base: Option<&Path>,
    opts: TrainOptions,
    fine_tune: Option<FineTuneOptions>,
    progress: bool,
) -> anyhow::Result<String> {
    let map = label_map(labels)?;
    let rows = read_labelled(data, &map)?;
    if rows.is_empty() {
        anyhow::bail!("{}: no labelled rows", data.display());
    }
    let base = base_or_default(base)?;
    let mut encoder = atalaya_ml::transformer::Encoder::load(&base)?;
    let texts: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    let pb = bar(texts.len(), "embedding", "texts", progress);
    let started = std::time::Instant::now();
    let x = encoder.embed(&texts, atalaya_ml::transformer::DEFAULT_BATCH, &mut |n| {
        pb.set_position(n as u64)
    })?;
    pb.finish_and_clear();
    let embed_secs = started.elapsed().as_secs_f64();
    let y: Vec<Polarity> = rows.iter().map(|(_, p)| *p).collect();
    // Fine-tuning chooses its epoch on held-out rows: the starting head must not see them.
    let mut trained = if fine_tune.is_some() {
        let keep: Vec<usize> = (0..x.len()).filter(|&i| !is_held_out(i)).collect();
        let fx: Vec<Vec<f32>> = keep.iter().map(|&i| x[i].clone()).collect();
        let fy: Vec<Polarity> = keep.iter().map(|&i| y[i]).collect();
        train_head(&fx, &fy, &opts)
    } else {
        train_head(&x, &y, &opts)
    }
    .map_err(|e| anyhow::anyhow!("training: {e}"))?;
    let mut tuned_summary = String::new();
    let mut x = x;
    if let Some(ft) = &fine_tune {
        let ids = encoder.token_ids(&texts)?;
        // Its length (the steps) is known once fine-tuning starts.
        let pb = bar(0, "fine-tuning", "steps", progress);
        let started = std::time::Instant::now();
        let done = fine_tune_layers(
            encoder.bert_mut(),
            &mut trained.head,
            &ids,
            &y,
            ft,
            &mut |n, total| {
                pb.set_length(total as u64);
                pb.set_position(n as u64);
            },
        )
        .map_err(|e| anyhow::anyhow!("fine-tuning: {e}"))?;
        pb.finish_and_clear();
        let scores: Vec<String> = done
            .held_out
            .iter()
            .enumerate()
            .map(|(e, f)| format!("{e}: {f:.4}"))
            .collect();
        tuned_summary = format!(
            "\nfine-tuned the top {} layers in {:.0} s; held-out {} by epoch {}; kept epoch {}",
            ft.layers,
            started.elapsed().as_secs_f64(),
            ft.objective.name(),
            scores.join(", "),
            done.best_epoch
        );
        // The in-sample report below reads the tuned encoder.
        x = encoder.embed(&texts, atalaya_ml::transformer::DEFAULT_BATCH, &mut |_| {})?;
    }
    let head = HeadFile {
        format: 1,
        pooling: "mean".into(),
        trained_on: format!(
            "{} ({} rows) over {}",
            data.file_name().map_or_else(
                || data.display().to_string(),
                |f| f.to_string_lossy().into()
            ),
            rows.len(),
            base.display()
        ),
        head: trained.head,
    };
    write_model_dir(&base, out, &head)?;
    write_tuned_layers(encoder.bert(), out)?;
    let train_report = Report::of(
        x.iter()
            .zip(&y)
            .map(|(e, t)| (*t, head.head.predict(e).polarity())),
    );
    let mut s = format!(
        "{} texts embedded in {embed_secs:.1} s ({:.0}/s); L2 penalty {}",
        rows.len(),
        rows.len() as f64 / embed_secs.max(1e-9),
        trained.l2
    );
    if !trained.tried.is_empty() {
        let tried: Vec<String> = trained
            .tried
            .iter()
            .map(|(l, f)| format!("{l}: {f:.4}"))
            .collect();
        s.push_str(&format!(
            " (held-out {} per penalty: {})",
            opts.objective.name(),
            tried.join(", ")
        ));
    }
    s.push_str(&tuned_summary);
    s.push_str(&format!(
        "\nwrote {}\nin-sample (training rows; not a measure of quality):\n{}",
        out.display(),
        train_report.render()
    ));
    Ok(s)
}

/// Loads the `--model` of `sentiment eval` when it names a transformer: `default` or a
/// directory. `None` for `lexicon` and `ensemble`.
pub fn transformer_for(
    spec: &str,
    base: Option<&Path>,
) -> anyhow::Result<Option<TransformerModel>> {
    match spec {
        "lexicon" | "ensemble" => Ok(None),
        "default" => {
            let base = base_or_default(base)?;
            Ok(Some(atalaya_ml::transformer::default_model(&base)?))
        }
        dir => {
            let dir = Path::new(dir);
            if !dir.is_dir() {
                anyhow::bail!(
                    "--model {}: not lexicon, default, ensemble or a model directory",
                    dir.display()
                );
            }
            Ok(Some(
                TransformerModel::load(dir)
                    .with_context(|| format!("--model {}", dir.display()))?,
            ))
        }
    }
}

/// Scores labelled rows with a transformer, with a progress bar; the report and texts/s.
pub fn eval_transformer(
    model: &TransformerModel,
    rows: &[(String, Polarity)],
    progress: bool,
) -> anyhow::Result<(Report, f64)> {
    let texts: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    let pb = bar(texts.len(), "scoring", "texts", progress);
    let started = std::time::Instant::now();
    let probs = model.classify(&texts, &mut |n| pb.set_position(n as u64))?;
    pb.finish_and_clear();
    let rate = texts.len() as f64 / started.elapsed().as_secs_f64().max(1e-9);
    let report = Report::of(
        rows.iter()
            .zip(&probs)
            .map(|((_, t), p)| (*t, p.polarity())),
    );
    Ok((report, rate))
}

/// Scores labelled rows with the ensemble; a description of its parts and the report.
pub fn eval_ensemble(
    model: &atalaya_ml::ensemble::Ensemble,
    cfg: &atalaya_engine::SentimentConfig,
    rows: &[(String, Polarity)],
    progress: bool,
) -> (String, Report) {
    let texts: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    let pb = bar(
        texts.len(),
        "scoring",
        "texts",
        progress && model.transformer().is_some(),
    );
    let scores = model.score_all(&texts, &mut |n| pb.set_position(n as u64));
    pb.finish_and_clear();
    let p = &model.lexicon().provenance;
    let mut parts = vec![format!(
        "lexicon ({} VADER, {} finance, {} crypto-slang entries) × {}",
        p.vader, p.finance, p.crypto, cfg.lexicon_weight
    )];
    if let Some(t) = model.transformer() {
        parts.push(format!(
            "transformer {} ({}) × {}",
            t.encoder().dir().display(),
            t.kind(),
            cfg.transformer_weight
        ));
    }
    if cfg.keyword_weight > 0.0 {
        parts.push(format!("keywords × {}", cfg.keyword_weight));
    }
    let report = Report::of(
        rows.iter()
            .zip(&scores)
            .map(|((_, t), s)| (*t, model.polarity(s))),
    );
    (
        format!(
            "ensemble (neutral within ±{}) of {}",
            model.neutral_band(),
            parts.join(" + ")
        ),
        report,
    )
}

/// `models download`: the directory written and a summary.
pub async fn download(
    name: &str,
    revision: &str,
    dir: Option<&Path>,
    endpoint: &str,
    force: bool,
    progress: bool,
) -> anyhow::Result<String> {
    let dir = dir.map_or_else(|| models_dir().join(name), Path::to_path_buf);
    let token = std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty());
    let pb = if progress {
        let pb = ProgressBar::new(0);
        pb.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb
    } else {
        ProgressBar::hidden()
    };
    let pb2 = pb.clone();
    let mut report = move |file: &str, done: u64, total: Option<u64>| {
        if done == 0 {
            pb2.set_message(file.to_owned());
            pb2.set_length(total.unwrap_or(0));
        }
        pb2.set_position(done);
    };
    let got = atalaya_sources::hub::download_model(
        endpoint,
        token.as_deref(),
        name,
        revision,
        &dir,
        force,
        &mut report,
    )
    .await?;
    pb.finish_and_clear();
    let mut s = format!("{name}@{revision} in {}\n", dir.display());
    for (f, size) in &got.written {
        s.push_str(&format!("  wrote {f} ({size} bytes)\n"));
    }
    for f in &got.kept {
        s.push_str(&format!(
            "  kept {f} (already there; --force downloads it again)\n"
        ));
    }
    Ok(s)
}
