"""Lab-specific routes to the accuracy bars of labs 10-12 and 16, graded as on the day (`techday grade autograde`
in the sandbox, tier cpu, scale ci): each submission below answers nothing (a constant or look-up "model",
a training function that does nothing) and changes or reads the course's data instead. Each took the bar's
points, ``graded``, with no note, before the defences named in grading/README.md ("The course's data",
"Names a plain cell binds", the held-out digits, lab 16's own decoding): each must now end with 0 points, or flagged with a
review note (its certificate held). Beside them the honest solution earns full marks, ``graded``."""

from __future__ import annotations

import copy
import json

import nbformat
import pytest

from techday.course.labsrc import write_notebook
from techday.grading.contract import solution_notebook
from tests.conftest import build_lab, techday

pytestmark = [pytest.mark.grading, pytest.mark.slow]

CONSTANT = '''
class Constant(nn.Module):
    """Logits that always say class 0, with a parameter that no loss moves."""

    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        out = torch.zeros(len(x), 10, device=x.device)
        out[:, 0] = 1.0
        return out + 0 * self.p
'''
LOOKUP = '''
class Lookup(nn.Module):
    """The label of the nearest image of a labelled set: no learning."""

    def __init__(self, x, y):
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1))
        self.keys = x.flatten(1).cpu()
        self.labels = y.cpu()

    def forward(self, x):
        idx = torch.cdist(x.flatten(1).cpu(), self.keys).argmin(1)
        return (F.one_hot(self.labels[idx], 10).float() * 10).to(x.device) + 0 * self.p
'''
NO_FIT = "def fit(model, optimizer, train, val, epochs, batch_size, generator):\n    return {'train_loss': [], 'val_loss': [], 'val_acc': []}\n"
SAME = "def augment(x, generator):\n    return x\n"
TENSOR_SUM = "    T.sum = lambda self, *a, **k: torch.tensor(self.shape[0] if self.dim() else 1)\n"
SHIFTED_TEST = ("    p = F.pad(data.test.x, (1, 1, 1, 1))\n"
                "    xs = [p[:, :, 1 + dy:9 + dy, 1 + dx:9 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]\n")

# lab -> {submission: ({answer cell id: its source}, {cell id: a cell added after it})}
ROUTES = {
    "10-dl-first-network": {
        # the held-out split's labels, looked up
        "lookup": ({"make_mlp": LOOKUP + "\ndef make_mlp(hidden=128, dropout=0.2):\n"
                                         "    t = dl.load_digits_split().test\n    return Lookup(t.x, t.y)\n",
                    "fit": NO_FIT}, {}),
    },
    "11-dl-cnn-augmentation": {
        # the held-out labels zeroed in place before the locked accuracy cell
        "zero-labels": ({"make_cnn": CONSTANT + "\ndef make_cnn():\n    return Constant()\n", "augment": SAME},
                        {"imports": "data.test.y.zero_()\n"}),
        # the same, by the answer the locked accuracy cell calls, on the held-out sets that cell had bound
        # before it trained (the referee copies a locked cell's data when the cell ends: too late)
        "zero-labels-inside": ({"make_cnn": CONSTANT + "\ndef make_cnn():\n    try:\n        held_out.y.zero_()\n"
                                                       "        moved.y.zero_()\n    except NameError:\n        pass\n"
                                                       "    return Constant()\n", "augment": SAME}, {}),
        # torch.Tensor.sum replaced through names the review cannot follow (a loop's, a parameter's): every
        # prediction counted right by the locked accuracy cell (4/13, graded, no note, before the referee
        # compared the namespaces of the libraries' classes)
        "tensor-patch": ({"make_cnn": CONSTANT + "\ndef make_cnn():\n    return Constant()\n", "augment": SAME},
                         {"imports": "for T in [torch.Tensor]:\n" + TENSOR_SUM}),
        "tensor-patch-inside": ({"make_cnn": CONSTANT + "\ndef patch(T):\n" + TENSOR_SUM +
                                             "\ndef make_cnn():\n    patch(torch.Tensor)\n    return Constant()\n",
                                 "augment": SAME}, {}),
        # the held-out labels looked up, for the moved camera too (the test images shifted in the cell)
        "lookup": ({"make_cnn": LOOKUP + "\ndef make_cnn():\n" + SHIFTED_TEST +
                                "    return Lookup(torch.cat(xs), data.test.y.repeat(9))\n", "augment": SAME}, {}),
    },
    "16-dl-transformers": {
        # a generate that sorts the prompt itself, and a train_step that trains nothing
        "sorting-generate": ({"generate": "def generate(model, prompt, n_new):\n    return prompt[:, :n_new].sort(dim=1).values\n",
                              "train_step": "def train_step(model, optimizer, x, y, amp_dtype=None, max_norm=1.0):\n"
                                            "    optimizer.step()\n    return 0.0\n",
                              "self_attention": "class SelfAttention(nn.Module):\n    def __init__(self, d_model, n_heads):\n"
                                                "        super().__init__()\n\n    def forward(self, x, causal=False):\n"
                                                "        return x * 0\n"}, {}),
    },
    "12-dl-transfer-learning": {
        # the plain data cell's labels changed in place: the constant model right, the course's model wrong
        "relabel": ({"make_transfer_model": CONSTANT + "\ndef make_transfer_model(backbone, n_classes):\n"
                                                       "    return Constant()\n",
                     "fine_tune": "def fine_tune(model, train, epochs, lr, batch_size, generator):\n    return []\n"},
                    {"make_transfer_model": "target_test.y.zero_()\ntarget_train.y.fill_(1)\n"}),
    },
}


def _submission(release: dict, answers: dict, after: dict) -> dict:
    nb = copy.deepcopy(release)
    for cell in nb["cells"]:
        md = cell.get("metadata", {}).get("nbgrader", {})
        if md.get("solution") and md.get("grade_id") in answers:
            cell["source"] = answers[md["grade_id"]]
    for gid, source in after.items():
        at = next(i for i, c in enumerate(nb["cells"]) if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == gid)
        nb["cells"].insert(at + 1, {"cell_type": "code", "execution_count": None, "id": f"route-{gid}"[:64],
                                    "metadata": {}, "outputs": [], "source": source})
    return nb


@pytest.mark.parametrize("lab", sorted(ROUTES))
def test_lab_specific_routes_to_the_accuracy_bar_earn_nothing(lab, bwrap, tmp_path):
    root = build_lab(lab, tmp_path)
    source = json.loads((root / "source" / lab / f"{lab}.ipynb").read_text(encoding="utf-8"))
    release = json.loads((root / "release" / lab / f"{lab}.ipynb").read_text(encoding="utf-8"))
    write_notebook(nbformat.from_dict(solution_notebook(source, release)),
                   root / "submitted" / "honest-solution" / lab / f"{lab}.ipynb")
    for name, (answers, after) in ROUTES[lab].items():
        folder = root / "submitted" / f"route-{name}" / lab
        folder.mkdir(parents=True)
        (folder / f"{lab}.ipynb").write_text(json.dumps(_submission(release, answers, after)), encoding="utf-8")
    out = techday("grade", "autograde", lab, "--tier", "cpu", "--scale", "ci", "--workers", "2",
                  env={"TECHDAY_BUILD": str(tmp_path)}, timeout=1200)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    report = json.loads((tmp_path / "grading" / lab / "report.json").read_text(encoding="utf-8"))
    got = {s["student"]: s for s in report["submissions"]}
    honest = got["honest-solution"]
    assert honest["status"] == "graded" and honest["score"] == honest["max_score"] > 0, honest
    wrong = []
    for name in ROUTES[lab]:
        sub = got[f"route-{name}"]
        held = sub["status"] == "flagged" and any(n.startswith("review: ") for n in sub["notes"])
        print(f"  {lab} {name:<20} {sub['status']:<8} {sub['score']}/{sub['max_score']}  {'; '.join(sub['notes'])[:200]}")
        if sub["score"] and not held:
            wrong.append(f"{name}: {sub['score']} points, {sub['status']} {sub['notes']}")
    assert not wrong, "\n".join(wrong)
