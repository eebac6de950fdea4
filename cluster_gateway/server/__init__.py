"""`glia gateway serve`: a cluster gateway as its own process (docs/federation.md).

Its app (``app.py``) serves an `EmbeddedGateway`'s operations as a cluster-scoped GraphQL
subgraph (``schema.py``, printed in ``schema.graphql``) and byte routes (``routes.py``), to
one caller: the control plane holding the cluster's shared secret (``cluster_gateway/trust.py``).
The rest of ``cluster_gateway`` never imports this package (an import-linter contract): the
web stack stays out of the embedded gateway.
"""
