#!/usr/bin/env python3
"""Financial PhraseBank (50%-agreement file) as labelled CSV, split as FinBERT was measured:
a random 80% to train a head on, the other 20% to evaluate it, plus the whole set.

    python3 docs/evaluation/phrasebank_split.py $D/sentiment_financial_phrasebank_v1_ccbyncsa3 OUT_DIR

Writes OUT_DIR/phrasebank_train.csv, phrasebank_test.csv and phrasebank_all.csv (header
`text,label`). The shuffle is seeded, so the split is the same on every machine. The set is
CC BY-NC-SA 3.0: a head trained on it is for measurement only and is never shipped.
"""
import csv
import os
import random
import sys

src, out = sys.argv[1], sys.argv[2]
with open(os.path.join(src, "Sentences_50Agree.txt"), encoding="latin-1") as f:
    rows = [line.rstrip("\r\n").rsplit("@", 1) for line in f if "@" in line]
assert len(rows) == 4846, len(rows)
order = list(range(len(rows)))
random.Random(20191).shuffle(order)
cut = int(len(rows) * 0.8)
os.makedirs(out, exist_ok=True)
for name, idx in [("train", order[:cut]), ("test", order[cut:]), ("all", range(len(rows)))]:
    with open(os.path.join(out, f"phrasebank_{name}.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in idx:
            w.writerow(rows[i])
print(f"{cut} train, {len(rows) - cut} test, {len(rows)} all in {out}")
