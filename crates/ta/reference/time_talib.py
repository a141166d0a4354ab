#!/usr/bin/env python3
"""Times TA-Lib on the issue's reference set, for side-by-side figures with atalaya-ta.

    python3 time_talib.py /tmp/peers-data/ohlcv_1m.csv [runs]

The set: RSI(14), EMA(20), MACD(12,26,9), BBANDS(20,2), ATR(14), each producing full output
arrays (as `cargo bench -p atalaya-ta --bench ta` does). Prints the median and minimum wall
time over the runs after one warm-up, and rows per second.
"""
import statistics
import sys
import time

import numpy as np
import talib


def main():
    path = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    data = np.genfromtxt(path, delimiter=",", skip_header=1, usecols=(1, 2, 3, 4, 5))
    o, h, l, c, v = (np.ascontiguousarray(data[:, i]) for i in range(5))

    def once():
        talib.RSI(c, 14)
        talib.EMA(c, 20)
        talib.MACD(c, 12, 26, 9)
        talib.BBANDS(c, 20, 2.0, 2.0, 0)
        talib.ATR(h, l, c, 14)

    once()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(f"ta-lib {talib.__version__} (C {talib.__ta_version__.decode() if isinstance(talib.__ta_version__, bytes) else talib.__ta_version__}): "
          f"{len(c)} rows, median {med * 1e3:.1f} ms, min {min(times) * 1e3:.1f} ms, {len(c) / med / 1e6:.1f} M rows/s")


if __name__ == "__main__":
    main()
