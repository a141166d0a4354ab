//! Declarative trading rules: `rsi_14 < 30 and close > ema_200`, parsed and compiled once,
//! evaluated on every closed bar.
//!
//! # The language
//!
//! ```text
//! expr    := or
//! or      := and ("or" and)*
//! and     := not ("and" not)*
//! not     := "not" not | compare
//! compare := sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)?
//! sum     := product (("+" | "-") product)*
//! product := unary (("*" | "/") unary)*
//! unary   := "-" unary | atom
//! atom    := number | name | name "(" expr ("," expr)* ")" | "(" expr ")"
//! ```
//!
//! Names are the bar's fields (`open`, `high`, `low`, `close`, `volume`), any indicator
//! column of `atalaya-ta`'s sets (`rsi_14`, `ema_200`, `macd_12_26_9_signal`,
//! `bbands_20_2_upper`, `cdlengulfing`, `supertrend_10_3_direction`; the indicator is added to
//! every series automatically), the decision's outputs (`score`, `confidence`,
//! `factor_technical`, `factor_momentum`, `factor_volume`, `factor_volatility`) and this bar's
//! anomalies (`anomaly_return`, `anomaly_volume_spike`, `anomaly_gap`,
//! `anomaly_volatility_regime`, `anomaly_multivariate`: the anomaly's direction, or 1 when it
//! has none, and 0 when it did not fire).
//!
//! Functions: `crosses_above(a, b)` (a > b now and a <= b on the previous bar),
//! `crosses_below(a, b)` (a < b now and a >= b before), `prev(x)` (x on the previous bar),
//! `abs(x)`, `min(a, b)`, `max(a, b)`.
//!
//! Values are numbers; comparisons and logic give 1 or 0; a value is true when it is neither
//! 0 nor NaN. Indicators are NaN while they warm up, so any comparison with them is false
//! until they are ready. Every part of a rule is evaluated on every bar (no short-circuit), so
//! `prev` and the crossings always see the previous bar.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a rule does when it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// A bullish signal (direction +1): enter long.
    Buy,
    /// A bearish signal (direction −1): exit long.
    Sell,
}

impl RuleAction {
    /// +1 or −1.
    pub fn direction(self) -> f64 {
        match self {
            Self::Buy => 1.0,
            Self::Sell => -1.0,
        }
    }
}

/// One rule as configured: `[[engine.rules]] name = "golden_cross" when = "…" action = "buy"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// A short name; the signal is called `rule.<name>`.
    pub name: String,
    /// The condition.
    pub when: String,
    /// What a hit means.
    pub action: RuleAction,
}

/// A rule that cannot be compiled, pointing into its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    /// The rule's text.
    pub text: String,
    /// Byte offset of the problem.
    pub at: usize,
    /// Length of the offending part (at least 1 for the caret).
    pub len: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let col = self.text[..self.at.min(self.text.len())].chars().count();
        let width = self
            .text
            .get(self.at..self.at + self.len)
            .map_or(1, |s| s.chars().count().max(1));
        write!(
            f,
            "at column {}: {}\n  {}\n  {}{}",
            col + 1,
            self.message,
            self.text,
            " ".repeat(col),
            "^".repeat(width)
        )
    }
}

impl std::error::Error for RuleError {}

/// The fixed value slots every series has, before the anomaly and indicator slots.
pub const BAR_FIELDS: [&str; 5] = ["open", "high", "low", "close", "volume"];
/// The decision's outputs, after the bar fields.
pub const DECISION_FIELDS: [&str; 6] = [
    "score",
    "confidence",
    "factor_technical",
    "factor_momentum",
    "factor_volume",
    "factor_volatility",
];
/// The anomaly slots, after the decision fields, in `AnomalyKind` order.
pub const ANOMALY_FIELDS: [&str; 5] = [
    "anomaly_return",
    "anomaly_volume_spike",
    "anomaly_gap",
    "anomaly_volatility_regime",
    "anomaly_multivariate",
];
/// Index of the first indicator column in a series' values.
pub const FIRST_INDICATOR: usize = BAR_FIELDS.len() + DECISION_FIELDS.len() + ANOMALY_FIELDS.len();

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(f64),
    Name(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
    End,
}

fn lex(text: &str) -> Result<Vec<(Tok, usize, usize)>, RuleError> {
    let err = |at: usize, len: usize, message: String| RuleError {
        text: text.to_owned(),
        at,
        len,
        message,
    };
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                let mut j = i + 1;
                if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
                    j += 1;
                }
                if j < b.len() && b[j].is_ascii_digit() {
                    i = j;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let s = &text[start..i];
            let v: f64 = s
                .parse()
                .map_err(|_| err(start, i - start, format!("`{s}` is not a number")))?;
            out.push((Tok::Num(v), start, i - start));
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            // Names may hold dots after the first character (`bbands_20_2.5_upper`).
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
            out.push((Tok::Name(text[start..i].to_owned()), start, i - start));
            continue;
        }
        let two = text.get(i..i + 2).unwrap_or("");
        let (tok, len) = match two {
            "<=" => (Tok::Op("<="), 2),
            ">=" => (Tok::Op(">="), 2),
            "==" => (Tok::Op("=="), 2),
            "!=" => (Tok::Op("!="), 2),
            "&&" => (Tok::Op("and"), 2),
            "||" => (Tok::Op("or"), 2),
            _ => match c {
                b'<' => (Tok::Op("<"), 1),
                b'>' => (Tok::Op(">"), 1),
                b'+' => (Tok::Op("+"), 1),
                b'-' => (Tok::Op("-"), 1),
                b'*' => (Tok::Op("*"), 1),
                b'/' => (Tok::Op("/"), 1),
                b'!' => (Tok::Op("not"), 1),
                b'(' => (Tok::LParen, 1),
                b')' => (Tok::RParen, 1),
                b',' => (Tok::Comma, 1),
                b'{' => {
                    let end = text[i..].find('}').map_or(1, |e| e + 1);
                    return Err(err(
                        i,
                        end,
                        format!(
                            "`{}` is a placeholder: only `atalaya optimize` fills it, from an [[optimize.params]] path `rules.{}`",
                            &text[i..i + end],
                            text[i + 1..i + end].trim_end_matches('}')
                        ),
                    ));
                }
                b'=' => {
                    return Err(err(
                        i,
                        1,
                        "`=` is not an operator; did you mean `==`?".into(),
                    ));
                }
                _ => {
                    let ch = text[i..].chars().next().unwrap_or('?');
                    return Err(err(
                        i,
                        ch.len_utf8(),
                        format!("unexpected character `{ch}`"),
                    ));
                }
            },
        };
        out.push((tok, start, len));
        i += len;
    }
    out.push((Tok::End, text.len(), 0));
    Ok(out)
}

/// One step of a compiled rule, evaluated on a small stack.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Instr {
    Const(f64),
    Load(u32),
    Neg,
    Not,
    Add,
    Sub,
    Mul,
    Div,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
    Abs,
    Min,
    Max,
    /// Replaces the top with its value on the previous bar (state slot).
    Prev(u32),
    /// `crosses_above(a, b)` (or below) of two loaded values in one step; the state slot
    /// keeps whether `a <= b` (or `a >= b`) held on the previous bar.
    Cross {
        above: bool,
        a: u32,
        b: u32,
        state: u32,
    },
}

/// The deepest stack a rule may need.
const MAX_DEPTH: usize = 32;

/// Resolves a name to a value slot; may add an indicator to the series.
pub trait Resolver {
    /// The slot of `name`, or why it is unknown.
    fn resolve(&mut self, name: &str) -> Result<u32, String>;
}

struct Parser<'a, R> {
    text: &'a str,
    toks: Vec<(Tok, usize, usize)>,
    pos: usize,
    code: Vec<Instr>,
    states: u32,
    names: Vec<(String, u32)>,
    resolver: &'a mut R,
}

impl<R: Resolver> Parser<'_, R> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].0
    }
    fn span(&self) -> (usize, usize) {
        let t = &self.toks[self.pos.min(self.toks.len() - 1)];
        (t.1, t.2.max(1))
    }
    fn err(&self, message: impl Into<String>) -> RuleError {
        let (at, len) = self.span();
        RuleError {
            text: self.text.to_owned(),
            at,
            len,
            message: message.into(),
        }
    }
    fn describe(t: &Tok) -> String {
        match t {
            Tok::Num(v) => format!("number {v}"),
            Tok::Name(n) => format!("`{n}`"),
            Tok::Op(o) => format!("`{o}`"),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::End => "the end of the rule".into(),
        }
    }
    fn is_word(&self, w: &str) -> bool {
        match self.peek() {
            Tok::Name(n) => n.eq_ignore_ascii_case(w),
            Tok::Op(o) => *o == w,
            _ => false,
        }
    }
    fn or(&mut self) -> Result<(), RuleError> {
        self.and()?;
        while self.is_word("or") {
            self.pos += 1;
            self.and()?;
            self.code.push(Instr::Or);
        }
        Ok(())
    }
    fn and(&mut self) -> Result<(), RuleError> {
        self.not()?;
        while self.is_word("and") {
            self.pos += 1;
            self.not()?;
            self.code.push(Instr::And);
        }
        Ok(())
    }
    fn not(&mut self) -> Result<(), RuleError> {
        if self.is_word("not") {
            self.pos += 1;
            self.not()?;
            self.code.push(Instr::Not);
            return Ok(());
        }
        self.compare()
    }
    fn compare(&mut self) -> Result<(), RuleError> {
        self.sum()?;
        let op = match self.peek() {
            Tok::Op("<") => Instr::Lt,
            Tok::Op("<=") => Instr::Le,
            Tok::Op(">") => Instr::Gt,
            Tok::Op(">=") => Instr::Ge,
            Tok::Op("==") => Instr::Eq,
            Tok::Op("!=") => Instr::Ne,
            _ => return Ok(()),
        };
        self.pos += 1;
        self.sum()?;
        self.code.push(op);
        if matches!(self.peek(), Tok::Op("<" | "<=" | ">" | ">=" | "==" | "!=")) {
            return Err(self.err("comparisons do not chain: write `a < b and b < c`"));
        }
        Ok(())
    }
    fn sum(&mut self) -> Result<(), RuleError> {
        self.product()?;
        loop {
            let op = match self.peek() {
                Tok::Op("+") => Instr::Add,
                Tok::Op("-") => Instr::Sub,
                _ => return Ok(()),
            };
            self.pos += 1;
            self.product()?;
            self.code.push(op);
        }
    }
    fn product(&mut self) -> Result<(), RuleError> {
        self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Op("*") => Instr::Mul,
                Tok::Op("/") => Instr::Div,
                _ => return Ok(()),
            };
            self.pos += 1;
            self.unary()?;
            self.code.push(op);
        }
    }
    fn unary(&mut self) -> Result<(), RuleError> {
        if matches!(self.peek(), Tok::Op("-")) {
            self.pos += 1;
            self.unary()?;
            self.code.push(Instr::Neg);
            return Ok(());
        }
        self.atom()
    }
    fn expect(&mut self, want: &Tok, what: &str) -> Result<(), RuleError> {
        if self.peek() == want {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(format!(
                "expected {what}, found {}",
                Self::describe(self.peek())
            )))
        }
    }
    fn atom(&mut self) -> Result<(), RuleError> {
        let (at, len) = self.span();
        match self.peek().clone() {
            Tok::Num(v) => {
                self.pos += 1;
                self.code.push(Instr::Const(v));
                Ok(())
            }
            Tok::LParen => {
                self.pos += 1;
                self.or()?;
                self.expect(&Tok::RParen, "`)`")
            }
            Tok::Name(name) => {
                self.pos += 1;
                if self.peek() == &Tok::LParen {
                    return self.call(&name, at, len);
                }
                if ["and", "or", "not"].contains(&name.to_ascii_lowercase().as_str()) {
                    return Err(RuleError {
                        text: self.text.to_owned(),
                        at,
                        len,
                        message: format!("expected a value, found `{name}`"),
                    });
                }
                let slot = self.resolver.resolve(&name).map_err(|message| RuleError {
                    text: self.text.to_owned(),
                    at,
                    len,
                    message,
                })?;
                if !self.names.iter().any(|(n, _)| *n == name) {
                    self.names.push((name, slot));
                }
                self.code.push(Instr::Load(slot));
                Ok(())
            }
            other => Err(self.err(format!(
                "expected a value, found {}",
                Self::describe(&other)
            ))),
        }
    }
    fn call(&mut self, name: &str, at: usize, len: usize) -> Result<(), RuleError> {
        let lname = name.to_ascii_lowercase();
        let arity = match lname.as_str() {
            "crosses_above" | "crosses_below" | "min" | "max" => 2,
            "prev" | "abs" => 1,
            _ => {
                return Err(RuleError {
                    text: self.text.to_owned(),
                    at,
                    len,
                    message: format!(
                        "unknown function `{name}`; known: crosses_above, crosses_below, prev, abs, min, max"
                    ),
                });
            }
        };
        self.pos += 1; // (
        let args_start = self.code.len();
        let mut arg_code = Vec::new();
        for i in 0..arity {
            if i > 0 {
                self.expect(
                    &Tok::Comma,
                    &format!("`,` ({name} takes {arity} arguments)"),
                )?;
            }
            let before = self.code.len();
            self.or()?;
            arg_code.push(self.code[before..].to_vec());
        }
        self.expect(
            &Tok::RParen,
            &format!("`)` ({name} takes {arity} argument(s))"),
        )?;
        match lname.as_str() {
            "prev" => {
                self.code.push(Instr::Prev(self.states));
                self.states += 1;
            }
            "abs" => self.code.push(Instr::Abs),
            "min" => self.code.push(Instr::Min),
            "max" => self.code.push(Instr::Max),
            cross
                if arg_code
                    .iter()
                    .all(|a| matches!(a.as_slice(), [Instr::Load(_)])) =>
            {
                let slot = |a: &[Instr]| match a {
                    [Instr::Load(s)] => *s,
                    _ => 0,
                };
                self.code.truncate(args_start);
                self.code.push(Instr::Cross {
                    above: cross == "crosses_above",
                    a: slot(&arg_code[0]),
                    b: slot(&arg_code[1]),
                    state: self.states,
                });
                self.states += 1;
            }
            cross => {
                // a > b and prev(a <= b), or a < b and prev(a >= b): the arguments are
                // evaluated twice, which costs a few loads and keeps the machine tiny.
                let (now, before) = if cross == "crosses_above" {
                    (Instr::Gt, Instr::Le)
                } else {
                    (Instr::Lt, Instr::Ge)
                };
                self.code.truncate(args_start);
                for a in &arg_code {
                    self.code.extend_from_slice(a);
                }
                self.code.push(now);
                // The second copy keeps its own previous-bar slots for any `prev` inside.
                for a in &arg_code {
                    for ins in a {
                        self.code.push(match ins {
                            Instr::Prev(_) => {
                                self.states += 1;
                                Instr::Prev(self.states - 1)
                            }
                            other => *other,
                        });
                    }
                }
                self.code.push(before);
                self.code.push(Instr::Prev(self.states));
                self.states += 1;
                self.code.push(Instr::And);
            }
        }
        Ok(())
    }
}

/// A compiled rule: a short stack program over a series' value slots.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    name: String,
    /// The name of the signals its hits make, `rule.` and its name.
    signal: String,
    text: String,
    action: RuleAction,
    code: Vec<Instr>,
    states: u32,
    names: Vec<(String, u32)>,
}

fn truth(v: f64) -> bool {
    v != 0.0 && !v.is_nan()
}

/// Whether `va` is past `vb` now, and whether it is not (the state the next bar reads), in the
/// direction `above`.
#[inline]
fn crossing(above: bool, va: f64, vb: f64) -> (bool, bool) {
    if above {
        (va > vb, va <= vb)
    } else {
        (va < vb, va >= vb)
    }
}

/// A single crossing of columns `a` and `b` (both within `stride`) over the rows of a
/// block, `was` the state before the first: calls `hit(i)` where it crosses and returns
/// the state after the last row.
#[inline]
fn cross_rows<const ABOVE: bool>(
    rows: &[f64],
    stride: usize,
    a: usize,
    b: usize,
    mut was: bool,
    mut hit: impl FnMut(usize),
) -> bool {
    for (i, row) in rows.chunks_exact(stride).enumerate() {
        let (now, before) = crossing(ABOVE, row[a], row[b]);
        if now && was {
            hit(i);
        }
        was = before;
    }
    was
}

/// One fused crossing step: `a` crosses `b` now, given the previous bar's state, which is
/// updated.
#[inline]
fn cross(values: &[f64], state: &mut [f64], above: bool, a: u32, b_: u32, k: u32) -> bool {
    let load = |s: u32| values.get(s as usize).copied().unwrap_or(f64::NAN);
    let (now, before) = crossing(above, load(a), load(b_));
    let Some(p) = state.get_mut(k as usize) else {
        return false;
    };
    let was = truth(*p);
    *p = b(before);
    now && was
}

fn b(x: bool) -> f64 {
    if x { 1.0 } else { 0.0 }
}

impl Rule {
    /// Compiles `cfg`, resolving names through `resolver`.
    pub fn compile<R: Resolver>(cfg: &RuleConfig, resolver: &mut R) -> Result<Self, RuleError> {
        let text = cfg.when.as_str();
        let toks = lex(text)?;
        let mut p = Parser {
            text,
            toks,
            pos: 0,
            code: Vec::new(),
            states: 0,
            names: Vec::new(),
            resolver,
        };
        if p.peek() == &Tok::End {
            return Err(p.err("the rule is empty"));
        }
        p.or()?;
        if p.peek() != &Tok::End {
            return Err(p.err(format!(
                "expected an operator or the end of the rule, found {}",
                Parser::<R>::describe(p.peek())
            )));
        }
        let mut depth = 0usize;
        let mut max = 0usize;
        for i in &p.code {
            match i {
                Instr::Const(_) | Instr::Load(_) | Instr::Cross { .. } => depth += 1,
                Instr::Neg | Instr::Not | Instr::Abs | Instr::Prev(_) => {}
                _ => depth -= 1,
            }
            max = max.max(depth);
        }
        if max > MAX_DEPTH {
            return Err(RuleError {
                text: text.to_owned(),
                at: 0,
                len: text.len().max(1),
                message: format!(
                    "the rule nests too deeply (it needs {max} stack slots, at most {MAX_DEPTH})"
                ),
            });
        }
        Ok(Self {
            name: cfg.name.clone(),
            signal: format!("rule.{}", cfg.name),
            text: text.to_owned(),
            action: cfg.action,
            states: p.states,
            names: p.names,
            code: p.code,
        })
    }

    /// (above, a, b, state slot) when the rule is one crossing of two values, which runs
    /// without the stack machine.
    #[inline]
    fn single_cross(&self) -> Option<(bool, u32, u32, u32)> {
        match self.code[..] {
            [Instr::Cross { above, a, b, state }] => Some((above, a, b, state)),
            _ => None,
        }
    }

    /// The rule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name of the signals its hits make: `rule.` and its name.
    pub fn signal_name(&self) -> &str {
        &self.signal
    }

    /// The rule's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// What a hit means.
    pub fn action(&self) -> RuleAction {
        self.action
    }

    /// How many previous-bar values the rule keeps per series.
    pub fn state_len(&self) -> usize {
        self.states as usize
    }

    /// The names the rule reads and their slots, in order of first use.
    pub fn names(&self) -> &[(String, u32)] {
        &self.names
    }

    /// Evaluates on one bar's `values`; `state` (of [`state_len`](Self::state_len), initially
    /// NaN) carries the previous bar's values and is updated.
    #[inline]
    pub fn eval(&self, values: &[f64], state: &mut [f64]) -> bool {
        if let Some((above, a, slot_b, k)) = self.single_cross() {
            return cross(values, state, above, a, slot_b, k);
        }
        let mut stack = [0.0f64; MAX_DEPTH];
        let mut sp = 0usize;
        let load = |s: u32| values.get(s as usize).copied().unwrap_or(f64::NAN);
        for ins in &self.code {
            match *ins {
                Instr::Const(v) => {
                    stack[sp] = v;
                    sp += 1;
                }
                Instr::Load(s) => {
                    stack[sp] = load(s);
                    sp += 1;
                }
                Instr::Cross {
                    above,
                    a,
                    b: slot_b,
                    state: k,
                } => {
                    stack[sp] = b(cross(values, state, above, a, slot_b, k));
                    sp += 1;
                }
                Instr::Neg => stack[sp - 1] = -stack[sp - 1],
                Instr::Not => stack[sp - 1] = b(!truth(stack[sp - 1])),
                Instr::Abs => stack[sp - 1] = stack[sp - 1].abs(),
                Instr::Prev(s) => {
                    if let Some(p) = state.get_mut(s as usize) {
                        std::mem::swap(&mut stack[sp - 1], p);
                    }
                }
                bin => {
                    sp -= 1;
                    let r = stack[sp];
                    let l = &mut stack[sp - 1];
                    *l = match bin {
                        Instr::Add => *l + r,
                        Instr::Sub => *l - r,
                        Instr::Mul => *l * r,
                        Instr::Div => *l / r,
                        Instr::Lt => b(*l < r),
                        Instr::Le => b(*l <= r),
                        Instr::Gt => b(*l > r),
                        Instr::Ge => b(*l >= r),
                        Instr::Eq => b(*l == r),
                        Instr::Ne => b(*l != r && !l.is_nan() && !r.is_nan()),
                        Instr::And => b(truth(*l) && truth(r)),
                        Instr::Or => b(truth(*l) || truth(r)),
                        Instr::Min => l.min(r),
                        _ => l.max(r),
                    };
                }
            }
        }
        sp > 0 && truth(stack[sp - 1])
    }

    /// [`eval`](Self::eval) on each row of a block in turn (row `i` is
    /// `rows[i * stride..(i + 1) * stride]`), calling `hit(i)` for every row where the rule
    /// holds. A rule that is one crossing of two values runs as one tight loop.
    pub fn eval_rows(
        &self,
        rows: &[f64],
        stride: usize,
        state: &mut [f64],
        mut hit: impl FnMut(usize),
    ) {
        let stride = stride.max(1);
        if let Some((above, a, slot_b, k)) = self.single_cross()
            && let Some(p) = state.get_mut(k as usize)
        {
            let (a, slot_b) = (a as usize, slot_b as usize);
            let was = truth(*p);
            let was = if a.max(slot_b) >= stride {
                // Columns outside the rows read as missing: nothing crosses, and after any
                // row the state is "not past".
                was && rows.len() < stride
            } else if above {
                cross_rows::<true>(rows, stride, a, slot_b, was, hit)
            } else {
                cross_rows::<false>(rows, stride, a, slot_b, was, hit)
            };
            *p = b(was);
            return;
        }
        for (i, row) in rows.chunks_exact(stride).enumerate() {
            if self.eval(row, state) {
                hit(i);
            }
        }
    }

    /// The reason written on a hit: the rule and the values it read.
    pub fn explain(&self, values: &[f64]) -> String {
        // Written into one string: a hit's reason is made on every trade of a backtest.
        let mut out = String::with_capacity(24 + self.name.len() + self.text.len() * 2);
        out.push_str("rule ");
        out.push_str(&self.name);
        out.push_str(" held: ");
        out.push_str(&self.text);
        for (k, (n, s)) in self.names.iter().enumerate() {
            out.push_str(if k == 0 { " (" } else { ", " });
            out.push_str(n);
            out.push('=');
            write_value(
                &mut out,
                values.get(*s as usize).copied().unwrap_or(f64::NAN),
            );
        }
        if !self.names.is_empty() {
            out.push(')');
        }
        out
    }
}

/// Appends `v`: whole numbers without decimals, others to six decimals without trailing
/// zeros (as `{v:.0}` and `{v:.6}` write them, trimmed). Values below 10^9, the usual ones,
/// are rounded in integers: a rule hit explains two or three values, and float formatting
/// was most of a hit's cost.
fn write_value(out: &mut String, v: f64) {
    use std::fmt::Write as _;
    // Writing to a `String` cannot fail.
    if v.is_finite() && v == v.trunc() && v.abs() < 1e15 {
        if v.is_sign_negative() {
            out.push('-');
        }
        push_digits(out, v.abs() as u64, 1);
    } else if let Some(n) = millionths(v) {
        if v.is_sign_negative() {
            out.push('-');
        }
        let (whole, mut frac) = (n / 1_000_000, n % 1_000_000);
        push_digits(out, whole, 1);
        if frac != 0 {
            let mut digits = 6;
            while frac % 10 == 0 {
                frac /= 10;
                digits -= 1;
            }
            out.push('.');
            push_digits(out, frac, digits);
        }
    } else {
        let start = out.len();
        let _ = write!(out, "{v:.6}");
        if out[start..].contains('.') {
            let end = out.trim_end_matches('0').trim_end_matches('.').len();
            out.truncate(end.max(start));
        }
    }
}

/// Appends `n` in decimal, zero-padded to `width` digits.
fn push_digits(out: &mut String, mut n: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut at = buf.len();
    while n > 0 || buf.len() - at < width {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend(buf[at..].iter().map(|&d| char::from(d)));
}

/// `|v|` in millionths, rounded as `{v:.6}` rounds (the exact binary value, ties to even),
/// for `|v| < 10^9`; `None` otherwise (and for NaN).
fn millionths(v: f64) -> Option<u64> {
    let a = v.abs();
    if a.is_nan() || a >= 1e9 {
        return None;
    }
    let bits = a.to_bits();
    let biased = ((bits >> 52) & 0x7FF) as i32;
    let fraction = bits & ((1 << 52) - 1);
    // a = m × 2^e exactly.
    let (m, e) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | 1 << 52, biased - 1075)
    };
    let p = u128::from(m) * 1_000_000;
    if e >= 0 {
        return u64::try_from(p << e).ok();
    }
    let s = e.unsigned_abs();
    if s > 100 {
        // p < 2^73: below a quarter of a millionth.
        return Some(0);
    }
    let (q, rem, half) = (p >> s, p & ((1 << s) - 1), 1u128 << (s - 1));
    let up = rem > half || (rem == half && q & 1 == 1);
    u64::try_from(q + u128::from(up)).ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What `write_value` wrote with float formatting alone.
    fn formatted(v: f64) -> String {
        let mut out = if v.is_finite() && v == v.trunc() && v.abs() < 1e15 {
            format!("{v:.0}")
        } else {
            format!("{v:.6}")
        };
        if !(v.is_finite() && v == v.trunc() && v.abs() < 1e15) && out.contains('.') {
            out.truncate(out.trim_end_matches('0').trim_end_matches('.').len());
        }
        out
    }

    fn written(v: f64) -> String {
        let mut out = String::new();
        write_value(&mut out, v);
        out
    }

    #[test]
    fn values_are_written_as_float_formatting_writes_them() {
        let mut cases = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            1.5,
            2.5,
            0.1,
            0.3,
            -0.3,
            1e-7,
            -1e-7,
            5e-7,
            4.9e-7,
            1e-300,
            123.456_789_5,
            999_999_999.999_999_9,
            1e9,
            -1e9,
            1e15,
            1e16,
            1e300,
            f64::MIN_POSITIVE,
            f64::from_bits(1),
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.000_000_5,
            0.000_001_5,
            0.000_002_5,
        ];
        // Exact ties at the sixth decimal: odd multiples of 2^-7 (and 2^-8 … 2^-10).
        for k in 7..=10 {
            for j in (1..400).step_by(2) {
                cases.push(f64::from(j) / f64::from(1 << k));
                cases.push(-f64::from(j) / f64::from(1 << k) - 1000.0);
            }
        }
        for v in cases {
            assert_eq!(written(v), formatted(v), "{v:e}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn any_value_is_written_as_float_formatting_writes_it(bits in any::<u64>()) {
            let v = f64::from_bits(bits);
            prop_assert_eq!(written(v), formatted(v));
        }

        #[test]
        fn indicator_sized_values_are_written_as_float_formatting_writes_them(
            unit in -1.0f64..1.0,
            exp in -8i32..10,
        ) {
            let v = unit * 10f64.powi(exp);
            prop_assert_eq!(written(v), formatted(v));
        }
    }

    /// Resolves `a`..`e` to slots 0..4 and fails on anything else.
    struct Letters;
    impl Resolver for Letters {
        fn resolve(&mut self, name: &str) -> Result<u32, String> {
            match name {
                "a" => Ok(0),
                "b" => Ok(1),
                "c" => Ok(2),
                _ => Err(format!("unknown name `{name}`")),
            }
        }
    }

    fn rule(when: &str) -> Result<Rule, RuleError> {
        Rule::compile(
            &RuleConfig {
                name: "t".into(),
                when: when.into(),
                action: RuleAction::Buy,
            },
            &mut Letters,
        )
    }

    fn eval1(when: &str, values: &[f64]) -> bool {
        let r = rule(when).unwrap();
        let mut st = vec![f64::NAN; r.state_len()];
        r.eval(values, &mut st)
    }

    #[test]
    fn precedence_and_logic() {
        assert!(eval1("a + b * 2 == 7", &[1.0, 3.0, 0.0]));
        assert!(eval1("(a + b) * 2 == 8", &[1.0, 3.0, 0.0]));
        assert!(eval1("a < b and not b < a or c", &[1.0, 2.0, 0.0]));
        assert!(!eval1("a < b and c", &[1.0, 2.0, 0.0]));
        assert!(eval1("-a == 0 - 1 && !(c)", &[1.0, 2.0, 0.0]));
        assert!(eval1(
            "abs(a - b) >= 1 and min(a, b) == 1 and max(a, b) == 2",
            &[1.0, 2.0, 0.0]
        ));
        assert!(eval1("1.5e1 > 14 and .5 < 1", &[0.0; 3]));
        // NaN is false and compares false.
        assert!(!eval1("a", &[f64::NAN, 0.0, 0.0]));
        assert!(!eval1("a < 1", &[f64::NAN, 0.0, 0.0]));
        assert!(!eval1("a != 1", &[f64::NAN, 0.0, 0.0]));
        assert!(eval1("not a < 1", &[f64::NAN, 0.0, 0.0]));
    }

    #[test]
    fn crossings_and_prev_see_the_previous_bar() {
        let r = rule("crosses_above(a, b)").unwrap();
        let d = rule("crosses_below(a, b)").unwrap();
        let p = rule("prev(a) == 2").unwrap();
        let mut sr = vec![f64::NAN; r.state_len()];
        let mut sd = vec![f64::NAN; d.state_len()];
        let mut sp = vec![f64::NAN; p.state_len()];
        let series = [
            (1.0, f64::NAN), // b warming up
            (3.0, 2.0),      // above, but no previous comparison: no cross
            (1.0, 2.0),      // below: crosses below
            (2.0, 2.0),      // equal
            (2.5, 2.0),      // above after equal: crosses above
            (2.5, 2.0),      // still above
        ];
        let mut ups = Vec::new();
        let mut downs = Vec::new();
        let mut prevs = Vec::new();
        for (a, bv) in series {
            let v = [a, bv, 0.0];
            ups.push(r.eval(&v, &mut sr));
            downs.push(d.eval(&v, &mut sd));
            prevs.push(p.eval(&v, &mut sp));
        }
        assert_eq!(ups, [false, false, false, false, true, false]);
        assert_eq!(downs, [false, false, true, false, false, false]);
        assert_eq!(prevs, [false, false, false, false, true, false]);
    }

    #[test]
    fn the_fused_crossing_equals_the_general_one() {
        // Plain names compile to one fused step; `a + 0` takes the general path.
        let pairs = [
            ("crosses_above(a, b)", "crosses_above(a + 0, b)"),
            ("crosses_below(a, b)", "crosses_below(a, b * 1)"),
            (
                "crosses_above(prev(a), b)",
                "prev(a) > b and prev(prev(a) <= b)",
            ),
        ];
        let mut x = 7u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match x % 10 {
                0 => f64::NAN,
                k => (k % 4) as f64,
            }
        };
        let bars: Vec<[f64; 3]> = (0..500).map(|_| [next(), next(), 0.0]).collect();
        for (fused, general) in pairs {
            let (f, g) = (rule(fused).unwrap(), rule(general).unwrap());
            let (mut sf, mut sg) = (vec![f64::NAN; f.state_len()], vec![f64::NAN; g.state_len()]);
            let mut hits = 0;
            for v in &bars {
                let (x, y) = (f.eval(v, &mut sf), g.eval(v, &mut sg));
                assert_eq!(x, y, "{fused} vs {general} on {v:?}");
                hits += usize::from(x);
            }
            assert!(hits > 20, "{fused}: {hits}");
        }
    }

    #[test]
    fn errors_point_into_the_text() {
        let e = rule("a < 30 and d > b").unwrap_err();
        assert_eq!((e.at, e.len), (11, 1));
        let shown = e.to_string();
        assert!(shown.contains("column 12: unknown name `d`"), "{shown}");
        assert!(
            shown.ends_with("\n  a < 30 and d > b\n             ^"),
            "{shown}"
        );
        for (bad, want) in [
            ("", "empty"),
            ("a <", "expected a value, found the end"),
            ("a = 1", "did you mean `==`"),
            ("a < b < c", "do not chain"),
            ("(a < b", "expected `)`"),
            ("a b", "expected an operator"),
            ("foo(a)", "unknown function `foo`"),
            ("crosses_above(a)", "takes 2 arguments"),
            ("a # b", "unexpected character `#`"),
            ("a and and b", "expected a value, found `and`"),
            ("1.2.3", "is not a number"),
        ] {
            let e = rule(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad:?}: {e}");
        }
    }

    #[test]
    fn explanation_lists_the_values_read() {
        let r = rule("a < 30 and b > a").unwrap();
        assert_eq!(
            r.explain(&[25.5, 40.0, 0.0]),
            "rule t held: a < 30 and b > a (a=25.5, b=40)"
        );
    }
}
