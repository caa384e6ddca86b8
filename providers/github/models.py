"""What the GitHub client returns: small typed views of GitHub's objects.

Only the fields Setpoint reads are kept; tokens GitHub hands out are SecretStr so they
never show up in a repr, a log line or an exception.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class RunnerScope(_Frozen):
    """Where self-hosted runners are registered: one repository or a whole organization."""

    kind: Literal["repo", "org"]
    owner: str
    repo: str | None = None

    @classmethod
    def for_repo(cls, owner: str, repo: str) -> RunnerScope:
        return cls(kind="repo", owner=_checked(owner), repo=_checked(repo))

    @classmethod
    def for_org(cls, org: str) -> RunnerScope:
        return cls(kind="org", owner=_checked(org))

    @classmethod
    def parse(cls, value: str) -> RunnerScope:
        """`owner/repo` is a repository scope, a bare `org` an organization scope."""
        owner, sep, repo = value.partition("/")
        return cls.for_repo(owner, repo) if sep else cls.for_org(owner)

    @property
    def runners_path(self) -> str:
        if self.kind == "repo":
            return f"/repos/{self.owner}/{self.repo}/actions/runners"
        return f"/orgs/{self.owner}/actions/runners"

    def __str__(self) -> str:
        return f"{self.owner}/{self.repo}" if self.kind == "repo" else self.owner


def same_repository(a: str | None, b: str | None) -> bool:
    """Whether two `owner/repo` names are one repository: GitHub reads owner and repository
    names in any case (`Acme/Shop` is `acme/shop`). None is no repository, never equal."""
    return a is not None and b is not None and a.lower() == b.lower()


def _checked(name: str) -> str:
    # Names end up in URL paths; refuse anything that could change the path.
    if not name or not _NAME.match(name) or name in {".", ".."}:
        raise ValueError(f"not a valid GitHub owner or repository name: {name!r}")
    return name


class PullRequest(_Frozen):
    number: int
    head_sha: str
    head_ref: str
    base_ref: str
    labels: list[str]
    state: Literal["open", "closed"]
    title: str
    user_login: str | None
    html_url: str
    updated_at: datetime
    draft: bool = False
    merged: bool = False
    # "owner/name" the head branch lives in: another repository for a PR from a fork; None
    # when GitHub no longer knows it (a deleted fork).
    head_repo: str | None = None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> PullRequest:
        user = data.get("user") or {}
        head_repo = (data["head"].get("repo") or {}).get("full_name")
        return cls(
            number=data["number"],
            head_sha=data["head"]["sha"],
            head_ref=data["head"]["ref"],
            base_ref=data["base"]["ref"],
            labels=[label["name"] for label in data.get("labels") or []],
            state=data["state"],
            title=data["title"],
            user_login=user.get("login"),
            html_url=data["html_url"],
            updated_at=data["updated_at"],
            draft=bool(data.get("draft")),
            merged=data.get("merged_at") is not None,
            head_repo=head_repo,
        )


class IssueComment(_Frozen):
    id: int
    body: str
    user_login: str | None
    html_url: str

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> IssueComment:
        user = data.get("user") or {}
        return cls(
            id=data["id"],
            body=data.get("body") or "",
            user_login=user.get("login"),
            html_url=data["html_url"],
        )


class CommentUpsert(_Frozen):
    action: Literal["created", "updated", "unchanged"]
    comment_id: int
    html_url: str


class DeploymentRef(_Frozen):
    id: int
    ref: str
    sha: str
    environment: str
    transient: bool
    created_at: datetime
    # What the creator attached (GitHub answers an object, or a string when one was sent).
    payload: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> DeploymentRef:
        payload = data.get("payload")
        return cls(
            id=data["id"],
            ref=data["ref"],
            sha=data["sha"],
            environment=data["environment"],
            transient=bool(data.get("transient_environment")),
            created_at=data["created_at"],
            payload=payload if isinstance(payload, dict) else {},
        )


DeploymentState = Literal[
    "error", "failure", "inactive", "in_progress", "queued", "pending", "success"
]


class DeploymentStatusRef(_Frozen):
    id: int
    state: DeploymentState
    environment_url: str | None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> DeploymentStatusRef:
        return cls(
            id=data["id"], state=data["state"], environment_url=data.get("environment_url") or None
        )


class RunnerLabel(_Frozen):
    name: str
    type: Literal["read-only", "custom"] | None = None


def labels_from_api(items: list[dict[str, Any]]) -> list[RunnerLabel]:
    return [RunnerLabel(name=item["name"], type=item.get("type")) for item in items]


class Runner(_Frozen):
    id: int
    name: str
    os: str
    status: str  # "online" or "offline"
    busy: bool
    labels: list[RunnerLabel]
    ephemeral: bool | None = None
    runner_group_id: int | None = None

    @property
    def online(self) -> bool:
        return self.status == "online"

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Runner:
        return cls(
            id=data["id"],
            name=data["name"],
            os=data["os"],
            status=data["status"],
            busy=data["busy"],
            labels=labels_from_api(data.get("labels") or []),
            ephemeral=data.get("ephemeral"),
            runner_group_id=data.get("runner_group_id"),
        )


class RunnerToken(_Frozen):
    """A registration or remove token; short-lived and as sensitive as a password."""

    token: SecretStr
    expires_at: datetime


class JitConfig(_Frozen):
    """A just-in-time runner: already registered, configured by `encoded_jit_config`."""

    runner: Runner
    encoded_jit_config: SecretStr
