//! Transformer sentiment models, from a local directory in the Hugging Face layout
//! (`config.json`, `tokenizer.json`, `model.safetensors` or `pytorch_model.bin`).
//!
//! Two kinds of checkpoint are read:
//! * a BERT-family **sequence classifier** (FinBERT and the like: `architectures` names
//!   `BertForSequenceClassification`): encoder, pooler (`tanh(W·h[CLS] + b)`) and the
//!   `classifier` layer, with the classes named by `id2label`;
//! * an **embedding model** (all-MiniLM-L6-v2 and the like) with a classification head trained
//!   by [`train_head`] and stored beside it as [`HEAD_FILE`]: mean pooling over the tokens,
//!   L2 normalisation, then the head.
//!
//! Texts are tokenised together, sorted by length and run in batches; one batch is one forward
//! pass of [`crate::bert`]'s packed encoder, which computes over real tokens only.

use std::path::{Path, PathBuf};

use candle_core::{D, DType, Device, Tensor};
use candle_nn::{Linear, Module, VarBuilder};
use serde::{Deserialize, Serialize};
use tokenizers::{Tokenizer, TruncationParams};

use crate::MlError;
use crate::bert::{Bert, BertConfig, Packed};
use crate::head::LinearHead;
use crate::sentiment::Polarity;

/// The file a trained head is stored in, inside the model directory.
pub const HEAD_FILE: &str = "atalaya-head.json";

/// The file fine-tuned layers are stored in, inside the model directory (safetensors, named
/// as in the checkpoint's `BertModel`); loaded over the checkpoint's own layers.
pub const LAYERS_FILE: &str = "atalaya-layers.safetensors";

/// The default batch size. The packed encoder computes over real tokens only, so the size
/// hardly matters (8 to 128 all read 235–245 texts/s on a 2-core CPU; docs/BENCHMARKS.md); a
/// batch is also the unit of progress.
pub const DEFAULT_BATCH: usize = 16;

/// Longest input in tokens: longer texts are truncated (headlines and posts fit well within).
pub const MAX_TOKENS: usize = 128;

/// Class probabilities of one text.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassProbs {
    /// P(negative).
    pub negative: f64,
    /// P(neutral).
    pub neutral: f64,
    /// P(positive).
    pub positive: f64,
}

impl ClassProbs {
    /// `P(positive) − P(negative)`, in [−1, 1]: the scale of the lexicon's compound score.
    pub fn compound(&self) -> f64 {
        self.positive - self.negative
    }

    /// The most probable class (neutral on a tie).
    pub fn polarity(&self) -> Polarity {
        if self.positive > self.negative && self.positive > self.neutral {
            Polarity::Positive
        } else if self.negative > self.positive && self.negative > self.neutral {
            Polarity::Negative
        } else {
            Polarity::Neutral
        }
    }

    pub(crate) fn from_classes(labels: &[Polarity], probs: &[f64]) -> Self {
        let mut p = Self {
            negative: 0.0,
            neutral: 0.0,
            positive: 0.0,
        };
        for (l, v) in labels.iter().zip(probs) {
            match l {
                Polarity::Negative => p.negative += v,
                Polarity::Neutral => p.neutral += v,
                Polarity::Positive => p.positive += v,
            }
        }
        p
    }
}

fn model_err(dir: &Path, message: impl std::fmt::Display) -> MlError {
    MlError::Model {
        path: dir.display().to_string(),
        message: message.to_string(),
    }
}

/// The parts of `config.json` the encoder's [`BertConfig`] does not keep.
#[derive(Deserialize)]
struct ConfigExtra {
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    id2label: std::collections::BTreeMap<String, String>,
}

/// A BERT-family encoder with its tokenizer.
pub struct Encoder {
    bert: Bert,
    tokenizer: Tokenizer,
    hidden: usize,
    dir: PathBuf,
    extra: ConfigExtra,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("dir", &self.dir)
            .field("hidden", &self.hidden)
            .finish_non_exhaustive()
    }
}

impl Encoder {
    /// Loads `dir`: `config.json` (a BERT-family configuration), `tokenizer.json`, and
    /// `model.safetensors` or else `pytorch_model.bin`.
    pub fn load(dir: &Path) -> Result<Self, MlError> {
        Ok(Self::open(dir)?.0)
    }

    /// [`Encoder::load`], with the weights' `VarBuilder` for a head to read its own tensors
    /// from. Dropping it frees the file's bytes (the encoder keeps its own copies).
    fn open(dir: &Path) -> Result<(Self, VarBuilder<'static>), MlError> {
        let read = |name: &str| {
            std::fs::read(dir.join(name)).map_err(|source| MlError::Io {
                path: dir.join(name).display().to_string(),
                source,
            })
        };
        let config_bytes = read("config.json")?;
        let config: BertConfig = serde_json::from_slice(&config_bytes).map_err(|e| {
            model_err(
                dir,
                format!("config.json is not a BERT-family configuration: {e}"),
            )
        })?;
        let extra: ConfigExtra = serde_json::from_slice(&config_bytes)
            .map_err(|e| model_err(dir, format!("config.json: {e}")))?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| model_err(dir, format!("tokenizer.json: {e}")))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS.min(config.max_position_embeddings),
                ..TruncationParams::default()
            }))
            .map_err(|e| model_err(dir, format!("tokenizer.json: {e}")))?;
        let device = Device::Cpu;
        let safetensors = dir.join("model.safetensors");
        let pth = dir.join("pytorch_model.bin");
        let vb = if safetensors.exists() {
            VarBuilder::from_buffered_safetensors(read("model.safetensors")?, DType::F32, &device)
                .map_err(|e| model_err(dir, format!("model.safetensors: {e}")))?
        } else if pth.exists() {
            VarBuilder::from_pth(&pth, DType::F32, &device)
                .map_err(|e| model_err(dir, format!("pytorch_model.bin: {e}")))?
        } else {
            return Err(model_err(
                dir,
                "no weights: expected model.safetensors or pytorch_model.bin",
            ));
        };
        let mut bert = Bert::load(&vb, &config)
            .map_err(|e| model_err(dir, format!("weights do not match config.json: {e}")))?;
        if dir.join(LAYERS_FILE).exists() {
            let tuned =
                VarBuilder::from_buffered_safetensors(read(LAYERS_FILE)?, DType::F32, &device)
                    .map_err(|e| model_err(dir, format!("{LAYERS_FILE}: {e}")))?;
            bert.overlay(&tuned)
                .map_err(|e| model_err(dir, format!("{LAYERS_FILE}: {e}")))?;
        }
        let encoder = Self {
            bert,
            tokenizer,
            hidden: config.hidden_size,
            dir: dir.to_owned(),
            extra,
        };
        Ok((encoder, vb))
    }

    /// Whether `config.json` names a sequence-classification architecture.
    pub fn is_classifier(&self) -> bool {
        self.extra
            .architectures
            .iter()
            .any(|a| a.ends_with("ForSequenceClassification"))
    }

    /// The directory it was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Width of the hidden states (and of [`Encoder::embed`]'s vectors).
    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    /// Runs one batch: the last hidden states of every token, texts packed without padding.
    fn forward(&self, texts: &[&str]) -> Result<Packed, MlError> {
        let ids = self.token_ids(texts)?;
        let ids: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        self.bert.forward(&ids).map_err(|e| model_err(&self.dir, e))
    }

    /// Each text's token ids (special tokens included, truncated as for the encoder).
    pub fn token_ids(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, MlError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| model_err(&self.dir, e))?;
        Ok(encodings.iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// The encoder's weights, to fine-tune.
    pub fn bert_mut(&mut self) -> &mut Bert {
        &mut self.bert
    }

    /// The encoder's weights.
    pub fn bert(&self) -> &Bert {
        &self.bert
    }

    /// Sentence embeddings: the mean of the token states (padding excluded), L2-normalised —
    /// what sentence-transformers computes for all-MiniLM-L6-v2. In input order; texts are
    /// batched by length, `batch` at a time; `progress` is called with the count done.
    pub fn embed(
        &self,
        texts: &[&str],
        batch: usize,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Vec<f32>>, MlError> {
        self.batched(texts, batch, progress, |packed| Ok(mean_pool(packed)))
    }

    /// Runs `per_batch` over length-sorted batches and puts its rows back in input order.
    fn batched(
        &self,
        texts: &[&str],
        batch: usize,
        progress: &mut dyn FnMut(usize),
        mut per_batch: impl FnMut(&Packed) -> Result<Vec<Vec<f32>>, MlError>,
    ) -> Result<Vec<Vec<f32>>, MlError> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        let mut done = 0;
        for chunk in order.chunks(batch.max(1)) {
            let slice: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            let packed = self.forward(&slice)?;
            for (row, &i) in per_batch(&packed)?.into_iter().zip(chunk) {
                out[i] = row;
            }
            done += chunk.len();
            progress(done);
        }
        Ok(out)
    }
}

/// Each text's mean token state, L2-normalised.
fn mean_pool(packed: &Packed) -> Vec<Vec<f32>> {
    crate::bert::mean_pool(&packed.states, &packed.spans, packed.hidden)
        .into_iter()
        .map(|(v, _)| v)
        .collect()
}

/// What turns hidden states into classes.
enum Head {
    /// A checkpoint's own pooler and classifier (`BertForSequenceClassification`).
    Classifier {
        pooler: Linear,
        classifier: Linear,
        labels: Vec<Polarity>,
    },
    /// A head trained by [`train_head`] over mean-pooled embeddings.
    Trained(LinearHead),
}

/// A transformer sentiment model: an encoder and its classification head.
pub struct TransformerModel {
    encoder: Encoder,
    head: Head,
    batch: usize,
}

impl std::fmt::Debug for TransformerModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransformerModel")
            .field("encoder", &self.encoder)
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

/// A trained head as stored in [`HEAD_FILE`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct HeadFile {
    /// Format version (1).
    pub format: u32,
    /// How the encoder's states are pooled: `mean` (then L2-normalised).
    pub pooling: String,
    /// What it was trained on, for the record.
    pub trained_on: String,
    /// The head.
    pub head: LinearHead,
}

impl TransformerModel {
    /// Loads a model directory: a sequence-classification checkpoint, or an encoder with
    /// [`HEAD_FILE`] beside it.
    pub fn load(dir: &Path) -> Result<Self, MlError> {
        let head_path = dir.join(HEAD_FILE);
        let head = if head_path.exists() {
            Some(read_head(&head_path)?)
        } else {
            None
        };
        Self::load_with(dir, head)
    }

    /// Loads the encoder in `dir` with the given head (or the checkpoint's own classifier when
    /// `head` is `None`).
    pub fn load_with(dir: &Path, head: Option<HeadFile>) -> Result<Self, MlError> {
        let (encoder, vb) = Encoder::open(dir)?;
        Self::from_encoder(encoder, &vb, head)
    }

    /// Loads `dir` as [`TransformerModel::load`] does, except that an encoder with neither its
    /// own classifier nor [`HEAD_FILE`] (all-MiniLM-L6-v2 as downloaded) gets the shipped head
    /// [`DEFAULT_HEAD_JSON`].
    pub fn load_or_default(dir: &Path) -> Result<Self, MlError> {
        if dir.join(HEAD_FILE).exists() {
            return Self::load(dir);
        }
        let (mut encoder, vb) = Encoder::open(dir)?;
        let head = if encoder.is_classifier() {
            None
        } else {
            Some(shipped(&mut encoder)?)
        };
        Self::from_encoder(encoder, &vb, head)
    }

    /// [`TransformerModel::load_or_default`], shared: a process-wide cache keyed by the
    /// directory and the modification times of its files hands every caller the same model, so
    /// the many pipelines of a walk-forward optimisation read the weights once. A directory
    /// whose files changed since is loaded afresh.
    pub fn shared(dir: &Path) -> Result<std::sync::Arc<Self>, MlError> {
        type Cache = std::collections::HashMap<
            (PathBuf, Vec<Option<std::time::SystemTime>>),
            std::sync::Arc<TransformerModel>,
        >;
        static CACHE: std::sync::OnceLock<std::sync::Mutex<Cache>> = std::sync::OnceLock::new();
        let stamps = [
            "config.json",
            "tokenizer.json",
            "model.safetensors",
            "pytorch_model.bin",
            HEAD_FILE,
            LAYERS_FILE,
        ]
        .iter()
        .map(|f| {
            std::fs::metadata(dir.join(f))
                .and_then(|m| m.modified())
                .ok()
        })
        .collect();
        let key = (
            std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned()),
            stamps,
        );
        let cache = CACHE.get_or_init(Default::default);
        if let Some(m) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(m);
        }
        let model = std::sync::Arc::new(Self::load_or_default(dir)?);
        if let Ok(mut c) = cache.lock() {
            c.insert(key, model.clone());
        }
        Ok(model)
    }

    fn from_encoder(
        encoder: Encoder,
        vb: &VarBuilder<'_>,
        head: Option<HeadFile>,
    ) -> Result<Self, MlError> {
        let dir = encoder.dir.clone();
        let dir = dir.as_path();
        let head = match head {
            Some(h) => {
                if h.head.inputs() != encoder.hidden {
                    return Err(model_err(
                        dir,
                        format!(
                            "the head expects {}-wide embeddings, the encoder gives {}",
                            h.head.inputs(),
                            encoder.hidden
                        ),
                    ));
                }
                Head::Trained(h.head)
            }
            None => classifier_head(&encoder, vb)?,
        };
        Ok(Self {
            encoder,
            head,
            batch: DEFAULT_BATCH,
        })
    }

    /// `sequence classifier` or `embedding model + trained head`.
    pub fn kind(&self) -> &'static str {
        match self.head {
            Head::Classifier { .. } => "sequence classifier",
            Head::Trained(_) => "embedding model + trained head",
        }
    }

    /// The encoder.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// Sets the batch size (default [`DEFAULT_BATCH`]).
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Class probabilities for each text, in order.
    pub fn classify(
        &self,
        texts: &[&str],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<ClassProbs>, MlError> {
        let dir = &self.encoder.dir;
        match &self.head {
            Head::Trained(h) => Ok(self
                .encoder
                .embed(texts, self.batch, progress)?
                .iter()
                .map(|e| h.predict(e))
                .collect()),
            Head::Classifier {
                pooler,
                classifier,
                labels,
            } => {
                let rows = self
                    .encoder
                    .batched(texts, self.batch, progress, |packed| {
                        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
                            let h = packed.hidden;
                            // The first token's state ([CLS]); zeros for a text of no tokens.
                            let zeros = vec![0.0; h];
                            let first: Vec<f32> = (0..packed.spans.len())
                                .flat_map(|i| packed.text(i).get(..h).unwrap_or(&zeros).to_vec())
                                .collect();
                            let cls =
                                Tensor::from_vec(first, (packed.spans.len(), h), &Device::Cpu)?;
                            let pooled = pooler.forward(&cls)?.tanh()?;
                            let logits = classifier.forward(&pooled)?;
                            candle_nn::ops::softmax(&logits, D::Minus1)?.to_vec2::<f32>()
                        };
                        run().map_err(|e| model_err(dir, e))
                    })?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        let p: Vec<f64> = r.iter().map(|&v| f64::from(v)).collect();
                        ClassProbs::from_classes(labels, &p)
                    })
                    .collect())
            }
        }
    }

    /// One text.
    pub fn classify_one(&self, text: &str) -> Result<ClassProbs, MlError> {
        self.classify(&[text], &mut |_| {})?
            .pop()
            .ok_or_else(|| model_err(&self.encoder.dir, "no output"))
    }
}

fn classifier_head(encoder: &Encoder, vb: &VarBuilder<'_>) -> Result<Head, MlError> {
    let dir = &encoder.dir;
    if !encoder.is_classifier() {
        return Err(model_err(
            dir,
            format!(
                "an encoder without a classification head (architectures {:?}) and no {HEAD_FILE}: \
                 train one with `atalaya sentiment train --data LABELED.csv --base {} --out DIR`",
                encoder.extra.architectures,
                dir.display()
            ),
        ));
    }
    let mut labels = Vec::new();
    for i in 0.. {
        let Some(name) = encoder.extra.id2label.get(&i.to_string()) else {
            break;
        };
        labels.push(Polarity::parse(name).ok_or_else(|| {
            model_err(
                dir,
                format!(
                    "id2label {i} = {name:?} is not positive, neutral, negative, bullish or bearish"
                ),
            )
        })?);
    }
    if labels.is_empty() || labels.len() != encoder.extra.id2label.len() {
        return Err(model_err(
            dir,
            "config.json's id2label must number the classes 0, 1, 2, …",
        ));
    }
    let base = if vb.contains_tensor("bert.pooler.dense.weight") {
        vb.pp("bert")
    } else {
        vb.clone()
    };
    let h = encoder.hidden;
    let pooler = candle_nn::linear(h, h, base.pp("pooler").pp("dense"))
        .map_err(|e| model_err(dir, format!("pooler: {e}")))?;
    let classifier = candle_nn::linear(h, labels.len(), vb.pp("classifier"))
        .map_err(|e| model_err(dir, format!("classifier: {e}")))?;
    Ok(Head::Classifier {
        pooler,
        classifier,
        labels,
    })
}

/// Reads a [`HEAD_FILE`].
pub fn read_head(path: &Path) -> Result<HeadFile, MlError> {
    let bytes = std::fs::read(path).map_err(|source| MlError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_head(&bytes).map_err(|message| model_err(path, message))
}

/// Parses a head file's JSON and checks its shape.
pub fn parse_head(bytes: &[u8]) -> Result<HeadFile, String> {
    let h: HeadFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if h.format != 1 {
        return Err(format!("head format {} (this build reads 1)", h.format));
    }
    if h.pooling != "mean" {
        return Err(format!(
            "pooling {:?} (this build reads \"mean\")",
            h.pooling
        ));
    }
    h.head.check()?;
    Ok(h)
}

/// Writes a model directory: the encoder's files from `base` (hard-linked where the file system
/// allows, else copied) and the head as [`HEAD_FILE`], so the directory loads on its own.
pub fn write_model_dir(base: &Path, out: &Path, head: &HeadFile) -> Result<(), MlError> {
    let io = |path: &Path, source| MlError::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    for name in [
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "pytorch_model.bin",
        LAYERS_FILE,
    ] {
        let from = base.join(name);
        if !from.exists() {
            continue;
        }
        let to = out.join(name);
        if to.exists() {
            std::fs::remove_file(&to).map_err(|e| io(&to, e))?;
        }
        if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).map_err(|e| io(&to, e))?;
        }
    }
    let json = serde_json::to_vec_pretty(head).map_err(|e| model_err(out, e))?;
    let path = out.join(HEAD_FILE);
    let tmp = out.join(format!("{HEAD_FILE}.tmp"));
    std::fs::write(&tmp, json).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))
}

/// Writes the layers of `bert` that differ from its checkpoint's (fine-tuned) as
/// [`LAYERS_FILE`] in `out`, replacing (never writing through) a file linked from elsewhere.
/// Nothing is written when no layer differs.
pub fn write_tuned_layers(bert: &Bert, out: &Path) -> Result<(), MlError> {
    let io = |path: &Path, source| MlError::Io {
        path: path.display().to_string(),
        source,
    };
    let path = out.join(LAYERS_FILE);
    if path.exists() {
        std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
    }
    let tensors = bert.layer_tensors(bert.tuned_from());
    if tensors.is_empty() {
        return Ok(());
    }
    let mut map = std::collections::HashMap::new();
    for (name, shape, data) in tensors {
        let mut t = Tensor::from_vec(data, shape, &Device::Cpu).map_err(|e| model_err(out, e))?;
        // Low-rank factors are stored at half precision (fine-tuning rounded them already):
        // half the size, and the loader reads them back as f32.
        if name.contains(".low_rank.") {
            t = t.to_dtype(DType::F16).map_err(|e| model_err(out, e))?;
        }
        map.insert(name, t);
    }
    let tmp = out.join(format!("{LAYERS_FILE}.tmp"));
    candle_core::safetensors::save(&map, &tmp).map_err(|e| model_err(&tmp, e))?;
    // The writer creates the file owner-only (0600); a model directory is read by whoever
    // runs the agent, like the head beside it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| io(&tmp, e))?;
    }
    std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))
}

/// The shipped head: trained by `atalaya sentiment train --fine-tune 6 --rank 16` on the
/// MIT-licensed twitter-financial-news train split over all-MiniLM-L6-v2, together with
/// [`DEFAULT_LAYERS`] (docs/EVALUATION.md has the command and its scores).
pub const DEFAULT_HEAD_JSON: &str = include_str!("../models/minilm-twitter-head.json");

/// The shipped encoder update: the rank-16 factors (half precision) by which fine-tuning moved
/// the dense weights of all six layers of all-MiniLM-L6-v2, trained with [`DEFAULT_HEAD_JSON`];
/// [`Bert::overlay`] adds them to the checkpoint's weights.
pub const DEFAULT_LAYERS: &[u8] = include_bytes!("../models/minilm-twitter-layers.safetensors");

/// The shipped default model: [`DEFAULT_LAYERS`] and [`DEFAULT_HEAD_JSON`] over the
/// all-MiniLM-L6-v2 directory `base` (as downloaded: without fine-tuned layers of its own).
pub fn default_model(base: &Path) -> Result<TransformerModel, MlError> {
    let (mut encoder, vb) = Encoder::open(base)?;
    let head = shipped(&mut encoder)?;
    TransformerModel::from_encoder(encoder, &vb, Some(head))
}

/// Makes `encoder` the shipped model's (overlays [`DEFAULT_LAYERS`]) and returns its head.
fn shipped(encoder: &mut Encoder) -> Result<HeadFile, MlError> {
    let dir = encoder.dir.clone();
    if encoder.bert.tuned_from() < encoder.bert.layers.len() {
        return Err(model_err(
            &dir,
            format!(
                "it holds fine-tuned layers ({LAYERS_FILE}) but no head ({HEAD_FILE}); the \
                 shipped model goes over all-MiniLM-L6-v2 as downloaded"
            ),
        ));
    }
    let vb =
        VarBuilder::from_buffered_safetensors(DEFAULT_LAYERS.to_vec(), DType::F32, &Device::Cpu)
            .map_err(|e| model_err(Path::new("<shipped layers>"), e))?;
    encoder.bert.overlay(&vb).map_err(|e| {
        model_err(
            &dir,
            format!("the shipped model is fine-tuned all-MiniLM-L6-v2 and does not fit this encoder: {e}"),
        )
    })?;
    parse_head(DEFAULT_HEAD_JSON.as_bytes()).map_err(|m| model_err(Path::new("<shipped head>"), m))
}
