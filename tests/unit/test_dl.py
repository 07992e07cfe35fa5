"""techday.dl, the deep-learning track's shared helpers: data, transforms, seeds, loops, backbone."""

import random
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: the deep-learning helpers need it")

from torch import nn  # noqa: E402

from techday import dl  # noqa: E402

BATCH = torch.rand(12, 3, 5, 7)


@pytest.fixture(scope="module")
def digits():
    return dl.load_digits_split()


# ---- data --------------------------------------------------------------------------------------
def test_split_is_disjoint_complete_and_fixed(digits):
    idx = digits.indices
    sets = [set(idx[k].tolist()) for k in ("train", "val", "test")]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert set().union(*sets) == set(range(1797))
    again = dl.load_digits_split()
    assert all(np.array_equal(idx[k], again.indices[k]) for k in idx)
    assert torch.equal(digits.test.x, again.test.x) and digits.test.y is None and again.test.y is None
    assert torch.equal(dl.held_out_digits().x, digits.test.x)
    other = dl.load_digits_split(seed=1)
    assert not np.array_equal(idx["test"], other.indices["test"])


def test_split_is_stratified(digits):
    from sklearn.datasets import load_digits

    total = np.bincount(load_digits().target, minlength=10)
    for split, fraction in ((digits.train, 0.6), (digits.val, 0.2), (dl.held_out_digits(), 0.2)):
        counts = torch.bincount(split.y, minlength=10).numpy()
        assert np.all(np.abs(counts - fraction * total) <= 1.5), (counts, fraction * total)


def test_split_tensors_shapes_and_ranges(digits):
    assert tuple(digits.train.x.shape[1:]) == (1, 8, 8) and digits.train.x.dtype == torch.float32
    assert digits.train.y.dtype == torch.int64 and len(digits.train) == digits.train.x.shape[0]
    assert float(digits.train.x.min()) == 0.0 and float(digits.train.x.max()) == 1.0
    # The normalisation constants are the training split's statistics.
    assert abs(float(digits.train.x.mean()) - dl.DIGITS_MEAN) < 1e-3
    assert abs(float(digits.train.x.std()) - dl.DIGITS_STD) < 1e-3


def test_select_classes_and_few_shot(digits):
    upper = dl.select_classes(digits.train, [5, 6, 7, 8, 9])
    assert sorted(torch.unique(upper.y).tolist()) == [0, 1, 2, 3, 4]
    assert len(upper) == int((digits.train.y >= 5).sum())
    kept = dl.select_classes(digits.train, [3], relabel=False)
    assert torch.unique(kept.y).tolist() == [3]
    few = dl.few_shot(digits.val, per_class=4, seed=0)
    assert torch.bincount(few.y).tolist() == [4] * 10
    assert torch.equal(few.x, dl.few_shot(digits.val, per_class=4, seed=0).x)
    assert not torch.equal(few.x, dl.few_shot(digits.val, per_class=4, seed=1).x)
    with pytest.raises(ValueError, match="fewer than"):
        dl.few_shot(digits.val, per_class=1000)


# ---- transforms --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_transforms_keep_shape_and_dtype(dtype):
    x = BATCH.to(dtype)
    g = torch.Generator().manual_seed(0)
    for out in (dl.hflip(x), dl.random_hflip(x, 0.5, g), dl.shift(x, 1, -2), dl.random_shift(x, 2, g),
                dl.gaussian_noise(x, 0.1, g), dl.normalize(x), dl.Compose(dl.random_shift, dl.gaussian_noise)(x, g)):
        assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device


def test_flips_are_flips():
    x = BATCH
    assert torch.equal(dl.hflip(x), torch.from_numpy(x.numpy()[..., ::-1].copy()))
    assert torch.equal(dl.hflip(dl.hflip(x)), x)
    assert torch.equal(dl.random_hflip(x, p=1.0), dl.hflip(x))
    assert torch.equal(dl.random_hflip(x, p=0.0), x)
    out = dl.random_hflip(x, p=0.5, generator=torch.Generator().manual_seed(3))
    flipped = [bool(torch.equal(out[i], x[i].flip(-1))) for i in range(len(x))]
    assert all(flipped[i] or torch.equal(out[i], x[i]) for i in range(len(x)))
    assert 0 < sum(flipped) < len(x)


def test_shift_moves_content_and_fills_zeros():
    x = torch.arange(1, 17, dtype=torch.float32).reshape(1, 1, 4, 4)
    down_right = dl.shift(x, 1, 1)
    assert torch.equal(down_right[..., 1:, 1:], x[..., :-1, :-1])
    assert float(down_right[..., 0, :].abs().sum()) == 0 and float(down_right[..., :, 0].abs().sum()) == 0
    up_left = dl.shift(x, -1, -2)
    assert torch.equal(up_left[..., :-1, :-2], x[..., 1:, 2:])
    assert torch.equal(dl.shift(x, 0, 0), x)
    assert float(dl.shift(x, 4, 0).abs().sum()) == 0


def test_random_shift_is_a_per_image_shift_and_reproducible():
    x = torch.rand(40, 1, 6, 6) + 0.5
    out = dl.random_shift(x, 1, torch.Generator().manual_seed(0))
    seen = set()
    for i in range(len(x)):
        matches = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if torch.equal(dl.shift(x[i:i + 1], dy, dx)[0], out[i])]
        assert matches, f"image {i} is not a shift of its input"
        seen.add(matches[0])
    assert len(seen) >= 5
    assert torch.equal(out, dl.random_shift(x, 1, torch.Generator().manual_seed(0)))
    assert torch.equal(dl.random_shift(x, 0, torch.Generator().manual_seed(0)), x)


def test_noise_normalize_and_shifted_noisy(digits):
    x = torch.zeros(200, 1, 8, 8)
    noisy = dl.gaussian_noise(x, 0.2, torch.Generator().manual_seed(0))
    assert abs(float(noisy.std()) - 0.2) < 0.01 and abs(float(noisy.mean())) < 0.01
    z = dl.normalize(digits.train.x)
    assert abs(float(z.mean())) < 1e-2 and abs(float(z.std()) - 1) < 1e-2
    held = dl.held_out_digits()
    moved = dl.shifted_noisy(held)
    assert torch.equal(moved.y, held.y) and moved.x.shape == held.x.shape
    assert torch.equal(moved.x, dl.shifted_noisy(held).x), "a fixed, seeded perturbation"
    assert not torch.equal(moved.x, held.x)


# ---- seeds, devices, loops ---------------------------------------------------------------------
def test_seed_everything_reproduces_every_generator():
    def draw():
        g = dl.seed_everything(123)
        return random.random(), float(np.random.rand()), float(torch.rand(1)), float(torch.rand(1, generator=g))

    first, second = draw(), draw()
    assert first == second
    dl.seed_everything(124)
    assert float(torch.rand(1)) != first[2]


def test_device_follows_the_tier(monkeypatch):
    class FakeLab:
        def __init__(self, tier):
            self.tier = tier

    assert dl.device(FakeLab("cpu")) == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="cannot use CUDA"):
            dl.device(FakeLab("gpu"))
    monkeypatch.setenv("TECHDAY_TIER_RESOLVED", "cpu")
    assert dl.device() == torch.device("cpu")


def test_evaluate_uses_eval_mode_and_restores_it(digits):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10))
    model.train()
    first = dl.evaluate(model, digits.val)
    assert first == dl.evaluate(model, digits.val) and model.training
    model.eval()
    with torch.no_grad():
        logits = model(digits.val.x)
    assert abs(first[1] - float((logits.argmax(1) == digits.val.y).float().mean())) < 1e-6


def test_fit_trains_reproducibly_and_keeps_the_best_epoch(digits):
    def run():
        g = dl.seed_everything(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
        history = dl.fit(model, torch.optim.Adam(model.parameters(), lr=1e-2), digits.train, digits.val,
                         epochs=3, batch_size=128, transform=dl.Compose(dl.random_shift), generator=g,
                         keep_best=True)
        return model, history

    model, history = run()
    assert len(history["train_loss"]) == len(history["val_acc"]) == 3
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert dl.evaluate(model, digits.val)[1] == max(history["val_acc"])
    assert history["val_acc"][history["best_epoch"]] == max(history["val_acc"])
    assert history == run()[1], "the same seed gives the same run"


# ---- the course's pre-trained backbone ---------------------------------------------------------
def test_backbone_checkpoint_loads_and_is_documented():
    backbone, meta = dl.load_backbone()
    assert not backbone.training and backbone.out_features == 512
    assert tuple(backbone(torch.rand(3, 1, 8, 8)).shape) == (3, 512)
    assert meta["script"] == "course/scripts/pretrain_backbone.py" and meta["source_val_accuracy"] > 0.95
    assert "make_strokes" in meta["source_task"], "the committed backbone is trained on the stroke domain, not on digits"
    assert dl.BACKBONE_PATH.stat().st_size < 100_000, "keep the committed checkpoint small"
    assert sum(p.numel() for p in dl.make_backbone().parameters()) == sum(p.numel() for p in backbone.parameters())


def test_pretrain_script_writes_a_loadable_checkpoint(tmp_path):
    """course/scripts/pretrain_backbone.py, the way the committed checkpoint was made (one epoch here)."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = tmp_path / "backbone.pt"
    proc = subprocess.run([sys.executable, str(ROOT / "course" / "scripts" / "pretrain_backbone.py"), "--out", str(out),
                           "--epochs", "1"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "source validation accuracy" in proc.stdout
    backbone, meta = dl.load_backbone(out)
    assert meta["epochs"] == 1 and meta["seed"] == 0
    committed, _ = dl.load_backbone()
    assert backbone.state_dict().keys() == committed.state_dict().keys()


def test_parts_backbone_checkpoint_loads_and_is_documented():
    """Lab 17's shipped backbone. Caught: a checkpoint trained on flanges (the target) or barely trained,
    one call's adaptation leaking into the next copy, a file grown past what a repository should hold."""
    backbone, meta = dl.load_parts_backbone()
    assert not backbone.training and backbone.out_features == 64
    assert tuple(backbone(torch.rand(3, 1, 32, 32)).shape) == (3, 64)
    assert meta["script"] == "course/scripts/pretrain_parts_backbone.py" and meta["source_val_accuracy"] > 0.95
    assert "plates" in meta["source_task"] and "no flange" in meta["source_task"]
    assert dl.PARTS_BACKBONE_PATH.stat().st_size < 200_000, "keep the committed checkpoint small"
    with torch.no_grad():
        for p in backbone.parameters():
            p.zero_()
    fresh, _ = dl.load_parts_backbone()
    assert any(p.abs().sum() > 0 for p in fresh.parameters()), "each call gives its own copy"


def test_parts_pretrain_script_writes_a_loadable_checkpoint(tmp_path):
    """course/scripts/pretrain_parts_backbone.py, the way the committed checkpoint was made (small here)."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = tmp_path / "parts.pt"
    proc = subprocess.run([sys.executable, str(ROOT / "course" / "scripts" / "pretrain_parts_backbone.py"), "--out",
                           str(out), "--epochs", "1", "--n", "300"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "source validation accuracy" in proc.stdout
    backbone, meta = dl.load_parts_backbone(out)
    assert meta["epochs"] == 1 and "300 plates" in meta["source_task"]
    committed, _ = dl.load_parts_backbone()
    assert backbone.state_dict().keys() == committed.state_dict().keys()


def test_flips_keep_each_image_or_mirror_it():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 16, dtype=torch.float32).reshape(2, 1, 4, 4).repeat(8, 1, 1, 1)
    y = dl.flips(x, g)
    seen = set()
    for a, b in zip(x, y):
        match = [k for k, f in enumerate((a, a.flip(-1), a.flip(-2), a.flip(-1).flip(-2))) if torch.equal(b, f)]
        assert match, "each image is itself, mirrored, flipped, or both"
        seen.add(match[0])
    assert len(seen) > 1, "not every image gets the same draw"


def test_the_source_domain_is_strokes_not_digits():
    """Catches a "transfer" whose source is the target's own data (lab 12's backbone used to be trained on
    the training digits): the stroke images are deterministic per seed, cover their 40 shapes, and no
    digit scan is among them; the digits' nearest stroke image is far from each digit."""
    a, b = dl.make_strokes(400, seed=3), dl.make_strokes(400, seed=3)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y), "the same seed draws the same images"
    assert tuple(a.x.shape) == (400, 1, 8, 8) and a.x.dtype == torch.float32 and 0 <= a.x.min() and a.x.max() <= 1
    assert set(a.y.tolist()) == set(range(40))
    assert not torch.equal(dl.make_strokes(50, seed=4).x, dl.make_strokes(50, seed=5).x)
    digits = dl.load_digits_split().train.x[:200].flatten(1)
    nearest = torch.cdist(digits, a.x.flatten(1)).min(dim=1).values
    assert float(nearest.min()) > 0.5, "a stroke image equal (or nearly) to a digit scan"


def test_no_split_hands_out_the_labels_of_the_graders_held_out_digits(digits):
    """The accuracy bars of labs 10-12 measure on the held-out digits; a "model" that looked its input
    up among labelled held-out images passed lab 10's bar untrained (4 of 15 points, ``graded``).
    ``load_digits_split`` gives their images without labels, and no other seed or size of split holds
    one of them labelled. Wrong answers caught: labelled test images, held-out rows in another split's
    training or validation set."""
    assert digits.test.y is None and len(digits.test) == len(digits.indices["test"]) > 0
    held = set(digits.indices["test"].tolist())
    for kwargs in ({"seed": 1}, {"seed": 7, "test_fraction": 0.05}, {"val_fraction": 0.5, "test_fraction": 0.1}):
        other = dl.load_digits_split(**kwargs)
        assert other.test.y is None
        for name in ("train", "val"):
            rows = set(other.indices[name].tolist())
            assert not rows & held, (kwargs, name)
            assert len(getattr(other, name)) == len(rows)
    labelled = dl.held_out_digits()
    assert torch.equal(labelled.x, digits.test.x) and labelled.y.shape == (len(held),)
    assert len(digits.test.to("cpu")) == len(held)


def test_a_checkpoint_save_that_fails_keeps_the_committed_one(tmp_path, monkeypatch):
    # Wrong answer caught: torch.save straight onto techday/data/<backbone>.pt; a stop or a full disk
    # during the save (after minutes of pretraining) left the committed checkpoint cut off.
    import torch

    from techday import dl

    path = tmp_path / "strokes_backbone.pt"
    backbone = dl.make_backbone()
    digest = dl.save_backbone(path, backbone, {"seed": 1})
    before = path.read_bytes()
    real_save = torch.save

    def save_then_fail(obj, f, *a, **kw):
        real_save(obj, f, *a, **kw)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", save_then_fail)
    with pytest.raises(OSError):
        dl.save_backbone(path, backbone, {"seed": 2})
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [path.name]
    assert len(digest) == 16 and dl.load_backbone(path)[1]["seed"] == 1


def test_a_shipped_backbones_record_reads_in_the_runs_language(monkeypatch):
    """Lab 12 prints its backbone's ``meta``, lab 17 quotes its source task. Wrong answers caught: the record's words
    ("pen strokes 8x8, 40 shapes, ...; no digits", "flips (left-right, top-bottom)") in English in the Korean
    notebook (before this test); the numbers changed on the way; a pretraining script that writes words the
    display no longer recognises (its text is built from the same constants); and any translation in English."""
    from techday.i18n import _HANGUL
    from tests.unit.test_i18n_package_prints import is_prose

    for meta in (dl.load_backbone()[1], dl.load_parts_backbone()[1]):
        monkeypatch.setenv("TECHDAY_LANG", "en")
        assert dl.backbone_record(meta) == meta, "an English record is shown as it is stored"
        monkeypatch.setenv("TECHDAY_LANG", "ko")
        shown = dl.backbone_record(meta)
        assert shown.keys() == meta.keys()
        for key, value in shown.items():
            if isinstance(value, str) and is_prose(value):
                assert _HANGUL.search(value), f"{meta['script']}: {key} = {value!r} is English in a Korean run"
        assert shown["source_task"] != meta["source_task"]
        numbers = lambda text: sorted(re.findall(r"\d+(?:,\d{3})*", text))  # noqa: E731
        assert numbers(shown["source_task"]) == numbers(meta["source_task"]), (shown, meta)
    # What the scripts write for other sizes (the parts script's test writes 300 plates) is recognised too.
    written = dl.PARTS_SOURCE_TASK.format(plates=f"{300:,}")
    assert "300" in dl.backbone_record({"source_task": written})["source_task"] != written
    assert dl.backbone_record({"source_task": "a backbone made otherwise"}) == {"source_task": "a backbone made otherwise"}
