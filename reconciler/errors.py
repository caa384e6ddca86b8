"""Every exception the engine raises, under one root, so a caller can catch them all.

    SetpointError
    ├── UnknownLane              a lane name that no kind has, or that two kinds share
    ├── ReasonClash              a kind declares a blocker reason the engine or another kind owns
    ├── PlanNotFound             no stored plan with that id (or one an older Setpoint wrote)
    ├── ProviderNotConfigured    a kind needs a provider this deployment did not configure
    ├── AdoptionRefused          adopting that object into that lane is not possible
    ├── IdempotencyConflict      an idempotency key reused with another request body
    ├── ApiRefused               an API request refused: its HTTP status and problem title
    ├── CannotListen             `setpoint serve` cannot bind its address
    ├── ActionFailed             an executor could not complete an action (becomes `Failed`)
    │   └── ActionAccessDenied   the provider refused the credentials this object or call
    ├── FeedbackNotDelivered     a kind could not deliver feedback (a PR comment); transient or not
    ├── LaneBusy                 another worker holds a lane's lease
    ├── LeaseLost                a lease this worker held was taken over
    ├── LeaseNotFound            no lease on that lane to release
    ├── LeaseHeld                releasing a live worker's lease needs --force
    ├── LoopAlreadyRunning       another process runs the loop on this SQLite database
    ├── EmptyPrune               a prune given no documents, which would empty the store
    ├── RollbackRefused          no known-good state to roll a lane back to, or not that one
    ├── PromotionRefused         the source lane does not run a verified digest, or the gate said no
    ├── AuditError
    │   ├── AuditHeadLost        records exist but the audit head row is gone
    │   ├── AuditRepairRefused   `audit repair-head` found nothing it may safely repair
    │   └── CheckpointError      an audit checkpoint cannot be made or read
    └── SecretError
        ├── SecretUnavailable    a secret reference could not be resolved
        ├── SecretStoreError     the encrypted store cannot be used as asked
        └── SecretInAuditRecord  an audit record would have carried a secret value

Every message is safe to show, log and audit: none carries a secret value.
Provider errors have trees of their own (`providers/dokploy/errors.py`,
`providers/github/errors.py`); executors turn them into outcomes.
"""

from __future__ import annotations

from datetime import datetime


class SetpointError(Exception):
    """The root of the engine's exceptions."""


class UnknownLane(SetpointError, ValueError):
    pass


class ReasonClash(SetpointError, ValueError):
    """A kind declares a blocker reason the engine owns, or one another kind declares
    otherwise: a bug in the kind, found when the kinds of a pass are put together."""


class PlanNotFound(SetpointError, LookupError):
    pass


class ProviderNotConfigured(SetpointError, LookupError):
    """A kind needs a provider this deployment did not configure."""


class AdoptionRefused(SetpointError):
    """Adopting that object into that lane is not possible; the message says why."""


class ApiRefused(SetpointError):
    """An API request refused, as RFC 9457 problem details: `status`, a short `title` (the
    same for every refusal of its kind), and the message as `detail`; `problem` names the
    kind (`/problems/<problem>`). The detail is safe to show: never a token or a secret."""

    def __init__(self, status: int, problem: str, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.problem = problem
        self.title = title
        self.detail = detail


class CannotListen(SetpointError, OSError):
    """`setpoint serve` cannot bind its host and port; says which, and why."""


class ActionFailed(SetpointError):
    """An action could not complete; the message is safe to show and to audit."""


class ActionAccessDenied(ActionFailed):
    """The provider took the credentials but refused them this action's object or call (a
    Dokploy per-service 401, a GitHub 403): `Failed(access_denied=True)`, for this lane only."""


class FeedbackNotDelivered(SetpointError):
    """Feedback about a lane (a PR comment, a deployment status) did not land. `transient`:
    trying again later may work (an outage, a rate limit; `retry_after` when the provider
    said how long); otherwise it is recorded as failed and not tried again. The message is
    safe to show and to record."""

    def __init__(self, message: str, *, transient: bool, retry_after: float | None = None):
        self.transient = transient
        self.retry_after = retry_after
        super().__init__(message)


class EmptyPrune(SetpointError, ValueError):
    """A prune given no documents: refused rather than emptying the desired-state store."""


class LaneBusy(SetpointError):
    """Another worker holds the lane; says who and until when."""

    def __init__(self, lane: str, holder: str | None, expires_at: datetime | None) -> None:
        until = f" until {expires_at.isoformat()}" if expires_at else ""
        super().__init__(f"lane {lane} is being reconciled by {holder or 'another worker'}{until}")
        self.lane = lane
        self.holder = holder
        self.expires_at = expires_at


class LeaseLost(SetpointError):
    """A lease this worker held was taken over (it expired); stop mutating the lane."""

    def __init__(self, lane: str) -> None:
        super().__init__(f"lease on lane {lane} was lost: another worker may now hold it")
        self.lane = lane


class LeaseNotFound(SetpointError, LookupError):
    def __init__(self, lane: str) -> None:
        super().__init__(f"no lease on lane {lane}: nothing holds it")
        self.lane = lane


class LeaseHeld(SetpointError):
    """Releasing a lease whose holder still shows signs of life needs --force."""

    def __init__(self, lane: str, holder: str) -> None:
        super().__init__(
            f"lane {lane} is held by {holder}, which is still alive; "
            "wait for it, or release with --force to make it stop"
        )
        self.lane = lane
        self.holder = holder


class AuditError(SetpointError):
    """Something about the audit trail itself."""


class AuditHeadLost(AuditError):
    """Records exist but the head row that chains new ones is gone; nothing is appended."""

    def __init__(self, last_seq: int) -> None:
        super().__init__(
            f"the audit head is lost: the trail has {last_seq} record(s) but no head row, so "
            "no record can be written; check the trail with `setpoint audit verify`, then "
            "recreate the head with `setpoint audit repair-head` (audited)"
        )
        self.last_seq = last_seq


class AuditRepairRefused(AuditError):
    pass


class CheckpointError(AuditError):
    pass


class SecretError(SetpointError):
    """Something about a secret; the message never holds its value."""


class SecretUnavailable(SecretError):
    """A reference could not be resolved; the message names the reference, never a value."""

    def __init__(self, ref: str, reason: str) -> None:
        super().__init__(f"secret {ref} is unavailable: {reason}")
        self.ref = ref
        self.reason = reason


class SecretStoreError(SecretError):
    """The store cannot be used as asked; the message never contains a value or the key."""


class SecretInAuditRecord(SecretError, ValueError):
    """The record would have carried a resolved secret value; the message says where only."""

    def __init__(self, where: str) -> None:
        super().__init__(f"refused to write an audit record: {where} contains a secret value")
        self.where = where


class ActionParamsRefused(SetpointError, ValueError):
    """A kind proposed an action whose parameters its operation's model refuses (a
    misspelt, missing or mistyped parameter): no plan is made, so nothing is audited or
    applied. The message names the lane, the model and the field, never a value."""


class PlanFileRejected(SetpointError, ValueError):
    """A plan file (`plan --out`) that is not the stored plan it names."""


class ForgetRefused(SetpointError):
    """`setpoint forget` did not drop a lane's records: why, in one line."""


class IdempotencyConflict(SetpointError, ValueError):
    """An idempotency key was used before with a different request body (HTTP 409)."""

    def __init__(self, key: str, operation_id: str) -> None:
        self.key = key
        self.operation_id = operation_id
        super().__init__(
            f"idempotency key {key!r} was used for operation {operation_id} with another body"
        )


class LoopAlreadyRunning(SetpointError):
    """SQLite has one writer: a second loop on the same file would only contend with the
    first. PostgreSQL replicas share the work instead."""

    def __init__(self, holder: str) -> None:
        super().__init__(
            f"another setpoint loop already runs on this SQLite database ({holder}); "
            "only one process may run the loop on SQLite (use PostgreSQL for replicas)"
        )
        self.holder = holder


class RequestRefused(SetpointError, ValueError):
    """A workflow's request for a lane that the lane's kind cannot take (a preview asked for
    a head its pull request no longer has): why, in one line."""


class RollbackRefused(SetpointError, ValueError):
    """`setpoint rollback` cannot bring a lane back: no known-good state of it (or not the
    generation named) differs from what it asks for now. Why, in one line."""


class PromotionRefused(SetpointError, ValueError):
    """`setpoint promote` refused: the source lane is not Ready on an image digest that
    passed its health checks, the lanes cannot take it, or the product's gate said no."""
