//! Scores each of several transformer models on labelled CSV, then the average of their class
//! probabilities (the most probable class of the mean, as `ClassProbs::polarity` picks it), as
//! docs/EVALUATION.md measures an ensemble of PhraseBank models.
//!
//! ```sh
//! cargo run --release -p atalaya-ml --example ensemble_eval -- DATA.csv MODEL_DIR...
//! ```

use std::path::Path;

use atalaya_ml::eval::{LabelMap, Report, read_labelled};
use atalaya_ml::transformer::{ClassProbs, TransformerModel};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(data), Some(_)) = (args.first(), args.get(1)) else {
        eprintln!("usage: ensemble_eval DATA.csv MODEL_DIR...");
        std::process::exit(2);
    };
    let labels = LabelMap::parse("").expect("an empty label map");
    let rows = read_labelled(Path::new(data), &labels).expect("read the labelled CSV");
    let texts: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    // Summed probabilities; the largest sum is the largest mean.
    let mut sum = vec![
        ClassProbs {
            negative: 0.0,
            neutral: 0.0,
            positive: 0.0,
        };
        texts.len()
    ];
    for dir in &args[1..] {
        let model = TransformerModel::load(Path::new(dir)).expect("load the model");
        let probs = model.classify(&texts, &mut |_| {}).expect("classify");
        let alone = Report::of(
            rows.iter()
                .zip(&probs)
                .map(|((_, t), p)| (*t, p.polarity())),
        );
        println!("{dir}:\n{}", alone.render());
        for (s, p) in sum.iter_mut().zip(&probs) {
            s.negative += p.negative;
            s.neutral += p.neutral;
            s.positive += p.positive;
        }
    }
    let mean = Report::of(rows.iter().zip(&sum).map(|((_, t), s)| (*t, s.polarity())));
    println!("mean of {} models:\n{}", args.len() - 1, mean.render());
}
