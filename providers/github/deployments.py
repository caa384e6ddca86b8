"""GitHub Deployments for previews, so the pull request shows where its preview lives."""

from __future__ import annotations

from typing import Any

from providers.github.api import GitHubApi
from providers.github.errors import GitHubError
from providers.github.models import DeploymentRef, DeploymentState, DeploymentStatusRef
from providers.github.pulls import repo_path


class DeploymentsApi(GitHubApi):
    async def create_deployment(
        self,
        owner: str,
        repo: str,
        ref: str,
        environment: str,
        *,
        description: str | None = None,
        transient: bool = True,
        payload: dict[str, Any] | None = None,
    ) -> DeploymentRef:
        """Record a deployment of `ref` to `environment` (not retried: it is a create).

        `required_contexts` is empty because a preview is deployed while checks still
        run, and `auto_merge` is off because Setpoint must never push to a branch.
        """
        body: dict[str, Any] = {
            "ref": ref,
            "environment": environment,
            "auto_merge": False,
            "required_contexts": [],
            "transient_environment": transient,
            "production_environment": False,
            "payload": payload or {},
        }
        if description is not None:
            body["description"] = description[:140]
        path = f"{repo_path(owner, repo)}/deployments"
        response = await self._request("POST", path, json=body)
        if response.status_code != 201:
            # 202 means GitHub merged the default branch instead of creating anything.
            raise GitHubError(
                "deployment not created", status=response.status_code, method="POST", path=path
            )
        return DeploymentRef.from_api(response.json())

    async def list_deployments(
        self,
        owner: str,
        repo: str,
        *,
        environment: str | None = None,
        ref: str | None = None,
    ) -> list[DeploymentRef]:
        params: dict[str, str | int] = {}
        if environment is not None:
            params["environment"] = environment
        if ref is not None:
            params["ref"] = ref
        items = await self._paginate(f"{repo_path(owner, repo)}/deployments", params=params)
        return [DeploymentRef.from_api(item) for item in items]

    async def list_deployment_statuses(
        self, owner: str, repo: str, deployment_id: int
    ) -> list[DeploymentStatusRef]:
        """A deployment's statuses, newest first (as GitHub lists them)."""
        items = await self._paginate(
            f"{repo_path(owner, repo)}/deployments/{int(deployment_id)}/statuses"
        )
        return [DeploymentStatusRef.from_api(item) for item in items]

    async def create_deployment_status(
        self,
        owner: str,
        repo: str,
        deployment_id: int,
        state: DeploymentState,
        *,
        environment_url: str | None = None,
        log_url: str | None = None,
        description: str | None = None,
    ) -> DeploymentStatusRef:
        body: dict[str, Any] = {"state": state}
        if environment_url is not None:
            body["environment_url"] = environment_url
        if log_url is not None:
            body["log_url"] = log_url
        if description is not None:
            body["description"] = description[:140]  # GitHub's limit
        data = await self._json(
            "POST",
            f"{repo_path(owner, repo)}/deployments/{int(deployment_id)}/statuses",
            json=body,
        )
        return DeploymentStatusRef.from_api(data)
