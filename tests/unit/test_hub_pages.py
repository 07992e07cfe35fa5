"""The hub's pages in the room's language (techday.hub.pages): the overrides fit the installed JupyterHub,
an English room keeps JupyterHub's own pages, and a refused spawn's reason reaches the trainee's page."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("jupyterhub", reason="the hub extra is not installed (python -m pip install -e '.[hub]')")

from techday.hub import pages  # noqa: E402
from techday.hub.config import shown_to_trainee  # noqa: E402
from techday.i18n import _HANGUL  # noqa: E402


def test_every_override_names_only_blocks_the_installed_jupyterhub_has():
    """Caught: an upgrade that renames a block (login_container, h1_error, ...) leaves the override's block
    unused, and the page silently English again in a Korean room."""
    assert pages.override_problems() == []
    names = {p.name for p in pages.ROOM_TEMPLATES.glob("*.html")}
    assert {"page.html", "login.html", "home.html", "spawn.html", "spawn_pending.html", "stop_pending.html",
            "not_running.html", "404.html", "logout.html", "token.html"} <= names, names


def test_a_renamed_block_upstream_is_named(tmp_path):
    """The check finds a slip where there is one: JupyterHub's login.html with login_container renamed, and a
    page.html whose logo block is gone."""
    upstream = tmp_path / "templates"
    shutil.copytree(pages.upstream_templates(), upstream)
    login = upstream / "login.html"
    login.write_text(login.read_text().replace("login_container", "login_box"))
    page = upstream / "page.html"
    page.write_text(page.read_text().replace("{% block logo %}", "").replace("{% endblock logo %}", ""))
    problems = pages.override_problems(upstream=upstream)
    assert "room/login.html: block 'login_container' is not in JupyterHub's templates/login.html" in problems
    assert "room/page.html: block 'logo' is not in JupyterHub's templates/page.html" in problems
    # a block the override reaches only as self.<name>() counts too
    login.write_text(login.read_text().replace("username_input_attrs", "username_attrs"))
    assert ("room/login.html: block 'username_input_attrs' is not in JupyterHub's templates/login.html"
            in pages.override_problems(upstream=upstream))


class Config:
    """What room_pages touches of a traitlets config."""

    def __init__(self):
        from traitlets.config import Config as C

        self.c = C()
        self.c.JupyterHub.template_paths = ["/spawn-limit"]
        self.c.JupyterHub.template_vars = {"announcement_login": "both languages"}


def test_an_english_room_keeps_jupyterhubs_pages_and_a_korean_room_gets_its_own():
    """Caught: the room's pages forced on an English room (its pages no longer JupyterHub's), or a Korean
    room whose templates come after JupyterHub's own (never used)."""
    en = Config().c
    assert pages.room_pages(en, "en") == "en"
    assert en.JupyterHub.template_paths == ["/spawn-limit"] and "techday_ui" not in en.JupyterHub.template_vars
    ko = Config().c
    assert pages.room_pages(ko, "ko") == "ko"
    assert ko.JupyterHub.template_paths == [str(pages.ROOM_TEMPLATES), "/spawn-limit"]
    ui = ko.JupyterHub.template_vars["techday_ui"]
    assert ui["start_my_server"] == "내 서버 시작" and ui["login_errors"][pages.INVALID_LOGIN].startswith("아이디")
    assert ko.JupyterHub.template_vars["announcement_login"] == ui["announcement_login"]


def test_the_room_follows_techday_lang_else_the_syllabus(monkeypatch):
    """Caught: a hub that ignored TECHDAY_LANG (the image's build argument) and served English to a Korean room."""
    monkeypatch.setenv("TECHDAY_LANG", "ko")
    assert pages.hub_language() == "ko"
    from techday.hub.config import HubSettings

    assert HubSettings.from_env(course_id="x").lang == "ko"
    monkeypatch.delenv("TECHDAY_LANG")
    from techday.i18n import current_language

    assert pages.hub_language() == current_language()


def test_a_refused_spawn_carries_its_reason_to_the_trainees_page():
    """Caught: JupyterHub 5.5 turned the hook's RuntimeError into "Unhandled error starting server <name>",
    and the course's reason (no GPU free, the disk full) never reached the page."""
    from tornado import web

    def refuse(spawner):
        raise RuntimeError("GPU 1개가 모두 사용 중입니다 (100%)")

    with pytest.raises(web.HTTPError) as err:
        shown_to_trainee(refuse)(object())
    assert err.value.status_code == 500
    assert err.value.log_message % err.value.args == "GPU 1개가 모두 사용 중입니다 (100%)"
    assert err.value.jupyterhub_message == "GPU 1개가 모두 사용 중입니다 (100%)"
    assert shown_to_trainee(lambda spawner: None)(object()) is None


def test_both_hubs_take_the_rooms_language_from_the_images_build_argument(monkeypatch):
    """Caught: the images built Korean (docker/Dockerfile's TECHDAY_LANG) while compose's hub and the chart's
    hub had no TECHDAY_LANG at all, and served the syllabus' English; and a chart whose extraConfig never
    called room_pages."""
    import re

    from traitlets.config import Config as C

    from tests.conftest import ROOT

    yaml = pytest.importorskip("yaml", reason="PyYAML reads the compose and values files")
    built = re.search(r"^ARG TECHDAY_LANG=(\w+)$", (ROOT / "docker" / "Dockerfile").read_text(), re.M).group(1)
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())["services"]["hub"]["environment"]
    assert compose["TECHDAY_LANG"] == "${TECHDAY_LANG:-" + built + "}"
    values = yaml.safe_load((ROOT / "docker" / "z2jh-values.yaml").read_text())["hub"]
    assert values["extraEnv"]["TECHDAY_LANG"] == built
    monkeypatch.setenv("TECHDAY_LANG", values["extraEnv"]["TECHDAY_LANG"])
    c = C()
    c.JupyterHub.template_vars = dict(values["templateVars"])
    for name, code in sorted(values["extraConfig"].items()):   # z2jh runs them in the order of their names
        exec(compile(code, f"extraConfig.{name}", "exec"), {"c": c, "get_config": lambda: c})  # noqa: S102
    paths = c.JupyterHub.template_paths   # what the chart sets: added to JupyterHub's own
    assert str(pages.ROOM_TEMPLATES) in (paths if isinstance(paths, list) else paths.get_value([]))
    assert c.JupyterHub.template_vars["techday_ui"]["sign_in"] == pages.page_texts(built)["sign_in"]


def render(name: str, lang: str = "ko", **ns) -> str:
    """``name`` as JupyterHub 5.5 loads it (app.py: "templates/..." JupyterHub's own, then the paths in order)."""
    from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader

    up = str(pages.upstream_templates())
    env = Environment(autoescape=True, loader=ChoiceLoader([
        PrefixLoader({"templates": FileSystemLoader([up])}, "/"),
        FileSystemLoader([str(pages.ROOM_TEMPLATES), str(pages.ROOM_TEMPLATES.parent), up])]))

    class Spawner:
        options_form = None

    class User:
        name = json_escaped_name = "trainee-001"
        spawner = Spawner()

    base = dict(techday_ui=pages.page_texts(lang), user=User(), static_url=lambda *a, **k: "/static",
                base_url="/hub/", parsed_scopes=set(), services=[])
    return env.get_template(name).render(**{**base, **ns})


@pytest.mark.parametrize("name, ns, says", [
    ("stop_pending.html", {}, "서버를 중지하고 있습니다"),
    ("logout.html", {"user": None}, "로그아웃했습니다"),
    ("not_running.html", {"server_name": "", "spawn_url": "/x", "implicit_spawn_seconds": 0}, "서버를 시작할까요?"),
    ("not_running.html", {"server_name": "gpu", "spawn_url": "/x", "implicit_spawn_seconds": 5},
     "gpu 서버가 실행 중이 아닙니다. 자동으로 다시 시작합니다"),
    ("home.html", {"default_server": {"active": True}, "url": "/user/trainee-001/", "parsed_scopes": {"admin-ui"},
                   "services": [{"href": "/services/techday/", "name": "techday"}]}, "내 서버 중지"),
    ("spawn.html", {"for_user": None, "error_message": "no GPU", "url": "/hub/spawn/trainee-001",
                    "spawner_options_form": "<select name='profile'></select>"}, "오류: no GPU"),
    ("token.html", {"token_expires_in_options_html": '<option value="3600">1 Hour</option>', "api_tokens": [],
                    "oauth_clients": []}, '<option value="3600">1시간</option>'),
])
def test_the_pages_no_hub_test_reaches_render_in_korean(name, ns, says):
    """Caught: a page that does not render (a 500 instead of the page) or renders English, where the hub tests
    do not go (stopping, signed out, a named server, the admin's menu, a server restarted by itself, the chart's
    server options)."""
    import re

    html = render(name, **ns)
    flat = " ".join(re.sub(r"<script.*?</script>|<[^>]+>", " ", html, flags=re.S).split())
    assert says in flat or says in html, flat[:2000]
    if name == "home.html":
        assert ">관리<" in html and 'dropdown-item" href="/services/techday/">techday' in html


def test_both_hub_images_hold_the_page_templates():
    """Caught: the chart's hub image installed the package as a wheel, which holds only pyproject.toml's
    package-data (``hub/templates/*.html``): ``templates/room/`` was left behind, and the chart's Korean room
    got JupyterHub's English pages with no error anywhere."""
    import re
    import tomllib

    from tests.conftest import ROOT

    package = ROOT / "techday"
    shipped = set()
    for pattern in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["techday"]:
        shipped |= set(package.glob(pattern))
    templates = set((package / "hub" / "templates").rglob("*.html"))
    installs = re.findall(r"pip install [^\n]*--no-deps[^\n]*", (ROOT / "docker" / "Dockerfile").read_text())
    assert installs, "the Dockerfile installs the package somewhere"
    for line in installs:
        editable = re.search(r"\s-e\s", line)
        assert editable or templates <= shipped, (
            f"{line!r} installs a wheel without {sorted(str(p.relative_to(package)) for p in templates - shipped)}")


def test_the_charts_uid_look_up_refuses_on_the_trainees_page_in_both_languages(tmp_path):
    """Caught: the chart's ``KubeSpawner.uid`` (extraConfig ``techday-uids``) raised a plain RuntimeError, in
    English only, for an account the accounts file gives no uid: JupyterHub 5.5 showed "Unhandled error
    starting server <name>" and the reason stayed in the hub's log. It now refuses as the other spawn
    refusals do (``jupyterhub_message``, Korean and English); an account with a uid gets it."""
    from tornado import web
    from traitlets.config import Config as C

    from techday.hub.config import hash_password
    from tests.conftest import ROOT

    yaml = pytest.importorskip("yaml", reason="PyYAML reads the values file")
    users = tmp_path / "users.csv"
    users.write_text("username,role,password_hash,uid\n"
                     f"trainee-001,trainee,{hash_password('x', iterations=1000)},20002\n"
                     f"late,trainee,{hash_password('x', iterations=1000)},\n")
    code = yaml.safe_load((ROOT / "docker" / "z2jh-values.yaml").read_text())["hub"]["extraConfig"]["techday-uids"]
    code = code.replace("/srv/techday-users/users.csv", str(users))
    c = C()
    exec(compile(code, "extraConfig.techday-uids", "exec"), {"c": c, "get_config": lambda: c})  # noqa: S102

    class Spawner:
        def __init__(self, name):
            self.user = type("U", (), {"name": name})()

    assert c.KubeSpawner.uid(Spawner("trainee-001")) == 20002
    for name, english in (("late", "the accounts file gives late no uid"),
                          ("stranger", "stranger is not in the accounts file")):
        with pytest.raises(web.HTTPError) as err:
            c.KubeSpawner.uid(Spawner(name))
        said = err.value.jupyterhub_message
        assert english in said and _HANGUL.search(said) and "강사" in said, said
    users.unlink()   # a file that cannot be read (a bad edit keeps the last good accounts in use)
    with pytest.raises(web.HTTPError) as err:
        c.KubeSpawner.uid(Spawner("trainee-001"))
    assert "The hub cannot read its accounts file" in err.value.jupyterhub_message, err.value.jupyterhub_message
