//! The packed encoder (`atalaya_ml::bert`) against candle's `BertModel` on the same weights:
//! the tiny BERTs of atalaya-testkit (made on the spot, in both weight formats and with a
//! classifier's `bert.` prefix), and all-MiniLM-L6-v2 when `ATALAYA_TEST_MINILM_DIR` names it.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use atalaya_ml::bert::{Bert, BertConfig};
use atalaya_testkit::tiny_bert::TinyBert;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};

fn weights(dir: &Path) -> VarBuilder<'static> {
    let st = dir.join("model.safetensors");
    if st.exists() {
        VarBuilder::from_buffered_safetensors(std::fs::read(st).unwrap(), DType::F32, &Device::Cpu)
            .unwrap()
    } else {
        VarBuilder::from_pth(dir.join("pytorch_model.bin"), DType::F32, &Device::Cpu).unwrap()
    }
}

/// Runs both encoders over `texts` (token ids) and returns the largest difference between
/// their hidden states, over real tokens (candle's padded rows are skipped).
fn largest_difference(dir: &Path, texts: &[Vec<u32>]) -> f32 {
    let config_json = std::fs::read(dir.join("config.json")).unwrap();
    let ours_config: BertConfig = serde_json::from_slice(&config_json).unwrap();
    let candle_config: Config = serde_json::from_slice(&config_json).unwrap();
    let vb = weights(dir);
    let ours = Bert::load(&vb, &ours_config).unwrap();
    let theirs = BertModel::load(vb, &candle_config).unwrap();
    let slices: Vec<&[u32]> = texts.iter().map(Vec::as_slice).collect();
    let packed = ours.forward(&slices).unwrap();
    let width = texts.iter().map(Vec::len).max().unwrap();
    let mut ids = Vec::new();
    let mut mask = Vec::new();
    for t in texts {
        for i in 0..width {
            ids.push(t.get(i).copied().unwrap_or(0));
            mask.push(u32::from(i < t.len()));
        }
    }
    let ids = Tensor::from_vec(ids, (texts.len(), width), &Device::Cpu).unwrap();
    let mask = Tensor::from_vec(mask, (texts.len(), width), &Device::Cpu).unwrap();
    let states = theirs
        .forward(&ids, &ids.zeros_like().unwrap(), Some(&mask))
        .unwrap()
        .to_vec3::<f32>()
        .unwrap();
    let mut worst = 0.0f32;
    for (i, t) in texts.iter().enumerate() {
        let rows = packed.text(i);
        assert_eq!(rows.len(), t.len() * packed.hidden);
        for (p, row) in rows.chunks_exact(packed.hidden).enumerate() {
            for (a, b) in row.iter().zip(&states[i][p]) {
                assert!(a.is_finite(), "non-finite state");
                worst = worst.max((a - b).abs());
            }
        }
    }
    worst
}

fn tiny_texts() -> Vec<Vec<u32>> {
    // [CLS]=2 … [SEP]=3 over the tiny vocabulary (ids 5.. are words), of several lengths.
    vec![
        vec![2, 5, 7, 8, 3],
        vec![2, 3],
        (0..40)
            .map(|i| if i == 0 { 2 } else { 5 + i % 21 })
            .collect(),
        vec![2, 9, 10, 11, 12, 13, 14, 3],
    ]
}

#[test]
fn tiny_encoders_match_candle() {
    for (classifier, pytorch) in [(false, false), (true, false), (false, true)] {
        let dir = tempfile::tempdir().unwrap();
        TinyBert {
            classifier: classifier.then(|| vec!["negative".into(), "positive".into()]),
            pytorch,
            ..TinyBert::default()
        }
        .write(dir.path())
        .unwrap();
        let worst = largest_difference(dir.path(), &tiny_texts());
        assert!(
            worst < 1e-4,
            "classifier {classifier}, pytorch {pytorch}: {worst}"
        );
    }
}

#[test]
fn inputs_the_model_cannot_read_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    TinyBert::default().write(dir.path()).unwrap();
    let config: BertConfig =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    let bert = Bert::load(&weights(dir.path()), &config).unwrap();
    let e = bert.forward(&[&[2, 100_000, 3]]).unwrap_err();
    assert!(e.contains("outside the vocabulary"), "{e}");
    let long = vec![5u32; config.max_position_embeddings + 1];
    let e = bert.forward(&[&long]).unwrap_err();
    assert!(e.contains("positions"), "{e}");
    let empty = bert.forward(&[]).unwrap();
    assert!(empty.states.is_empty() && empty.spans.is_empty());
    let mut odd = config.clone();
    odd.num_attention_heads = 3;
    assert!(Bert::load(&weights(dir.path()), &odd).is_err());
}

#[test]
fn minilm_matches_candle() {
    let Some(dir) = std::env::var_os("ATALAYA_TEST_MINILM_DIR") else {
        eprintln!("skipped minilm_matches_candle: ATALAYA_TEST_MINILM_DIR is not set");
        return;
    };
    let dir = Path::new(&dir);
    let tokenizer = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    let texts: Vec<Vec<u32>> = [
        "Bitcoin price jumps to an all-time high",
        "$ETH down 12% after the exchange hack; traders brace for more liquidations",
        "ok",
        "The Federal Reserve left rates unchanged, and the dollar slipped against the euro \
         while gold rallied to a two-week high as investors weighed the outlook",
    ]
    .iter()
    .map(|t| tokenizer.encode(*t, true).unwrap().get_ids().to_vec())
    .collect();
    let worst = largest_difference(dir, &texts);
    assert!(worst < 2e-4, "{worst}");
}
