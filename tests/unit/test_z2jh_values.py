"""docker/z2jh-values.yaml passes the Zero to JupyterHub chart's schema the way `helm install` checks it:
the chart's default values deep-merged with ours, then validated against values.schema.yaml."""

import copy
from pathlib import Path

import pytest

from tests.conftest import ROOT

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the Helm values")
jsonschema = pytest.importorskip("jsonschema", reason="jsonschema validates the merged values")



def _z2jh_reference():
    """``<root>/../shared/reference/z2jh``; in a git worktree, beside the main checkout's root as well."""
    roots = [ROOT]
    git = ROOT / ".git"
    if git.is_file():  # a worktree: "gitdir: <main>/.git/worktrees/<name>"
        gitdir = git.read_text().partition("gitdir:")[2].strip()
        roots += [p.parent for p in Path(gitdir).parents if p.name == ".git"]
    for root in roots:
        if (root.parent / "shared" / "reference" / "z2jh").is_dir():
            return root.parent / "shared" / "reference" / "z2jh"
    return ROOT.parent / "shared" / "reference" / "z2jh"


Z2JH = _z2jh_reference()
VALUES = ROOT / "docker" / "z2jh-values.yaml"


def helm_merge(defaults, ours):
    """Helm's coalescing: maps merge key by key, anything else (lists too) is replaced, null deletes."""
    out = copy.deepcopy(defaults)
    for key, value in ours.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = helm_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@pytest.fixture(scope="module")
def chart():
    if not (Z2JH / "values.yaml").is_file() or not (Z2JH / "values.schema.yaml").is_file():
        pytest.skip(f"the chart's reference values and schema are not here ({Z2JH}): cannot validate as Helm would")
    return (yaml.safe_load((Z2JH / "values.yaml").read_text()), yaml.safe_load((Z2JH / "values.schema.yaml").read_text()))


@pytest.fixture(scope="module")
def ours():
    return yaml.safe_load(VALUES.read_text())


def _errors(schema, values):
    validator = jsonschema.Draft7Validator(schema)
    return sorted(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(values))


def test_merge_follows_helm():
    merged = helm_merge({"a": {"b": 1, "c": [1, 2]}, "d": 1}, {"a": {"c": [3]}, "d": None, "e": 2})
    assert merged == {"a": {"b": 1, "c": [3]}, "e": 2}


def test_values_pass_the_chart_schema(chart, ours):
    defaults, schema = chart
    assert _errors(schema, defaults) == [], "the chart's own defaults should validate"
    errors = _errors(schema, helm_merge(defaults, ours))
    assert errors == [], "\n".join(errors)


def test_schema_catches_a_misspelt_key(chart, ours):
    """The check has teeth: a typo under a closed section is an error, as helm would report it."""
    defaults, schema = chart
    bad = helm_merge(ours, {"singleuser": {"memroy": {"limit": "12G"}}})
    assert any("memroy" in e for e in _errors(schema, helm_merge(defaults, bad)))


def test_profiles_gpu_mig_and_cpu(ours):
    profiles = {p["slug"]: p for p in ours["singleuser"]["profileList"]}
    assert set(profiles) == {"gpu", "mig", "cpu"}
    limits = lambda slug: profiles[slug]["kubespawner_override"].get("extra_resource_limits", {})  # noqa: E731
    # Besides the device, each repeats the pod's disk size (tests/unit/test_hub_disk.py).
    assert limits("gpu") == {"nvidia.com/gpu": "1", "ephemeral-storage": "5Gi"}
    assert limits("mig") == {"nvidia.com/mig-1g.10gb": "1", "ephemeral-storage": "5Gi"}
    assert limits("cpu") == {} and profiles["cpu"]["kubespawner_override"]["environment"]["TECHDAY_TIER"] == "cpu"
    assert sum(bool(p.get("default")) for p in profiles.values()) == 1


def test_a_300_person_morning(ours):
    assert ours["scheduling"]["userScheduler"]["enabled"] is True
    assert ours["scheduling"]["userPlaceholder"]["enabled"] is True and ours["scheduling"]["userPlaceholder"]["replicas"] >= 10
    assert ours["prePuller"]["hook"]["enabled"] and ours["prePuller"]["continuous"]["enabled"]
    assert ours["cull"]["enabled"] and 0 < ours["cull"]["timeout"] <= 2 * 3600
    assert ours["hub"]["activeServerLimit"] >= 300


def test_exchange_is_shared_and_shm_is_memory(ours):
    storage = ours["singleuser"]["storage"]
    volumes = {v["name"]: v for v in storage["extraVolumes"]}
    mounts = {m["mountPath"]: m["name"] for m in storage["extraVolumeMounts"]}
    exchange = ours["singleuser"]["extraEnv"]["TECHDAY_EXCHANGE"]
    assert "persistentVolumeClaim" in volumes[mounts[exchange]]
    assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
    # The claim the values name is the ReadWriteMany claim docker/k8s-techday.yaml creates.
    claim = volumes[mounts[exchange]]["persistentVolumeClaim"]["claimName"]
    manifests = [d for d in yaml.safe_load_all((ROOT / "docker" / "k8s-techday.yaml").read_text()) if d]
    pvc = [d for d in manifests if d["kind"] == "PersistentVolumeClaim" and d["metadata"]["name"] == claim]
    assert pvc and pvc[0]["spec"]["accessModes"] == ["ReadWriteMany"]


def test_roles_match_the_one_server_hub(ours):
    """Kubernetes and the one-server hub give the same nbgrader roles."""
    from techday.hub.config import roles

    course = ours["hub"]["config"]["PasswordListAuthenticator"]["course_id"]
    one_server = {r["name"]: r for r in roles(course)}
    for name, role in ours["hub"]["loadRoles"].items():
        assert sorted(role["scopes"]) == sorted(one_server[name]["scopes"]), name
