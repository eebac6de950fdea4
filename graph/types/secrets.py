from __future__ import annotations

import strawberry

from glia import secrets as kernel
from graph.types.base import object_type


@object_type(kernel.Secret)
class Secret:
    pass


@object_type(kernel.SecretsRotation)
class SecretsRotation:
    pass


@strawberry.input(description="A secret to delete")
class DeleteSecretInput:
    uri: str = strawberry.field(description="`secret://CLUSTER/ORG/PROJECT/KEY`")


@strawberry.type(description="The secret deleted")
class DeleteSecretPayload:
    secret: Secret = strawberry.field(description="The secret, as it was")


@strawberry.type(description="What the rotation re-encrypted")
class RotateSecretsKeyPayload:
    rotation: SecretsRotation = strawberry.field(
        description="How many values now sealed by the current key, and what no key opens"
    )
