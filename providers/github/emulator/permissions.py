"""Who may read and write what: repository visibility and each token's permissions.

GitHub's rules, as far as Setpoint's calls go (docs.github.com, "Permissions required for
GitHub Apps" and "Troubleshooting the REST API"):

- a private repository the token may not see, or any private repository asked about with no
  token at all, answers 404 `Not Found`, exactly as a repository that does not exist;
- a token that may see the repository but lacks the permission the call needs answers 403
  `Resource not accessible by integration`, with `X-Accepted-GitHub-Permissions` naming it;
- a public repository may be read by anyone; writing to it still needs the permission.

A token given no grant (`EmulatorState.grant`) may do everything, as before this model
existed, so tests that do not care about permissions need not set any.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Level = Literal["read", "write"]
NOT_ACCESSIBLE = "Resource not accessible by integration"
DOCS = "https://docs.github.com/rest"

_REPO = r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
# Which permission each emulated route needs; a comment on a pull request may be written
# with either `issues` or `pull_requests`. Level: read for GET, write for anything else.
_RULES: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(_REPO + r"/actions/runners"), ("administration",)),
    (re.compile(r"^/orgs/(?P<owner>[^/]+)/actions/runners"), ("organization_self_hosted_runners",)),
    (re.compile(_REPO + r"/pulls"), ("pull_requests",)),
    (re.compile(_REPO + r"/issues"), ("issues", "pull_requests")),
    (re.compile(_REPO + r"/deployments"), ("deployments",)),
)
_ANY_REPO = re.compile(_REPO + r"(/|$)")


@dataclass
class TokenGrant:
    """What one token may do: permission name -> `read` or `write` (write includes read),
    and the repositories it was given (None: every repository of the installation)."""

    permissions: dict[str, Level] = field(default_factory=dict)
    repositories: set[str] | None = None

    def sees(self, repository: str) -> bool:
        return self.repositories is None or repository in self.repositories

    def allows(self, permission: str, level: Level) -> bool:
        held = self.permissions.get(permission)
        return held == "write" or (held == "read" and level == "read")


@dataclass(frozen=True)
class Need:
    repository: str | None  # "owner/name"; None for an organization's route
    permissions: tuple[str, ...]  # any one of them will do
    level: Level

    @property
    def accepted(self) -> str:
        return ", ".join(f"{p}={self.level}" for p in self.permissions)


def need_of(method: str, path: str) -> Need | None:
    level: Level = "read" if method.upper() in ("GET", "HEAD") else "write"
    for pattern, permissions in _RULES:
        found = pattern.match(path)
        if found is not None:
            repo = found.groupdict().get("repo")
            repository = f"{found['owner']}/{repo}" if repo else None
            return Need(repository, permissions, level)
    return None


def repository_of(path: str) -> str | None:
    found = _ANY_REPO.match(path)
    return f"{found['owner']}/{found['repo']}" if found else None


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str
    accepted: str | None = None  # X-Accepted-GitHub-Permissions


NOT_FOUND = Refusal(404, "Not Found")


def _outside_grant(method: str, hidden: bool) -> Refusal | None:
    """A repository the token was not given: private ones do not exist for it; a public
    one may be read (it is anyone's to read) but not written."""
    if hidden:
        return NOT_FOUND
    return None if method.upper() in ("GET", "HEAD") else Refusal(403, NOT_ACCESSIBLE)


def refusal(
    *,
    method: str,
    path: str,
    anonymous: bool,
    grant: TokenGrant | None,
    private: dict[str, bool],
) -> Refusal | None:
    """Why GitHub would refuse this request, or None. `private`: visibility by full name of
    the repositories that exist (the routes answer 404 for the others themselves)."""
    repository = repository_of(path)
    hidden = repository is not None and private.get(repository, False)
    if anonymous or grant is None:
        return NOT_FOUND if anonymous and hidden else None
    if repository is not None and repository in private and not grant.sees(repository):
        return _outside_grant(method, hidden)
    need = need_of(method, path)
    if need is None or any(grant.allows(p, need.level) for p in need.permissions):
        return None
    return Refusal(403, NOT_ACCESSIBLE, need.accepted)
