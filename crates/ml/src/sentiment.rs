//! The lexicon sentiment model: VADER's rules over a merged lexicon.
//!
//! Rules, as the VADER paper and its reference implementation describe them: each word's
//! valence from the lexicon; boosters and dampeners up to three words before (`very`,
//! `slightly`, …, decaying 1, 0.95, 0.9); negation within three words (`not`, `never`, `-n't`,
//! … multiply by −0.74); an ALL-CAPS word among mixed-case ones adds 0.733; `least`; `but`
//! halves what comes before it and adds half to what follows; `!` (up to four, 0.292 each) and
//! `?` amplify; the compound score is `x / √(x² + 15)` in [−1, 1]. Positive at ≥ 0.05,
//! negative at ≤ −0.05 (VADER's thresholds).
//!
//! The lexicon: VADER's (`vader_lexicon.txt`, MIT, from the `vaderSentiment` package), then
//! FinVADER's finance lexicons on top (SentiBigNomics × 0.1 and Henry 2008, which wins on
//! clashes, Apache-2.0), then [`CRYPTO_SLANG`], owned by this project. Files are read from a
//! directory at run time (they are not part of the repository); without them the model runs
//! on the crypto-slang lexicon alone and says so.

use std::collections::HashMap;
use std::path::Path;

use crate::MlError;

/// Crypto slang and market words with VADER-scale valences (−4 … +4), owned by this project.
pub const CRYPTO_SLANG: &[(&str, f64)] = &[
    ("moon", 2.5),
    ("mooning", 2.8),
    ("moonshot", 2.2),
    ("lambo", 1.8),
    ("hodl", 1.2),
    ("hodling", 1.2),
    ("wagmi", 2.0),
    ("ngmi", -2.0),
    ("ath", 2.0),
    ("breakout", 1.8),
    ("bullish", 2.6),
    ("bearish", -2.6),
    ("bull", 1.5),
    ("bear", -1.5),
    ("rally", 2.0),
    ("rallies", 2.0),
    ("surge", 2.0),
    ("surges", 2.0),
    ("soar", 2.2),
    ("soars", 2.2),
    ("pump", 1.2),
    ("pumping", 1.4),
    ("dump", -2.0),
    ("dumping", -2.2),
    ("dumped", -2.0),
    ("plunge", -2.4),
    ("plunges", -2.4),
    ("crash", -2.8),
    ("crashes", -2.8),
    ("tumble", -2.0),
    ("tumbles", -2.0),
    ("slump", -2.0),
    ("slumps", -2.0),
    ("selloff", -2.2),
    ("liquidated", -2.4),
    ("liquidations", -1.8),
    ("rekt", -3.0),
    ("fud", -2.0),
    ("fomo", 0.8),
    ("rug", -3.0),
    ("rugpull", -3.5),
    ("rugged", -3.0),
    ("scam", -3.0),
    ("ponzi", -3.0),
    ("hack", -2.8),
    ("hacked", -3.0),
    ("exploit", -2.8),
    ("exploited", -3.0),
    ("drained", -2.8),
    ("insolvent", -3.2),
    ("bankrupt", -3.2),
    ("bankruptcy", -3.0),
    ("delisted", -2.2),
    ("delisting", -2.0),
    ("halted", -1.8),
    ("outage", -2.0),
    ("lawsuit", -1.8),
    ("sued", -2.0),
    ("fraud", -3.2),
    ("approval", 1.8),
    ("approves", 1.8),
    ("approved", 1.8),
    ("adoption", 1.6),
    ("inflows", 1.4),
    ("outflows", -1.4),
    ("upgrade", 1.4),
    ("upgraded", 1.6),
    ("downgrade", -1.8),
    ("downgraded", -1.8),
    ("beats", 1.6),
    ("misses", -1.6),
    ("record", 1.2),
    ("highs", 1.4),
    ("lows", -1.4),
    ("gains", 1.6),
    ("losses", -1.6),
    ("raises", 1.2),
    ("cuts", -1.2),
    ("trimmed", -1.2),
    ("headwinds", -1.6),
    ("tailwinds", 1.6),
];

const B_INCR: f64 = 0.293;
const B_DECR: f64 = -0.293;
const C_INCR: f64 = 0.733;
const N_SCALAR: f64 = -0.74;

const NEGATE: &[&str] = &[
    "aint",
    "arent",
    "cannot",
    "cant",
    "couldnt",
    "darent",
    "didnt",
    "doesnt",
    "ain't",
    "aren't",
    "can't",
    "couldn't",
    "daren't",
    "didn't",
    "doesn't",
    "dont",
    "hadnt",
    "hasnt",
    "havent",
    "isnt",
    "mightnt",
    "mustnt",
    "neither",
    "don't",
    "hadn't",
    "hasn't",
    "haven't",
    "isn't",
    "mightn't",
    "mustn't",
    "neednt",
    "needn't",
    "never",
    "none",
    "nope",
    "nor",
    "not",
    "nothing",
    "nowhere",
    "oughtnt",
    "shant",
    "shouldnt",
    "uhuh",
    "wasnt",
    "werent",
    "oughtn't",
    "shan't",
    "shouldn't",
    "uh-uh",
    "wasn't",
    "weren't",
    "without",
    "wont",
    "wouldnt",
    "won't",
    "wouldn't",
    "rarely",
    "seldom",
    "despite",
];

const BOOST_UP: &[&str] = &[
    "absolutely",
    "amazingly",
    "awfully",
    "completely",
    "considerable",
    "considerably",
    "decidedly",
    "deeply",
    "effing",
    "enormous",
    "enormously",
    "entirely",
    "especially",
    "exceptional",
    "exceptionally",
    "extreme",
    "extremely",
    "fabulously",
    "flipping",
    "flippin",
    "frackin",
    "fracking",
    "fricking",
    "frickin",
    "frigging",
    "friggin",
    "fully",
    "fuckin",
    "fucking",
    "fuggin",
    "fugging",
    "greatly",
    "hella",
    "highly",
    "hugely",
    "incredible",
    "incredibly",
    "intensely",
    "major",
    "majorly",
    "more",
    "most",
    "particularly",
    "purely",
    "quite",
    "really",
    "remarkably",
    "so",
    "substantially",
    "thoroughly",
    "total",
    "totally",
    "tremendous",
    "tremendously",
    "uber",
    "unbelievably",
    "unusually",
    "utter",
    "utterly",
    "very",
];

const BOOST_DOWN: &[&str] = &[
    "almost",
    "barely",
    "hardly",
    "kinda",
    "kindof",
    "kind-of",
    "less",
    "little",
    "marginal",
    "marginally",
    "occasional",
    "occasionally",
    "partly",
    "scarce",
    "scarcely",
    "slight",
    "slightly",
    "somewhat",
    "sorta",
    "sortof",
    "sort-of",
];

const SPECIAL: &[(&str, f64)] = &[
    ("the shit", 3.0),
    ("the bomb", 3.0),
    ("bad ass", 1.5),
    ("yeah right", -2.0),
    ("kiss of death", -1.5),
    ("to die for", 3.0),
    ("beating heart", 3.1),
    ("broken heart", -2.9),
];

/// A polarity label.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Polarity {
    /// Bearish.
    Negative,
    /// Neither.
    Neutral,
    /// Bullish.
    Positive,
}

impl Polarity {
    /// `negative`, `neutral`, `positive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Negative => "negative",
            Self::Neutral => "neutral",
            Self::Positive => "positive",
        }
    }

    /// The label of a score in [−1, 1]: positive at ≥ `band`, negative at ≤ −`band`, neutral
    /// between.
    pub fn of_score(score: f64, band: f64) -> Self {
        if score >= band {
            Self::Positive
        } else if score <= -band {
            Self::Negative
        } else {
            Self::Neutral
        }
    }

    /// Reads `positive`/`bullish`, `neutral`, `negative`/`bearish` (any case).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "positive" | "bullish" => Some(Self::Positive),
            "neutral" => Some(Self::Neutral),
            "negative" | "bearish" => Some(Self::Negative),
            _ => None,
        }
    }
}

/// The scores of one text.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scores {
    /// Normalised sum of valences in [−1, 1].
    pub compound: f64,
    /// Words that carried a valence.
    pub hits: usize,
}

impl Scores {
    /// The label at VADER's thresholds (±0.05).
    pub fn polarity(&self) -> Polarity {
        Polarity::of_score(self.compound, 0.05)
    }
}

/// Where a lexicon came from, for the status line and the docs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Provenance {
    /// VADER entries loaded.
    pub vader: usize,
    /// Finance entries merged.
    pub finance: usize,
    /// Crypto-slang entries merged.
    pub crypto: usize,
}

/// The lexicon model.
#[derive(Clone, Debug)]
pub struct LexiconModel {
    lexicon: HashMap<String, f64>,
    boosters: HashMap<&'static str, f64>,
    /// What went into the lexicon.
    pub provenance: Provenance,
}

fn read(path: &Path) -> Result<String, MlError> {
    std::fs::read_to_string(path).map_err(|source| MlError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// `vader_lexicon.txt` from `dir`: token, TAB, mean valence (further columns ignored).
fn read_vader(dir: &Path) -> Result<HashMap<String, f64>, MlError> {
    let path = dir.join("vader_lexicon.txt");
    let text = read(&path)?;
    let mut entries: HashMap<String, f64> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let mut cols = line.split('\t');
        let (Some(w), Some(v)) = (cols.next(), cols.next()) else {
            return Err(MlError::Parse {
                path: path.display().to_string(),
                line: n + 1,
                message: "expected token<TAB>valence".into(),
            });
        };
        let v: f64 = v.trim().parse().map_err(|_| MlError::Parse {
            path: path.display().to_string(),
            line: n + 1,
            message: format!("valence {v:?} is not a number"),
        })?;
        entries.insert(w.to_owned(), v);
    }
    Ok(entries)
}

fn is_negation(w: &str) -> bool {
    NEGATE.contains(&w) || w.contains("n't")
}

fn is_upper(w: &str) -> bool {
    w.chars().any(char::is_alphabetic) && !w.chars().any(char::is_lowercase)
}

/// Strips surrounding punctuation from a token when what is left is longer than two
/// characters (so `:)` and `:-(` survive as emoticons).
fn strip_punct(t: &str) -> &str {
    let s = t.trim_matches(|c: char| c.is_ascii_punctuation());
    if s.chars().count() <= 2 { t } else { s }
}

impl LexiconModel {
    /// A model on `entries` (word → valence), with the crypto-slang lexicon on top.
    pub fn from_entries(entries: impl IntoIterator<Item = (String, f64)>) -> Self {
        Self::build(entries.into_iter().collect(), true)
    }

    /// VADER's lexicon alone from `dir` (the baseline: no finance, no crypto slang).
    pub fn vader_only(dir: &Path) -> Result<Self, MlError> {
        Ok(Self::build(read_vader(dir)?, false))
    }

    fn build(mut lexicon: HashMap<String, f64>, crypto: bool) -> Self {
        let vader = lexicon.len();
        if crypto {
            for (w, v) in CRYPTO_SLANG {
                lexicon.insert((*w).to_owned(), *v);
            }
        }
        let boosters = BOOST_UP
            .iter()
            .map(|w| (*w, B_INCR))
            .chain(BOOST_DOWN.iter().map(|w| (*w, B_DECR)))
            .collect();
        Self {
            lexicon,
            boosters,
            provenance: Provenance {
                vader,
                finance: 0,
                crypto: if crypto { CRYPTO_SLANG.len() } else { 0 },
            },
        }
    }

    /// The crypto-slang lexicon alone (when no lexicon files are available).
    pub fn crypto_only() -> Self {
        Self::from_entries(std::iter::empty())
    }

    /// Loads `vader_lexicon.txt` (token, TAB, mean valence, …) from `dir`, merges FinVADER's
    /// `sentibignomics.tsv` (× 0.1) and `henry_2008.tsv` from `finance_dir` when given, then the
    /// crypto-slang lexicon.
    pub fn load(dir: &Path, finance_dir: Option<&Path>) -> Result<Self, MlError> {
        let mut entries = read_vader(dir)?;
        let vader = entries.len();
        let mut finance = 0;
        if let Some(fd) = finance_dir {
            let mut merged: HashMap<String, f64> = HashMap::new();
            for (file, scale) in [("sentibignomics.tsv", 0.1), ("henry_2008.tsv", 1.0)] {
                let p = fd.join(file);
                for (n, line) in read(&p)?.lines().enumerate().skip(1) {
                    let Some((w, v)) = line.trim_end_matches('\r').split_once('\t') else {
                        continue;
                    };
                    let v: f64 = v.trim().parse().map_err(|_| MlError::Parse {
                        path: p.display().to_string(),
                        line: n + 1,
                        message: format!("score {v:?} is not a number"),
                    })?;
                    merged.insert(w.to_owned(), v * scale);
                }
            }
            finance = merged.len();
            entries.extend(merged);
        }
        let mut m = Self::from_entries(entries);
        m.provenance.vader = vader;
        m.provenance.finance = finance;
        Ok(m)
    }

    fn valence(&self, w: &str) -> Option<f64> {
        self.lexicon.get(w).copied()
    }

    fn in_lexicon(&self, w: &str) -> bool {
        self.lexicon.contains_key(w)
    }

    fn scalar(&self, word: &str, lower: &str, valence: f64, cap_diff: bool) -> f64 {
        let Some(&b) = self.boosters.get(lower) else {
            return 0.0;
        };
        let mut s = if valence < 0.0 { -b } else { b };
        if cap_diff && is_upper(word) {
            s += if valence > 0.0 { C_INCR } else { -C_INCR };
        }
        s
    }

    /// Scores `text`.
    pub fn score(&self, text: &str) -> Scores {
        let words: Vec<&str> = text.split_whitespace().map(strip_punct).collect();
        let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
        let caps = words.iter().filter(|w| is_upper(w)).count();
        let cap_diff = caps > 0 && caps < words.len();
        let mut sentiments: Vec<f64> = Vec::with_capacity(words.len());
        let mut hits = 0;
        for (i, w) in words.iter().enumerate() {
            let lw = lower[i].as_str();
            if self.boosters.contains_key(lw)
                || (lw == "kind" && lower.get(i + 1).is_some_and(|n| n == "of"))
            {
                sentiments.push(0.0);
                continue;
            }
            let Some(base) = self.valence(lw) else {
                sentiments.push(0.0);
                continue;
            };
            hits += 1;
            let mut v = base;
            if lw == "no" && i + 1 < words.len() && self.in_lexicon(&lower[i + 1]) {
                v = 0.0;
            }
            if (i > 0 && lower[i - 1] == "no")
                || (i > 1 && lower[i - 2] == "no")
                || (i > 2
                    && lower[i - 3] == "no"
                    && (lower[i - 1] == "or" || lower[i - 1] == "nor"))
            {
                v = base * N_SCALAR;
            }
            if cap_diff && is_upper(w) {
                v += if v > 0.0 { C_INCR } else { -C_INCR };
            }
            for start in 0..3 {
                if i <= start {
                    break;
                }
                let j = i - (start + 1);
                if self.in_lexicon(&lower[j]) {
                    continue;
                }
                let mut s = self.scalar(words[j], &lower[j], v, cap_diff);
                if start == 1 {
                    s *= 0.95;
                } else if start == 2 {
                    s *= 0.9;
                }
                v += s;
                v = negation(v, &lower, start, i);
                if start == 2 {
                    v = idioms(v, &lower, i);
                }
            }
            // "least": "at least" and "very least" are not negations.
            if i > 1 && !self.in_lexicon(&lower[i - 1]) && lower[i - 1] == "least" {
                if lower[i - 2] != "at" && lower[i - 2] != "very" {
                    v *= N_SCALAR;
                }
            } else if i > 0 && !self.in_lexicon(&lower[i - 1]) && lower[i - 1] == "least" {
                v *= N_SCALAR;
            }
            sentiments.push(v);
        }
        but_check(&lower, &mut sentiments);
        let mut sum: f64 = sentiments.iter().sum();
        let amp = punctuation_emphasis(text);
        if sum > 0.0 {
            sum += amp;
        } else if sum < 0.0 {
            sum -= amp;
        }
        let compound = (sum / (sum * sum + 15.0).sqrt()).clamp(-1.0, 1.0);
        Scores { compound, hits }
    }
}

fn negation(v: f64, lower: &[String], start: usize, i: usize) -> f64 {
    let w = |k: usize| lower[i - k].as_str();
    match start {
        0 if is_negation(w(1)) => v * N_SCALAR,
        1 => {
            if w(2) == "never" && (w(1) == "so" || w(1) == "this") {
                v * 1.25
            } else if w(2) == "without" && w(1) == "doubt" {
                v
            } else if is_negation(w(2)) {
                v * N_SCALAR
            } else {
                v
            }
        }
        2 => {
            if (w(3) == "never" && (w(2) == "so" || w(2) == "this"))
                || (w(1) == "so" || w(1) == "this")
            {
                v * 1.25
            } else if w(3) == "without" && (w(2) == "doubt" || w(1) == "doubt") {
                v
            } else if is_negation(w(3)) {
                v * N_SCALAR
            } else {
                v
            }
        }
        _ => v,
    }
}

fn idioms(v: f64, lower: &[String], i: usize) -> f64 {
    let mut grams = vec![
        format!("{} {}", lower[i - 1], lower[i]),
        format!("{} {} {}", lower[i - 2], lower[i - 1], lower[i]),
        format!("{} {}", lower[i - 2], lower[i - 1]),
        format!("{} {} {}", lower[i - 3], lower[i - 2], lower[i - 1]),
        format!("{} {}", lower[i - 3], lower[i - 2]),
    ];
    if i + 1 < lower.len() {
        grams.push(format!("{} {}", lower[i], lower[i + 1]));
    }
    if i + 2 < lower.len() {
        grams.push(format!("{} {} {}", lower[i], lower[i + 1], lower[i + 2]));
    }
    let mut out = v;
    for g in &grams {
        if let Some((_, s)) = SPECIAL.iter().find(|(k, _)| k == g) {
            out = *s;
        }
    }
    out
}

/// "but": what comes before it counts half, what follows one and a half (VADER's rule, with
/// its quirk of updating the first equal value, kept for fidelity).
fn but_check(lower: &[String], s: &mut [f64]) {
    let Some(bi) = lower.iter().position(|w| w == "but") else {
        return;
    };
    for pos in 0..s.len() {
        let value = s[pos];
        let Some(si) = s.iter().position(|x| *x == value) else {
            continue;
        };
        if si < bi {
            s[si] = value * 0.5;
        } else if si > bi {
            s[si] = value * 1.5;
        }
    }
}

fn punctuation_emphasis(text: &str) -> f64 {
    let ep = text.matches('!').count().min(4) as f64 * 0.292;
    let qm = text.matches('?').count();
    let qa = if qm > 1 {
        if qm <= 3 { qm as f64 * 0.18 } else { 0.96 }
    } else {
        0.0
    };
    ep + qa
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> LexiconModel {
        LexiconModel::from_entries(
            [
                ("good", 1.9),
                ("great", 3.1),
                ("bad", -2.5),
                ("no", -1.2),
                ("love", 3.2),
            ]
            .into_iter()
            .map(|(w, v)| (w.to_owned(), v)),
        )
    }

    #[test]
    fn vader_rules() {
        let m = model();
        let c = |t: &str| m.score(t).compound;
        // A single positive word: 1.9 / sqrt(1.9² + 15).
        assert!((c("good") - 1.9 / (1.9f64 * 1.9 + 15.0).sqrt()).abs() < 1e-12);
        assert!(c("very good") > c("good"), "booster");
        assert!(c("slightly good") < c("good"), "dampener");
        assert!(c("not good") < 0.0, "negation");
        assert!(c("isn't good") < 0.0, "n't");
        assert!(
            c("GOOD news today") > c("good news today"),
            "caps among lower case"
        );
        assert!(c("good!!!") > c("good"), "exclamation");
        assert!(c("good but bad") < 0.0, "but weights what follows");
        assert_eq!(c("the table"), 0.0);
        assert_eq!(m.score("the table").polarity(), Polarity::Neutral);
        assert_eq!(
            m.score("bitcoin to the moon").polarity(),
            Polarity::Positive
        );
        assert_eq!(
            m.score("got rekt by a rug pull, total scam").polarity(),
            Polarity::Negative
        );
        assert_eq!(m.score("hodl").hits, 1);
    }

    #[test]
    fn labels_and_aliases() {
        assert_eq!(Polarity::parse("Bullish"), Some(Polarity::Positive));
        assert_eq!(Polarity::parse("bearish"), Some(Polarity::Negative));
        assert_eq!(Polarity::parse(" neutral "), Some(Polarity::Neutral));
        assert_eq!(Polarity::parse("2"), None);
    }

    #[test]
    fn bad_lexicon_lines_are_named() {
        let dir = std::env::temp_dir().join(format!("atalaya-lex-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("vader_lexicon.txt"),
            "good\t1.9\t0.9\t[1]\nbad\tx\n",
        )
        .unwrap();
        let e = LexiconModel::load(&dir, None).unwrap_err().to_string();
        assert!(
            e.contains("vader_lexicon.txt:2") && e.contains("\"x\""),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
