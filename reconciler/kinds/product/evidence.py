"""What Dokploy says about a failed deploy: the deployment row (title, description, error,
times) and the tail of its build log, redacted. Dokploy v0.30 leaves a failed deployment's
`errorMessage` null (tests/contracts/dokploy-real-v0.30.2), so the log tail is often the only
reason there is; reading it is best effort and never changes the deploy's outcome."""

from __future__ import annotations

from typing import Any

from providers.dokploy.client import DokployClient
from providers.dokploy.errors import DokployError
from providers.dokploy.models import Deployment
from providers.http_core import TransientFailure
from reconciler.health import HealthResult
from reconciler.secret_values import redact

LOG_TAIL_LINES = 40
_LINE_CHARS = 500


async def deploy_evidence(client: DokployClient, deployment: Deployment) -> dict[str, Any]:
    evidence: dict[str, Any] = {
        "deployment_id": deployment.deployment_id,
        "status": deployment.status,
        "title": deployment.title,
        "description": redact(deployment.description or "") or None,
        "error": redact(deployment.error_message) if deployment.error_message else None,
        "created_at": deployment.created_at,
        "started_at": deployment.started_at,
        "finished_at": deployment.finished_at,
    }
    try:
        tail = await client.deployment_log_tail(deployment.deployment_id, LOG_TAIL_LINES)
    except (DokployError, TransientFailure) as exc:
        evidence["log_unavailable"] = redact(str(exc))
        return evidence
    evidence["log_tail"] = [redact(line)[:_LINE_CHARS] for line in tail.splitlines()]
    return evidence


def evidence_summary(evidence: dict[str, Any]) -> str:
    """One clause for the action's message: Dokploy's error, else its log's last line."""
    said = evidence.get("error") or next(
        (line for line in reversed(evidence.get("log_tail") or []) if line.strip()), None
    )
    return f"; Dokploy says: {said}" if said else ""


def health_evidence(deployment_id: str | None, failed: HealthResult) -> dict[str, Any]:
    """A deploy that finished but whose health check failed: the check's answer."""
    return {
        "deployment_id": deployment_id,
        "status": "done" if deployment_id else None,
        "health_check": failed.url,
        "health_status": failed.status,
        "health_reason": redact(failed.reason),
    }
