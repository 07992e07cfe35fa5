"""The hub's own pages in the room's language: sign-in, home, server options, spawn-pending, stop-pending,
"server not running", the error pages, the token page, logout.

JupyterHub 5.5 serves its pages in English only. A room whose language is not English (the hub's
``TECHDAY_LANG``, else the syllabus' ``default_language``, as :func:`techday.i18n.current_language`
reads them) gets the templates in ``templates/room/``: each extends JupyterHub's own
(``{% extends "templates/login.html" %}``) and replaces only the blocks that hold words, which it takes
from ``techday_ui`` (:func:`page_texts`, the package catalogue ``techday/data/messages.<lang>.toml``).
An English room gets none of them: its pages are JupyterHub's, byte for byte (but for ``templates/error.html``,
the spawn limit's page, which every room has: there it only adds the course's lines).

``tests/unit/test_hub_pages.py`` checks that every block an override names exists in the installed
JupyterHub's template, so an upgrade that renames one fails there, naming it, rather than leaving an
English page in a Korean room.
"""

from __future__ import annotations

from pathlib import Path

ROOM_TEMPLATES = Path(__file__).resolve().parent / "templates" / "room"

# JupyterHub 5.5's own texts that reach a page from its handlers (not its templates): the sign-in form's
# errors (handlers/login.py), the spawn pages' link home (handlers/base.py spawn_home_error), the
# spawn-pending page's progress (apihandlers/users.py).
INVALID_LOGIN = "Invalid username or password"
EXPIRED_FORM = "Login form invalid or expired. Try again."
SPAWN_HOME_ERROR = "You can try restarting your server from the"


def hub_language() -> str:
    """The room's language for the hub's pages: ``$TECHDAY_LANG``, else the syllabus' default."""
    from ..i18n import current_language

    return current_language()


def page_texts(lang: str) -> dict:
    """Every word of the hub's pages in ``lang`` (English where a text has no translation)."""
    from ..i18n import PackageCatalogue

    cat = PackageCatalogue(lang)
    return {
        "lang": lang,
        # page.html: the bar at the top of every page, the error dialog
        "home": cat.msg("techday.hub_page_home", "Home"),
        "token": cat.msg("techday.hub_page_token", "Token"),
        "admin": cat.msg("techday.hub_page_admin", "Admin"),
        "services": cat.msg("techday.hub_page_services", "Services"),
        "logo": cat.msg("techday.hub_page_logo", "JupyterHub logo"),
        "dark_mode": cat.msg("techday.hub_page_dark_mode", "Toggle dark mode"),
        "navigation": cat.msg("techday.hub_page_navigation", "Toggle navigation"),
        "logout": cat.msg("techday.hub_page_logout", "Logout"),
        "login": cat.msg("techday.hub_page_login", "Login"),
        "error": cat.msg("techday.hub_page_error", "Error"),
        "ok": cat.msg("techday.hub_page_ok", "OK"),
        "close": cat.msg("techday.hub_page_close", "Close"),
        # page.html's <noscript>, JupyterHub's own text in one line
        "noscript": cat.msg("techday.hub_page_noscript", "JupyterHub requires JavaScript. Please enable it to proceed."),
        # login.html
        "announcement_login": cat.msg("techday.hub_page_announcement_login",
                                      "Sign in with the username and password on your Tech Day card."),
        "sign_in": cat.msg("techday.hub_page_sign_in", "Sign in"),
        "username": cat.msg("techday.hub_page_username", "Username:"),
        "password": cat.msg("techday.hub_page_password", "Password:"),
        "insecure": cat.msg("techday.hub_page_insecure", "Warning: JupyterHub seems to be served over an "
                            "unsecured HTTP connection. We strongly recommend enabling HTTPS for JupyterHub."),
        # "{link}": the link, cut out by the template (split), so the text itself is escaped as any other
        "terms": cat.msg("techday.hub_page_terms", "By logging into the platform you accept the {link}.", link="{link}"),
        "terms_link": cat.msg("techday.hub_page_terms_link", "terms and conditions"),
        "login_errors": {
            INVALID_LOGIN: cat.msg("techday.hub_page_invalid_login", "Invalid username or password"),
            EXPIRED_FORM: cat.msg("techday.hub_page_expired_form", "Login form invalid or expired. Try again."),
        },
        # home.html
        "home_heading": cat.msg("techday.hub_page_home_heading", "JupyterHub home page"),
        "start_my_server": cat.msg("techday.hub_page_start_my_server", "Start My Server"),
        "stop_my_server": cat.msg("techday.hub_page_stop_my_server", "Stop My Server"),
        "my_server": cat.msg("techday.hub_page_my_server", "My Server"),
        # spawn.html (the chart's profile list)
        "server_options": cat.msg("techday.hub_page_server_options", "Server Options"),
        "spawning_for": cat.msg("techday.hub_page_spawning_for", "Spawning server for {name}", name="{name}"),
        "spawn_error": cat.msg("techday.hub_page_spawn_error", "Error: {error}", error="{error}"),
        "start": cat.msg("techday.hub_page_start", "Start"),
        # spawn_pending.html, stop_pending.html
        "starting": cat.msg("techday.hub_page_starting", "Your server is starting up."),
        "redirected": cat.msg("techday.hub_page_redirected",
                              "You will be redirected automatically when it's ready for you."),
        "complete": cat.msg("techday.hub_page_complete", "Complete"),
        "event_log": cat.msg("techday.hub_page_event_log", "Event log"),
        "stopping": cat.msg("techday.hub_page_stopping", "Your server is stopping."),
        "stopping_next": cat.msg("techday.hub_page_stopping_next",
                                 "You will be able to start it again once it has finished stopping."),
        "refresh": cat.msg("techday.hub_page_refresh", "refresh"),
        # the progress events' words (the page's script puts them in place of the English)
        "progress": {
            "Server requested": cat.msg("techday.hub_page_progress_requested", "Server requested"),
            "Spawning server...": cat.msg("techday.hub_page_progress_spawning", "Spawning server..."),
            "Spawn failed": cat.msg("techday.hub_page_progress_failed", "Spawn failed"),
            "Spawn cancelled": cat.msg("techday.hub_page_progress_cancelled", "Spawn cancelled"),
            "Server ready at": cat.msg("techday.hub_page_progress_ready", "Server ready at"),
        },
        # not_running.html
        "spawn_failed": cat.msg("techday.hub_page_spawn_failed", "Spawn failed"),
        "not_running": cat.msg("techday.hub_page_not_running", "Server not running"),
        "attempt_failed": cat.msg("techday.hub_page_attempt_failed",
                                  "The latest attempt to start your server {server} has failed.", server="{server}"),
        "retry": cat.msg("techday.hub_page_retry", "Would you like to retry starting it?"),
        "is_not_running": cat.msg("techday.hub_page_is_not_running", "Your server {server} is not running.",
                                  server="{server}"),
        "restarted": cat.msg("techday.hub_page_restarted", "It will be restarted automatically. If you are not "
                             "redirected in a few seconds, click below to launch your server."),
        "start_it": cat.msg("techday.hub_page_start_it", "Would you like to start it?"),
        "relaunch": cat.msg("techday.hub_page_relaunch", "Relaunch Server {server}", server="{server}"),
        "launch": cat.msg("techday.hub_page_launch", "Launch Server {server}", server="{server}"),
        # error.html, 404.html
        "status": {
            400: cat.msg("techday.hub_page_status_400", "Bad Request"),
            403: cat.msg("techday.hub_page_status_403", "Forbidden"),
            404: cat.msg("techday.hub_page_status_404", "Not Found"),
            405: cat.msg("techday.hub_page_status_405", "Method Not Allowed"),
            429: cat.msg("techday.hub_page_status_429", "Too Many Requests"),
            500: cat.msg("techday.hub_page_status_500", "Internal Server Error"),
            502: cat.msg("techday.hub_page_status_502", "Bad Gateway"),
            503: cat.msg("techday.hub_page_status_503", "Service Unavailable"),
        },
        "not_found": cat.msg("techday.hub_page_not_found", "Jupyter has lots of moons, but this is not one..."),
        "spawn_home": cat.msg("techday.hub_page_spawn_home", "You can try restarting your server from the {link}.",
                              link="{link}"),
        "spawn_home_english": SPAWN_HOME_ERROR,
        "spawn_home_link": cat.msg("techday.hub_page_spawn_home_link", "home page"),
        # token.html
        "token_heading": cat.msg("techday.hub_page_token_heading", "Manage JupyterHub Tokens"),
        "token_note": cat.msg("techday.hub_page_token_note", "Note"),
        "token_note_placeholder": cat.msg("techday.hub_page_token_note_placeholder", "note to identify your new token"),
        "token_note_help": cat.msg("techday.hub_page_token_note_help",
                                   "This note will help you keep track of what your tokens are for."),
        "token_expires_in": cat.msg("techday.hub_page_token_expires_in", "Token expires in"),
        "token_expires_help": cat.msg("techday.hub_page_token_expires_help",
                                      "You can configure when your token will expire."),
        "token_permissions": cat.msg("techday.hub_page_token_permissions", "Permissions"),
        "token_scopes_placeholder": cat.msg("techday.hub_page_token_scopes_placeholder",
                                            "list of scopes for the token to have, separated by space"),
        "token_scopes_help": cat.msg("techday.hub_page_token_scopes_help", "You can limit the permissions of the "
                                     "token so it can only do what you want it to. If none are specified, the token "
                                     "will have permission to do everything you can do. See the {link}.",
                                     link="{link}"),
        "token_scopes_link": cat.msg("techday.hub_page_token_scopes_link",
                                     "JupyterHub documentation for a list of available scopes"),
        "token_request": cat.msg("techday.hub_page_token_request", "Request new API token"),
        "token_new": cat.msg("techday.hub_page_token_new", "Your new API Token"),
        "token_copy": cat.msg("techday.hub_page_token_copy", "Copy this token. You won't be able to see it again, "
                              "but you can always come back here to get a new one."),
        "token_api_tokens": cat.msg("techday.hub_page_token_api_tokens", "API Tokens"),
        "token_api_help": cat.msg("techday.hub_page_token_api_help", "These are tokens with access to the JupyterHub "
                                  "API. Permissions for each token may be viewed via the JupyterHub tokens API. "
                                  "Revoking the API token for a running server will require restarting that server."),
        "token_last_used": cat.msg("techday.hub_page_token_last_used", "Last used"),
        "token_created": cat.msg("techday.hub_page_token_created", "Created"),
        "token_expires": cat.msg("techday.hub_page_token_expires", "Expires"),
        "token_scopes": cat.msg("techday.hub_page_token_scopes", "scopes"),
        "token_never": cat.msg("techday.hub_page_token_never", "Never"),
        "token_na": cat.msg("techday.hub_page_token_na", "N/A"),
        "token_revoke": cat.msg("techday.hub_page_token_revoke", "revoke"),
        "token_apps": cat.msg("techday.hub_page_token_apps", "Authorized Applications"),
        "token_apps_help": cat.msg("techday.hub_page_token_apps_help", "These are applications that use OAuth with "
                                   "JupyterHub to identify users (mostly notebook servers). OAuth tokens can "
                                   "generally only be used to identify you, not take actions on your behalf."),
        "token_app": cat.msg("techday.hub_page_token_app", "Application"),
        "token_first_authorized": cat.msg("techday.hub_page_token_first_authorized", "First authorized"),
        # the expiry choices (handlers/pages.py TokenPageHandler), as the option list's labels
        "token_expiry": {
            ">1 Hour<": ">" + cat.msg("techday.hub_page_token_hour", "1 Hour") + "<",
            ">1 Day<": ">" + cat.msg("techday.hub_page_token_day", "1 Day") + "<",
            ">1 Week<": ">" + cat.msg("techday.hub_page_token_week", "1 Week") + "<",
            ">1 Month<": ">" + cat.msg("techday.hub_page_token_month", "1 Month") + "<",
            ">1 Year<": ">" + cat.msg("techday.hub_page_token_year", "1 Year") + "<",
            ">Never<": ">" + cat.msg("techday.hub_page_token_never_expires", "Never") + "<",
        },
        # logout.html
        "logged_out": cat.msg("techday.hub_page_logged_out", "Successfully logged out."),
    }


def room_pages(c, lang: str | None = None) -> str:
    """Serve the hub's pages in ``lang`` (default: :func:`hub_language`); English: JupyterHub's own, as they
    are. Returns the language. Also for the chart's hub (docker/z2jh-values.yaml, ``extraConfig``)."""
    from ..i18n import SOURCE_LANGUAGE

    lang = (lang or hub_language()).strip().lower()
    if lang == SOURCE_LANGUAGE:
        return lang
    if not (ROOM_TEMPLATES / "login.html").is_file():
        import logging

        logging.getLogger("techday.hub.pages").error(
            "%s has no templates (the package was installed without them: install it editable, as "
            "docker/Dockerfile does): the hub's pages stay English", ROOM_TEMPLATES)
        return SOURCE_LANGUAGE
    paths = c.JupyterHub.template_paths   # first: each page extends JupyterHub's own ("templates/...")
    if isinstance(paths, list):
        paths.insert(0, str(ROOM_TEMPLATES))
    else:
        paths.prepend([str(ROOM_TEMPLATES)])
    texts = page_texts(lang)
    c.JupyterHub.template_vars.update({"techday_ui": texts, "announcement_login": texts["announcement_login"]})
    return lang


def upstream_templates() -> Path:
    """The installed JupyterHub's own templates (what ``templates/...`` names in an override)."""
    from jupyterhub.app import JupyterHub

    return Path(JupyterHub().template_paths[0])


def override_problems(ours: Path | None = None, upstream: Path | None = None) -> list[str]:
    """Each block an override under ``ours`` (``techday/hub/templates``) names, or renders with
    ``self.<block>()``, that the JupyterHub template it extends (with that one's own parents) lacks: after an
    upgrade that renamed one, the override's words would silently be JupyterHub's English again."""
    from jinja2 import Environment, FileSystemLoader, nodes

    ours = ours or ROOM_TEMPLATES.parent
    upstream = upstream or upstream_templates()
    env = Environment(loader=FileSystemLoader([str(upstream)]))

    def parse(path: Path):
        return env.parse(path.read_text(encoding="utf-8"))

    def blocks_of(name: str, seen: frozenset = frozenset()) -> set[str] | None:
        path = upstream / name
        if not path.is_file() or name in seen:
            return None
        tree = parse(path)
        found = {b.name for b in tree.find_all(nodes.Block)}
        for ext in tree.find_all(nodes.Extends):
            if isinstance(ext.template, nodes.Const):
                found |= blocks_of(ext.template.value, seen | {name}) or set()
        return found

    problems = []
    for path in sorted(ours.rglob("*.html")):
        tree = parse(path)
        where = path.relative_to(ours)
        parents = [e.template.value for e in tree.find_all(nodes.Extends) if isinstance(e.template, nodes.Const)]
        if len(parents) != 1 or not parents[0].startswith("templates/"):
            problems.append(f"{where}: extends {parents or 'nothing'}, not one of JupyterHub's templates "
                            "('templates/<page>.html')")
            continue
        theirs = blocks_of(parents[0].removeprefix("templates/"))
        if theirs is None:
            problems.append(f"{where}: JupyterHub {upstream} has no {parents[0]}")
            continue
        named = {b.name for b in tree.find_all(nodes.Block)}
        named |= {g.attr for g in tree.find_all(nodes.Getattr)
                  if isinstance(g.node, nodes.Name) and g.node.name == "self"}
        problems += [f"{where}: block {b!r} is not in JupyterHub's {parents[0]}" for b in sorted(named - theirs)]
    return problems
