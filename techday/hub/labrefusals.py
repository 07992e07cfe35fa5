"""The Assignments tab's refusals as the trainee's one line, not a Python traceback.

nbgrader's Assignments tab (its ``assignment_list`` server extension) runs fetch and submit inside the trainee's
Jupyter server and, when a step refuses, sends the browser ``traceback.format_exc()``: the trainee read 15 lines of
Python naming nbgrader's and the course's code, the refusal itself (in their language: :mod:`techday.hub.exchange`)
on the last line. A refusal is an :class:`nbgrader.exchange.ExchangeError` raised on purpose, with a message written
for the trainee (nbgrader's own, translated, or the course's: the exchange's budget, a planted folder); this
server extension makes that handler module's ``traceback.format_exc`` answer such an error with its message alone.
Any other exception (a fault, not a refusal) keeps its whole traceback, in the browser and in the server's log.

Enabled for every trainee's server by ``docker/etc-jupyter/jupyter_server_config.py``
(``ServerApp.jpserver_extensions``). Not covered: the handler's own refusal for a missing exchange folder (a fixed
English text of nbgrader's, in no traceback), the Validate button's messages (another extension), and a later
nbgrader whose handlers no longer read ``traceback`` from their module (:func:`patch` then says so in the log and
changes nothing).
"""

from __future__ import annotations

import sys
import traceback as _traceback

HANDLERS = "nbgrader.server_extensions.assignment_list.handlers"


class _RefusalTraceback:
    """``traceback`` as the handlers module sees it: ``format_exc`` of a refusal is its message alone."""

    _techday = True

    def format_exc(self, limit=None, chain=True) -> str:
        from nbgrader.exchange import ExchangeError

        exc = sys.exc_info()[1]
        if isinstance(exc, ExchangeError) and str(exc).strip():
            return str(exc).strip()
        return _traceback.format_exc(limit=limit, chain=chain)

    def __getattr__(self, name):
        return getattr(_traceback, name)


def patch(log=None) -> bool:
    """Make the Assignments tab's handlers answer a refusal with its message; True when they now do."""
    import importlib

    try:
        module = importlib.import_module(HANDLERS)
    except ImportError as exc:
        if log is not None:
            log.warning("techday: nbgrader's Assignments tab not found (%s): its refusals keep their traceback", exc)
        return False
    current = getattr(module, "traceback", None)
    if getattr(current, "_techday", False):
        return True
    if current is not _traceback:
        if log is not None:
            log.warning("techday: %s no longer reads the traceback module: its refusals keep their traceback",
                        HANDLERS)
        return False
    module.traceback = _RefusalTraceback()
    return True


def _jupyter_server_extension_points():
    return [{"module": "techday.hub.labrefusals"}]


def _load_jupyter_server_extension(serverapp) -> None:
    patch(serverapp.log)
