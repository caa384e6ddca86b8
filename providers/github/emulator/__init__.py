"""An in-process GitHub for tests and `setpoint emulator github`: REST routes Setpoint
uses, an Actions OIDC issuer, signed webhooks, rate limits and fault injection."""

from providers.github.emulator.app import create_app
from providers.github.emulator.faults import Fault, FaultInjector
from providers.github.emulator.oidc_issuer import OidcIssuer
from providers.github.emulator.state import EmulatorError, EmulatorState
from providers.github.emulator.webhook_sender import pull_request_payload, send_webhook

__all__ = [
    "EmulatorError",
    "EmulatorState",
    "Fault",
    "FaultInjector",
    "OidcIssuer",
    "create_app",
    "pull_request_payload",
    "send_webhook",
]
