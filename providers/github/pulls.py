"""Pull requests: the open ones of a repository, and one by number."""

from __future__ import annotations

from providers.github.api import GitHubApi
from providers.github.models import PullRequest, RunnerScope


def repo_path(owner: str, repo: str) -> str:
    # RunnerScope validates both names, so nothing in them can reshape the URL path.
    scope = RunnerScope.for_repo(owner, repo)
    return f"/repos/{scope.owner}/{scope.repo}"


class PullsApi(GitHubApi):
    async def list_open_pulls(self, owner: str, repo: str) -> list[PullRequest]:
        """All open pull requests, every page; an error is raised, never read as "none"."""
        items = await self._paginate(
            f"{repo_path(owner, repo)}/pulls",
            params={"state": "open", "sort": "created", "direction": "asc"},
        )
        return [PullRequest.from_api(item) for item in items]

    async def get_pull(self, owner: str, repo: str, number: int) -> PullRequest:
        data = await self._json("GET", f"{repo_path(owner, repo)}/pulls/{int(number)}")
        return PullRequest.from_api(data)
