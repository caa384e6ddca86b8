"""The Dokploy emulator's side of the runner link: an application whose env carries a runner's
registration (the env the Dokploy container host adapter writes) comes online in the GitHub
emulator when it is deployed or started, and goes offline when it is stopped or deleted.

A real runner container registers itself; the emulator runs no container, so it tells the
GitHub emulator what the runner would have done. Optional: without a link, applications are
only applications.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol
from urllib.parse import urlsplit

from desired_state.dotenv import parse

JIT_KEY = "ACTIONS_RUNNER_INPUT_JITCONFIG"
TOKEN_KEY = "ACTIONS_RUNNER_INPUT_TOKEN"  # noqa: S105 -- a variable name, not a value


class RunnerLinkLike(Protocol):
    """What `providers.github.emulator.runner_link.RunnerLink` offers."""

    def started(self, jit_config: str) -> bool: ...

    def started_with_token(
        self, scope: str, name: str, token: str, labels: Iterable[str], *, ephemeral: bool
    ) -> bool: ...

    def stopped(self, jit_config: str) -> None: ...

    def stopped_by_name(self, scope: str, name: str) -> None: ...


def _parsed(env: str | None) -> dict[str, str]:
    return parse(env)  # as Dokploy hands env text to the container


def _runner_scope(values: dict[str, str]) -> str:
    """`https://github.com/OWNER/REPO` -> `OWNER/REPO`, from any GitHub (Enterprise) host."""
    url = values.get("ACTIONS_RUNNER_INPUT_URL", "")
    return urlsplit(url).path.strip("/") if "://" in url else url.strip("/")


def runner_started(link: RunnerLinkLike | None, env: str | None) -> None:
    values = _parsed(env)
    if link is None:
        return
    if JIT_KEY in values:
        link.started(values[JIT_KEY])
    elif TOKEN_KEY in values:
        labels = [x for x in values.get("ACTIONS_RUNNER_INPUT_LABELS", "").split(",") if x]
        link.started_with_token(
            _runner_scope(values),
            values.get("ACTIONS_RUNNER_INPUT_NAME", ""),
            values[TOKEN_KEY],
            labels,
            ephemeral=values.get("ACTIONS_RUNNER_INPUT_EPHEMERAL") == "true",
        )


def runner_stopped(link: RunnerLinkLike | None, env: str | None) -> None:
    values = _parsed(env)
    if link is None:
        return
    if JIT_KEY in values:
        link.stopped(values[JIT_KEY])
    elif TOKEN_KEY in values:
        link.stopped_by_name(_runner_scope(values), values.get("ACTIONS_RUNNER_INPUT_NAME", ""))
