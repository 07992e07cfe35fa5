"""Make the pre-trained backbone that lab 12 (transfer learning) loads: techday/data/digits_backbone.pt.

The course pre-trains it itself, on the source task of lab 12: the clean 8x8 digit scans of the
training split (scikit-learn's bundled digits, 10 classes), with the augmentation of lab 11 (random
one-pixel shifts, Gaussian noise). The lab then fine-tunes a new head on a few labelled images of the
target task (the same objects through another camera: shifted and noisier), using the validation and
test splits only, so the checkpoint has never seen an image the lab evaluates on.

Deterministic: fixed seed, one CPU thread. About 10 seconds on one core. The file is small (about 25 KB)
and is committed, so the lab starts from it at once, as it would from published weights.

    python course/scripts/pretrain_backbone.py [--out PATH] [--epochs N] [--seed S]
"""

from __future__ import annotations

import argparse
import hashlib
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
    data = dl.load_digits_split()
    backbone, head = dl.pretrain_backbone(data.train, n_classes=10, epochs=args.epochs, seed=args.seed,
                                          width=args.width)
    _, source_acc = dl.evaluate(torch.nn.Sequential(backbone, head), data.val)
    meta = {
        "source_task": "sklearn digits 8x8, 10 classes, training split of load_digits_split(seed=0)",
        "augmentation": "random_shift(max_shift=1) + gaussian_noise(std=0.05)",
        "epochs": args.epochs, "seed": args.seed, "width": args.width,
        "source_val_accuracy": round(source_acc, 4),
        "torch": str(torch.__version__),
        "script": "course/scripts/pretrain_backbone.py",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": backbone.state_dict(), "width": args.width, "meta": meta}, args.out)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()[:16]
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes, sha256 {digest}...): "
          f"source validation accuracy {source_acc:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
