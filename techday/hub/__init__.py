"""The day's servers: the hub settings and GPU hand-out (``config``), sign-in (``auth``), the nbgrader
exchange closed to other trainees (``exchange``), dropping to the grader's account (``runas``), the
single-machine lab (``locallab``) and the dependency locks of the images (``locks``).

A deployment's ``jupyterhub_config.py`` names ``techday.hub.config.configure``,
``techday.hub.auth.PasswordListAuthenticator`` and ``techday.hub.exchange`` (until 0.1 these were
``techday.hub``, ``techday.hubauth`` and ``techday.hubexchange``). Standard library only at import."""

from .config import *  # noqa: F401,F403  (`from techday.hub import HubSettings, configure`: configs before 0.1)
