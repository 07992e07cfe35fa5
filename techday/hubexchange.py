"""The name before 0.1 of :mod:`techday.hub.exchange`, kept for nbgrader configs that name
``techday.hubexchange.ExchangeCollect`` (and the release and submit classes). New configs name
``techday.hub.exchange``."""

from .hub.exchange import *  # noqa: F401,F403
from .hub.exchange import ExchangeCollect, ExchangeReleaseAssignment, ExchangeSubmit  # noqa: F401
