"""What a trainee's cell can read in the sandbox (techday.grading.sandbox.sandbox_command): the course's public
folders are bound beside the package, and nothing of an nbgrader course root may come with them."""

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from techday.grading import sandbox
from techday.grading.sandbox import Limits
from tests.grading.conftest import run_sandboxed

pytestmark = [pytest.mark.grading]

LIST = """\
import json, os
seen = []
for top in ("/opt/techday/course", "/opt/techday/benchmarks"):
    for folder, dirs, files in os.walk(top):
        seen += [os.path.relpath(os.path.join(folder, f), "/opt/techday") for f in files]
print(json.dumps(sorted(seen)))
"""


def test_a_course_root_in_a_public_folder_stays_out_of_the_sandbox(tmp_path, monkeypatch, request):
    """Wrong answer caught: the course's public folder ``course/`` bound whole into every sandbox where it is also the
    nbgrader course root (``TECHDAY_BUILD`` set to the checkout makes ``<checkout>/course`` the root, beside the
    syllabus): every cell read the solutions and hidden tests (``source/``), every other trainee's hand-in
    (``submitted/``), their grades (``gradebook.db``, ``autograded/``, ``feedback/``)."""
    # readable to the sandbox's host user (the host's nobody, where root grades), as a checkout is: not in tmp_path
    checkout = Path(tempfile.mkdtemp(prefix="techday-checkout-"))
    checkout.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(checkout, ignore_errors=True))
    course = checkout / "course"
    for path, text in {"syllabus.toml": "[course]\n", "notes/00.md": "notes\n", "scripts/pretrain.py": "# script\n",
                       "source/lab/lab.ipynb": "SOLUTION", "release/lab/lab.ipynb": "release",
                       "submitted/other-trainee/lab/lab.ipynb": "ANSWER", "autograded/other-trainee/lab/lab.ipynb": "x",
                       "feedback/other-trainee/lab/lab.html": "x", "gradebook.db": "GRADES",
                       "nbgrader_config.py": "c = get_config()\n", ".jupyter/labconfig/page_config.json": "{}"}.items():
        (course / path).parent.mkdir(parents=True, exist_ok=True)
        (course / path).write_text(text)
    (course / "answers").symlink_to(course / "source")  # a link in it: never bound (bwrap would bind its target)
    (course / "private.toml").write_text("instructor only")
    (course / "private.toml").chmod(0o600)  # not everyone's to read: stays out, and the notebook still runs
    (checkout / "benchmarks").mkdir()
    (checkout / "benchmarks" / "stream.py").write_text("# family\n")
    monkeypatch.setattr(sandbox, "public_root", lambda: checkout)
    result, report = run_sandboxed([LIST], tmp_path, Limits(cell_timeout_s=60, notebook_timeout_s=120))
    assert result is not None, report
    printed = "".join(o.get("text", "") for o in result["cells"][0]["outputs"])
    seen = json.loads(printed.strip().splitlines()[-1])
    print(seen)
    assert {"course/syllabus.toml", "course/notes/00.md", "course/scripts/pretrain.py",
            "benchmarks/stream.py"} <= set(seen), seen  # what labs read is still there
    leaked = [p for p in seen if p.split("/")[1] not in ("syllabus.toml", "notes", "scripts", "stream.py")]
    assert not leaked, leaked
