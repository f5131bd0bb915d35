"""In-process fakes of external services, for tests that must speak real HTTP."""

from testkit.fakes.stripe_server import (
    STRIPE_HTTPX_WARNING_FILTER,
    FakeAccount,
    FakeStripe,
    Fault,
    RecordedRequest,
    sign_payload,
)

__all__ = [
    "STRIPE_HTTPX_WARNING_FILTER",
    "FakeAccount",
    "FakeStripe",
    "Fault",
    "RecordedRequest",
    "sign_payload",
]
