"""Typed failures of the GitHub provider.

Messages carry the method, the path and GitHub's own message, never a token: the
bearer token lives only in the HTTP client's headers and tokens returned by GitHub are
wrapped in SecretStr before they reach a model.
"""

from __future__ import annotations

from datetime import datetime

from providers.http_core import TransientFailure


class GitHubError(Exception):
    """Any failure talking to GitHub; `status` is None when no response arrived."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.method = method
        self.path = path
        where = f"{method} {path}: " if method and path else ""
        code = f"{status} " if status is not None else ""
        super().__init__(f"{where}{code}{message}".strip())


class GitHubUnauthorized(GitHubError):
    """401: the token is missing, wrong or revoked. Retrying cannot help."""


class GitHubForbidden(GitHubError):
    """403 that is not a rate limit: the token lacks a permission ("Resource not accessible
    by integration"). `accepted_permissions` is GitHub's `X-Accepted-GitHub-Permissions`
    header when it sent one (`pull_requests=read`): what the token would need."""

    def __init__(
        self,
        message: str,
        *,
        accepted_permissions: str | None = None,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.accepted_permissions = accepted_permissions
        needs = f" (needs {accepted_permissions})" if accepted_permissions else ""
        super().__init__(message + needs, status=status, method=method, path=path)


class GitHubNotFound(GitHubError):
    """404: the object does not exist, or the token may not see it (GitHub hides a private
    repository from a token not granted it, and from anonymous requests, with a 404)."""


class GitHubConflict(GitHubError):
    """409: GitHub refused because of the object's current state."""


class GitHubValidationFailed(GitHubError):
    """422: GitHub refused the request as invalid for the object's state."""


class RunnerBusy(GitHubValidationFailed):
    """422 on runner delete: the runner is running a job; try again once it is idle."""

    def __init__(
        self, message: str, *, runner_id: int, method: str | None = None, path: str | None = None
    ) -> None:
        self.runner_id = runner_id
        super().__init__(message, status=422, method=method, path=path)


class GitHubRateLimited(GitHubError):
    """Primary or secondary rate limit, and waiting it out would exceed the allowed wait.

    `reset_at` is when the primary budget refills; `retry_after` is GitHub's advice in
    seconds (secondary limits); either may be None.
    """

    def __init__(
        self,
        message: str,
        *,
        reset_at: datetime | None = None,
        retry_after: float | None = None,
        secondary: bool = False,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.reset_at = reset_at
        self.retry_after = retry_after
        self.secondary = secondary
        super().__init__(message, status=status, method=method, path=path)


class GitHubTransientError(GitHubError, TransientFailure):
    """5xx or a broken connection; the call may succeed later.

    `request_sent` is False when the failure happened before GitHub could have acted
    (connection refused, connect timeout), which is what makes a POST safe to retry
    under the shared retry rule (providers/http_core.py).
    """

    def __init__(
        self,
        message: str,
        *,
        request_sent: bool = True,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.request_sent = request_sent
        super().__init__(message, status=status, method=method, path=path)


class GitHubTimeout(GitHubTransientError):
    """No complete answer within the client's timeout."""
