"""Make the pre-trained backbone that lab 12 (transfer learning) loads: techday/data/strokes_backbone.pt.

The course pre-trains it itself, on the source task of lab 12: 8,000 generated 8 x 8 images of pen
strokes in 40 shapes (``techday.dl.make_strokes``: no digit among them), with the augmentation of
lab 11 (random one-pixel shifts, Gaussian noise). The lab then trains a new head on a few labelled
images of a different domain, the digits through another camera (scikit-learn's bundled scans, shifted
and noisier), so the checkpoint has never seen a digit: the transfer is between two domains.

Deterministic: fixed seed, one CPU thread. About 15 seconds on one core. The file is small (about 25 KB)
and is committed, so the lab starts from it at once, as it would from published weights.

    python course/scripts/pretrain_backbone.py [--out PATH] [--epochs N] [--seed S]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from techday import dl


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=dl.BACKBONE_PATH)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=16)
    args = ap.parse_args(argv)

    torch.set_num_threads(1)  # one thread: the same floating-point sums, run after run
    classes = 40
    source = dl.make_strokes(8_000, seed=args.seed, classes=classes)
    backbone, head = dl.pretrain_backbone(source, n_classes=classes, epochs=args.epochs, seed=args.seed,
                                          width=args.width)
    _, source_acc = dl.evaluate(torch.nn.Sequential(backbone, head), dl.make_strokes(1_000, seed=args.seed + 1,
                                                                                     classes=classes))
    meta = {
        "source_task": dl.STROKES_SOURCE_TASK.format(shapes=classes, images=f"{len(source):,}", seed=args.seed),
        "augmentation": "random_shift(max_shift=1) + gaussian_noise(std=0.05)",
        "epochs": args.epochs, "seed": args.seed, "width": args.width,
        "source_val_accuracy": round(source_acc, 4),
        "script": "course/scripts/pretrain_backbone.py",
    }
    digest = dl.save_backbone(args.out, backbone, meta)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes, sha256 {digest}...): "
          f"source validation accuracy {source_acc:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
