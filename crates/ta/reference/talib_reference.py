#!/usr/bin/env python3
"""Writes TA-Lib reference outputs for atalaya-ta's exactness test.

    python3 talib_reference.py OUT_DIR [OHLCV_CSV ...]

Needs `ta-lib==0.8.2` (C TA-Lib 0.8.1) and numpy; `.ci/run` installs them in a venv.
For each input series it writes OUT_DIR/<name>.json:
    {"name": ..., "talib": "0.8.1 ...", "inputs": {"open": [...], ...},
     "outputs": {"SMA_30": [...], "MACD_12_26_9.macd": [...], ...}}
NaN is written as null. Inputs are written too, so the Rust side compares on exactly the
numbers TA-Lib saw. Series: every CSV given (open_time_ms,open,high,low,close,volume), and a
synthetic series with a flat run, a zero-volume run and gaps between bars, generated here with a
fixed seed (plus the same series scaled by 1e-6, for tiny prices).
"""
import csv
import json
import math
import os
import random
import sys

import numpy as np
import talib


def synthetic(n=3000, seed=7, scale=1.0):
    rnd = random.Random(seed)
    o, h, l, c, v = [], [], [], [], []
    price = 100.0
    for i in range(n):
        if 1000 <= i < 1060:  # flat run
            op = cl = hi = lo = price
        else:
            gap = rnd.gauss(0, 0.3) if i % 50 == 0 else 0.0  # open gaps away from the last close
            op = price + gap
            cl = op * math.exp(rnd.gauss(0, 0.01))
            hi = max(op, cl) * (1 + abs(rnd.gauss(0, 0.004)))
            lo = min(op, cl) * (1 - abs(rnd.gauss(0, 0.004)))
            price = cl
        vol = 0.0 if 2000 <= i < 2100 else abs(rnd.gauss(1000, 300))
        o.append(op * scale); h.append(hi * scale); l.append(lo * scale); c.append(cl * scale); v.append(vol)
    return {k: np.array(x, dtype=float) for k, x in zip("open high low close volume".split(), (o, h, l, c, v))}


def ticks(n=20000, seed=11):
    """Integer-tick candles with small ranges, so ties and equalities happen (ENGULFING's 80,
    HARAMI's 80, gaps, marubozu), as TALIB-NOTES' candle verification used."""
    rnd = random.Random(seed)
    o, h, l, c, v = [], [], [], [], []
    price = 1000
    for i in range(n):
        op = price + (rnd.choice((-2, -1, 0, 0, 0, 1, 2)) if i % 7 == 0 else 0)
        cl = op + rnd.randint(-6, 6)
        hi = max(op, cl) + rnd.choice((0, 0, 0, 1, 2, 4))
        lo = min(op, cl) - rnd.choice((0, 0, 0, 1, 2, 4))
        price = cl
        o.append(op); h.append(hi); l.append(lo); c.append(cl); v.append(float(rnd.randint(0, 50)))
    return {k: np.array(x, dtype=float) for k, x in zip("open high low close volume".split(), (o, h, l, c, v))}


def gappy(n=30000, seed=5):
    """Integer candles rich in marubozus, dojis and gaps, so that KICKING, ABANDONEDBABY and
    3BLACKCROWS occur."""
    rnd = random.Random(seed)
    o, h, l, c, v = [], [], [], [], []
    price = 5000
    for _ in range(n):
        gap = rnd.choice((0, 0, -1, 1, -2, 2, -3, 3)) if rnd.random() < 0.8 else rnd.choice((-1, 1)) * rnd.randint(5, 25)
        op = price + gap
        kind = rnd.random()
        if kind < 0.4:  # marubozu
            cl = op + rnd.choice((-1, 1)) * rnd.randint(8, 20)
            hi, lo = max(op, cl) + rnd.choice((0, 0, 1)), min(op, cl) - rnd.choice((0, 0, 1))
        elif kind < 0.6:  # doji
            cl = op
            hi, lo = op + rnd.randint(0, 2), op - rnd.randint(0, 2)
        else:
            cl = op + rnd.randint(-6, 6)
            hi, lo = max(op, cl) + rnd.randint(0, 4), min(op, cl) - rnd.randint(0, 4)
        price = cl
        o.append(op); h.append(hi); l.append(lo); c.append(cl); v.append(float(rnd.randint(1, 50)))
    return {k: np.array(x, dtype=float) for k, x in zip("open high low close volume".split(), (o, h, l, c, v))}


CDL = ["CDLDOJI", "CDLDRAGONFLYDOJI", "CDLGRAVESTONEDOJI", "CDLHAMMER", "CDLHANGINGMAN",
       "CDLINVERTEDHAMMER", "CDLSHOOTINGSTAR", "CDLENGULFING", "CDLHARAMI", "CDLPIERCING",
       "CDLDARKCLOUDCOVER", "CDLMORNINGSTAR", "CDLEVENINGSTAR", "CDL3WHITESOLDIERS",
       "CDL3BLACKCROWS", "CDLMARUBOZU", "CDLSPINNINGTOP", "CDLKICKING", "CDLABANDONEDBABY",
       "CDL3INSIDE", "CDL3OUTSIDE"]


def load_csv(path):
    cols = {k: [] for k in "open high low close volume".split()}
    with open(path) as f:
        for row in csv.reader(f):
            if not row or not row[0].strip().lstrip("-").isdigit():
                continue
            for k, x in zip(("open", "high", "low", "close", "volume"), row[1:6]):
                cols[k].append(float(x))
    return {k: np.array(x, dtype=float) for k, x in cols.items()}


def outputs(s):
    o, h, l, c, v = s["open"], s["high"], s["low"], s["close"], s["volume"]
    out = {}

    def put(name, value):
        if isinstance(value, tuple):
            raise TypeError(name)
        out[name] = value

    for p in (2, 14, 30):
        put(f"SMA_{p}", talib.SMA(c, p))
        put(f"EMA_{p}", talib.EMA(c, p))
        put(f"WMA_{p}", talib.WMA(c, p))
        put(f"DEMA_{p}", talib.DEMA(c, p))
        put(f"TEMA_{p}", talib.TEMA(c, p))
        put(f"TRIMA_{p}", talib.TRIMA(c, p))
        put(f"KAMA_{p}", talib.KAMA(c, p))
    for p in (2, 14, 30):
        put(f"RSI_{p}", talib.RSI(c, p))
        put(f"CMO_{p}", talib.CMO(c, p))
        put(f"MOM_{p}", talib.MOM(c, p))
        put(f"ROC_{p}", talib.ROC(c, p))
        put(f"ATR_{p}", talib.ATR(h, l, c, p))
        put(f"NATR_{p}", talib.NATR(h, l, c, p))
        put(f"STDDEV_{p}", talib.STDDEV(c, p, 1.0))
        put(f"WILLR_{p}", talib.WILLR(h, l, c, p))
        put(f"CCI_{p}", talib.CCI(h, l, c, p))
        put(f"MFI_{p}", talib.MFI(h, l, c, v, p))
        put(f"PLUS_DI_{p}", talib.PLUS_DI(h, l, c, p))
        put(f"MINUS_DI_{p}", talib.MINUS_DI(h, l, c, p))
        put(f"DX_{p}", talib.DX(h, l, c, p))
        put(f"ADX_{p}", talib.ADX(h, l, c, p))
        put(f"ADXR_{p}", talib.ADXR(h, l, c, p))
        put(f"AROONOSC_{p}", talib.AROONOSC(h, l, p))
        put(f"LINEARREG_SLOPE_{p}", talib.LINEARREG_SLOPE(c, p))
        down, up = talib.AROON(h, l, p)
        put(f"AROON_{p}.down", down)
        put(f"AROON_{p}.up", up)
    put("T3_5_0.7", talib.T3(c, 5, 0.7))
    put("T3_10_0.5", talib.T3(c, 10, 0.5))
    put("TRANGE", talib.TRANGE(h, l, c))
    put("OBV", talib.OBV(c, v))
    put("AD", talib.AD(h, l, c, v))
    put("ADOSC_3_10", talib.ADOSC(h, l, c, v, 3, 10))
    put("SAR_0.02_0.2", talib.SAR(h, l, 0.02, 0.2))
    for (f_, s_, g) in ((12, 26, 9), (5, 35, 5)):
        m, sig, hist = talib.MACD(c, f_, s_, g)
        put(f"MACD_{f_}_{s_}_{g}.macd", m)
        put(f"MACD_{f_}_{s_}_{g}.signal", sig)
        put(f"MACD_{f_}_{s_}_{g}.hist", hist)
    for (p, k) in ((20, 2.0), (5, 1.5)):
        up, mid, lo = talib.BBANDS(c, p, k, k, 0)
        put(f"BBANDS_{p}_{k}.upper", up)
        put(f"BBANDS_{p}_{k}.middle", mid)
        put(f"BBANDS_{p}_{k}.lower", lo)
    put("PPO_12_26", talib.PPO(c, 12, 26, 1))
    for name in CDL:
        put(name, getattr(talib, name)(o, h, l, c).astype(float))
    k, d = talib.STOCH(h, l, c, 5, 3, 0, 3, 0)
    put("STOCH_5_3_3.k", k)
    put("STOCH_5_3_3.d", d)
    k, d = talib.STOCHF(h, l, c, 5, 3, 0)
    put("STOCHF_5_3.k", k)
    put("STOCHF_5_3.d", d)
    k, d = talib.STOCHRSI(c, 14, 5, 3, 0)
    put("STOCHRSI_14_5_3.k", k)
    put("STOCHRSI_14_5_3.d", d)
    return out


def clean(a):
    return [None if (x is None or (isinstance(x, float) and math.isnan(x))) else float(x) for x in a]


def write(out_dir, name, s):
    doc = {
        "name": name,
        "talib": talib.__ta_version__.decode() if isinstance(talib.__ta_version__, bytes) else str(talib.__ta_version__),
        "inputs": {k: clean(v) for k, v in s.items()},
        "outputs": {k: clean(v) for k, v in outputs(s).items()},
    }
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(doc, f)


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    write(out_dir, "synthetic", synthetic())
    write(out_dir, "synthetic_tiny", synthetic(scale=1e-6))
    write(out_dir, "ticks", ticks())
    write(out_dir, "gappy", gappy())
    for path in sys.argv[2:]:
        name = os.path.splitext(os.path.basename(path))[0]
        write(out_dir, name, load_csv(path))
    print(f"talib reference written to {out_dir}")


if __name__ == "__main__":
    main()
