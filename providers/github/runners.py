"""Self-hosted runners at repository or organization scope."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from providers.github.api import GitHubApi
from providers.github.errors import GitHubValidationFailed, RunnerBusy
from providers.github.models import (
    JitConfig,
    Runner,
    RunnerLabel,
    RunnerScope,
    RunnerToken,
    labels_from_api,
)


class RunnersApi(GitHubApi):
    async def list_runners(self, scope: RunnerScope) -> list[Runner]:
        items = await self._paginate(scope.runners_path, key="runners")
        return [Runner.from_api(item) for item in items]

    async def get_runner(self, scope: RunnerScope, runner_id: int) -> Runner:
        return Runner.from_api(await self._json("GET", f"{scope.runners_path}/{int(runner_id)}"))

    async def delete_runner(self, scope: RunnerScope, runner_id: int) -> None:
        """Deregister a runner. Raises RunnerBusy while it runs a job (GitHub's 422)."""
        path = f"{scope.runners_path}/{int(runner_id)}"
        try:
            await self._request("DELETE", path)
        except GitHubValidationFailed as exc:
            raise RunnerBusy(
                exc.message, runner_id=int(runner_id), method="DELETE", path=path
            ) from None

    async def create_registration_token(self, scope: RunnerScope) -> RunnerToken:
        return _token(await self._json("POST", f"{scope.runners_path}/registration-token"))

    async def create_remove_token(self, scope: RunnerScope) -> RunnerToken:
        return _token(await self._json("POST", f"{scope.runners_path}/remove-token"))

    async def generate_jit_config(
        self,
        scope: RunnerScope,
        name: str,
        runner_group_id: int,
        labels: list[str],
        work_folder: str = "_work",
    ) -> JitConfig:
        data = await self._json(
            "POST",
            f"{scope.runners_path}/generate-jitconfig",
            json={
                "name": name,
                "runner_group_id": runner_group_id,
                "labels": labels,
                "work_folder": work_folder,
            },
        )
        return JitConfig.model_validate(
            {
                "runner": Runner.from_api(data["runner"]),
                "encoded_jit_config": data["encoded_jit_config"],
            }
        )

    async def list_runner_labels(self, scope: RunnerScope, runner_id: int) -> list[RunnerLabel]:
        return _labels(await self._json("GET", _labels_path(scope, runner_id)))

    async def add_runner_labels(
        self, scope: RunnerScope, runner_id: int, labels: list[str]
    ) -> list[RunnerLabel]:
        data = await self._json("POST", _labels_path(scope, runner_id), json={"labels": labels})
        return _labels(data)

    async def set_runner_labels(
        self, scope: RunnerScope, runner_id: int, labels: list[str]
    ) -> list[RunnerLabel]:
        """Replace the custom labels; read-only labels (self-hosted, OS, arch) stay."""
        data = await self._json("PUT", _labels_path(scope, runner_id), json={"labels": labels})
        return _labels(data)

    async def remove_runner_label(
        self, scope: RunnerScope, runner_id: int, name: str
    ) -> list[RunnerLabel]:
        path = f"{_labels_path(scope, runner_id)}/{quote(name, safe='')}"
        return _labels(await self._json("DELETE", path))


def _labels_path(scope: RunnerScope, runner_id: int) -> str:
    return f"{scope.runners_path}/{int(runner_id)}/labels"


def _labels(data: dict[str, Any]) -> list[RunnerLabel]:
    return labels_from_api(data["labels"])


def _token(data: dict[str, Any]) -> RunnerToken:
    return RunnerToken.model_validate({"token": data["token"], "expires_at": data["expires_at"]})
