//! Tiny BERT model directories in the Hugging Face layout, made on the spot for tests:
//! `config.json`, a WordPiece `tokenizer.json` over a small vocabulary and `model.safetensors`
//! (or PyTorch's `pytorch_model.bin`) with deterministic pseudo-random weights (hidden width
//! 16, 2 heads, 2 layers). Written with the documented formats alone — the safetensors header
//! is JSON after its 8-byte little-endian length; `torch.save`'s file is a zip of
//! `archive/data.pkl` (a pickled state dict whose tensors are `_rebuild_tensor_v2` calls on
//! persistent storages) and one raw `archive/data/N` file per storage — so no ML crate is
//! needed to make one.

use std::path::Path;

/// The vocabulary: the special tokens, then these words.
pub const WORDS: &[&str] = &[
    "bitcoin", "ether", "price", "surges", "crashes", "to", "record", "high", "low", "market",
    "rally", "hack", "exchange", "the", "a", "is", "and", "news", "today", "##s", "##ing",
];

const HIDDEN: usize = 16;
const INTERMEDIATE: usize = 32;
const LAYERS: usize = 2;
const MAX_POS: usize = 64;

/// What to write.
#[derive(Clone, Debug)]
pub struct TinyBert {
    /// A `BertForSequenceClassification` with this `id2label` (in class order); `None` for a
    /// plain encoder (`BertModel`, like all-MiniLM-L6-v2).
    pub classifier: Option<Vec<String>>,
    /// Classifier biases (one per label; zeros when shorter), to force a class in tests.
    pub classifier_bias: Vec<f32>,
    /// Seed of the weights.
    pub seed: u64,
    /// Write `pytorch_model.bin` (PyTorch's zip format) instead of `model.safetensors`.
    pub pytorch: bool,
}

impl Default for TinyBert {
    fn default() -> Self {
        Self {
            classifier: None,
            classifier_bias: Vec::new(),
            seed: 7,
            pytorch: false,
        }
    }
}

impl TinyBert {
    /// Writes the directory (created if missing).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let vocab = 5 + WORDS.len();
        let architectures = if self.classifier.is_some() {
            "BertForSequenceClassification"
        } else {
            "BertModel"
        };
        let mut config = serde_json::json!({
            "architectures": [architectures],
            "attention_probs_dropout_prob": 0.1,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "hidden_size": HIDDEN,
            "initializer_range": 0.02,
            "intermediate_size": INTERMEDIATE,
            "layer_norm_eps": 1e-12,
            "max_position_embeddings": MAX_POS,
            "model_type": "bert",
            "num_attention_heads": 2,
            "num_hidden_layers": LAYERS,
            "pad_token_id": 0,
            "type_vocab_size": 2,
            "vocab_size": vocab,
        });
        if let Some(labels) = &self.classifier {
            let map: serde_json::Map<String, serde_json::Value> = labels
                .iter()
                .enumerate()
                .map(|(i, l)| (i.to_string(), serde_json::Value::from(l.as_str())))
                .collect();
            config["id2label"] = serde_json::Value::Object(map);
        }
        std::fs::write(dir.join("config.json"), config.to_string())?;
        std::fs::write(dir.join("tokenizer.json"), tokenizer_json().to_string())?;

        let mut rng = self.seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let mut random = |n: usize, scale: f32| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    rng = rng
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((rng >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0 * scale
                })
                .collect()
        };
        let prefix = if self.classifier.is_some() {
            "bert."
        } else {
            ""
        };
        let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
        let mut put = |name: &str, shape: Vec<usize>, data: Vec<f32>| {
            tensors.push((format!("{prefix}{name}"), shape, data));
        };
        let ones = |n: usize| vec![1.0_f32; n];
        let zeros = |n: usize| vec![0.0_f32; n];
        let h = HIDDEN;
        put(
            "embeddings.word_embeddings.weight",
            vec![vocab, h],
            random(vocab * h, 1.0),
        );
        put(
            "embeddings.position_embeddings.weight",
            vec![MAX_POS, h],
            random(MAX_POS * h, 0.2),
        );
        put(
            "embeddings.token_type_embeddings.weight",
            vec![2, h],
            random(2 * h, 0.2),
        );
        put("embeddings.LayerNorm.weight", vec![h], ones(h));
        put("embeddings.LayerNorm.bias", vec![h], zeros(h));
        for l in 0..LAYERS {
            let p = format!("encoder.layer.{l}.");
            for m in [
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
                "attention.output.dense",
            ] {
                put(&format!("{p}{m}.weight"), vec![h, h], random(h * h, 0.5));
                put(&format!("{p}{m}.bias"), vec![h], random(h, 0.1));
            }
            put(
                &format!("{p}attention.output.LayerNorm.weight"),
                vec![h],
                ones(h),
            );
            put(
                &format!("{p}attention.output.LayerNorm.bias"),
                vec![h],
                zeros(h),
            );
            put(
                &format!("{p}intermediate.dense.weight"),
                vec![INTERMEDIATE, h],
                random(INTERMEDIATE * h, 0.5),
            );
            put(
                &format!("{p}intermediate.dense.bias"),
                vec![INTERMEDIATE],
                random(INTERMEDIATE, 0.1),
            );
            put(
                &format!("{p}output.dense.weight"),
                vec![h, INTERMEDIATE],
                random(INTERMEDIATE * h, 0.5),
            );
            put(&format!("{p}output.dense.bias"), vec![h], random(h, 0.1));
            put(&format!("{p}output.LayerNorm.weight"), vec![h], ones(h));
            put(&format!("{p}output.LayerNorm.bias"), vec![h], zeros(h));
        }
        if let Some(labels) = &self.classifier {
            put("pooler.dense.weight", vec![h, h], random(h * h, 0.5));
            put("pooler.dense.bias", vec![h], random(h, 0.1));
            let k = labels.len();
            let mut bias = self.classifier_bias.clone();
            bias.resize(k, 0.0);
            tensors.push(("classifier.weight".into(), vec![k, h], random(k * h, 0.5)));
            tensors.push(("classifier.bias".into(), vec![k], bias));
        }
        if self.pytorch {
            std::fs::write(dir.join("pytorch_model.bin"), pytorch_bin(&tensors)?)
        } else {
            std::fs::write(dir.join("model.safetensors"), safetensors(&tensors))
        }
    }
}

/// A WordPiece tokenizer over [`WORDS`] with BERT's normaliser, pre-tokeniser and
/// `[CLS] … [SEP]` template.
pub fn tokenizer_json() -> serde_json::Value {
    let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    let mut vocab = serde_json::Map::new();
    for (i, w) in specials.iter().chain(WORDS).enumerate() {
        vocab.insert((*w).to_owned(), serde_json::Value::from(i));
    }
    let added: Vec<serde_json::Value> = specials
        .iter()
        .enumerate()
        .map(|(i, t)| {
            serde_json::json!({"id": i, "content": t, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
            "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
        "decoder": null,
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100, "vocab": vocab}
    })
}

/// The safetensors encoding of `F32` tensors: an 8-byte little-endian header length, the JSON
/// header (dtype, shape, data offsets per name), then the raw little-endian data.
pub fn safetensors(tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, shape, values) in tensors {
        let start = data.len();
        for v in values {
            data.extend_from_slice(&v.to_le_bytes());
        }
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut head = serde_json::Value::Object(header).to_string().into_bytes();
    while !head.len().is_multiple_of(8) {
        head.push(b' ');
    }
    let mut out = (head.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&head);
    out.extend_from_slice(&data);
    out
}

/// `torch.save(state_dict)` of `F32` tensors: a zip (stored entries) of `archive/data.pkl` —
/// pickle protocol 2 of an `OrderedDict` mapping each name to
/// `torch._utils._rebuild_tensor_v2(storage, 0, shape, stride, False, OrderedDict())`, each
/// storage a persistent id `("storage", torch.FloatStorage, "N", "cpu", numel)` — and the
/// storages' little-endian bytes in `archive/data/N`.
pub fn pytorch_bin(tensors: &[(String, Vec<usize>, Vec<f32>)]) -> std::io::Result<Vec<u8>> {
    fn unicode(p: &mut Vec<u8>, s: &str) {
        p.push(b'X');
        p.extend_from_slice(&(s.len() as u32).to_le_bytes());
        p.extend_from_slice(s.as_bytes());
    }
    fn int(p: &mut Vec<u8>, v: usize) {
        p.push(b'J');
        p.extend_from_slice(&(v as i32).to_le_bytes());
    }
    fn global(p: &mut Vec<u8>, module: &str, name: &str) {
        p.push(b'c');
        p.extend_from_slice(format!("{module}\n{name}\n").as_bytes());
    }
    fn ordered_dict(p: &mut Vec<u8>) {
        global(p, "collections", "OrderedDict");
        p.extend_from_slice(b")R");
    }
    let mut p = vec![0x80, 2];
    ordered_dict(&mut p);
    p.push(b'(');
    for (i, (name, shape, values)) in tensors.iter().enumerate() {
        unicode(&mut p, name);
        global(&mut p, "torch._utils", "_rebuild_tensor_v2");
        p.push(b'(');
        p.push(b'(');
        unicode(&mut p, "storage");
        global(&mut p, "torch", "FloatStorage");
        unicode(&mut p, &i.to_string());
        unicode(&mut p, "cpu");
        int(&mut p, values.len());
        p.extend_from_slice(b"tQ");
        int(&mut p, 0);
        p.push(b'(');
        shape.iter().for_each(|d| int(&mut p, *d));
        p.push(b't');
        p.push(b'(');
        let mut stride = vec![1usize; shape.len()];
        for d in (0..shape.len().saturating_sub(1)).rev() {
            stride[d] = stride[d + 1] * shape[d + 1];
        }
        stride.iter().for_each(|s| int(&mut p, *s));
        p.push(b't');
        p.push(0x89);
        ordered_dict(&mut p);
        p.extend_from_slice(b"tR");
    }
    p.extend_from_slice(b"u.");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut put = |name: &str, bytes: &[u8]| -> std::io::Result<()> {
        zip.start_file(name, stored)
            .map_err(std::io::Error::other)?;
        std::io::Write::write_all(&mut zip, bytes)
    };
    put("archive/data.pkl", &p)?;
    for (i, (_, _, values)) in tensors.iter().enumerate() {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        put(&format!("archive/data/{i}"), &bytes)?;
    }
    put("archive/version", b"3\n")?;
    Ok(zip.finish().map_err(std::io::Error::other)?.into_inner())
}
