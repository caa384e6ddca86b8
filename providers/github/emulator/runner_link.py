"""The link between an emulated host and the GitHub emulator: a runner process that starts
with a JIT config comes online on GitHub with the labels it was registered with, and goes
offline when it stops. Real runners do this themselves; the Dokploy emulator and the test
SSH host call this instead of running the runner binary.

A registration token (not a JIT config) names no runner, so a process started with one
registers itself: `started_with_token` adds the runner by name and labels, as `config.sh`
would, and brings it online.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable

from providers.github.emulator.state import EmulatorError, EmulatorState


class RunnerLink:
    """In-process link to one GitHub emulator's state."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def runner_id_of(self, jit_config: str) -> int | None:
        """The runner a JIT config registers, or None for something that is not one."""
        try:
            config = json.loads(base64.b64decode(jit_config, validate=True))
            runner_id = config[".runner"]["id"]
        except (binascii.Error, ValueError, KeyError, TypeError):
            return None
        return runner_id if isinstance(runner_id, int) else None

    def started(self, jit_config: str) -> bool:
        """The process came up: its runner goes online. False when GitHub would refuse the
        config (unknown or deleted runner), as the real runner exits on a bad config."""
        runner_id = self.runner_id_of(jit_config)
        if runner_id is None or runner_id not in self.state.runners:
            return False
        self.state.set_runner(runner_id, status="online")
        return True

    def started_with_token(
        self, scope: str, name: str, token: str, labels: Iterable[str], *, ephemeral: bool
    ) -> bool:
        if token not in self.state.issued_runner_tokens:
            return False
        existing = [r for r in self.state.runners_in(scope) if r.name == name]
        if existing:
            self.state.set_runner(existing[0].id, status="online")
            return True
        self.state.add_runner(scope, name, status="online", labels=labels, ephemeral=ephemeral)
        return True

    def stopped(self, jit_config: str) -> None:
        """The process stopped: its runner goes offline (and stays registered)."""
        runner_id = self.runner_id_of(jit_config)
        if runner_id is None:
            return
        try:
            self.state.set_runner(runner_id, status="offline", busy=False)
        except EmulatorError:
            return  # deregistered already: nothing to mark

    def stopped_by_name(self, scope: str, name: str) -> None:
        for runner in self.state.runners_in(scope):
            if runner.name == name:
                self.state.set_runner(runner.id, status="offline", busy=False)
