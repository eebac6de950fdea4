"""The ``glia`` command line (`cli.main`)."""

import sys

# httpx imports its own command-line client, and with it rich's console and pygments' lexers
# (~45 ms of every command's start), whenever click is installed, as it is beside uvicorn;
# glia never runs that client. A None in sys.modules makes that import fail, and httpx then
# defines a stub in its place.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
