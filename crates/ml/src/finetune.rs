//! Fine-tuning the top layers of a BERT encoder together with its linear head.
//!
//! A frozen encoder with a linear head tops out well below what fine-tuned models reach on
//! financial sentiment (docs/EVALUATION.md). This trains the last `layers` transformer layers
//! and the head jointly, by back-propagation written out for the packed encoder of
//! [`crate::bert`] (the same products, by gemm, transposed), with Adam:
//!
//! * the layers below stay frozen, so their output is computed once per text and reused every
//!   epoch;
//! * the loss is cross-entropy, with classes weighted by inverse frequency when the objective
//!   is macro-F1 (the default) and unweighted when it is accuracy, over mean-pooled,
//!   L2-normalised sentence vectors as at inference;
//! * every sixth training row is held out; after each epoch the objective's score on them is
//!   measured and the best epoch's weights are kept — no row outside the training file is
//!   looked at;
//! * batches are drawn in an order fixed by the seed: the same data gives the same model.
//!
//! A test checks every gradient against finite differences on a tiny model.

use crate::bert::{
    Activation, Bert, Dense, Layer, LowRank, Norm, kernels, linear, mean_pool, product,
};
use crate::eval::Report;
use crate::head::{LinearHead, Objective};
use crate::sentiment::Polarity;

/// Fine-tuning settings.
#[derive(Clone, Debug, PartialEq)]
pub struct FineTuneOptions {
    /// How many of the top transformer layers are trained (the rest stay frozen).
    pub layers: usize,
    /// Passes over the training rows.
    pub epochs: usize,
    /// Texts per step.
    pub batch: usize,
    /// Adam's step size for the layers (warming up over the first tenth of the steps, then
    /// decaying linearly to zero).
    pub learning_rate: f32,
    /// Adam's step size for the head.
    pub head_learning_rate: f32,
    /// Seed of the batch order (and of the low-rank factors' start).
    pub seed: u64,
    /// Train a rank-`r` update `P·Q` of each dense weight (LoRA) instead of the whole weight;
    /// biases and norms keep the checkpoint's values (LoRA's usual choice: trained at the
    /// factors' larger step they made the tuning unstable). The tuned layers are then stored
    /// as those factors: about a megabyte instead of tens of megabytes.
    pub rank: Option<usize>,
    /// The loss's class weights and the held-out score that picks the epoch.
    pub objective: Objective,
}

impl Default for FineTuneOptions {
    fn default() -> Self {
        Self {
            layers: 2,
            epochs: 4,
            batch: 32,
            learning_rate: 3e-5,
            head_learning_rate: 3e-4,
            seed: 1,
            rank: None,
            objective: Objective::MacroF1,
        }
    }
}

/// What fine-tuning did.
#[derive(Clone, Debug, PartialEq)]
pub struct FineTuned {
    /// The objective's held-out score before training and after each epoch.
    pub held_out: Vec<f64>,
    /// The epoch whose weights were kept (0: none improved on the start).
    pub best_epoch: usize,
}

/// Whether row `i` of the training data is held out to choose the epoch (every sixth).
pub fn is_held_out(i: usize) -> bool {
    i % 6 == 5
}

/// Everything a layer's backward pass needs from its forward pass.
struct Cache {
    x_in: Vec<f32>,
    qkv: Vec<f32>,
    /// Per text: attention probabilities `[heads, len, len]`.
    probs: Vec<Vec<f32>>,
    context: Vec<f32>,
    xhat1: Vec<f32>,
    inv1: Vec<f32>,
    x1: Vec<f32>,
    pre: Vec<f32>,
    act: Vec<f32>,
    xhat2: Vec<f32>,
    inv2: Vec<f32>,
}

/// Layer norm of each row in place, keeping the normalised values and each row's 1/σ.
fn norm_forward(x: &mut [f32], n: &Norm, eps: f32, xhat: &mut Vec<f32>, inv: &mut Vec<f32>) {
    let h = n.gamma.len();
    xhat.clear();
    inv.clear();
    for row in x.chunks_exact_mut(h) {
        let mean = row.iter().sum::<f32>() / h as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / h as f32;
        let i = 1.0 / (var + eps).sqrt();
        inv.push(i);
        for ((v, g), b) in row.iter_mut().zip(&n.gamma).zip(&n.beta) {
            let xh = (*v - mean) * i;
            xhat.push(xh);
            *v = xh * g + b;
        }
    }
}

/// Layer norm's backward pass: `dy` (gradient at its output) becomes the gradient at its
/// input; `grad` collects γ's and β's.
fn norm_backward(dy: &mut [f32], n: &Norm, xhat: &[f32], inv: &[f32], grad: &mut Norm) {
    let h = n.gamma.len();
    for ((row, xh), i) in dy.chunks_exact_mut(h).zip(xhat.chunks_exact(h)).zip(inv) {
        let mut sum = 0.0;
        let mut dot = 0.0;
        for k in 0..h {
            grad.gamma[k] += row[k] * xh[k];
            grad.beta[k] += row[k];
            let d = row[k] * n.gamma[k];
            sum += d;
            dot += d * xh[k];
            row[k] = d;
        }
        let (mean, mean_dot) = (sum / h as f32, dot / h as f32);
        for k in 0..h {
            row[k] = i * (row[k] - mean - xh[k] * mean_dot);
        }
    }
}

/// A linear layer's backward pass: `dy` at its output; adds to `grad`'s weight and bias, and
/// to `dx` (`accumulate`) or sets it.
fn linear_backward(
    dy: &[f32],
    x: &[f32],
    d: &Dense,
    grad: &mut Dense,
    dx: &mut [f32],
    accumulate: bool,
) {
    let rows = x.len() / d.inputs;
    for row in dy.chunks_exact(d.outputs) {
        grad.bias.iter_mut().zip(row).for_each(|(g, v)| *g += v);
    }
    // dWᵀ[in, out] += xᵀ·dy
    product(
        (d.inputs, d.outputs, rows),
        (&mut grad.weight_t, d.outputs),
        (x, 1, d.inputs),
        (dy, d.outputs, 1),
        (true, 1.0),
        true,
    );
    // dx[rows, in] (+)= dy·(Wᵀ)ᵀ
    product(
        (rows, d.inputs, d.outputs),
        (dx, d.inputs),
        (dy, d.outputs, 1),
        (&d.weight_t, 1, d.outputs),
        (accumulate, 1.0),
        true,
    );
}

fn forward_cached(bert: &Bert, layer: &Layer, x: &mut [f32], spans: &[(usize, usize)]) -> Cache {
    let h = bert.hidden_size();
    let rows = x.len() / h;
    let eps = bert.eps();
    let x_in = x.to_vec();
    let mut qkv = vec![0.0; rows * 3 * h];
    linear(&mut qkv, x, &layer.qkv, rows, false);
    let mut context = vec![0.0; rows * h];
    let probs: Vec<std::sync::Mutex<Vec<f32>>> = spans
        .iter()
        .map(|_| std::sync::Mutex::new(Vec::new()))
        .collect();
    bert.attend(&qkv, &mut context, spans, |i, p| {
        if let Ok(mut slot) = probs[i].lock() {
            *slot = p.to_vec();
        }
    });
    let probs = probs
        .into_iter()
        .map(|m| m.into_inner().unwrap_or_default())
        .collect();
    linear(x, &context, &layer.attention_out, rows, true);
    let (mut xhat1, mut inv1) = (Vec::new(), Vec::new());
    norm_forward(x, &layer.attention_norm, eps, &mut xhat1, &mut inv1);
    let x1 = x.to_vec();
    let mut pre = vec![0.0; rows * layer.up.outputs];
    linear(&mut pre, x, &layer.up, rows, false);
    let mut act = pre.clone();
    bert.activate(&mut act);
    linear(x, &act, &layer.down, rows, true);
    let (mut xhat2, mut inv2) = (Vec::new(), Vec::new());
    norm_forward(x, &layer.output_norm, eps, &mut xhat2, &mut inv2);
    Cache {
        x_in,
        qkv,
        probs,
        context,
        xhat1,
        inv1,
        x1,
        pre,
        act,
        xhat2,
        inv2,
    }
}

/// The activation's derivative at `x`.
fn activation_slope(kind: Activation, x: f32) -> f32 {
    match kind {
        // d/dx x·Φ(x) = Φ(x) + x·φ(x) (`fine_tune` refuses the tanh approximation)
        Activation::Gelu | Activation::GeluApproximate => {
            let cdf = 0.5 * (1.0 + kernels::erf(x * std::f32::consts::FRAC_1_SQRT_2));
            let pdf = kernels::exp(-0.5 * x * x) * 0.398_942_3;
            cdf + x * pdf
        }
        Activation::Relu => {
            if x > 0.0 {
                1.0
            } else {
                0.0
            }
        }
    }
}

/// A layer's backward pass: `dy` holds the gradient at its output and receives the gradient at
/// its input; `grad` collects the weights'.
fn backward(
    bert: &Bert,
    layer: &Layer,
    c: &Cache,
    spans: &[(usize, usize)],
    dy: &mut [f32],
    grad: &mut Layer,
) {
    let h = bert.hidden_size();
    let heads = bert.heads();
    let d = h / heads;
    let scale = 1.0 / (d as f32).sqrt();
    let rows = dy.len() / h;
    norm_backward(
        dy,
        &layer.output_norm,
        &c.xhat2,
        &c.inv2,
        &mut grad.output_norm,
    );
    // dy is now the gradient at x1 + act·W + b: x1's share is dy itself (the residual).
    let mut dact = vec![0.0; rows * layer.up.outputs];
    linear_backward(dy, &c.act, &layer.down, &mut grad.down, &mut dact, false);
    let kind = bert.activation();
    dact.iter_mut()
        .zip(&c.pre)
        .for_each(|(g, &x)| *g *= activation_slope(kind, x));
    linear_backward(&dact, &c.x1, &layer.up, &mut grad.up, dy, true);
    norm_backward(
        dy,
        &layer.attention_norm,
        &c.xhat1,
        &c.inv1,
        &mut grad.attention_norm,
    );
    let mut dcontext = vec![0.0; rows * h];
    linear_backward(
        dy,
        &c.context,
        &layer.attention_out,
        &mut grad.attention_out,
        &mut dcontext,
        false,
    );
    let mut dqkv = vec![0.0; rows * 3 * h];
    let mut ds = Vec::new();
    for (t, &(start, len)) in spans.iter().enumerate() {
        if len == 0 {
            continue;
        }
        let qkv = &c.qkv[start * 3 * h..(start + len) * 3 * h];
        let dq = &mut dqkv[start * 3 * h..(start + len) * 3 * h];
        let dc = &dcontext[start * h..(start + len) * h];
        ds.resize(len * len, 0.0);
        for (head, p) in c.probs[t].chunks_exact(len * len).enumerate() {
            let (q, k, v) = (head * d, h + head * d, 2 * h + head * d);
            // dV = Pᵀ·dC
            product(
                (len, d, len),
                (&mut dq[v..], 3 * h),
                (p, 1, len),
                (&dc[head * d..], h, 1),
                (false, 1.0),
                false,
            );
            // dP = dC·Vᵀ
            product(
                (len, len, d),
                (&mut ds, len),
                (&dc[head * d..], h, 1),
                (&qkv[v..], 1, 3 * h),
                (false, 1.0),
                false,
            );
            // dS = P ⊙ (dP − Σⱼ dPᵢⱼ·Pᵢⱼ)
            for (srow, prow) in ds.chunks_exact_mut(len).zip(p.chunks_exact(len)) {
                let dot: f32 = srow.iter().zip(prow).map(|(a, b)| a * b).sum();
                srow.iter_mut()
                    .zip(prow)
                    .for_each(|(s, p)| *s = p * (*s - dot));
            }
            // dQ = dS·K/√d, dK = dSᵀ·Q/√d
            product(
                (len, d, len),
                (&mut dq[q..], 3 * h),
                (&ds, len, 1),
                (&qkv[k..], 3 * h, 1),
                (false, scale),
                false,
            );
            product(
                (len, d, len),
                (&mut dq[k..], 3 * h),
                (&ds, 1, len),
                (&qkv[q..], 3 * h, 1),
                (false, scale),
                false,
            );
        }
    }
    // dy still holds the gradient at x_in + context·W + b: the residual's share; add the rest.
    linear_backward(&dqkv, &c.x_in, &layer.qkv, &mut grad.qkv, dy, true);
}

fn zeros_like(l: &Layer) -> Layer {
    let mut z = l.clone();
    for p in params_mut(&mut z) {
        p.iter_mut().for_each(|v| *v = 0.0);
    }
    z
}

fn params_mut(l: &mut Layer) -> [&mut Vec<f32>; 12] {
    [
        &mut l.qkv.weight_t,
        &mut l.qkv.bias,
        &mut l.attention_out.weight_t,
        &mut l.attention_out.bias,
        &mut l.attention_norm.gamma,
        &mut l.attention_norm.beta,
        &mut l.up.weight_t,
        &mut l.up.bias,
        &mut l.down.weight_t,
        &mut l.down.bias,
        &mut l.output_norm.gamma,
        &mut l.output_norm.beta,
    ]
}

/// The head's trainable numbers: one row of weights per class, then the biases.
#[derive(Clone)]
struct HeadParams {
    weights: Vec<f32>,
    bias: Vec<f32>,
}

/// Loss and gradients of one batch. `inputs`: each text's rows entering the trained layers;
/// `targets`: each text's class index in the head's order and its weight.
struct Step<'a> {
    bert: &'a Bert,
    head: &'a LinearHead,
}

impl Step<'_> {
    /// The trained layers' output for packed rows `x`, with their caches when `keep`.
    fn run(
        &self,
        layers: &[Layer],
        x: &mut [f32],
        spans: &[(usize, usize)],
        keep: bool,
    ) -> Vec<Cache> {
        if !keep {
            self.bert.run_layers(layers, x, spans);
            return Vec::new();
        }
        layers
            .iter()
            .map(|layer| forward_cached(self.bert, layer, x, spans))
            .collect()
    }

    /// Each text's sentence vector (mean of its rows, L2-normalised) and the mean's norm.
    fn pool(&self, x: &[f32], spans: &[(usize, usize)]) -> Vec<(Vec<f32>, f32)> {
        mean_pool(x, spans, self.bert.hidden_size())
    }

    /// Standardised inputs and class probabilities of a sentence vector.
    fn classify(&self, hp: &HeadParams, e: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let z: Vec<f32> = e
            .iter()
            .zip(&self.head.mean)
            .zip(&self.head.scale)
            .map(|((v, m), s)| (v - m) / s)
            .collect();
        let n = z.len();
        let logits: Vec<f32> = hp
            .bias
            .iter()
            .enumerate()
            .map(|(c, b)| b + kernels::dot(&hp.weights[c * n..(c + 1) * n], &z))
            .collect();
        let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let e: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
        let sum: f32 = e.iter().sum();
        (z, e.iter().map(|v| v / sum).collect())
    }

    /// The weighted loss of a batch and, into `grads` and `hgrad`, its gradients.
    #[allow(clippy::too_many_arguments)]
    fn gradients(
        &self,
        layers: &[Layer],
        hp: &HeadParams,
        mut x: Vec<f32>,
        spans: &[(usize, usize)],
        targets: &[(usize, f32)],
        grads: &mut [Layer],
        hgrad: &mut HeadParams,
    ) -> f32 {
        let h = self.bert.hidden_size();
        let caches = self.run(layers, &mut x, spans, true);
        let pooled = self.pool(&x, spans);
        let total: f32 = targets.iter().map(|t| t.1).sum::<f32>().max(1e-12);
        let mut loss = 0.0;
        let mut dy = vec![0.0f32; x.len()];
        let n = h;
        for (((e, norm), &(y, w)), &(start, len)) in pooled.iter().zip(targets).zip(spans) {
            let (z, p) = self.classify(hp, e);
            loss += -w * p[y].max(1e-30).ln() / total;
            let dlogits: Vec<f32> = p
                .iter()
                .enumerate()
                .map(|(c, pc)| w * (pc - if c == y { 1.0 } else { 0.0 }) / total)
                .collect();
            let mut dz = vec![0.0f32; n];
            for (c, g) in dlogits.iter().enumerate() {
                hgrad.bias[c] += g;
                let row = &hp.weights[c * n..(c + 1) * n];
                for k in 0..n {
                    hgrad.weights[c * n + k] += g * z[k];
                    dz[k] += g * row[k];
                }
            }
            let de: Vec<f32> = dz
                .iter()
                .zip(&self.head.scale)
                .map(|(g, s)| g / s)
                .collect();
            let ede: f32 = e.iter().zip(&de).map(|(a, b)| a * b).sum();
            let per_row = 1.0 / (norm * len.max(1) as f32);
            let dm: Vec<f32> = de
                .iter()
                .zip(e)
                .map(|(g, v)| (g - v * ede) * per_row)
                .collect();
            for row in dy[start * h..(start + len) * h].chunks_exact_mut(h) {
                row.copy_from_slice(&dm);
            }
        }
        for ((layer, cache), grad) in layers.iter().zip(&caches).zip(grads.iter_mut()).rev() {
            backward(self.bert, layer, cache, spans, &mut dy, grad);
        }
        loss
    }
}

/// Adam's moments for one parameter vector.
struct Moments {
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Moments {
    fn new(n: usize) -> Self {
        Self {
            m: vec![0.0; n],
            v: vec![0.0; n],
        }
    }

    fn step(&mut self, param: &mut [f32], grad: &[f32], lr: f32, t: i32) {
        let (b1, b2) = (0.9f32, 0.999f32);
        let c1 = 1.0 - b1.powi(t);
        let c2 = 1.0 - b2.powi(t);
        for (((p, g), m), v) in param.iter_mut().zip(grad).zip(&mut self.m).zip(&mut self.v) {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p -= lr * (*m / c1) / ((*v / c2).sqrt() + 1e-8);
        }
    }
}

/// SplitMix64's next number.
fn splitmix(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform number in [0, 1).
fn uniform(seed: &mut u64) -> f32 {
    (splitmix(seed) >> 40) as f32 / (1u64 << 24) as f32
}

/// A deterministic shuffle (SplitMix64-driven Fisher–Yates).
fn shuffle(items: &mut [usize], seed: &mut u64) {
    for i in (1..items.len()).rev() {
        let z = splitmix(seed);
        items.swap(i, (z % (i as u64 + 1)) as usize);
    }
}

/// Packs the rows of the texts `idx` of `inputs` (each text's rows, `hidden` wide).
fn pack(inputs: &[Vec<f32>], idx: &[usize], hidden: usize) -> (Vec<f32>, Vec<(usize, usize)>) {
    let mut x = Vec::new();
    let mut spans = Vec::with_capacity(idx.len());
    for &i in idx {
        spans.push((x.len() / hidden, inputs[i].len() / hidden));
        x.extend_from_slice(&inputs[i]);
    }
    (x, spans)
}

/// Fine-tunes the top `opts.layers` layers of `bert` and `head` on token ids `texts` with labels
/// `y`. `head` gives the start: train it on the frozen encoder's sentence vectors of the rows
/// [`is_held_out`] leaves in, so the held-out rows stay unseen.
/// `progress(done, total)` is called after each step.
pub fn fine_tune(
    bert: &mut Bert,
    head: &mut LinearHead,
    texts: &[Vec<u32>],
    y: &[Polarity],
    opts: &FineTuneOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<FineTuned, String> {
    if texts.len() != y.len() || texts.len() < 6 {
        return Err(format!(
            "{} texts for {} labels (at least 6 needed)",
            texts.len(),
            y.len()
        ));
    }
    let total_layers = bert.layers.len();
    if opts.layers == 0 || opts.layers > total_layers {
        return Err(format!(
            "cannot train {} of the encoder's {total_layers} layers",
            opts.layers
        ));
    }
    if bert.activation() == Activation::GeluApproximate {
        return Err(
            "fine-tuning reads encoders with gelu or relu, not the tanh approximation".into(),
        );
    }
    head.check()?;
    if head.inputs() != bert.hidden_size() {
        return Err("the head does not fit the encoder".into());
    }
    let classes = &head.labels;
    let target: Vec<usize> = y
        .iter()
        .map(|p| {
            classes
                .iter()
                .position(|c| c == p)
                .ok_or_else(|| format!("the head has no class {p:?}"))
        })
        .collect::<Result<_, _>>()?;
    let h = bert.hidden_size();
    let first = total_layers - opts.layers;
    // The frozen layers' output, once per text.
    let mut inputs = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(64) {
        let ids: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
        let (mut x, spans) = bert.embed(&ids)?;
        bert.run_layers(&bert.layers[..first], &mut x, &spans);
        for &(start, len) in &spans {
            inputs.push(x[start * h..(start + len) * h].to_vec());
        }
    }
    let (held, fit): (Vec<usize>, Vec<usize>) = (0..texts.len()).partition(|&i| is_held_out(i));
    let mut counts = vec![0usize; classes.len()];
    fit.iter().for_each(|&i| counts[target[i]] += 1);
    let weight: Vec<f32> = opts
        .objective
        .class_weights(&counts)
        .into_iter()
        .map(|w| w as f32)
        .collect();
    let n = h;
    let mut hp = HeadParams {
        weights: head.weights.iter().flatten().copied().collect(),
        bias: head.bias.clone(),
    };
    let mut layers: Vec<Layer> = bert.layers[first..].to_vec();
    // The model is read (never changed) until the best epoch's layers are put back at the end.
    let step = Step {
        bert: &*bert,
        head: &*head,
    };
    let evaluate = |layers: &[Layer], hp: &HeadParams| -> f64 {
        let mut pairs = Vec::with_capacity(held.len());
        for chunk in held.chunks(64) {
            let (mut x, spans) = pack(&inputs, chunk, h);
            step.run(layers, &mut x, &spans, false);
            for ((e, _), &i) in step.pool(&x, &spans).iter().zip(chunk) {
                let (_, p) = step.classify(hp, e);
                let best = (0..p.len()).fold(0, |b, c| if p[c] > p[b] { c } else { b });
                pairs.push((y[i], classes[best]));
            }
        }
        opts.objective.score(&Report::of(pairs))
    };
    let mut scores = vec![evaluate(&layers, &hp)];
    let mut best = (scores[0], 0, layers.clone(), hp.clone(), None);
    // Low-rank updates are stored against the checkpoint's weights: only when the trained
    // layers start from them. An earlier tuning always covers the top layers from
    // `tuned_from` on, so any earlier tuning overlaps these: then the layers are stored whole.
    let fresh = bert.tuned_from() >= bert.layers.len();
    // Adam's moments of every layer parameter, for whole-weight tuning only (low-rank tuning
    // moves the factors, whose moments are kept beside them below).
    let mut moments: Vec<Vec<Moments>> = if opts.rank.is_some() {
        Vec::new()
    } else {
        layers
            .iter_mut()
            .map(|l| {
                params_mut(l)
                    .iter()
                    .map(|p| Moments::new(p.len()))
                    .collect()
            })
            .collect()
    };
    let mut head_moments = (Moments::new(hp.weights.len()), Moments::new(hp.bias.len()));
    // Low-rank training: the weights at the start, P drawn small, Q zero (so the start is the
    // checkpoint), and their moments.
    let mut init_seed = opts.seed ^ 0x5DEE_CE66_D1CE_4E5B;
    let mut low_rank: Option<Vec<[(LowRank, Moments, Moments); 4]>> = opts.rank.map(|r| {
        layers
            .iter_mut()
            .map(|l| {
                l.dense_mut().map(|d| {
                    let bound = 1.0 / (d.inputs as f32).sqrt();
                    let p: Vec<f32> = (0..d.inputs * r)
                        .map(|_| (uniform(&mut init_seed) * 2.0 - 1.0) * bound)
                        .collect();
                    let u = LowRank {
                        p,
                        q: vec![0.0; r * d.outputs],
                        rank: r,
                    };
                    (u, Moments::new(d.inputs * r), Moments::new(r * d.outputs))
                })
            })
            .collect()
    });
    let base_weights: Vec<[Vec<f32>; 4]> = if opts.rank.is_some() {
        layers
            .iter_mut()
            .map(|l| l.dense_mut().map(|d| d.weight_t.clone()))
            .collect()
    } else {
        Vec::new()
    };
    let steps_per_epoch = fit.len().div_ceil(opts.batch.max(1));
    let total_steps = steps_per_epoch * opts.epochs;
    let mut seed = opts.seed;
    let mut t = 0;
    let mut order = fit.clone();
    for epoch in 1..=opts.epochs {
        shuffle(&mut order, &mut seed);
        for batch in order.chunks(opts.batch.max(1)) {
            t += 1;
            let (x, spans) = pack(&inputs, batch, h);
            let targets: Vec<(usize, f32)> = batch
                .iter()
                .map(|&i| (target[i], weight[target[i]]))
                .collect();
            let mut grads: Vec<Layer> = layers.iter().map(zeros_like).collect();
            let mut hgrad = HeadParams {
                weights: vec![0.0; hp.weights.len()],
                bias: vec![0.0; hp.bias.len()],
            };
            step.gradients(&layers, &hp, x, &spans, &targets, &mut grads, &mut hgrad);
            // A linear warm-up over the first tenth of the steps, then a linear decay to zero.
            let warm = (total_steps / 10).max(1);
            let decay = if t <= warm {
                t as f32 / warm as f32
            } else {
                1.0 - (t - warm) as f32 / (total_steps - warm + 1) as f32
            };
            let ti = i32::try_from(t).unwrap_or(i32::MAX);
            let lr = opts.learning_rate * decay;
            match &mut low_rank {
                None => {
                    for ((layer, grad), ms) in layers.iter_mut().zip(&mut grads).zip(&mut moments) {
                        for ((p, g), m) in
                            params_mut(layer).into_iter().zip(params_mut(grad)).zip(ms)
                        {
                            m.step(p, g, lr, ti);
                        }
                    }
                }
                // Only the factors move; biases and norms stay.
                Some(lr_layers) => {
                    for (((d, g), (u, mp, mq)), base) in layers
                        .iter_mut()
                        .zip(&mut grads)
                        .zip(lr_layers.iter_mut())
                        .zip(&base_weights)
                        .flat_map(|(((layer, grad), lr_layer), base)| {
                            layer
                                .dense_mut()
                                .into_iter()
                                .zip(grad.dense_mut())
                                .zip(lr_layer.iter_mut())
                                .zip(base)
                        })
                    {
                        let (i, o, r) = (d.inputs, d.outputs, u.rank);
                        // dP = dW·Qᵀ, dQ = Pᵀ·dW
                        let mut dp = vec![0.0; i * r];
                        product(
                            (i, r, o),
                            (&mut dp, r),
                            (&g.weight_t, o, 1),
                            (&u.q, 1, o),
                            (false, 1.0),
                            true,
                        );
                        let mut dq = vec![0.0; r * o];
                        product(
                            (r, o, i),
                            (&mut dq, o),
                            (&u.p, 1, r),
                            (&g.weight_t, o, 1),
                            (false, 1.0),
                            true,
                        );
                        mp.step(&mut u.p, &dp, lr, ti);
                        mq.step(&mut u.q, &dq, lr, ti);
                        u.apply_over(d, base);
                    }
                }
            }
            head_moments.0.step(
                &mut hp.weights,
                &hgrad.weights,
                opts.head_learning_rate * decay,
                ti,
            );
            head_moments.1.step(
                &mut hp.bias,
                &hgrad.bias,
                opts.head_learning_rate * decay,
                ti,
            );
            progress(t, total_steps);
        }
        let score = evaluate(&layers, &hp);
        scores.push(score);
        if score > best.0 {
            let updates = low_rank.as_ref().map(|l| {
                l.iter()
                    .map(|layer| layer.each_ref().map(|(u, _, _)| u.clone()))
                    .collect::<Vec<[LowRank; 4]>>()
            });
            best = (score, epoch, layers.clone(), hp.clone(), updates);
        }
    }
    let (_, best_epoch, mut best_layers, best_head, best_updates) = best;
    let mut best_updates = best_updates.filter(|_| fresh);
    // Stored factors are half precision: round them here, so the model fine-tuning leaves is
    // the one that loads back (the change to the held-out score is far below its noise).
    if let Some(updates) = &mut best_updates {
        for ((layer, ups), base) in best_layers.iter_mut().zip(updates).zip(&base_weights) {
            for ((d, u), b) in layer.dense_mut().into_iter().zip(ups).zip(base) {
                u.round_to_half().map_err(|e| e.to_string())?;
                u.apply_over(d, b);
            }
        }
    }
    bert.layers.truncate(first);
    bert.layers.extend(best_layers);
    if best_epoch > 0 {
        bert.mark_tuned(first, best_updates);
    }
    head.weights = best_head.weights.chunks(n).map(<[f32]>::to_vec).collect();
    head.bias = best_head.bias;
    Ok(FineTuned {
        held_out: scores,
        best_epoch,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::bert::BertConfig;
    use crate::head::CLASSES;
    use atalaya_testkit::tiny_bert::TinyBert;

    fn tiny() -> (tempfile::TempDir, Bert) {
        let dir = tempfile::tempdir().unwrap();
        TinyBert::default().write(dir.path()).unwrap();
        let config: BertConfig =
            serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap())
                .unwrap();
        let vb = candle_nn::VarBuilder::from_buffered_safetensors(
            std::fs::read(dir.path().join("model.safetensors")).unwrap(),
            candle_core::DType::F32,
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let bert = Bert::load(&vb, &config).unwrap();
        (dir, bert)
    }

    fn head(n: usize) -> LinearHead {
        let f = |i: usize| (i as f32 * 1.7).sin() * 0.8;
        LinearHead {
            labels: CLASSES.to_vec(),
            mean: (0..n).map(|i| f(i) * 0.1).collect(),
            scale: (0..n).map(|i| 0.3 + f(i + 5).abs()).collect(),
            weights: (0..3)
                .map(|c| (0..n).map(|i| f(i * 3 + c + 11)).collect())
                .collect(),
            bias: vec![0.1, -0.2, 0.05],
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let (_dir, bert) = tiny();
        let head = head(bert.hidden_size());
        let ids: [&[u32]; 3] = [&[2, 5, 7, 8, 3], &[2, 9, 3], &[2, 10, 11, 12, 13, 14, 3]];
        let (x, spans) = bert.embed(&ids).unwrap();
        let targets = [(0, 1.0), (2, 2.0), (1, 0.5)];
        let step = Step {
            bert: &bert,
            head: &head,
        };
        let hp = HeadParams {
            weights: head.weights.iter().flatten().copied().collect(),
            bias: head.bias.clone(),
        };
        let zero_head = || HeadParams {
            weights: vec![0.0; hp.weights.len()],
            bias: vec![0.0; hp.bias.len()],
        };
        let loss = |layers: &[Layer], hp: &HeadParams| {
            let mut g: Vec<Layer> = layers.iter().map(zeros_like).collect();
            step.gradients(
                layers,
                hp,
                x.clone(),
                &spans,
                &targets,
                &mut g,
                &mut zero_head(),
            )
        };
        let layers = bert.layers.clone();
        let mut grads: Vec<Layer> = layers.iter().map(zeros_like).collect();
        let mut hgrad = zero_head();
        let l0 = step.gradients(
            &layers,
            &hp,
            x.clone(),
            &spans,
            &targets,
            &mut grads,
            &mut hgrad,
        );
        assert!(l0.is_finite() && l0 > 0.0);
        let eps = 3e-3f32;
        let close = |num: f32, ana: f32, what: &str| {
            assert!(
                (num - ana).abs() <= 5e-4 + 3e-2 * ana.abs(),
                "{what}: finite difference {num}, back-propagated {ana}"
            );
        };
        let mut checked = 0;
        for li in 0..layers.len() {
            for pi in 0..12 {
                let len = params_mut(&mut layers.clone()[li])[pi].len();
                for k in [0, len / 3, len / 2 + 1, len - 1] {
                    let mut plus = layers.clone();
                    params_mut(&mut plus[li])[pi][k] += eps;
                    let mut minus = layers.clone();
                    params_mut(&mut minus[li])[pi][k] -= eps;
                    let num = (loss(&plus, &hp) - loss(&minus, &hp)) / (2.0 * eps);
                    let ana = params_mut(&mut grads[li])[pi][k];
                    close(num, ana, &format!("layer {li} tensor {pi} element {k}"));
                    checked += 1;
                }
            }
        }
        for k in [0, 7, hp.weights.len() - 1] {
            let mut plus = hp.clone();
            plus.weights[k] += eps;
            let mut minus = hp.clone();
            minus.weights[k] -= eps;
            let num = (loss(&layers, &plus) - loss(&layers, &minus)) / (2.0 * eps);
            close(num, hgrad.weights[k], &format!("head weight {k}"));
        }
        for k in 0..3 {
            let mut plus = hp.clone();
            plus.bias[k] += eps;
            let mut minus = hp.clone();
            minus.bias[k] -= eps;
            let num = (loss(&layers, &plus) - loss(&layers, &minus)) / (2.0 * eps);
            close(num, hgrad.bias[k], &format!("head bias {k}"));
        }
        assert_eq!(checked, 2 * 12 * 4);
        // Gradients that vanish everywhere would pass the comparison: they do not.
        assert!(grads.iter_mut().all(|g| {
            params_mut(g)
                .iter()
                .all(|p| p.iter().any(|v| v.abs() > 1e-6))
        }));
    }
}
