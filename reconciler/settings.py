"""Process-wide settings from the environment (`SETPOINT_` prefix)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///.setpoint/setpoint.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SETPOINT_", extra="ignore")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL; SQLite file by default, postgresql://... for shared use",
    )
    log_format: Literal["logfmt", "json"] = Field(
        default="logfmt",
        description="how `setpoint serve` writes its log lines on stderr: logfmt or JSON lines",
    )
    actor: str | None = Field(
        default=None, description="who is acting, for audit records (else cli:$USER)"
    )
    plan_ttl_minutes: int = Field(
        default=60, ge=1, description="a plan expires this many minutes after it is computed"
    )
    max_deletions: int = Field(
        default=2, ge=0, description="blast-radius guard: deletions a plan may hold"
    )
    max_deletion_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="blast-radius guard: share of owned objects a plan may delete",
    )
    health_allow_hosts: list[str] = Field(
        default_factory=list,
        description="JSON list of hosts health checks may reach although they resolve to "
        "private addresses",
    )
    health_route_via: str | None = Field(
        default=None,
        description="for trying plans locally: send every health check to this http:// "
        "address, keeping the domain in the Host header (`setpoint emulator dokploy` answers "
        "for the domains it routes); never set it in production",
    )
    deploy_poll_seconds: float = Field(
        default=2.0, gt=0, description="the longest wait between two looks at a running deployment"
    )
    health_backoff_seconds: float = Field(
        default=30.0,
        gt=0,
        description="after a deploy whose health check fails, wait this long before checking "
        "again, doubling each failure (at most an hour); the deploy is not repeated",
    )
    health_watch_interval_seconds: float = Field(
        default=300.0,
        ge=10,
        description="how often a scheduled pass checks the health of a converged lane again "
        "(one request per check; a lane's `healthIntervalSeconds` overrides it); a failing "
        "check shows the lane Degraded until a check passes",
    )
    deploy_failed_backoff_seconds: float = Field(
        default=60.0,
        gt=0,
        description="after a deploy whose build fails (DeployFailed), wait this long before "
        "deploying the same configuration again, doubling each failure (at most an hour); "
        "a new configuration deploys at once",
    )
    apply_concurrency: int = Field(
        default=8,
        ge=1,
        le=64,
        description="lanes applied at the same time (a single Dokploy server handles 8 well)",
    )
    lease_ttl_seconds: float = Field(
        default=30.0,
        ge=1,
        description="a lane's lease lapses this long after its holder's last heartbeat",
    )
    loop_workers: int = Field(
        default=4,
        ge=1,
        le=64,
        description="workers of one `setpoint run` or `serve` that claim and survey batches; "
        "each batch's lanes then go on by themselves, up to workers x batch size in flight",
    )
    loop_batch_size: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="lanes a worker claims at once; one observation serves the whole batch",
    )
    loop_claim_hold_seconds: float = Field(
        default=60.0,
        ge=1,
        description="a worker's claim on queued lanes lapses this long after its last renewal, "
        "so another replica takes the lanes of a worker that died",
    )
    loop_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="an idle worker looks for due lanes this often (the workers in turn)",
    )
    loop_backoff_base_seconds: float = Field(
        default=5.0,
        gt=0,
        description="first wait after a lane's temporary failure (an outage, a stale plan); "
        "doubles per failure, drawn at random below that (full jitter)",
    )
    loop_backoff_cap_seconds: float = Field(
        default=600.0, gt=0, description="the longest wait between two tries of a failing lane"
    )
    feedback_wait_seconds: float = Field(
        default=10.0,
        ge=0,
        description="an apply sends its feedback (a preview's PR comment and GitHub "
        "deployment) for at most this long; what did not land is sent by the loop, "
        "on its own backoff",
    )
    loop_shutdown_grace_seconds: float = Field(
        default=30.0,
        ge=0,
        description="on SIGTERM, in-flight work may finish for this long; what is still "
        "running then is recorded as interrupted",
    )
    request_wait_limit_seconds: float = Field(
        default=7200.0,
        gt=0,
        description="a workflow's request parked on its lane's long wait (a build, a runner "
        "coming online) ends `failed` (outcome `gave_up`) once it has waited this long; the "
        "lane goes on waiting and a scheduled pass finishes it (a deploy's own timeout "
        "usually ends the wait first); one waiting for a lane another apply holds is "
        "refused `lane_busy` past it",
    )
    provider_rate_limits: dict[str, float] = Field(
        default_factory=dict,
        description='JSON object: requests per second per provider, e.g. {"dokploy": 20}; '
        "a provider not named is not limited",
    )
    provider_rate_burst: float = Field(
        default=10.0, ge=1, description="requests a rate-limited provider may get at once"
    )
    plan_retention_days: float = Field(
        default=14.0,
        gt=0,
        description="finished plans older than this are deleted, and the PR feedback "
        "delivered by then; audit records never are",
    )
    runner_online_timeout_seconds: float = Field(
        default=180.0,
        gt=0,
        description="a created or restarted runner must show online on GitHub within this "
        "long, or it is cleaned up and its lane failed",
    )
    runner_idle_window_seconds: float = Field(
        default=60.0,
        ge=0,
        description="a runner is stopped or removed only after it was seen idle twice this "
        "far apart (GitHub's busy flag lags a starting job)",
    )
    runner_busy_retry_seconds: float = Field(
        default=30.0, gt=0, description="how soon a drain that found its runner busy looks again"
    )
    runner_offline_grace_seconds: float = Field(
        default=600.0,
        ge=0,
        description="an owned runner offline this long while its process runs is restarted",
    )
    runner_orphan_grace_seconds: float = Field(
        default=300.0,
        ge=0,
        description="an orphan (a registration with no process, a process never registered) "
        "marked this long ago may be removed, if its pool allows `remove`",
    )
    runner_current_release: str | None = Field(
        default=None,
        description="the current GitHub Actions runner release (e.g. 2.330.0); pools whose "
        "runner image tag is older are reported, before GitHub stops giving them jobs",
    )
    audit_key: SecretStr | None = Field(
        default=None,
        description="HMAC key that signs audit checkpoints (`setpoint audit keygen`); keep it "
        "outside the database; never logged",
    )
    audit_key_file: Path | None = Field(
        default=None,
        description="a file holding the audit key, instead of SETPOINT_AUDIT_KEY",
    )
    audit_checkpoint_path: Path | None = Field(
        default=None,
        description="with an audit key set, each loop pass and each `setpoint apply` writes a "
        "signed checkpoint of the audit head here: a file (replaced each time) or an existing "
        "directory (one file per checkpoint, the newest kept); keep it off the database's "
        "host. `setpoint audit verify` checks against the newest",
    )
    audit_checkpoint_keep: int = Field(
        default=100,
        ge=1,
        description="how many checkpoint files a checkpoint directory keeps (the newest)",
    )
    api_oidc_issuer: str = Field(
        default="https://token.actions.githubusercontent.com",
        description="the API accepts GitHub Actions OIDC tokens from this issuer only",
    )
    api_oidc_audience: str = Field(
        default="setpoint",
        description="the audience a workflow must ask its OIDC token for "
        "(`core.getIDToken(audience)`); tokens for any other audience are refused",
    )
    api_oidc_jwks_url: str | None = Field(
        default=None, description="where the issuer's keys are read; else <issuer>/.well-known/jwks"
    )
    api_webhook_secret: SecretStr | None = Field(
        default=None,
        description="the GitHub webhook secret; unset: `POST /v1/webhooks/github` is refused; "
        "never logged",
    )
    api_max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        le=26_214_400,
        description="request bodies (webhook deliveries included) larger than this are refused "
        "before they are read",
    )
    api_apply_wait_seconds: float = Field(
        default=2.0,
        ge=0,
        le=30,
        description="`POST /v1/plans/{id}/apply` waits this long for the apply to end (a refusal "
        "is answered at once); a longer apply is answered 202, and the plan's status follows it",
    )
    api_url: str = Field(
        default="http://127.0.0.1:8080",
        description="where `setpoint reconcile` finds the API (`setpoint serve` listens there by "
        "default)",
    )
    api_token: SecretStr | None = Field(
        default=None,
        description="the bearer token `setpoint reconcile` sends: an operator token "
        "(`setpoint tokens create`) or a GitHub OIDC token; never logged",
    )
    api_timeout_seconds: float = Field(
        default=10.0, gt=0, description="`setpoint reconcile`: timeout of each request to the API"
    )
    secret_store_key: SecretStr | None = Field(
        default=None,
        description="key of the encrypted secret store (`setpoint secrets keygen`); never logged",
    )
    secret_env_prefix: str = Field(
        default="SETPOINT_SECRET_",
        description="`fromEnv` secrets read only variables whose name starts with this (empty: "
        "only SETPOINT_SECRET_ENV_ALLOW); never one of Setpoint's own settings",
    )
    secret_env_allow: list[str] = Field(
        default_factory=list,
        description="JSON list of further variable names `fromEnv` secrets may read (not "
        "SETPOINT_ names)",
    )
    secret_file_dir: Path | None = Field(
        default=None,
        description="the folder `fromFile` secrets are read in (regular files, at most 64 KiB, "
        "no `..` or symlink out of it); unset: `fromFile` is refused",
    )
    review_pages: Literal["open", "token", "off"] = Field(
        default="token",
        description="the plan review pages: `open` (anyone who reaches them reads), `token` "
        "(reading needs an operator token too) or `off`; applying always needs a token",
    )
    notify_sinks: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="JSON object: notification sink name -> URL, an apprise URL (slack://, "
        "discord://, ntfy://, mailto://, ...) or `signed+https://...` for Setpoint's signed "
        "JSON webhook; URLs hold tokens and are never shown",
    )
    notify_webhook_secret: SecretStr | None = Field(
        default=None,
        description="the HMAC-SHA256 key signed webhooks are signed with "
        "(`X-Setpoint-Signature: sha256=...`); never logged",
    )
    notify_messages_per_minute: int = Field(
        default=6,
        ge=1,
        description="at most this many messages per sink per minute; the rest wait their turn",
    )
    notify_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="the longest one notification send may take"
    )
    notify_max_attempts: int = Field(
        default=8, ge=1, description="tries of one notification before it is given up"
    )
    public_url: str | None = Field(
        default=None,
        description="the address operators reach `setpoint serve` at (https://...); preview "
        "comments then link to their plan's review page",
    )
    web_secure_cookies: bool | None = Field(
        default=None,
        description="whether the review pages' cookies carry `Secure` (sent over https only); "
        "unset: when SETPOINT_PUBLIC_URL is https://. Never taken from the request's scheme",
    )
    review_form_key: SecretStr | None = Field(
        default=None,
        description="key that signs the review pages' forms and sign-in cookies; give every "
        "replica the same one (random per process if unset); never logged",
    )

    @field_validator("secret_env_prefix")
    @classmethod
    def _prefix_outside_own_settings(cls, prefix: str) -> str:
        if prefix and "SETPOINT_".startswith(prefix):
            raise ValueError("must be empty or longer than SETPOINT_ (Setpoint's own settings)")
        return prefix


def describe_invalid(exc: ValidationError, prefix: str = "SETPOINT_") -> str:
    """One line naming each variable that is out of range, and why, never its value."""
    problems = []
    for error in exc.errors():
        name = prefix + "_".join(str(part) for part in error["loc"]).upper()
        problems.append(f"{name}: {error['msg']}")
    return "invalid setting " + "; ".join(problems)
