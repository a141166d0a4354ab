//! A small price chart for alerts, as PNG: the recent bars as candles, the reference price,
//! the stop and the target as horizontal lines. No text (the message carries it) and no
//! dependency: an 8-colour palette image in stored (uncompressed) deflate blocks, which every
//! PNG reader accepts.

/// One bar to draw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChartBar {
    /// Open.
    pub open: f64,
    /// High.
    pub high: f64,
    /// Low.
    pub low: f64,
    /// Close.
    pub close: f64,
}

/// Horizontal levels to mark.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Levels {
    /// The opportunity's price (black).
    pub price: Option<f64>,
    /// Stop (red).
    pub stop: Option<f64>,
    /// Target (green).
    pub target: Option<f64>,
}

const W: usize = 640;
const H: usize = 320;
const PAD: usize = 12;

// Palette indices.
const BG: u8 = 0;
const GRID: u8 = 1;
const UP: u8 = 2;
const DOWN: u8 = 3;
const BLACK: u8 = 4;
const RED: u8 = 5;
const GREEN: u8 = 6;
const PALETTE: [[u8; 3]; 7] = [
    [255, 255, 255],
    [230, 230, 230],
    [38, 166, 154],
    [239, 83, 80],
    [33, 33, 33],
    [198, 40, 40],
    [46, 125, 50],
];

/// Renders `bars` (oldest first) and `levels` as a 640×320 PNG; `None` without bars or with
/// no finite price range.
pub fn render_png(bars: &[ChartBar], levels: Levels) -> Option<Vec<u8>> {
    let finite = |x: f64| x.is_finite() && x > 0.0;
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for b in bars {
        for v in [b.high, b.low] {
            if finite(v) {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
    }
    for v in [levels.price, levels.stop, levels.target]
        .into_iter()
        .flatten()
    {
        if finite(v) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if bars.is_empty() || hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return None;
    }
    let span = hi - lo;
    let (lo, hi) = (lo - span * 0.05, hi + span * 0.05);
    let mut px = vec![BG; W * H];
    let y_of = |v: f64| -> usize {
        let t = (hi - v) / (hi - lo);
        (PAD as f64 + t * (H - 2 * PAD) as f64)
            .round()
            .clamp(0.0, (H - 1) as f64) as usize
    };
    for k in 1..5 {
        let y = PAD + k * (H - 2 * PAD) / 5;
        px[y * W..(y + 1) * W].fill(GRID);
    }
    let slot = (W - 2 * PAD) as f64 / bars.len() as f64;
    let body = ((slot * 0.6).floor() as usize).clamp(1, 12);
    for (i, b) in bars.iter().enumerate() {
        if ![b.open, b.high, b.low, b.close].into_iter().all(finite) {
            continue;
        }
        let cx = (PAD as f64 + slot * (i as f64 + 0.5)) as usize;
        let colour = if b.close >= b.open { UP } else { DOWN };
        for y in y_of(b.high)..=y_of(b.low) {
            px[y * W + cx.min(W - 1)] = colour;
        }
        let (top, bottom) = (y_of(b.open.max(b.close)), y_of(b.open.min(b.close)));
        let left = cx.saturating_sub(body / 2);
        for y in top..=bottom {
            for x in left..(left + body).min(W) {
                px[y * W + x] = colour;
            }
        }
    }
    for (v, colour, dashed) in [
        (levels.stop, RED, true),
        (levels.target, GREEN, true),
        (levels.price, BLACK, false),
    ] {
        if let Some(v) = v.filter(|v| finite(*v)) {
            let y = y_of(v);
            for x in PAD..W - PAD {
                if !dashed || (x / 6) % 2 == 0 {
                    px[y * W + x] = colour;
                }
            }
        }
    }
    Some(encode(&px))
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A palette PNG of `px` (W×H indices), zlib with stored blocks.
fn encode(px: &[u8]) -> Vec<u8> {
    let mut raw = Vec::with_capacity((W + 1) * H);
    for row in px.chunks(W) {
        raw.push(0); // filter: none
        raw.extend_from_slice(row);
    }
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, b) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = u16::try_from(b.len()).unwrap_or(u16::MAX);
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(b);
    }
    let (mut a, mut bsum) = (1u32, 0u32);
    for &x in &raw {
        a = (a + u32::from(x)) % 65_521;
        bsum = (bsum + a) % 65_521;
    }
    z.extend_from_slice(&((bsum << 16) | a).to_be_bytes());
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&u32::try_from(W).unwrap_or(0).to_be_bytes());
    ihdr.extend_from_slice(&u32::try_from(H).unwrap_or(0).to_be_bytes());
    ihdr.extend_from_slice(&[8, 3, 0, 0, 0]); // 8-bit palette, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    let plte: Vec<u8> = PALETTE.iter().flatten().copied().collect();
    chunk(&mut out, b"PLTE", &plte);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_and_a_decodable_png() {
        // The CRC of "IEND" is the well-known AE426082.
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
        let bars: Vec<ChartBar> = (0..60)
            .map(|i| {
                let c = 100.0 + (f64::from(i) / 5.0).sin() * 3.0;
                ChartBar {
                    open: c - 0.5,
                    high: c + 1.0,
                    low: c - 1.0,
                    close: c + 0.3,
                }
            })
            .collect();
        let png = render_png(
            &bars,
            Levels {
                price: Some(100.3),
                stop: Some(97.0),
                target: Some(106.0),
            },
        )
        .unwrap();
        assert_eq!(&png[..8], &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(&png[png.len() - 8..png.len() - 4], b"IEND");
        // Every chunk's CRC is right.
        let mut at = 8;
        while at < png.len() {
            let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
            let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
            assert_eq!(crc32(&png[at + 4..at + 8 + len]), crc);
            at += 12 + len;
        }
        assert_eq!(at, png.len());
        assert!(render_png(&[], Levels::default()).is_none());
    }
}
