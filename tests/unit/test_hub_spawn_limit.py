"""The spawn limit's settings as JupyterHub receives them, on one server (techday.hub.config.configure) and
in the chart (docker/z2jh-values.yaml's extraConfig run the way z2jh runs it). The real hub's page past
the limit: tests/hub/test_spawn_limit.py.

Each test names the wrong behaviour it catches.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("jupyterhub", reason='JupyterHub is in the hub extra (python -m pip install -e ".[hub]")')

from traitlets.config import Config  # noqa: E402

from techday.hub.config import HubSettings, configure  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = str(ROOT / "techday" / "hub" / "templates")


def hub_app(c: Config):
    from jupyterhub.app import JupyterHub

    return JupyterHub(config=c)


def test_one_server_hub_limits_spawns_and_shows_the_waiting_page(tmp_path, monkeypatch):
    """Caught: 60 spawns at once on a server that holds at most 56 trainees (no limit at all), under a
    comment promising a queue; and JupyterHub's default retry suggestion of 30 to 60 s, two container
    starts too long."""
    for key in ("TECHDAY_SPAWN_LIMIT",):
        monkeypatch.delenv(key, raising=False)
    c = Config()
    configure(c, HubSettings.from_env(course_id="techday", users_file=tmp_path / "users.csv", state_dir=tmp_path))
    app = hub_app(c)
    assert app.concurrent_spawn_limit == 20
    assert app.tornado_settings["spawn_throttle_retry_range"] == (10, 30)
    assert app.template_paths[0] == TEMPLATES, app.template_paths
    assert "announcement_login" in app.template_vars and app.template_vars["techday_spawn_retry"] == (10, 30)
    ko, en = app.template_vars["techday_spawn_wait"]
    assert "다시 시도" in ko and "asks again by itself in 10 to 30 seconds" in en
    monkeypatch.setenv("TECHDAY_SPAWN_LIMIT", "7")
    assert HubSettings.from_env(course_id="x", users_file=tmp_path / "u.csv").spawn_limit == 7


@pytest.mark.parametrize("templated", [True, False], ids=["with-templateVars", "without"])
def test_the_charts_hub_gets_the_same_page(templated):
    """Caught: the chart's comment said spawns queue, and its hub had no page in Korean (the chart's hub
    runs the chart's config, not configure()). The snippet must add to what the chart sets, not replace
    the sign-in announcement."""
    yaml = pytest.importorskip("yaml", reason="PyYAML reads the values file")
    values = yaml.safe_load((ROOT / "docker" / "z2jh-values.yaml").read_text())
    c = Config()
    if templated:   # what the chart's jupyterhub_config.py does with hub.templateVars
        c.JupyterHub.template_vars = dict(values["hub"]["templateVars"])
    c.JupyterHub.concurrent_spawn_limit = values["hub"]["concurrentSpawnLimit"]
    for name, code in values["hub"]["extraConfig"].items():
        exec(compile(code, f"extraConfig.{name}", "exec"), {"c": c, "get_config": lambda: c})  # noqa: S102
    app = hub_app(c)
    assert app.concurrent_spawn_limit == 100
    assert app.template_paths[0] == TEMPLATES
    assert app.tornado_settings["spawn_throttle_retry_range"] == (20, 60)
    assert app.template_vars["techday_spawn_retry"] == (20, 60)
    assert ("announcement_login" in app.template_vars) == templated


@pytest.mark.parametrize("message, waits", [
    ("Too many users trying to log in right now. Try again in 20 seconds.", True),
    ("Active user limit exceeded. Try again in a few minutes.", False),
])
def test_the_page_asks_again_only_for_a_wave(message, waits):
    """Caught: the same "many people are starting, this page asks again" under JupyterHub's other 429, a
    full room (activeServerLimit): a wrong reason, and every refused browser reloading for nothing."""
    import jupyterhub
    from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader

    base = Path(jupyterhub.__file__).resolve().parents[0]
    default = next(p for p in [Path(jupyterhub.__file__).parents[3] / "share" / "jupyterhub" / "templates",
                               Path(__import__("sys").prefix) / "share" / "jupyterhub" / "templates",
                               base / "templates"] if (p / "error.html").is_file())
    env = Environment(loader=ChoiceLoader([PrefixLoader({"templates": FileSystemLoader([str(default)])}, "/"),
                                           FileSystemLoader([TEMPLATES, str(default)])]))
    html = env.get_template("error.html").render(
        status_code=429, status_message="Too Many Requests", message=message, static_url=lambda *a, **k: "",
        base_url="/hub/", techday_spawn_retry=(10, 30), techday_spawn_wait=["ko-line", "en-line"])
    assert message in html
    assert ("en-line" in html and "techdayRetry(10, 30)" in html) == waits, html[-1500:]
