//! Headlines per second through the lexicon model, on one core.
//!
//! `cargo bench -p atalaya-ml --bench sentiment` (with `ATALAYA_DATA_DIR` for the VADER lexicon
//! and the twitter financial-news headlines; without it, the crypto-slang lexicon on built-in
//! headlines). With `ATALAYA_TEST_MINILM_DIR` (an all-MiniLM-L6-v2 directory) also the
//! transformer: the shipped default model over 256 of those headlines, batched (by the default
//! size, and by 8 to 128 to compare).

use std::hint::black_box;
use std::path::PathBuf;

use atalaya_ml::sentiment::LexiconModel;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let data = std::env::var_os("ATALAYA_DATA_DIR").map(PathBuf::from);
    let (model, headlines) = match &data {
        Some(d) => {
            let model = LexiconModel::load(
                &d.join("lexicon_vader_mit"),
                Some(&d.join("lexicon_finvader_apache2")),
            )
            .expect("lexicons");
            let text = std::fs::read_to_string(
                d.join("sentiment_twitter_financial_news_mit/sent_valid.csv"),
            )
            .expect("headlines");
            let h: Vec<String> = text
                .lines()
                .skip(1)
                .map(|l| l.rsplit_once(',').map_or(l, |x| x.0).to_owned())
                .collect();
            (model, h)
        }
        None => (
            LexiconModel::crypto_only(),
            (0..2_000)
                .map(|i| {
                    format!("Bitcoin {i} rallies to a record as ETF inflows surge, but miners dump")
                })
                .collect(),
        ),
    };
    let mut g = c.benchmark_group("sentiment");
    g.throughput(Throughput::Elements(headlines.len() as u64));
    g.bench_function("lexicon_headlines", |b| {
        b.iter(|| {
            let mut acc = 0.0;
            for h in &headlines {
                acc += model.score(black_box(h)).compound;
            }
            black_box(acc)
        })
    });
    if let Some(dir) = std::env::var_os("ATALAYA_TEST_MINILM_DIR") {
        let batch: Vec<&str> = headlines.iter().take(256).map(String::as_str).collect();
        g.throughput(Throughput::Elements(batch.len() as u64));
        g.sample_size(10);
        // The default batch size under the bench's usual name, then others to compare.
        let default = atalaya_ml::transformer::DEFAULT_BATCH;
        let others = [8, 16, 32, 64, 128].into_iter().filter(|&s| s != default);
        for size in std::iter::once(default).chain(others) {
            let m = atalaya_ml::transformer::default_model(std::path::Path::new(&dir))
                .expect("all-MiniLM-L6-v2")
                .with_batch(size);
            let name = if size == default {
                "minilm_default_model_256_headlines".to_owned()
            } else {
                format!("minilm_default_model_256_headlines_batch_{size}")
            };
            g.bench_function(name, |b| {
                b.iter(|| {
                    black_box(
                        m.classify(black_box(&batch), &mut |_| {})
                            .expect("classify"),
                    )
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
