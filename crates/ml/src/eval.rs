//! Evaluation on labelled CSV: a header `text,label`, labels `positive`/`neutral`/`negative`
//! (`bullish`/`bearish` accepted) or another vocabulary mapped with [`LabelMap`] (the twitter
//! financial-news set's `0,1,2` = bearish, bullish, neutral).

use std::collections::HashMap;
use std::path::Path;

use crate::MlError;
use crate::sentiment::Polarity;

/// Maps a data set's labels to polarities (`0=bearish,1=bullish,2=neutral`).
#[derive(Clone, Debug, Default)]
pub struct LabelMap(HashMap<String, Polarity>);

impl LabelMap {
    /// Parses `raw=polarity,…`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut m = HashMap::new();
        for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected RAW=positive|neutral|negative"))?;
            let p = Polarity::parse(v).ok_or_else(|| {
                format!("{v:?}: not positive, neutral, negative, bullish or bearish")
            })?;
            m.insert(k.trim().to_owned(), p);
        }
        Ok(Self(m))
    }

    fn get(&self, raw: &str) -> Option<Polarity> {
        self.0
            .get(raw.trim())
            .copied()
            .or_else(|| Polarity::parse(raw))
    }
}

/// Reads `path` (CSV with a `text,label` header; quoted fields with `""` escapes).
pub fn read_labelled(path: &Path, labels: &LabelMap) -> Result<Vec<(String, Polarity)>, MlError> {
    let text = std::fs::read_to_string(path).map_err(|source| MlError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let bad = |line: usize, message: String| MlError::Parse {
        path: path.display().to_string(),
        line,
        message,
    };
    let records = csv_records(&text);
    let Some((_, header)) = records.first() else {
        return Err(bad(1, "empty file".into()));
    };
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let (Some(ti), Some(li)) = (col("text"), col("label")) else {
        return Err(bad(1, "expected a header with `text` and `label`".into()));
    };
    let mut out = Vec::with_capacity(records.len());
    for (line, r) in &records[1..] {
        let (Some(t), Some(l)) = (r.get(ti), r.get(li)) else {
            return Err(bad(*line, format!("expected {} fields", header.len())));
        };
        let p = labels.get(l).ok_or_else(|| {
            bad(
                *line,
                format!("label {l:?}: use positive/neutral/negative, or map it with --labels"),
            )
        })?;
        out.push((t.clone(), p));
    }
    Ok(out)
}

/// RFC 4180 records with the line each starts on.
fn csv_records(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    let (mut field, mut rec) = (String::new(), Vec::new());
    let (mut quoted, mut line, mut start) = (false, 1, 1);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => rec.push(std::mem::take(&mut field)),
            (false, '\n') => {
                rec.push(std::mem::take(&mut field));
                if !(rec.len() == 1 && rec[0].trim().is_empty()) {
                    out.push((start, std::mem::take(&mut rec)));
                }
                rec.clear();
                line += 1;
                start = line;
            }
            (false, '\r') => {}
            (_, c) => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
        }
    }
    if !field.is_empty() || !rec.is_empty() {
        rec.push(field);
        out.push((start, rec));
    }
    out
}

/// Accuracy, macro-F1 and the confusion matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// Rows: true negative, neutral, positive; columns: predicted, in the same order.
    pub confusion: [[u64; 3]; 3],
    /// Share predicted right.
    pub accuracy: f64,
    /// Mean of the three classes' F1.
    pub macro_f1: f64,
}

fn idx(p: Polarity) -> usize {
    match p {
        Polarity::Negative => 0,
        Polarity::Neutral => 1,
        Polarity::Positive => 2,
    }
}

impl Report {
    /// Scores `(truth, prediction)` pairs.
    pub fn of(pairs: impl IntoIterator<Item = (Polarity, Polarity)>) -> Self {
        let mut m = [[0u64; 3]; 3];
        for (t, p) in pairs {
            m[idx(t)][idx(p)] += 1;
        }
        let total: u64 = m.iter().flatten().sum();
        let right: u64 = (0..3).map(|k| m[k][k]).sum();
        let f1 = |k: usize| {
            let tp = m[k][k] as f64;
            let predicted: u64 = (0..3).map(|r| m[r][k]).sum();
            let actual: u64 = m[k].iter().sum();
            let (p, r) = (
                if predicted > 0 {
                    tp / predicted as f64
                } else {
                    0.0
                },
                if actual > 0 { tp / actual as f64 } else { 0.0 },
            );
            if p + r > 0.0 {
                2.0 * p * r / (p + r)
            } else {
                0.0
            }
        };
        Self {
            confusion: m,
            accuracy: if total > 0 {
                right as f64 / total as f64
            } else {
                0.0
            },
            macro_f1: (f1(0) + f1(1) + f1(2)) / 3.0,
        }
    }

    /// A plain-text table.
    pub fn render(&self) -> String {
        let mut s = format!(
            "accuracy {:.4}   macro-F1 {:.4}\n\ntrue \\ predicted   negative    neutral   positive\n",
            self.accuracy, self.macro_f1
        );
        for (name, row) in ["negative", "neutral", "positive"]
            .iter()
            .zip(&self.confusion)
        {
            s.push_str(&format!(
                "{name:<18} {:>9} {:>10} {:>10}\n",
                row[0], row[1], row[2]
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Polarity::*;

    #[test]
    fn metrics_by_hand() {
        let r = Report::of([
            (Positive, Positive),
            (Positive, Neutral),
            (Negative, Negative),
            (Neutral, Neutral),
        ]);
        assert_eq!(r.accuracy, 0.75);
        // F1: negative 1, neutral 2·(0.5·1)/(1.5) = 2/3, positive 2·(1·0.5)/1.5 = 2/3.
        assert!((r.macro_f1 - (1.0 + 2.0 / 3.0 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        assert!(r.render().contains("accuracy 0.7500"));
    }

    #[test]
    fn csv_with_quotes_and_mapped_labels() {
        let dir = std::env::temp_dir().join(format!("atalaya-eval-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("d.csv");
        std::fs::write(
            &p,
            "text,label\n\"Dell, HPE \"\"trimmed\"\"\",0\nup only,1\r\nflat,2\n",
        )
        .unwrap();
        let m = LabelMap::parse("0=bearish,1=bullish,2=neutral").unwrap();
        let rows = read_labelled(&p, &m).unwrap();
        assert_eq!(rows[0], ("Dell, HPE \"trimmed\"".to_owned(), Negative));
        assert_eq!(rows[2].1, Neutral);
        let e = read_labelled(&p, &LabelMap::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("d.csv:2") && e.contains("--labels"), "{e}");
        assert!(LabelMap::parse("0=up").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
