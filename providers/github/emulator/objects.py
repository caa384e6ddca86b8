"""GitHub-shaped JSON for the emulator's objects.

Field sets follow GitHub's REST description (components `pull-request`, `repository`,
`issue-comment`, `deployment`, `runner`, ...) and the webhook payload schemas, so the
contract tests can validate every response and every webhook the emulator produces.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from providers.github.emulator.state import (
        EmuComment,
        EmuDeployment,
        EmuDeploymentStatus,
        EmulatorState,
        EmuPull,
        EmuRepo,
        EmuRunner,
    )

DOCS = "https://docs.github.com/rest"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def node_id(kind: str, ident: int) -> str:
    return base64.b64encode(f"0:{kind}{ident}".encode()).decode()


def error(message: str, **extra: Any) -> dict[str, Any]:
    return {"message": message, "documentation_url": DOCS, **extra}


def user(base: str, login: str, ident: int, kind: str = "User") -> dict[str, Any]:
    url = f"{base}/users/{login}"
    return {
        "login": login,
        "id": ident,
        "node_id": node_id("User", ident),
        "avatar_url": f"{base}/avatars/{login}",
        "gravatar_id": "",
        "url": url,
        "html_url": f"{base}/{login}",
        "followers_url": f"{url}/followers",
        "following_url": f"{url}/following{{/other_user}}",
        "gists_url": f"{url}/gists{{/gist_id}}",
        "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{url}/subscriptions",
        "organizations_url": f"{url}/orgs",
        "repos_url": f"{url}/repos",
        "events_url": f"{url}/events{{/privacy}}",
        "received_events_url": f"{url}/received_events",
        "type": kind,
        "site_admin": False,
        "user_view_type": "public",
    }


_REPO_URL_TEMPLATES = {
    "archive_url": "/{archive_format}{/ref}",
    "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}",
    "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}",
    "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}",
    "compare_url": "/compare/{base}...{head}",
    "contents_url": "/contents/{+path}",
    "contributors_url": "/contributors",
    "deployments_url": "/deployments",
    "downloads_url": "/downloads",
    "events_url": "/events",
    "forks_url": "/forks",
    "git_commits_url": "/git/commits{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}",
    "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}",
    "keys_url": "/keys{/key_id}",
    "labels_url": "/labels{/name}",
    "languages_url": "/languages",
    "merges_url": "/merges",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "pulls_url": "/pulls{/number}",
    "releases_url": "/releases{/id}",
    "stargazers_url": "/stargazers",
    "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "tags_url": "/tags",
    "teams_url": "/teams",
    "trees_url": "/git/trees{/sha}",
}


def repository(state: EmulatorState, base: str, repo: EmuRepo) -> dict[str, Any]:
    url = f"{base}/repos/{repo.full_name}"
    host = base.split("://", 1)[-1]
    data: dict[str, Any] = {
        "id": repo.id,
        "node_id": node_id("Repository", repo.id),
        "name": repo.name,
        "full_name": repo.full_name,
        "private": repo.private,
        "owner": user(base, repo.owner, state.user_id(repo.owner), "Organization"),
        "html_url": f"{base}/{repo.full_name}",
        "description": None,
        "fork": False,
        "url": url,
        "created_at": iso(repo.created_at),
        "updated_at": iso(repo.created_at),
        "pushed_at": iso(repo.created_at),
        "git_url": f"git://{host}/{repo.full_name}.git",
        "ssh_url": f"git@{host}:{repo.full_name}.git",
        "clone_url": f"{base}/{repo.full_name}.git",
        "svn_url": f"{base}/{repo.full_name}",
        "mirror_url": None,
        "homepage": None,
        "language": None,
        "license": None,
        "size": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "watchers": 0,
        "forks_count": 0,
        "forks": 0,
        "open_issues_count": 0,
        "open_issues": 0,
        "has_issues": True,
        "has_projects": False,
        "has_downloads": True,
        "has_wiki": False,
        "has_pages": False,
        "has_discussions": False,
        "archived": False,
        "disabled": False,
        "default_branch": repo.default_branch,
        "topics": [],
        "visibility": "private" if repo.private else "public",
        "is_template": False,
        "allow_forking": True,
        "web_commit_signoff_required": False,
    }
    data.update({key: url + suffix for key, suffix in _REPO_URL_TEMPLATES.items()})
    return data


def label(base: str, repo: EmuRepo, name: str, ident: int) -> dict[str, Any]:
    return {
        "id": ident,
        "node_id": node_id("Label", ident),
        "url": f"{base}/repos/{repo.full_name}/labels/{name}",
        "name": name,
        "description": "",
        "color": "ededed",
        "default": False,
    }


def pull(state: EmulatorState, base: str, pr: EmuPull, *, full: bool) -> dict[str, Any]:
    """`pull-request-simple` for lists, `pull-request` (full=True) for one PR and webhooks."""
    repo = state.repo(pr.owner, pr.repo)
    api = f"{base}/repos/{repo.full_name}"
    html = f"{base}/{repo.full_name}/pull/{pr.number}"
    author = user(base, pr.user_login, state.user_id(pr.user_login))

    def side(ref: str, sha: str, where: EmuRepo = repo) -> dict[str, Any]:
        owner_json = user(base, where.owner, state.user_id(where.owner), "Organization")
        return {
            "label": f"{where.owner}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": owner_json,
            "repo": repository(state, base, where),
        }

    head_repo = state.repo(*pr.head_repo.split("/", 1)) if pr.head_repo else repo

    links = {
        "self": f"{api}/pulls/{pr.number}",
        "html": html,
        "issue": f"{api}/issues/{pr.number}",
        "comments": f"{api}/issues/{pr.number}/comments",
        "review_comments": f"{api}/pulls/{pr.number}/comments",
        "review_comment": f"{api}/pulls/comments{{/number}}",
        "commits": f"{api}/pulls/{pr.number}/commits",
        "statuses": f"{api}/statuses/{pr.head_sha}",
    }
    data: dict[str, Any] = {
        "url": links["self"],
        "id": pr.id,
        "node_id": node_id("PullRequest", pr.id),
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "issue_url": links["issue"],
        "commits_url": links["commits"],
        "review_comments_url": links["review_comments"],
        "review_comment_url": links["review_comment"],
        "comments_url": links["comments"],
        "statuses_url": links["statuses"],
        "number": pr.number,
        "state": pr.state,
        "locked": False,
        "title": pr.title,
        "user": author,
        "body": pr.body,
        "labels": [label(base, repo, name, state.label_id(name)) for name in pr.labels],
        "milestone": None,
        "active_lock_reason": None,
        "created_at": iso(pr.created_at),
        "updated_at": iso(pr.updated_at),
        "closed_at": iso(pr.closed_at) if pr.closed_at else None,
        "merged_at": iso(pr.merged_at) if pr.merged_at else None,
        "merge_commit_sha": pr.merge_commit_sha,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": side(pr.head_ref, pr.head_sha, head_repo),
        "base": side(pr.base_ref, repo.base_sha),
        "_links": {key: {"href": href} for key, href in links.items()},
        "author_association": "CONTRIBUTOR",
        "auto_merge": None,
        "draft": pr.draft,
    }
    if full:
        merged = pr.merged_at is not None
        data.update(
            {
                "merged": merged,
                "mergeable": None if pr.state == "closed" else True,
                "rebaseable": None if pr.state == "closed" else True,
                "mergeable_state": "clean" if pr.state == "open" else "unknown",
                "merged_by": author if merged else None,
                "comments": len(state.comments_of(pr.owner, pr.repo, pr.number)),
                "review_comments": 0,
                "maintainer_can_modify": False,
                "commits": pr.commit_count,
                "additions": 10 * pr.commit_count,
                "deletions": 2 * pr.commit_count,
                "changed_files": pr.commit_count,
            }
        )
    return data


def comment(state: EmulatorState, base: str, item: EmuComment) -> dict[str, Any]:
    api = f"{base}/repos/{item.owner}/{item.repo}"
    html = f"{base}/{item.owner}/{item.repo}/pull/{item.issue_number}"
    return {
        "id": item.id,
        "node_id": node_id("IssueComment", item.id),
        "url": f"{api}/issues/comments/{item.id}",
        "html_url": f"{html}#issuecomment-{item.id}",
        "issue_url": f"{api}/issues/{item.issue_number}",
        "body": item.body,
        "user": user(base, item.user_login, state.user_id(item.user_login)),
        "created_at": iso(item.created_at),
        "updated_at": iso(item.updated_at),
        "author_association": "NONE",
    }


def deployment(state: EmulatorState, base: str, item: EmuDeployment) -> dict[str, Any]:
    api = f"{base}/repos/{item.owner}/{item.repo}"
    return {
        "id": item.id,
        "node_id": node_id("Deployment", item.id),
        "url": f"{api}/deployments/{item.id}",
        "statuses_url": f"{api}/deployments/{item.id}/statuses",
        "repository_url": api,
        "sha": item.sha,
        "ref": item.ref,
        "task": item.task,
        "payload": item.payload,
        "original_environment": item.environment,
        "environment": item.environment,
        "description": item.description,
        "creator": user(base, item.creator, state.user_id(item.creator)),
        "created_at": iso(item.created_at),
        "updated_at": iso(item.updated_at),
        "transient_environment": item.transient,
        "production_environment": item.production,
    }


def deployment_status(
    state: EmulatorState, base: str, parent: EmuDeployment, item: EmuDeploymentStatus
) -> dict[str, Any]:
    api = f"{base}/repos/{parent.owner}/{parent.repo}"
    return {
        "id": item.id,
        "node_id": node_id("DeploymentStatus", item.id),
        "url": f"{api}/deployments/{parent.id}/statuses/{item.id}",
        "deployment_url": f"{api}/deployments/{parent.id}",
        "repository_url": api,
        "state": item.state,
        "description": item.description,
        "environment": item.environment,
        "environment_url": item.environment_url,
        "log_url": item.log_url,
        "target_url": item.log_url,
        "creator": user(base, item.creator, state.user_id(item.creator)),
        "created_at": iso(item.created_at),
        "updated_at": iso(item.created_at),
    }


def runner_labels(item: EmuRunner) -> list[dict[str, Any]]:
    return [
        {"id": index + 1, "name": name, "type": kind}
        for index, (name, kind) in enumerate(item.labels)
    ]


def runner(item: EmuRunner) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": item.name,
        "os": item.os,
        "status": item.status,
        "busy": item.busy,
        "ephemeral": item.ephemeral,
        "runner_group_id": item.runner_group_id,
        "labels": runner_labels(item),
    }
