//! The lexicon model's accuracy on the MIT-licensed twitter financial-news validation split
//! (`../shared/data`, via ATALAYA_DATA_DIR). It fails when accuracy falls below the recorded
//! level (docs/EVALUATION.md), so a lexicon or rule change cannot quietly make it worse.
#![allow(clippy::unwrap_used)]

use atalaya_ml::eval::{LabelMap, Report, read_labelled};
use atalaya_ml::sentiment::LexiconModel;

#[test]
fn lexicon_model_on_twitter_financial_news() {
    let Some(d) = atalaya_testkit::data_dir("lexicon_model_on_twitter_financial_news") else {
        return;
    };
    let labels = LabelMap::parse("0=bearish,1=bullish,2=neutral").unwrap();
    let rows = read_labelled(
        &d.join("sentiment_twitter_financial_news_mit/sent_valid.csv"),
        &labels,
    )
    .unwrap();
    assert_eq!(rows.len(), 2388);
    let plain = LexiconModel::vader_only(&d.join("lexicon_vader_mit")).unwrap();
    let vader = LexiconModel::load(&d.join("lexicon_vader_mit"), None).unwrap();
    let full = LexiconModel::load(
        &d.join("lexicon_vader_mit"),
        Some(&d.join("lexicon_finvader_apache2")),
    )
    .unwrap();
    let report =
        |m: &LexiconModel| Report::of(rows.iter().map(|(t, p)| (*p, m.score(t).polarity())));
    let (rp, rv, rf) = (report(&plain), report(&vader), report(&full));
    println!(
        "VADER alone:\n{}\nVADER + crypto slang:\n{}\nVADER + finance + crypto slang:\n{}",
        rp.render(),
        rv.render(),
        rf.render()
    );
    assert!(rp.macro_f1 >= RECORDED_PLAIN_F1 - 0.005, "{}", rp.render());
    // Recorded levels (docs/EVALUATION.md), less a small margin.
    assert!(rv.macro_f1 >= RECORDED_VADER_F1 - 0.005, "{}", rv.render());
    assert!(rf.macro_f1 >= RECORDED_FULL_F1 - 0.005, "{}", rf.render());
}

const RECORDED_PLAIN_F1: f64 = 0.4473;
const RECORDED_VADER_F1: f64 = 0.4886;
const RECORDED_FULL_F1: f64 = 0.5519;

/// Zero-shot on all 4,846 sentences of the Financial PhraseBank's 50%-agreement file (ISO-8859-1,
/// `sentence@label`). Measurement only: the set is non-commercial and nothing is trained on it.
#[test]
fn lexicon_model_zero_shot_on_financial_phrasebank() {
    let Some(d) = atalaya_testkit::data_dir("lexicon_model_zero_shot_on_financial_phrasebank")
    else {
        return;
    };
    let bytes =
        std::fs::read(d.join("sentiment_financial_phrasebank_v1_ccbyncsa3/Sentences_50Agree.txt"))
            .unwrap();
    // Latin-1 to UTF-8: each byte is its code point.
    let text: String = bytes.iter().map(|b| char::from(*b)).collect();
    let rows: Vec<(String, atalaya_ml::sentiment::Polarity)> = text
        .lines()
        .filter_map(|l| {
            let (t, lab) = l.rsplit_once('@')?;
            Some((t.to_owned(), atalaya_ml::sentiment::Polarity::parse(lab)?))
        })
        .collect();
    assert_eq!(rows.len(), 4846);
    let plain = LexiconModel::vader_only(&d.join("lexicon_vader_mit")).unwrap();
    let full = LexiconModel::load(
        &d.join("lexicon_vader_mit"),
        Some(&d.join("lexicon_finvader_apache2")),
    )
    .unwrap();
    let report =
        |m: &LexiconModel| Report::of(rows.iter().map(|(t, p)| (*p, m.score(t).polarity())));
    let (rp, rf) = (report(&plain), report(&full));
    println!(
        "PhraseBank, VADER alone:\n{}\nPhraseBank, full lexicon:\n{}",
        rp.render(),
        rf.render()
    );
    assert!(
        rp.accuracy >= RECORDED_PB_PLAIN_ACC - 0.005,
        "{}",
        rp.render()
    );
    assert!(
        rf.accuracy >= RECORDED_PB_FULL_ACC - 0.005,
        "{}",
        rf.render()
    );
}

const RECORDED_PB_PLAIN_ACC: f64 = 0.5433;
const RECORDED_PB_FULL_ACC: f64 = 0.6393;
