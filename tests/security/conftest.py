"""The end-to-end fixtures (a real `glia up`, the real CLI) for the attacks made through them."""

from tests.e2e.conftest import cli, server  # noqa: F401  (fixtures)
