//! BERT's encoder on the CPU, for inference on short texts.
//!
//! candle's `BertModel` pads every text of a batch to the longest one and runs one tensor
//! operation after another, each allocating its result; with all-MiniLM-L6-v2 on two cores its
//! matrix products were only 41% of the time — the rest went to GELU's scalar `erf` (16%),
//! `exp`, copies between layouts and allocations. This encoder computes the same function on
//! **packed rows**: the tokens of all texts of a batch stacked without padding, so each dense
//! layer is one matrix product over real tokens only (gemm, the kernels candle itself calls),
//! the query, key and value projections are one product, and attention runs per text over its
//! own tokens. Elementwise work — GELU (with a rational `erf` accurate to 5e-7), softmax
//! (with a polynomial `exp` of the same accuracy), layer norm — runs in loops the compiler
//! vectorises, with AVX2 and FMA chosen at run time where the CPU has them. A test compares the
//! hidden states with candle's `BertModel` on the same weights.
//!
//! Weights are read with candle's `VarBuilder` (safetensors or PyTorch's zip) and kept as
//! plain `f32` rows in PyTorch's `Linear` layout (`[out, in]`).

use candle_nn::VarBuilder;
use rayon::prelude::*;
use serde::Deserialize;

/// The activation between a layer's two feed-forward products (`hidden_act`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x·Φ(x)` with the exact normal CDF (BERT's `gelu`).
    Gelu,
    /// The tanh approximation of GELU (`gelu_new`, `gelu_pytorch_tanh`).
    #[serde(
        alias = "gelu_new",
        alias = "gelu_pytorch_tanh",
        alias = "geluapproximate"
    )]
    GeluApproximate,
    /// `max(x, 0)`.
    Relu,
}

/// The parts of a BERT `config.json` the encoder needs.
#[derive(Clone, Debug, Deserialize)]
pub struct BertConfig {
    /// Rows of the word-embedding table.
    pub vocab_size: usize,
    /// Width of the hidden states.
    pub hidden_size: usize,
    /// Transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// The feed-forward activation.
    pub hidden_act: Activation,
    /// Rows of the position-embedding table: the longest input.
    pub max_position_embeddings: usize,
    /// Rows of the token-type table.
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    /// Layer norm's epsilon.
    #[serde(default = "bert_eps")]
    pub layer_norm_eps: f64,
    /// `absolute` (the only kind read).
    #[serde(default)]
    pub position_embedding_type: Option<String>,
    /// `bert` and the like: the weights' name prefix in some checkpoints.
    #[serde(default)]
    pub model_type: Option<String>,
}

fn two() -> usize {
    2
}

fn bert_eps() -> f64 {
    1e-12
}

/// Layer norm's scale and shift.
#[derive(Clone)]
pub(crate) struct Norm {
    pub(crate) gamma: Vec<f32>,
    pub(crate) beta: Vec<f32>,
}

/// A `Linear` layer, its weight kept transposed: `[in, out]`, row-major (gemm then reads it
/// column by column as its kernels want, without repacking it at every product).
#[derive(Clone)]
pub(crate) struct Dense {
    pub(crate) weight_t: Vec<f32>,
    pub(crate) bias: Vec<f32>,
    pub(crate) inputs: usize,
    pub(crate) outputs: usize,
}

impl Dense {
    /// The weight in PyTorch's layout, `[outputs, inputs]`.
    fn to_pytorch(&self) -> Vec<f32> {
        let mut w = vec![0.0; self.inputs * self.outputs];
        for (i, row) in self.weight_t.chunks_exact(self.outputs).enumerate() {
            for (o, v) in row.iter().enumerate() {
                w[o * self.inputs + i] = *v;
            }
        }
        w
    }

    /// From PyTorch's layout: `weight` is `[outputs, inputs]`, row-major.
    fn new(weight: &[f32], bias: Vec<f32>, inputs: usize, outputs: usize) -> Self {
        let mut weight_t = vec![0.0; inputs * outputs];
        for (o, row) in weight.chunks_exact(inputs).enumerate() {
            for (i, w) in row.iter().enumerate() {
                weight_t[i * outputs + o] = *w;
            }
        }
        Self {
            weight_t,
            bias,
            inputs,
            outputs,
        }
    }
}

#[derive(Clone)]
pub(crate) struct Layer {
    /// Query, key and value stacked: `[3·hidden, hidden]`.
    pub(crate) qkv: Dense,
    pub(crate) attention_out: Dense,
    pub(crate) attention_norm: Norm,
    pub(crate) up: Dense,
    pub(crate) down: Dense,
    pub(crate) output_norm: Norm,
}

/// A BERT encoder's weights.
pub struct Bert {
    config: BertConfig,
    eps: f32,
    /// `[vocab, hidden]`.
    words: Vec<f32>,
    /// `[max_positions, hidden]`, with token type 0's row added (every input here is one
    /// segment).
    positions: Vec<f32>,
    embedding_norm: Norm,
    pub(crate) layers: Vec<Layer>,
    /// The first layer that differs from the checkpoint's.
    tuned_from: usize,
    /// Per layer, the low-rank updates its dense weights received (fine-tuning with a rank):
    /// stored instead of the whole weights.
    low_rank: Vec<Option<[LowRank; 4]>>,
}

/// A low-rank update of a dense layer's transposed weight: `Wᵀ = W₀ᵀ + P·Q` with `P`
/// `[inputs, rank]` and `Q` `[rank, outputs]`, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct LowRank {
    /// `[inputs, rank]`.
    pub p: Vec<f32>,
    /// `[rank, outputs]`.
    pub q: Vec<f32>,
    /// The rank.
    pub rank: usize,
}

impl LowRank {
    /// Adds `P·Q` to `d`'s weight.
    pub(crate) fn apply(&self, d: &mut Dense) {
        product(
            (d.inputs, d.outputs, self.rank),
            (&mut d.weight_t, d.outputs),
            (&self.p, self.rank, 1),
            (&self.q, d.outputs, 1),
            (true, 1.0),
            true,
        );
    }

    /// Sets `d`'s weight to `base + P·Q` (`base`: the weight the factors were trained from).
    pub(crate) fn apply_over(&self, d: &mut Dense, base: &[f32]) {
        d.weight_t.copy_from_slice(base);
        self.apply(d);
    }

    /// Rounds the factors to half precision, the precision they are stored in
    /// (`transformer::write_tuned_layers`): a model holding them is the model that loads back.
    pub(crate) fn round_to_half(&mut self) -> candle_core::Result<()> {
        use candle_core::{DType, Device, Tensor};
        for v in [&mut self.p, &mut self.q] {
            *v = Tensor::from_slice(v, v.len(), &Device::Cpu)?
                .to_dtype(DType::F16)?
                .to_dtype(DType::F32)?
                .to_vec1()?;
        }
        Ok(())
    }
}

/// The names of a layer's four dense weights in the low-rank storage.
const LOW_RANK_NAMES: [&str; 4] = ["qkv", "attention_out", "up", "down"];

impl Layer {
    /// The four dense layers, in [`LOW_RANK_NAMES`]' order.
    pub(crate) fn dense_mut(&mut self) -> [&mut Dense; 4] {
        [
            &mut self.qkv,
            &mut self.attention_out,
            &mut self.up,
            &mut self.down,
        ]
    }

    pub(crate) fn dense(&self) -> [&Dense; 4] {
        [&self.qkv, &self.attention_out, &self.up, &self.down]
    }
}

impl std::fmt::Debug for Bert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bert")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Packed rows and each text's first row and row count.
pub(crate) type PackedRows = (Vec<f32>, Vec<(usize, usize)>);

/// The encoder's output for a batch: the last hidden states of every token, texts one after
/// another without padding.
#[derive(Clone, Debug)]
pub struct Packed {
    /// `[tokens, hidden]`, row-major.
    pub states: Vec<f32>,
    /// Width of a row.
    pub hidden: usize,
    /// Each text's first row and row count, in input order.
    pub spans: Vec<(usize, usize)>,
}

impl Packed {
    /// The rows of text `i`.
    pub fn text(&self, i: usize) -> &[f32] {
        let (start, len) = self.spans[i];
        &self.states[start * self.hidden..(start + len) * self.hidden]
    }
}

fn read(vb: &VarBuilder<'_>, shape: &[usize], name: &str) -> candle_core::Result<Vec<f32>> {
    vb.get(shape, name)?.flatten_all()?.to_vec1::<f32>()
}

fn norm(vb: &VarBuilder<'_>, width: usize) -> candle_core::Result<Norm> {
    Ok(Norm {
        gamma: read(vb, &[width], "weight")?,
        beta: read(vb, &[width], "bias")?,
    })
}

fn dense(vb: &VarBuilder<'_>, inputs: usize, outputs: usize) -> candle_core::Result<Dense> {
    Ok(Dense::new(
        &read(vb, &[outputs, inputs], "weight")?,
        read(vb, &[outputs], "bias")?,
        inputs,
        outputs,
    ))
}

fn read_layer(l: &VarBuilder<'_>, config: &BertConfig) -> candle_core::Result<Layer> {
    let h = config.hidden_size;
    let a = l.pp("attention");
    // Query, key and value as one layer: their `[out, in]` weights stacked.
    let mut weight = Vec::with_capacity(3 * h * h);
    let mut bias = Vec::with_capacity(3 * h);
    for n in ["query", "key", "value"] {
        let p = a.pp("self").pp(n);
        weight.extend(read(&p, &[h, h], "weight")?);
        bias.extend(read(&p, &[h], "bias")?);
    }
    Ok(Layer {
        qkv: Dense::new(&weight, bias, h, 3 * h),
        attention_out: dense(&a.pp("output").pp("dense"), h, h)?,
        attention_norm: norm(&a.pp("output").pp("LayerNorm"), h)?,
        up: dense(
            &l.pp("intermediate").pp("dense"),
            h,
            config.intermediate_size,
        )?,
        down: dense(&l.pp("output").pp("dense"), config.intermediate_size, h)?,
        output_norm: norm(&l.pp("output").pp("LayerNorm"), h)?,
    })
}

impl Bert {
    /// Reads the weights named as in Hugging Face's `BertModel` (`embeddings.…`,
    /// `encoder.layer.N.…`), with or without the `bert.` (or `model_type.`) prefix a
    /// sequence-classification checkpoint puts before them.
    pub fn load(vb: &VarBuilder<'_>, config: &BertConfig) -> Result<Self, String> {
        if config.hidden_size == 0
            || config.num_attention_heads == 0
            || !config
                .hidden_size
                .is_multiple_of(config.num_attention_heads)
        {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                config.hidden_size, config.num_attention_heads
            ));
        }
        if let Some(kind) = &config.position_embedding_type
            && kind != "absolute"
        {
            return Err(format!(
                "position_embedding_type {kind:?} (this build reads \"absolute\")"
            ));
        }
        let prefix = [Some("bert"), config.model_type.as_deref()]
            .into_iter()
            .flatten()
            .find(|p| vb.contains_tensor(&format!("{p}.embeddings.word_embeddings.weight")));
        let vb = match prefix {
            Some(p) => vb.pp(p),
            None => vb.clone(),
        };
        Self::read_weights(&vb, config).map_err(|e| e.to_string())
    }

    fn read_weights(vb: &VarBuilder<'_>, config: &BertConfig) -> candle_core::Result<Self> {
        let h = config.hidden_size;
        let e = vb.pp("embeddings");
        let words = read(&e, &[config.vocab_size, h], "word_embeddings.weight")?;
        let mut positions = read(
            &e,
            &[config.max_position_embeddings, h],
            "position_embeddings.weight",
        )?;
        let types = read(
            &e,
            &[config.type_vocab_size, h],
            "token_type_embeddings.weight",
        )?;
        for row in positions.chunks_exact_mut(h) {
            for (p, t) in row.iter_mut().zip(&types[..h]) {
                *p += t;
            }
        }
        let embedding_norm = norm(&e.pp("LayerNorm"), h)?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| read_layer(&vb.pp(format!("encoder.layer.{i}")), config))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            config: config.clone(),
            eps: config.layer_norm_eps as f32,
            words,
            positions,
            embedding_norm,
            tuned_from: layers.len(),
            low_rank: vec![None; layers.len()],
            layers,
        })
    }

    /// Replaces the layers whose tensors `vb` holds (named `encoder.layer.N.…`, without a
    /// prefix: fine-tuned layers stored beside a model) — whole layers, or low-rank updates of
    /// the dense weights (`encoder.layer.N.low_rank.{qkv,attention_out,up,down}.{p,q}`) added to
    /// the checkpoint's, with the layer's biases and norms; returns how many.
    pub fn overlay(&mut self, vb: &VarBuilder<'_>) -> Result<usize, String> {
        let mut replaced = 0;
        let h = self.config.hidden_size;
        for i in 0..self.layers.len() {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let err = |e: candle_core::Error| format!("layer {i}: {e}");
            if l.contains_tensor("low_rank.qkv.p") {
                let rank = l
                    .get_unchecked("low_rank.qkv.p")
                    .and_then(|t| t.dim(1))
                    .map_err(err)?;
                let mut updates = Vec::with_capacity(4);
                let layer = &mut self.layers[i];
                for (d, name) in layer.dense_mut().into_iter().zip(LOW_RANK_NAMES) {
                    let u = LowRank {
                        p: read(&l, &[d.inputs, rank], &format!("low_rank.{name}.p"))
                            .map_err(err)?,
                        q: read(&l, &[rank, d.outputs], &format!("low_rank.{name}.q"))
                            .map_err(err)?,
                        rank,
                    };
                    u.apply(d);
                    updates.push(u);
                }
                let a = l.pp("attention");
                let mut qkv_bias = Vec::with_capacity(3 * h);
                for n in ["query", "key", "value"] {
                    qkv_bias.extend(read(&a.pp("self").pp(n), &[h], "bias").map_err(err)?);
                }
                layer.qkv.bias = qkv_bias;
                let out = a.pp("output");
                layer.attention_out.bias = read(&out.pp("dense"), &[h], "bias").map_err(err)?;
                layer.attention_norm = norm(&out.pp("LayerNorm"), h).map_err(err)?;
                let up = layer.up.outputs;
                layer.up.bias =
                    read(&l.pp("intermediate").pp("dense"), &[up], "bias").map_err(err)?;
                layer.down.bias = read(&l.pp("output").pp("dense"), &[h], "bias").map_err(err)?;
                layer.output_norm = norm(&l.pp("output").pp("LayerNorm"), h).map_err(err)?;
                self.low_rank[i] = updates.try_into().ok();
            } else if l.contains_tensor("attention.self.query.weight") {
                self.layers[i] = read_layer(&l, &self.config).map_err(err)?;
                self.low_rank[i] = None;
            } else {
                continue;
            }
            self.tuned_from = self.tuned_from.min(i);
            replaced += 1;
        }
        Ok(replaced)
    }

    /// The first layer that differs from the checkpoint's (fine-tuned or overlaid); the layer
    /// count when none does.
    pub fn tuned_from(&self) -> usize {
        self.tuned_from
    }

    /// The layers from `from` on as named tensors in Hugging Face's `BertModel` layout
    /// (`encoder.layer.N.…`, PyTorch's `[out, in]` weights): what [`Bert::overlay`] reads.
    pub fn layer_tensors(&self, from: usize) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let h = self.config.hidden_size;
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate().skip(from) {
            let p = |name: &str| format!("encoder.layer.{i}.{name}");
            let low_rank = self.low_rank.get(i).and_then(Option::as_ref);
            if let Some(updates) = low_rank {
                for ((u, d), name) in updates.iter().zip(l.dense()).zip(LOW_RANK_NAMES) {
                    out.push((
                        p(&format!("low_rank.{name}.p")),
                        vec![d.inputs, u.rank],
                        u.p.clone(),
                    ));
                    out.push((
                        p(&format!("low_rank.{name}.q")),
                        vec![u.rank, d.outputs],
                        u.q.clone(),
                    ));
                }
            }
            let qkv = l.qkv.to_pytorch();
            for (k, n) in ["query", "key", "value"].iter().enumerate() {
                if low_rank.is_none() {
                    out.push((
                        p(&format!("attention.self.{n}.weight")),
                        vec![h, h],
                        qkv[k * h * h..(k + 1) * h * h].to_vec(),
                    ));
                }
                out.push((
                    p(&format!("attention.self.{n}.bias")),
                    vec![h],
                    l.qkv.bias[k * h..(k + 1) * h].to_vec(),
                ));
            }
            let mut dense = |name: &str, d: &Dense| {
                if low_rank.is_none() {
                    out.push((
                        p(&format!("{name}.weight")),
                        vec![d.outputs, d.inputs],
                        d.to_pytorch(),
                    ));
                }
                out.push((p(&format!("{name}.bias")), vec![d.outputs], d.bias.clone()));
            };
            dense("attention.output.dense", &l.attention_out);
            dense("intermediate.dense", &l.up);
            dense("output.dense", &l.down);
            for (name, n) in [
                ("attention.output.LayerNorm", &l.attention_norm),
                ("output.LayerNorm", &l.output_norm),
            ] {
                out.push((p(&format!("{name}.weight")), vec![h], n.gamma.clone()));
                out.push((p(&format!("{name}.bias")), vec![h], n.beta.clone()));
            }
        }
        out
    }

    /// Marks layers from `from` on as changed by fine-tuning, with their low-rank updates
    /// when it trained some (one per layer from `from`).
    pub(crate) fn mark_tuned(&mut self, from: usize, low_rank: Option<Vec<[LowRank; 4]>>) {
        self.tuned_from = self.tuned_from.min(from);
        for i in from..self.layers.len() {
            self.low_rank[i] = None;
        }
        if let Some(updates) = low_rank {
            for (i, u) in updates.into_iter().enumerate() {
                self.low_rank[from + i] = Some(u);
            }
        }
    }

    /// Width of the hidden states.
    pub fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    /// Attention heads per layer.
    pub(crate) fn heads(&self) -> usize {
        self.config.num_attention_heads
    }

    /// Layer norm's epsilon.
    pub(crate) fn eps(&self) -> f32 {
        self.eps
    }

    /// The feed-forward activation.
    pub(crate) fn activation(&self) -> Activation {
        self.config.hidden_act
    }

    /// The longest input in tokens.
    pub fn max_tokens(&self) -> usize {
        self.config.max_position_embeddings
    }

    /// Runs the encoder over token ids (each text's ids, special tokens included): every
    /// token attends to every token of its own text.
    pub fn forward(&self, texts: &[&[u32]]) -> Result<Packed, String> {
        let (mut x, spans) = self.embed(texts)?;
        self.run_layers(&self.layers, &mut x, &spans);
        Ok(Packed {
            states: x,
            hidden: self.config.hidden_size,
            spans,
        })
    }

    /// The embedding layer: each token's word, position and type embeddings summed and
    /// normalised, texts packed; with each text's first row and row count.
    pub(crate) fn embed(&self, texts: &[&[u32]]) -> Result<PackedRows, String> {
        let h = self.config.hidden_size;
        let mut spans = Vec::with_capacity(texts.len());
        let mut rows = 0;
        for ids in texts {
            if ids.len() > self.config.max_position_embeddings {
                return Err(format!(
                    "{} tokens, more than the model's {} positions",
                    ids.len(),
                    self.config.max_position_embeddings
                ));
            }
            if let Some(id) = ids
                .iter()
                .find(|&&id| id as usize >= self.config.vocab_size)
            {
                return Err(format!(
                    "token id {id} is outside the vocabulary of {} (tokenizer.json and \
                     config.json disagree)",
                    self.config.vocab_size
                ));
            }
            spans.push((rows, ids.len()));
            rows += ids.len();
        }
        let mut x = vec![0.0f32; rows * h];
        for (ids, &(start, _)) in texts.iter().zip(&spans) {
            for (p, &id) in ids.iter().enumerate() {
                let row = &mut x[(start + p) * h..(start + p + 1) * h];
                let word = &self.words[id as usize * h..(id as usize + 1) * h];
                let pos = &self.positions[p * h..(p + 1) * h];
                for ((o, w), q) in row.iter_mut().zip(word).zip(pos) {
                    *o = w + q;
                }
            }
        }
        kernels::layer_norm(
            &mut x,
            &self.embedding_norm.gamma,
            &self.embedding_norm.beta,
            self.eps,
        );
        Ok((x, spans))
    }

    /// The transformer layers `layers` over packed rows `x`, in place (scratch allocated once).
    pub(crate) fn run_layers(&self, layers: &[Layer], x: &mut [f32], spans: &[(usize, usize)]) {
        let h = self.config.hidden_size;
        let rows = x.len() / h;
        let mut qkv = vec![0.0f32; rows * 3 * h];
        let mut context = vec![0.0f32; rows * h];
        let mut up = vec![0.0f32; rows * self.config.intermediate_size];
        for layer in layers {
            self.layer(layer, x, spans, (&mut qkv, &mut context, &mut up));
        }
    }

    /// One transformer layer over packed rows `x`, in place, with scratch buffers for its
    /// query/key/value, context and feed-forward rows.
    fn layer(
        &self,
        layer: &Layer,
        x: &mut [f32],
        spans: &[(usize, usize)],
        (qkv, context, up): (&mut [f32], &mut [f32], &mut [f32]),
    ) {
        let rows = x.len() / self.config.hidden_size;
        linear(qkv, x, &layer.qkv, rows, false);
        self.attend(qkv, context, spans, |_, _| {});
        // x ← LayerNorm(x + context·Wᵀ + b): the product accumulates onto the residual.
        linear(x, context, &layer.attention_out, rows, true);
        kernels::layer_norm(
            x,
            &layer.attention_norm.gamma,
            &layer.attention_norm.beta,
            self.eps,
        );
        linear(up, x, &layer.up, rows, false);
        self.activate(up);
        linear(x, up, &layer.down, rows, true);
        kernels::layer_norm(
            x,
            &layer.output_norm.gamma,
            &layer.output_norm.beta,
            self.eps,
        );
    }

    /// The feed-forward activation, in place.
    pub(crate) fn activate(&self, xs: &mut [f32]) {
        match self.config.hidden_act {
            Activation::Gelu => kernels::gelu(xs),
            Activation::GeluApproximate => kernels::gelu_tanh(xs),
            Activation::Relu => xs.iter_mut().for_each(|v| *v = v.max(0.0)),
        }
    }

    /// Self-attention of every text (in parallel) from the packed `qkv` rows into `context`;
    /// `keep(text, probabilities)` sees each text's attention probabilities (`[heads, len,
    /// len]`), for training.
    pub(crate) fn attend(
        &self,
        qkv: &[f32],
        context: &mut [f32],
        spans: &[(usize, usize)],
        keep: impl Fn(usize, &[f32]) + Sync,
    ) {
        let h = self.config.hidden_size;
        let heads = self.config.num_attention_heads;
        let mut parts = Vec::with_capacity(spans.len());
        let mut rest = context;
        for (i, &(start, len)) in spans.iter().enumerate() {
            let (part, tail) = rest.split_at_mut(len * h);
            parts.push((i, &qkv[start * 3 * h..(start + len) * 3 * h], part));
            rest = tail;
        }
        parts
            .into_par_iter()
            .for_each_init(Vec::new, |scores, (i, rows, out)| {
                attention(rows, out, h, heads, scores, |p| keep(i, p));
            });
    }
}

/// `out = x·Wᵀ + b` (`accumulate`: `out += x·Wᵀ + b`) for `rows` rows of `x`.
pub(crate) fn linear(out: &mut [f32], x: &[f32], d: &Dense, rows: usize, accumulate: bool) {
    let (n, k) = (d.outputs, d.inputs);
    let out = &mut out[..rows * n];
    for row in out.chunks_exact_mut(n) {
        if accumulate {
            row.iter_mut().zip(&d.bias).for_each(|(o, b)| *o += b);
        } else {
            row.copy_from_slice(&d.bias);
        }
    }
    matmul(out, &x[..rows * k], &d.weight_t, rows, n, k);
}

/// Each text's sentence vector — the mean of its rows, L2-normalised — and the mean's norm
/// (what sentence-transformers computes for all-MiniLM-L6-v2); zeros for a text of no rows.
pub(crate) fn mean_pool(x: &[f32], spans: &[(usize, usize)], h: usize) -> Vec<(Vec<f32>, f32)> {
    spans
        .iter()
        .map(|&(start, len)| {
            let mut m = vec![0.0f32; h];
            for row in x[start * h..(start + len) * h].chunks_exact(h) {
                m.iter_mut().zip(row).for_each(|(a, v)| *a += v);
            }
            m.iter_mut().for_each(|a| *a /= len.max(1) as f32);
            let norm = m.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            m.iter_mut().for_each(|a| *a /= norm);
            (m, norm)
        })
        .collect()
}

/// `out[m×n] += lhs[m×k] · rhs[k×n]`, all row-major, with gemm's kernels (several threads when
/// the product is large enough to gain from them).
fn matmul(out: &mut [f32], lhs: &[f32], rhs: &[f32], m: usize, n: usize, k: usize) {
    assert!(
        out.len() == m * n && lhs.len() == m * k && rhs.len() == n * k,
        "matrix shapes"
    );
    let parallel = m * n * k >= 1 << 20;
    product(
        (m, n, k),
        (out, n),
        (lhs, k, 1),
        (rhs, n, 1),
        (true, 1.0),
        parallel,
    );
}

/// A matrix inside a slice: element (r, c) at `r·row_stride + c·col_stride`.
type Strided<'a> = (&'a [f32], usize, usize);

/// The smallest slice length that holds every element of a `rows × cols` strided matrix.
fn extent(rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> usize {
    (rows - 1) * row_stride + (cols - 1) * col_stride + 1
}

/// `out = (accumulate ? out : 0) + scale · lhs · rhs` for an `m×n` result over depth `k`: `out`
/// has rows `out_stride` apart (columns adjacent), `lhs` and `rhs` are strided views, so heads
/// and transposes are read in place. gemm's kernels; on all threads when `parallel`.
pub(crate) fn product(
    (m, n, k): (usize, usize, usize),
    (out, out_stride): (&mut [f32], usize),
    (lhs, lhs_rs, lhs_cs): Strided<'_>,
    (rhs, rhs_rs, rhs_cs): Strided<'_>,
    (accumulate, scale): (bool, f32),
    parallel: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        out_stride >= n && out.len() >= extent(m, n, out_stride, 1),
        "product: output shape"
    );
    assert!(
        k == 0
            || (lhs.len() >= extent(m, k, lhs_rs, lhs_cs)
                && rhs.len() >= extent(k, n, rhs_rs, rhs_cs)),
        "product: input shapes"
    );
    let parallelism = if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    let i = |v: usize| v as isize;
    // SAFETY: the asserts above put every element gemm reads or writes — `out[r·out_stride + c]`,
    // `lhs[r·lhs_rs + d·lhs_cs]`, `rhs[d·rhs_rs + c·rhs_cs]` for r < m, c < n, d < k — inside
    // its slice; `out_stride ≥ n` keeps distinct output elements apart; `out` is borrowed
    // mutably and so overlaps neither input.
    #[allow(unsafe_code)]
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            i(out_stride),
            accumulate,
            lhs.as_ptr(),
            i(lhs_cs),
            i(lhs_rs),
            rhs.as_ptr(),
            i(rhs_cs),
            i(rhs_rs),
            1.0,
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Multi-head self-attention of one text: `qkv` is its `[len, 3·hidden]` rows (query, key and
/// value side by side), `context` receives its `[len, hidden]` rows; `scores` is scratch. Per
/// head: `softmax(Q·Kᵀ/√d)·V`, the products read straight from `qkv`.
fn attention(
    qkv: &[f32],
    context: &mut [f32],
    h: usize,
    heads: usize,
    scores: &mut Vec<f32>,
    mut keep: impl FnMut(&[f32]),
) {
    let len = context.len() / h;
    if len == 0 {
        return;
    }
    let d = h / heads;
    let scale = 1.0 / (d as f32).sqrt();
    scores.resize(heads * len * len, 0.0);
    for (head, scores) in scores.chunks_exact_mut(len * len).enumerate() {
        let (q, k, v) = (head * d, h + head * d, 2 * h + head * d);
        // scores[i, j] = q_i · k_j / √d: Kᵀ's element (c, j) is qkv[j·3h + k + c].
        product(
            (len, len, d),
            (scores, len),
            (&qkv[q..], 3 * h, 1),
            (&qkv[k..], 1, 3 * h),
            (false, scale),
            false,
        );
        kernels::softmax_rows(scores, len);
        product(
            (len, d, len),
            (&mut context[head * d..], h),
            (scores, len, 1),
            (&qkv[v..], 3 * h, 1),
            (false, 1.0),
            false,
        );
    }
    keep(scores);
}

/// Elementwise kernels, written as plain loops over slices that the compiler vectorises;
/// each public one runs a copy compiled for AVX2 and FMA where the CPU has them.
pub(crate) mod kernels {
    macro_rules! dispatch {
        ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
            $(#[$doc])*
            pub(crate) fn $name($($arg: $ty),*) {
                #[inline(always)]
                fn kernel($($arg: $ty),*) $body
                #[cfg(target_arch = "x86_64")]
                {
                    #[target_feature(enable = "avx2,fma")]
                    fn wide($($arg: $ty),*) {
                        kernel($($arg),*)
                    }
                    if std::arch::is_x86_feature_detected!("avx2")
                        && std::arch::is_x86_feature_detected!("fma")
                    {
                        // SAFETY: a `target_feature` function's one requirement is that the
                        // CPU has the features, checked on the lines above.
                        #[allow(unsafe_code)]
                        return unsafe { wide($($arg),*) };
                    }
                }
                kernel($($arg),*)
            }
        };
    }

    /// `erf(x)` for `f32`: the rational approximation of Eigen and XLA (`x·P(x²)/Q(x²)` on
    /// [−4, 4], ±1 beyond), within 5e-7 of the exact value, with no branch or call.
    #[inline(always)]
    pub(crate) fn erf(x: f32) -> f32 {
        let x = x.clamp(-4.0, 4.0);
        let x2 = x * x;
        let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
        p = x2 * p - 2.101_024e-6;
        p = x2 * p - 5.692_506_4e-5;
        p = x2 * p - 7.349_906e-4;
        p = x2 * p - 2.954_600_1e-3;
        p = x2 * p - 1.609_603_3e-2;
        let mut q = x2 * -1.456_607_2e-5 - 2.133_740_6e-4;
        q = x2 * q - 1.682_827e-3;
        q = x2 * q - 7.373_329e-3;
        q = x2 * q - 1.426_474e-2;
        x * p / q
    }

    /// `eˣ` for `f32`: `2ⁿ·e^r` with `r = x − n·ln 2` in [−ln2/2, ln2/2] (Cody and Waite's
    /// two-part ln 2) and a degree-6 Taylor polynomial for `e^r`; within about 3e-7 relative
    /// for x in [−87, 88] (clamped to it).
    #[inline(always)]
    pub(crate) fn exp(x: f32) -> f32 {
        let x = x.clamp(-87.0, 88.0);
        let n = (x * std::f32::consts::LOG2_E).round_ties_even();
        let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4; // 0.693359375 exactly, then the rest
        let mut p = r * (1.0 / 720.0) + 1.0 / 120.0;
        p = r * p + 1.0 / 24.0;
        p = r * p + 1.0 / 6.0;
        p = r * p + 0.5;
        p = r * p + 1.0;
        p = r * p + 1.0;
        p * f32::from_bits(((n as i32 + 127) << 23) as u32)
    }

    /// `Σ aᵢ·bᵢ` in eight interleaved partial sums, so the compiler can keep them in one vector
    /// register (a single running sum fixes the order of the additions and so cannot be
    /// vectorised).
    #[inline(always)]
    pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut lanes = [0.0f32; 8];
        let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
        let tail: f32 = a8
            .remainder()
            .iter()
            .zip(b8.remainder())
            .map(|(x, y)| x * y)
            .sum();
        for (x, y) in a8.zip(b8) {
            for k in 0..8 {
                lanes[k] += x[k] * y[k];
            }
        }
        lanes.iter().sum::<f32>() + tail
    }

    /// `Σ xᵢ` in eight interleaved partial sums (see [`dot`]).
    #[inline(always)]
    fn sum(xs: &[f32]) -> f32 {
        let mut lanes = [0.0f32; 8];
        let x8 = xs.chunks_exact(8);
        let tail: f32 = x8.remainder().iter().sum();
        for x in x8 {
            for k in 0..8 {
                lanes[k] += x[k];
            }
        }
        lanes.iter().sum::<f32>() + tail
    }

    /// Softmax in place.
    #[inline(always)]
    fn softmax_row(xs: &mut [f32]) {
        let max = xs.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        xs.iter_mut().for_each(|x| *x = exp(*x - max));
        let inv = 1.0 / sum(xs);
        xs.iter_mut().for_each(|x| *x *= inv);
    }

    dispatch! {
        /// GELU with the exact normal CDF: `x·(1 + erf(x/√2))/2`.
        fn gelu(xs: &mut [f32]) {
            for x in xs.iter_mut() {
                let v = *x;
                *x = 0.5 * v * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2));
            }
        }
    }

    dispatch! {
        /// GELU's tanh approximation: `x·(1 + tanh(√(2/π)·(x + 0.044715x³)))/2`, with
        /// `tanh(u) = 1 − 2/(e^{2u} + 1)`.
        fn gelu_tanh(xs: &mut [f32]) {
            for x in xs.iter_mut() {
                let v = *x;
                let u = 0.797_884_6 * v * 0.044_715f32.mul_add(v * v, 1.0);
                let t = 1.0 - 2.0 / (exp(2.0 * u) + 1.0);
                *x = 0.5 * v * (1.0 + t);
            }
        }
    }

    dispatch! {
        /// Softmax of each row (`width` wide) in place.
        fn softmax_rows(xs: &mut [f32], width: usize) {
            xs.chunks_exact_mut(width).for_each(softmax_row);
        }
    }

    dispatch! {
        /// Layer norm of each row of `xs` (rows as wide as `gamma`) in place.
        fn layer_norm(xs: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
            let width = gamma.len();
            let n = width as f32;
            for row in xs.chunks_exact_mut(width) {
                let mean = sum(row) / n;
                row.iter_mut().for_each(|v| *v -= mean);
                let var = dot(row, row) / n;
                let inv = 1.0 / (var + eps).sqrt();
                for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
                    *v = *v * inv * g + b;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::kernels;

    #[test]
    fn erf_is_within_its_stated_error() {
        let mut worst = 0.0f64;
        for i in -60_000..=60_000 {
            let x = i as f64 / 10_000.0;
            let exact = libm_erf(x);
            worst = worst.max((f64::from(kernels::erf(x as f32)) - exact).abs());
        }
        assert!(worst < 5e-7, "worst error {worst}");
    }

    #[test]
    fn exp_is_within_its_stated_error() {
        let mut worst = 0.0f64;
        for i in -87_000..=88_000 {
            let x = i as f32 / 1_000.0;
            let exact = f64::from(x).exp();
            worst = worst.max(((f64::from(kernels::exp(x)) - exact) / exact).abs());
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert!(kernels::exp(-1e9) >= 0.0 && kernels::exp(-1e9) < 1e-37);
    }

    #[test]
    fn softmax_and_gelu_match_their_definitions() {
        let mut xs: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() * 9.0).collect();
        let exact: Vec<f64> = {
            let m = xs
                .iter()
                .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
            let e: Vec<f64> = xs.iter().map(|&v| (f64::from(v) - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| v / s).collect()
        };
        let mut g = xs.clone();
        kernels::softmax_rows(&mut xs, 37);
        for (a, b) in xs.iter().zip(&exact) {
            assert!((f64::from(*a) - b).abs() < 1e-6, "{a} vs {b}");
        }
        let before = g.clone();
        kernels::gelu(&mut g);
        for (a, x) in g.iter().zip(&before) {
            let x = f64::from(*x);
            let exact = 0.5 * x * (1.0 + libm_erf(x / std::f64::consts::SQRT_2));
            assert!((f64::from(*a) - exact).abs() < 1e-5, "{a} vs {exact}");
        }
    }

    /// `erf` in f64 from its series (|x| < 3) and continued fraction (beyond): exact to
    /// ~1e-15, a reference independent of the approximation under test.
    fn libm_erf(x: f64) -> f64 {
        let a = x.abs();
        let v = if a < 3.0 {
            // erf(x) = 2/√π · Σ (−1)ⁿ x^(2n+1) / (n!(2n+1))
            let mut term = a;
            let mut sum = a;
            let mut n = 0.0;
            while term.abs() > 1e-17 * sum.abs() {
                n += 1.0;
                term *= -a * a / n;
                sum += term / (2.0 * n + 1.0);
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // erfc(x) = e^(−x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + …))))
            let mut f = a;
            for k in (1..60).rev() {
                f = a + (k as f64 / 2.0) / f;
            }
            1.0 - (-a * a).exp() / (std::f64::consts::PI.sqrt() * f)
        };
        v.copysign(x)
    }
}
