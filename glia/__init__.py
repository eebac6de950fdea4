"""The kernel every side of Glia shares: errors, the model base, the vocabulary of access, and
the value types and enums of each domain. No I/O and no server dependency: the SDK, the
cluster gateway and the control plane all import it, and it imports none of them."""
