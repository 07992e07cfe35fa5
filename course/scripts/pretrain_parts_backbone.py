"""Make the parts backbone that lab 17 (the track's assessment) adapts: techday/data/parts_backbone.pt.

The course pre-trains it itself on its source task: 12,000 generated photographs of plates
(``techday.parts.make_parts``, product "plate": ok, scratch, dent), with flips, Adam and a one-cycle
schedule. The assessment then adapts it to a product it has never seen, flanges from another camera
line (``make_parts(..., product="flange")``), from 30 labelled photographs per class: the transfer a
factory makes when a new part goes on the line.

Deterministic: fixed seeds, one CPU thread. About a minute on one core. The file is small (about
100 KB) and is committed, so the lab starts from it at once, as it would from published weights.

    python course/scripts/pretrain_parts_backbone.py [--out PATH] [--epochs N] [--n N] [--seed S]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from techday import dl


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=dl.PARTS_BACKBONE_PATH)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--n", type=int, default=12_000, help="plates to pre-train on")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=16)
    args = ap.parse_args(argv)

    torch.set_num_threads(1)  # one thread: the same floating-point sums, run after run
    backbone, _, record = dl.pretrain_parts_backbone(n=args.n, epochs=args.epochs, seed=args.seed, width=args.width)
    meta = {
        "source_task": dl.PARTS_SOURCE_TASK.format(plates=f"{args.n:,}"),
        "augmentation": dl.PARTS_AUGMENTATION,
        "epochs": args.epochs, "seed": args.seed, "width": args.width,
        **record,
        "script": "course/scripts/pretrain_parts_backbone.py",
    }
    digest = dl.save_backbone(args.out, backbone, meta)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes, sha256 {digest}...): "
          f"source validation accuracy {record['source_val_accuracy']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
