"""The emulator's world: repositories, pull requests, comments, deployments, runners.

Tests reach it as `app.state.emulator` and drive it with the helpers below; the same
controls are served over HTTP under `/__emulator/`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx

from providers.github.emulator.faults import FaultInjector
from providers.github.emulator.oidc_issuer import OidcIssuer
from providers.github.emulator.permissions import Level, Refusal, TokenGrant, refusal
from providers.github.models import same_repository

DEFAULT_RUNNER_LABELS = ("self-hosted", "Linux", "X64")


class EmulatorError(Exception):
    """A helper was asked for something that does not exist."""


@dataclass
class EmuRepo:
    id: int
    owner: str
    name: str
    created_at: datetime
    base_sha: str
    default_branch: str = "main"
    private: bool = True

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class EmuPull:
    id: int
    owner: str
    repo: str
    number: int
    title: str
    head_ref: str
    head_sha: str
    base_ref: str
    user_login: str
    created_at: datetime
    updated_at: datetime
    labels: list[str] = field(default_factory=list)
    state: Literal["open", "closed"] = "open"
    body: str | None = None
    draft: bool = False
    closed_at: datetime | None = None
    merged_at: datetime | None = None
    merge_commit_sha: str | None = None
    commit_count: int = 1
    head_repo: str | None = None  # "owner/name" of the fork the PR comes from; None: same repo


@dataclass
class EmuComment:
    id: int
    owner: str
    repo: str
    issue_number: int
    body: str
    user_login: str
    created_at: datetime
    updated_at: datetime


@dataclass
class EmuDeploymentStatus:
    id: int
    state: str
    description: str
    environment: str
    environment_url: str
    log_url: str
    creator: str
    created_at: datetime


@dataclass
class EmuDeployment:
    id: int
    owner: str
    repo: str
    ref: str
    sha: str
    environment: str
    task: str
    description: str | None
    payload: dict[str, Any] | str
    transient: bool
    production: bool
    creator: str
    created_at: datetime
    updated_at: datetime
    statuses: list[EmuDeploymentStatus] = field(default_factory=list)


@dataclass
class EmuRunner:
    id: int
    scope: str  # "owner/repo" or "org"
    name: str
    os: str
    status: Literal["online", "offline"]
    busy: bool
    labels: list[tuple[str, str]]  # (name, "read-only" | "custom")
    ephemeral: bool = False
    runner_group_id: int = 1


ANONYMOUS_LIMIT = 60


@dataclass
class RateBudget:
    limit: int = 5000
    remaining: int = 5000
    reset_epoch: float = 0.0


class EmulatorState:
    def __init__(
        self,
        seed: int = 0,
        *,
        accepted_tokens: Iterable[str] | None = None,
        issuer_url: str | None = None,
        public_url: str = "http://github-emulator.local",
        bot_login: str = "setpoint-bot",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - ids for tests, not secrets
        self.clock = clock
        self.accepted_tokens: set[str] | None = (
            None if accepted_tokens is None else set(accepted_tokens)
        )
        self.bot_login = bot_login
        self.public_url = public_url  # base of URLs inside webhook payloads
        # Where `/__emulator/webhooks/...` deliveries go; None means the real network.
        self.webhook_transport: httpx.AsyncBaseTransport | None = None
        self.repos: dict[str, EmuRepo] = {}
        self.pulls: dict[tuple[str, str], dict[int, EmuPull]] = {}
        self.comments: dict[int, EmuComment] = {}
        self.deployments: dict[int, EmuDeployment] = {}
        self.runners: dict[int, EmuRunner] = {}
        self.issued_runner_tokens: list[str] = []
        self.faults = FaultInjector(self.rng)
        self.oidc = OidcIssuer(issuer_url, clock=clock)
        self.budget = RateBudget(reset_epoch=clock() + 3600)
        # Requests without a token are anonymous, as on GitHub: 60 an hour, per client.
        self.anonymous_budget = RateBudget(
            limit=ANONYMOUS_LIMIT, remaining=ANONYMOUS_LIMIT, reset_epoch=clock() + 3600
        )
        self.requests: list[tuple[str, str]] = []  # (method, path) of every API call
        # Tokens with a permission model (providers/github/emulator/permissions.py); a token
        # not listed may do everything.
        self.grants: dict[str, TokenGrant] = {}
        self._next = 1000 + self.rng.randrange(1000)
        self._users: dict[str, int] = {}
        self._labels: dict[str, int] = {}

    # -- ids, time -----------------------------------------------------------------

    def new_id(self) -> int:
        self._next += 1
        return self._next

    def new_sha(self) -> str:
        return f"{self.rng.getrandbits(160):040x}"

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), tz=UTC)

    def user_id(self, login: str) -> int:
        return self._users.setdefault(login, 500 + len(self._users))

    def label_id(self, name: str) -> int:
        return self._labels.setdefault(name, 9000 + len(self._labels))

    def grant(
        self,
        token: str,
        permissions: dict[str, Level],
        repositories: Iterable[str] | None = None,
    ) -> TokenGrant:
        """From now on `token` may do only what `permissions` allow (`{"pull_requests":
        "read"}`), on `repositories` ("owner/name"; None: all of them)."""
        chosen = None if repositories is None else set(repositories)
        self.grants[token] = TokenGrant(dict(permissions), chosen)
        return self.grants[token]

    def set_visibility(self, owner: str, name: str, *, private: bool) -> EmuRepo:
        found = self.add_repo(owner, name)
        found.private = private
        return found

    def refusal(self, method: str, path: str, token: str | None) -> Refusal | None:
        """What GitHub's permission checks answer this request, if they refuse it."""
        grant = self.grants.get(token) if token is not None else None
        if token is not None and grant is None:
            return None  # a token without a grant may do everything
        return refusal(
            method=method,
            path=path,
            anonymous=token is None,
            grant=grant,
            private={name: repo.private for name, repo in self.repos.items()},
        )

    def token_accepted(self, token: str) -> bool:
        if not token:
            return False
        return self.accepted_tokens is None or token in self.accepted_tokens

    # -- repositories and pull requests ---------------------------------------------

    def canonical_repo(self, owner: str, name: str) -> tuple[str, str]:
        """The spelling a repository was created with, for any case of its name: GitHub
        answers `Acme/Shop` and `acme/shop` alike. Unknown names come back as given."""
        wanted = f"{owner}/{name}"
        for found in self.repos.values():
            if same_repository(found.full_name, wanted):
                return found.owner, found.name
        return owner, name

    def add_repo(self, owner: str, name: str, *, default_branch: str = "main") -> EmuRepo:
        owner, name = self.canonical_repo(owner, name)
        key = f"{owner}/{name}"
        if key not in self.repos:
            self.repos[key] = EmuRepo(
                id=self.new_id(),
                owner=owner,
                name=name,
                created_at=self.now(),
                base_sha=self.new_sha(),
                default_branch=default_branch,
            )
            self.pulls[(owner, name)] = {}
        return self.repos[key]

    def repo(self, owner: str, name: str) -> EmuRepo:
        owner, name = self.canonical_repo(owner, name)
        try:
            return self.repos[f"{owner}/{name}"]
        except KeyError:
            raise EmulatorError(f"no repository {owner}/{name}") from None

    def open_pull(
        self,
        owner: str,
        repo: str,
        *,
        title: str | None = None,
        head_ref: str | None = None,
        head_sha: str | None = None,
        labels: Iterable[str] = (),
        user: str = "octocat",
        base_ref: str | None = None,
        draft: bool = False,
        body: str | None = None,
        head_repo: str | None = None,
    ) -> EmuPull:
        found = self.add_repo(owner, repo)
        owner, repo = found.owner, found.name
        if head_repo is not None:  # a fork: GitHub shows it as the head's repository
            fork_owner, fork_name = head_repo.split("/", 1)
            self.add_repo(fork_owner, fork_name)
        pulls = self.pulls[(owner, repo)]
        number = max(pulls, default=0) + 1
        now = self.now()
        pr = EmuPull(
            id=self.new_id(),
            owner=owner,
            repo=repo,
            number=number,
            title=title or f"Change {number}",
            head_ref=head_ref or f"feature-{number}",
            head_sha=head_sha or self.new_sha(),
            base_ref=base_ref or found.default_branch,
            user_login=user,
            created_at=now,
            updated_at=now,
            labels=list(dict.fromkeys(labels)),
            draft=draft,
            body=body,
            head_repo=head_repo,
        )
        pulls[number] = pr
        return pr

    def pull(self, owner: str, repo: str, number: int) -> EmuPull:
        owner, repo = self.canonical_repo(owner, repo)
        try:
            return self.pulls[(owner, repo)][number]
        except KeyError:
            raise EmulatorError(f"no pull request {owner}/{repo}#{number}") from None

    def close_pull(self, owner: str, repo: str, number: int, *, merged: bool = False) -> EmuPull:
        pr = self.pull(owner, repo, number)
        pr.state = "closed"
        pr.closed_at = pr.updated_at = self.now()
        if merged:
            pr.merged_at = pr.closed_at
            pr.merge_commit_sha = self.new_sha()
        return pr

    def reopen_pull(self, owner: str, repo: str, number: int) -> EmuPull:
        pr = self.pull(owner, repo, number)
        if pr.merged_at is not None:
            raise EmulatorError("a merged pull request cannot be reopened")
        pr.state, pr.closed_at, pr.updated_at = "open", None, self.now()
        return pr

    def set_labels(self, owner: str, repo: str, number: int, labels: Iterable[str]) -> EmuPull:
        pr = self.pull(owner, repo, number)
        pr.labels = list(dict.fromkeys(labels))
        pr.updated_at = self.now()
        return pr

    def add_label(self, owner: str, repo: str, number: int, name: str) -> EmuPull:
        return self.set_labels(owner, repo, number, [*self.pull(owner, repo, number).labels, name])

    def remove_label(self, owner: str, repo: str, number: int, name: str) -> EmuPull:
        pr = self.pull(owner, repo, number)
        return self.set_labels(owner, repo, number, [n for n in pr.labels if n != name])

    def push(self, owner: str, repo: str, number: int, sha: str | None = None) -> tuple[str, str]:
        """A new head commit on the PR's branch; returns (before, after) SHAs."""
        pr = self.pull(owner, repo, number)
        before, pr.head_sha = pr.head_sha, sha or self.new_sha()
        pr.commit_count += 1
        pr.updated_at = self.now()
        return before, pr.head_sha

    # -- comments ----------------------------------------------------------------------

    def add_comment(
        self, owner: str, repo: str, number: int, body: str, *, user: str | None = None
    ) -> EmuComment:
        self.pull(owner, repo, number)
        owner, repo = self.canonical_repo(owner, repo)
        now = self.now()
        item = EmuComment(
            id=self.new_id(),
            owner=owner,
            repo=repo,
            issue_number=number,
            body=body,
            user_login=user or self.bot_login,
            created_at=now,
            updated_at=now,
        )
        self.comments[item.id] = item
        return item

    def comments_of(self, owner: str, repo: str, number: int) -> list[EmuComment]:
        owner, repo = self.canonical_repo(owner, repo)
        return [
            c
            for c in self.comments.values()
            if (c.owner, c.repo, c.issue_number) == (owner, repo, number)
        ]

    # -- deployments -------------------------------------------------------------------

    def deployments_of(self, owner: str, repo: str) -> list[EmuDeployment]:
        owner, repo = self.canonical_repo(owner, repo)
        found = [d for d in self.deployments.values() if (d.owner, d.repo) == (owner, repo)]
        return sorted(found, key=lambda d: d.id, reverse=True)

    # -- runners -----------------------------------------------------------------------

    def add_runner(
        self,
        scope: str,
        name: str,
        *,
        status: Literal["online", "offline"] = "online",
        busy: bool = False,
        labels: Iterable[str] = (),
        os: str = "Linux",
        ephemeral: bool = False,
        runner_group_id: int = 1,
    ) -> EmuRunner:
        if "/" in scope:
            self.add_repo(*scope.split("/", 1))
        read_only = [(n, "read-only") for n in DEFAULT_RUNNER_LABELS]
        custom = [(n, "custom") for n in dict.fromkeys(labels) if n not in DEFAULT_RUNNER_LABELS]
        item = EmuRunner(
            id=self.new_id(),
            scope=scope,
            name=name,
            os=os,
            status=status,
            busy=busy,
            labels=read_only + custom,
            ephemeral=ephemeral,
            runner_group_id=runner_group_id,
        )
        self.runners[item.id] = item
        return item

    def runners_in(self, scope: str) -> list[EmuRunner]:
        return sorted((r for r in self.runners.values() if r.scope == scope), key=lambda r: r.id)

    def set_runner(
        self,
        runner_id: int,
        *,
        status: Literal["online", "offline"] | None = None,
        busy: bool | None = None,
    ) -> EmuRunner:
        item = self.runners.get(runner_id)
        if item is None:
            raise EmulatorError(f"no runner {runner_id}")
        if status is not None:
            item.status = status
        if busy is not None:
            item.busy = busy
        return item

    def issue_runner_token(self, ttl: timedelta = timedelta(hours=1)) -> tuple[str, datetime]:
        token = "A" + "".join(
            self.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(28)
        )
        self.issued_runner_tokens.append(token)
        return token, self.now() + ttl

    # -- rate limit ----------------------------------------------------------------------

    def set_rate_limit(
        self, *, remaining: int, limit: int | None = None, reset_in: float = 3600.0
    ) -> None:
        if limit is not None:
            self.budget.limit = limit
        self.budget.remaining = remaining
        self.budget.reset_epoch = self.clock() + reset_in

    # -- OIDC and webhooks -------------------------------------------------------------

    def mint_oidc_token(
        self,
        claims: dict[str, Any] | None = None,
        *,
        kid: str | None = None,
        alg: str = "RS256",
        ttl_seconds: int = 300,
        omit: Iterable[str] = (),
        **options: Any,
    ) -> str:
        return self.oidc.mint(
            claims, kid=kid, alg=alg, ttl_seconds=ttl_seconds, omit=omit, **options
        )

    def pull_request_event(
        self, owner: str, repo: str, number: int, action: str, **extra: Any
    ) -> dict[str, Any]:
        from providers.github.emulator.webhook_sender import pull_request_payload

        return pull_request_payload(self, owner, repo, number, action, **extra)
