"""The name before 0.1 of :mod:`techday.hub.auth`, kept for hub configs that name
``techday.hubauth.PasswordListAuthenticator``. New configs name ``techday.hub.auth``."""

from .hub.auth import *  # noqa: F401,F403
from .hub.auth import PasswordListAuthenticator  # noqa: F401  (the name the configs give)
