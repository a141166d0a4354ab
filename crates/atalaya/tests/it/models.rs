//! `atalaya models download` against a fake Hugging Face Hub, and `atalaya sentiment train`
//! then `sentiment eval --model DIR` on a tiny BERT made on the spot.

use atalaya_testkit::fake_hub::FakeHub;
use atalaya_testkit::tiny_bert::TinyBert;

use crate::atalaya;

fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut c = atalaya();
    c.args(args)
        .env_remove("HF_TOKEN")
        .env_remove("HF_ENDPOINT");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_download_fetches_a_model_directory_that_loads() {
    let hub = FakeHub::start().await.unwrap();
    let src = tempfile::tempdir().unwrap();
    TinyBert::default().write(src.path()).unwrap();
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        hub.put("tiny/bert", f, std::fs::read(src.path().join(f)).unwrap());
    }
    let home = tempfile::tempdir().unwrap();
    let models = home.path().to_str().unwrap().to_owned();
    let endpoint = hub.endpoint.clone();
    let (ok, out, err) = blocking(
        &["models", "download", "tiny/bert", "--endpoint", &endpoint],
        &[("ATALAYA_MODELS_DIR", &models), ("HF_TOKEN", "hf_secret")],
    )
    .await;
    assert!(ok, "{out}{err}");
    let dir = home.path().join("tiny/bert");
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        assert_eq!(
            std::fs::read(dir.join(f)).unwrap(),
            std::fs::read(src.path().join(f)).unwrap(),
            "{f}"
        );
        assert!(!dir.join(format!("{f}.part")).exists());
    }
    assert!(out.contains("wrote model.safetensors"), "{out}");
    // The weights came through the CDN redirect, and the token went with every request.
    let seen = hub.seen();
    assert!(
        seen.iter()
            .all(|(_, a)| a.as_deref() == Some("Bearer hf_secret")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(p, _)| p == "/tiny/bert/resolve/main/model.safetensors")
    );
    // It loads as an encoder (and says a head is needed to classify).
    assert!(atalaya_ml::transformer::Encoder::load(&dir).is_ok());

    // Run again: everything is kept.
    let (ok, out, _) = blocking(
        &["models", "download", "tiny/bert", "--endpoint", &endpoint],
        &[("ATALAYA_MODELS_DIR", &models)],
    )
    .await;
    assert!(ok && out.matches("kept").count() == 3, "{out}");

    // A repository with only pytorch_model.bin: the fallback is asked for after the 404.
    hub.put("tiny/old", "config.json", b"{}".to_vec());
    hub.put("tiny/old", "tokenizer.json", b"{}".to_vec());
    hub.put("tiny/old", "pytorch_model.bin", vec![1, 2, 3]);
    let (ok, out, err) = blocking(
        &["models", "download", "tiny/old", "--endpoint", &endpoint],
        &[("ATALAYA_MODELS_DIR", &models)],
    )
    .await;
    assert!(ok, "{out}{err}");
    assert!(home.path().join("tiny/old/pytorch_model.bin").exists());
    assert!(!home.path().join("tiny/old/model.safetensors").exists());

    // Unknown repository, bad name: clear errors, exit status non-zero.
    let (ok, _, err) = blocking(
        &[
            "models",
            "download",
            "nobody/nothing",
            "--endpoint",
            &endpoint,
        ],
        &[("ATALAYA_MODELS_DIR", &models)],
    )
    .await;
    assert!(
        !ok && err.contains("RepoNotFound") && err.contains("HF_TOKEN"),
        "{err}"
    );
    let (ok, _, err) = blocking(
        &["models", "download", "../etc", "--endpoint", &endpoint],
        &[("ATALAYA_MODELS_DIR", &models)],
    )
    .await;
    assert!(!ok && err.contains("owner/name"), "{err}");

    // A dropped connection leaves no file that looks whole.
    hub.cut_short(Some("model.safetensors"));
    let (ok, _, err) = blocking(
        &[
            "models",
            "download",
            "tiny/bert",
            "--endpoint",
            &endpoint,
            "--force",
        ],
        &[("ATALAYA_MODELS_DIR", &models)],
    )
    .await;
    assert!(!ok, "{err}");
    assert!(!dir.join("model.safetensors.part").exists());
}

async fn blocking(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run(&a, &e)
    })
    .await
    .unwrap()
}

#[test]
fn sentiment_train_writes_a_model_that_eval_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    TinyBert::default().write(&base).unwrap();
    let data = tmp.path().join("train.csv");
    let mut csv = String::from("text,label\n");
    for _ in 0..6 {
        csv.push_str("bitcoin surges to record high,1\n\"the market crashes, ether crashes\",0\nthe news today,2\n");
    }
    std::fs::write(&data, csv).unwrap();
    let out = tmp.path().join("model");
    let (d, b, o) = (
        data.to_str().unwrap(),
        base.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    let labels = "0=bearish,1=bullish,2=neutral";
    let eval = |model: &str| {
        run(
            &[
                "sentiment",
                "eval",
                "--data",
                d,
                "--labels",
                labels,
                "--model",
                model,
            ],
            &[],
        )
    };
    let (ok, stdout, err) = run(
        &[
            "sentiment",
            "train",
            "--data",
            d,
            "--labels",
            labels,
            "--base",
            b,
            "--out",
            o,
        ],
        &[],
    );
    assert!(ok, "{stdout}{err}");
    assert!(
        stdout.contains("18 texts embedded") && stdout.contains("L2 penalty"),
        "{stdout}"
    );
    assert!(out.join(atalaya_ml::transformer::HEAD_FILE).exists());
    let (ok, stdout, err) = eval(o);
    assert!(ok, "{stdout}{err}");
    assert!(
        stdout.contains("embedding model + trained head"),
        "{stdout}"
    );
    assert!(stdout.contains("accuracy 1.0000"), "{stdout}");

    // No base model: the error says how to get one.
    let empty = tmp.path().join("empty");
    let (ok, _, err) = run(
        &[
            "sentiment",
            "train",
            "--data",
            d,
            "--labels",
            labels,
            "--out",
            o,
        ],
        &[("ATALAYA_MODELS_DIR", empty.to_str().unwrap())],
    );
    assert!(
        !ok && err.contains("atalaya models download sentence-transformers/all-MiniLM-L6-v2"),
        "{err}"
    );
    // A directory that is not a model.
    let (ok, _, err) = eval(b);
    assert!(!ok && err.contains("sentiment train"), "{err}");
    let (ok, _, err) = eval("nonsense");
    assert!(
        !ok && err.contains("not lexicon, default, ensemble"),
        "{err}"
    );
}

#[test]
fn the_configured_ensemble_uses_the_transformer_with_its_weight() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    // A classifier that always says positive (a large bias on that class).
    TinyBert {
        classifier: Some(vec!["negative".into(), "neutral".into(), "positive".into()]),
        classifier_bias: vec![0.0, 0.0, 40.0],
        ..TinyBert::default()
    }
    .write(&model)
    .unwrap();
    let data = tmp.path().join("d.csv");
    std::fs::write(
        &data,
        "text,label\nthe market crashes,negative\nbitcoin surges,positive\n",
    )
    .unwrap();
    let config = tmp.path().join("a.toml");
    let write = |weights: &str| {
        std::fs::write(
            &config,
            format!(
                "[engine.sentiment]\nmodel_dir = {:?}\n{weights}\n",
                model.display().to_string()
            ),
        )
        .unwrap();
    };
    let eval = || {
        run(
            &[
                "-c",
                config.to_str().unwrap(),
                "sentiment",
                "eval",
                "--data",
                data.to_str().unwrap(),
            ],
            &[],
        )
    };
    // The transformer alone: both texts positive.
    write("lexicon_weight = 0.0\nkeyword_weight = 0.0\ntransformer_weight = 1.0");
    let (ok, out, err) = eval();
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("transformer") && out.contains("(sequence classifier) × 1"),
        "{out}"
    );
    assert!(out.contains("accuracy 0.5000"), "{out}");
    // The keywords alone (transformer weight 0): both right.
    write("lexicon_weight = 0.0\nkeyword_weight = 1.0\ntransformer_weight = 0.0");
    let (ok, out, err) = eval();
    assert!(ok && out.contains("accuracy 1.0000"), "{out}{err}");
    // All zero: refused, naming the field.
    write("lexicon_weight = 0.0\nkeyword_weight = 0.0\ntransformer_weight = 0.0");
    let (ok, _, err) = eval();
    assert!(!ok && err.contains("sentiment.lexicon_weight"), "{err}");
}
