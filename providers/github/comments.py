"""One bot comment per pull request, found again by a hidden marker and kept current."""

from __future__ import annotations

from providers.github.api import GitHubApi
from providers.github.models import CommentUpsert, IssueComment
from providers.github.pulls import repo_path


def with_marker(marker: str, body: str) -> str:
    """The body as stored: the marker first, so the next pass can find the comment."""
    return body if marker in body else f"{marker}\n{body}"


class CommentsApi(GitHubApi):
    async def list_issue_comments(
        self, owner: str, repo: str, issue_number: int
    ) -> list[IssueComment]:
        items = await self._paginate(
            f"{repo_path(owner, repo)}/issues/{int(issue_number)}/comments"
        )
        return [IssueComment.from_api(item) for item in items]

    async def upsert_marker_comment(
        self, owner: str, repo: str, issue_number: int, marker: str, body: str
    ) -> CommentUpsert:
        """Create, update or leave alone the comment that carries `marker`.

        Every page is searched, so an old comment on page 3 is updated rather than
        duplicated; an unchanged body costs no write (and no notification). When
        several comments carry the marker (a past race), the oldest one is kept current.
        """
        if not marker.strip():
            raise ValueError("marker must not be empty")
        wanted = with_marker(marker, body)
        comments = await self.list_issue_comments(owner, repo, issue_number)
        existing = next((c for c in comments if marker in c.body), None)
        base = repo_path(owner, repo)
        if existing is not None and existing.body == wanted:
            return CommentUpsert(
                action="unchanged", comment_id=existing.id, html_url=existing.html_url
            )
        if existing is not None:
            data = await self._json(
                "PATCH", f"{base}/issues/comments/{existing.id}", json={"body": wanted}
            )
            return CommentUpsert(action="updated", comment_id=data["id"], html_url=data["html_url"])
        data = await self._json(
            "POST", f"{base}/issues/{int(issue_number)}/comments", json={"body": wanted}
        )
        return CommentUpsert(action="created", comment_id=data["id"], html_url=data["html_url"])
