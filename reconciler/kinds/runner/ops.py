"""The runner kind's operations: name, phase, effect, default risk, and the `allow` flag each
needs in its pool (the pool's explicit opt-in; an operator cannot override it).

One lane is one runner slot, so phases only order a lane's own actions: a slot is cleared
(orphans removed) before it is filled again.
"""

from __future__ import annotations

from enum import StrEnum

from reconciler.core.plans import Effect, Risk
from reconciler.kinds.base import OpSpec, op_table
from reconciler.kinds.runner import params

GITHUB = "github"  # the provider runner registrations live in
PROCESS_PROVIDER = "host"  # ownership records of runner processes: object id "<host>/<name>"


class RunnerOp(StrEnum):
    record = "record"  # remember what a pass saw (orphan, offline, gone); nothing outside
    remove_orphan = "remove_orphan"
    create = "create"
    relabel = "relabel"  # gives a drained-then-needed-again runner its pool's labels back
    restart = "restart"
    drain = "drain"
    remove = "remove"
    # Looks again at a runner created or restarted earlier that was not online yet.
    await_online = "await_online"


RUNNER_OPS = op_table(
    # Only records what this pass saw; changes nothing outside.
    OpSpec(RunnerOp.record, 0, Effect.update, Risk.safe, params=params.Record),
    OpSpec(RunnerOp.remove_orphan, 1, Effect.delete, Risk.destructive, params=params.RemoveOrphan),
    OpSpec(RunnerOp.create, 2, Effect.create, Risk.safe, params=params.Create),
    OpSpec(RunnerOp.relabel, 2, Effect.update, Risk.safe, params=params.Relabel),
    # Cleans up what the start made if the runner is not online in time.
    OpSpec(RunnerOp.await_online, 2, Effect.update, Risk.safe, params=params.AwaitOnline),
    OpSpec(RunnerOp.restart, 2, Effect.run, Risk.disruptive, params=params.Restart),
    # Deregisters and stops an idle runner; its host application stays, stopped.
    OpSpec(RunnerOp.drain, 3, Effect.run, Risk.disruptive, params=params.Drain),
    OpSpec(RunnerOp.remove, 3, Effect.delete, Risk.destructive, params=params.Remove),
)

# The pool's `allow` entry each operation needs; `record` changes nothing and needs none.
ALLOW_FLAG: dict[str, str | None] = {
    RunnerOp.record: None,
    RunnerOp.remove_orphan: "remove",
    RunnerOp.create: "create",
    RunnerOp.relabel: "create",
    RunnerOp.restart: "restart",
    RunnerOp.drain: "drain",
    RunnerOp.remove: "remove",
    RunnerOp.await_online: "create",
}
