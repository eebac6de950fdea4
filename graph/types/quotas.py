from __future__ import annotations

import strawberry

from glia import quotas as kernel
from graph.types.base import expose_enum, input_type, object_type

QuotaLevel = expose_enum(kernel.QuotaLevel)


@object_type(kernel.Quota)
class Quota:
    pass


@input_type(kernel.QuotaInput, name="SetQuotaInput")
class SetQuotaInput:
    pass


@input_type(kernel.CreditsInput, name="AddCreditsInput")
class AddCreditsInput:
    pass


@input_type(kernel.QuotaTarget, name="QuotaTargetInput")
class QuotaTargetInput:
    pass


@strawberry.type(description="A level's limits and use, after the change")
class QuotaPayload:
    quota: Quota = strawberry.field(description="The level's quota now")
