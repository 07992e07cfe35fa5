"""The hub's own pages in the room's language, on real hubs on 127.0.0.1: a Korean room (the hub's
TECHDAY_LANG=ko) reads the sign-in, home, token and spawn-pending pages and a 404 with no English label
left; an English room's pages are JupyterHub's own; a wrong password, a refused spawn and the spawn limit's
page are told in Korean. Bounded: three hubs with no course, one or two trainees each, a few dozen
requests; a spawn is held 6 s before it starts, another refused.

Each test names the wrong behaviour it catches.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from tests.hub.conftest import Person

pytestmark = [pytest.mark.hub]

HOLD_S = 6
# The first spawn waits a little (the spawn-pending page is read meanwhile) holding the room's one GPU;
# the GPU hand-out refuses the second at once, as it does on the day. A second Korean hub starts one
# server at a time (the spawn limit's page).
HELD = f"""
_techday_start = AccountSpawner.start
async def _held_start(self):
    import asyncio
    await asyncio.sleep({HOLD_S})
    return await _techday_start(self)
AccountSpawner.start = _held_start
"""

# What may stay in Latin letters on a Korean page: product names, units, the account's own name.
ALLOWED = {"JupyterHub", "Jupyter", "GPU", "CPU", "HTTP", "HTTPS", "API", "OAuth", "Tech", "Day", "trainee"}


class Visible(HTMLParser):
    """The text a reader sees: text nodes, button values, titles, alt texts and placeholders; not
    scripts, styles, <noscript> (the hub needs JavaScript) or the hidden error dialog (its words are
    set by the page's script, techday/hub/templates/room/page.html)."""

    SKIP = {"script", "style", "noscript"}

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.stack: list[tuple[str, bool]] = []

    def skipping(self) -> bool:
        return any(skip for _, skip in self.stack)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        skip = tag in self.SKIP or "modal" in (a.get("class") or "").split()
        if tag not in {"input", "img", "br", "meta", "link", "hr"}:
            self.stack.append((tag, skip))
        if self.skipping() or skip:
            return
        for name in ("title", "alt", "placeholder"):
            if a.get(name):
                self.parts.append(a[name])
        if tag == "input" and a.get("type") in ("submit", "button") and a.get("value"):
            self.parts.append(a["value"])

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        if not self.skipping() and data.strip():
            self.parts.append(data.strip())


def visible(html: str) -> str:
    parser = Visible()
    parser.feed(html)
    return " | ".join(parser.parts)


def english_left(html: str) -> list[str]:
    words = re.findall(r"[A-Za-z]+", re.sub(r"https?://\S+", "", visible(html)))
    return sorted({w for w in words if w not in ALLOWED})


def text(r) -> str:
    return r.content.decode("utf-8")   # the error page's Content-Type names no charset


NODE_CHECK = r"""
const listeners = [];
function Fake(url) { this.url = url; }
Fake.prototype.addEventListener = function (kind, f) { if (kind === "message") listeners.push(f); };
global.window = {EventSource: Fake};
eval(require("fs").readFileSync(0, "utf8"));
const source = new window.EventSource("/progress");
const got = [];
source.onmessage = function (e) { got.push(JSON.parse(e.data).message); };
for (const m of JSON.parse(process.argv[1])) listeners.forEach(f => f({data: JSON.stringify({message: m})}));
console.log(JSON.stringify(got));
"""


def progress_in_node(html: str) -> list[str]:
    """The spawn-pending page's progress words as its script puts them, run in Node (which the proxy needs
    anyway) against a stand-in EventSource: the messages JupyterHub's progress events send."""
    import json
    import shutil
    import subprocess

    script = next((s for s in re.findall(r"<script[^>]*>(.*?)</script>", html, re.S) if "window.EventSource =" in s),
                  None)
    assert script, "no progress translation on the spawn-pending page"
    sent = ["Server requested", "Spawn failed: GPU 1개가 모두 사용 중", "Server ready at /user/trainee-001/",
            "a spawner's own words"]
    out = subprocess.run([shutil.which("node"), "-e", NODE_CHECK, json.dumps(sent)], input=script,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def korean(hub_factory):
    return hub_factory(trainees=2, gpus=["0"], course=False, lang="ko", extra_config=HELD)


@pytest.fixture(scope="module")
def english(hub_factory):
    return hub_factory(trainees=1, gpus=[], course=False, lang="en")


def test_a_korean_room_reads_the_sign_in_home_token_and_404_pages_in_korean(korean):
    """Caught: the hub served its own pages in English whatever the room ("Sign in", "Username:", "Start My
    Server", "Request new API token", "404 : Not Found"): a Korean trainee's first screen of the day was English."""
    person = Person(korean, "trainee-001")
    page = person.s.get(f"{korean.url}/hub/login", timeout=30)
    assert page.status_code == 200
    assert english_left(text(page)) == [], visible(text(page))
    assert "로그인" in visible(text(page))
    assert person.login().status_code == 302
    home = person.s.get(f"{korean.url}/hub/home", timeout=30)
    assert home.status_code == 200 and english_left(text(home)) == [], visible(text(home))
    assert "내 서버 시작" in visible(text(home))
    token = person.s.get(f"{korean.url}/hub/token", timeout=30)
    assert token.status_code == 200 and english_left(text(token)) == [], visible(text(token))
    assert "새 API 토큰 요청" in visible(text(token)) and ">1시간<" in text(token)
    missing = person.s.get(f"{korean.url}/hub/no-such-page", timeout=30)
    assert missing.status_code == 404 and english_left(text(missing)) == [], visible(text(missing))
    assert "404" in visible(text(missing))


def test_a_wrong_password_is_told_in_korean(korean):
    """Caught: "Invalid username or password" in English under a Korean form."""
    r = Person(korean, "trainee-002", password="not-the-card").login()
    assert r.status_code == 403
    said = re.search(r'class="login_error">(.*?)</p>', text(r), re.S)
    assert said and "아이디 또는 비밀번호가 틀렸습니다" in said.group(1), visible(text(r))
    assert english_left(text(r)) == [], visible(text(r))


def test_the_spawn_pending_page_and_a_refused_spawn_speak_korean(korean):
    """Caught: "Your server is starting up" and "Event log" in English; and a refused spawn showed only
    JupyterHub's "500 : Internal Server Error / Unhandled error starting server trainee-001": the course's
    own reason (here: no GPU free) never reached the trainee at all."""
    person = Person(korean, "trainee-001")
    assert person.login().status_code == 302
    r = person.s.get(f"{korean.url}/hub/spawn/trainee-001", timeout=60, allow_redirects=False)
    assert r.status_code == 302 and "spawn-pending" in r.headers["Location"], (r.status_code, korean.log_tail())
    pending = person.s.get(f"{korean.url}{r.headers['Location']}", timeout=30)
    assert pending.status_code == 200 and "서버를 시작하고 있습니다" in visible(text(pending)), visible(text(pending))
    assert english_left(text(pending)) == [], visible(text(pending))
    assert progress_in_node(text(pending)) == [
        "서버 시작을 요청했습니다", "서버 시작 실패: GPU 1개가 모두 사용 중", "서버 준비 완료: /user/trainee-001/",
        "a spawner's own words"]
    other = Person(korean, "trainee-002")
    assert other.login().status_code == 302
    # The one GPU is the first trainee's: the second trainee's spawn is refused, as on the day.
    r = other.s.get(f"{korean.url}/hub/spawn/trainee-002", timeout=60, allow_redirects=False)
    page = visible(text(r))
    assert r.status_code >= 500, (r.status_code, page, korean.log_tail(20))
    assert "GPU 1개가 모두 사용 중" in page, f"the course's own reason is not on the page: {page}"
    assert "Unhandled error" not in page and "Internal Server Error" not in page, page
    assert english_left(text(r)) == [], page
    assert "홈 페이지" in page, f"no Korean way back to the home page: {page}"
    # The spawn-pending address after the failure: JupyterHub's "Spawn failed" page, in Korean, with the reason.
    r = other.s.get(f"{korean.url}/hub/spawn-pending/trainee-002", timeout=30, allow_redirects=False)
    page = visible(text(r))
    assert "서버 시작 실패" in page and "GPU 1개가 모두 사용 중" in page, (r.status_code, page)
    assert english_left(text(r)) == [], page


def test_past_the_spawn_limit_the_korean_page_drops_jupyterhubs_english(hub_factory):
    """Caught: past the spawn limit JupyterHub's English "Too many users trying to log in right now. Try again
    in N seconds." headed the Korean room's page, above the course's own wait line that says the same."""
    hub = hub_factory(trainees=2, gpus=[], course=False, lang="ko",
                      extra_config="c.JupyterHub.concurrent_spawn_limit = 1\n" + HELD)
    first, second = Person(hub, "trainee-001"), Person(hub, "trainee-002")
    assert first.login().status_code == 302 and second.login().status_code == 302
    first.s.get(f"{hub.url}/hub/spawn/trainee-001", timeout=60, allow_redirects=False)
    r = second.s.get(f"{hub.url}/hub/spawn/trainee-002", timeout=60, allow_redirects=False)
    page = visible(text(r))
    assert r.status_code == 429, (r.status_code, page)
    assert "429 : 요청이 너무 많음" in page and "서버를 시작하려는 사람이 많습니다" in page, page
    assert "Too many users" not in page and "Too Many Requests" not in page, page
    assert re.search(r"techdayRetry\(10, 30\)", text(r)), "the page still asks again by itself"


def test_an_english_room_keeps_jupyterhubs_own_pages(english):
    """Caught: translated pages forced on every room (or a page broken by an override); the English room
    sees JupyterHub's own words."""
    person = Person(english, "trainee-001")
    # the course's own announcement above the form is bilingual in every room: the rest is JupyterHub's
    login = text(person.s.get(f"{english.url}/hub/login", timeout=30))
    assert "documentElement.lang" not in login, "the room's templates are on an English room's pages"
    page = " | ".join(p for p in visible(login).split(" | ") if "Tech Day" not in p)
    assert "Sign in" in page and "Username:" in page and not re.search("[가-힣]", page), page
    assert person.login().status_code == 302
    home = visible(text(person.s.get(f"{english.url}/hub/home", timeout=30)))
    assert "Start" in home and "My Server" in home and not re.search("[가-힣]", home), home
    missing = person.s.get(f"{english.url}/hub/no-such-page", timeout=30)
    assert missing.status_code == 404 and "404 : Not Found" in visible(text(missing)), visible(text(missing))
    wrong = Person(english, "trainee-001", password="not-the-card").login()
    assert "Invalid username or password" in text(wrong)
