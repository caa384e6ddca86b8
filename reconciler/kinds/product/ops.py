"""The product kind's operations on Dokploy: name, phase, effect, default risk, sharing,
and the model of each one's parameters (`params.py`).

Phases are the dependency order: a phase only uses what earlier phases made. Deletions go
last, so a failure earlier in a plan never leaves a lane with its old service gone.
"""

from __future__ import annotations

from enum import StrEnum

from reconciler.core.plans import Effect, Risk
from reconciler.kinds.base import OpSpec, op_table
from reconciler.kinds.product import params

DOKPLOY = "dokploy"  # the provider this kind works through
# The ownership registry's object type of an environment Setpoint created (never one it
# found): deleted with the last lane in it, once it holds nothing.
ENVIRONMENT = "environment"


class Op(StrEnum):
    create_project = "create_project"
    create_environment = "create_environment"
    take_environment = "take_environment"
    create_application = "create_application"
    create_compose = "create_compose"
    reclaim_service = "reclaim_service"
    inherit_service = "inherit_service"
    set_image = "set_image"
    set_replicas = "set_replicas"
    set_env = "set_env"
    set_compose_file = "set_compose_file"
    upsert_domain = "upsert_domain"
    delete_domain = "delete_domain"
    release_domain = "release_domain"
    deploy = "deploy"
    check_health = "check_health"
    delete_service = "delete_service"
    delete_environment = "delete_environment"


PRODUCT_OPS = op_table(
    # Lanes of one product share a project (and maybe an environment): made once.
    OpSpec(
        Op.create_project, 0, Effect.create, Risk.safe, shared=True, params=params.CreateProject
    ),
    OpSpec(
        Op.create_environment,
        1,
        Effect.create,
        Risk.safe,
        shared=True,
        params=params.CreateEnvironment,
    ),
    # A lane in an environment another lane created takes it over once that lane has no
    # service left in it, so the environment goes with the last lane in it; registry only.
    OpSpec(
        Op.take_environment,
        1,
        Effect.update,
        Risk.safe,
        shared=True,
        params=params.TakeEnvironment,
    ),
    OpSpec(Op.create_application, 2, Effect.create, Risk.safe, params=params.CreateService),
    OpSpec(Op.create_compose, 2, Effect.create, Risk.safe, params=params.CreateService),
    # Claims a service an interrupted apply created; changes nothing in Dokploy.
    OpSpec(Op.reclaim_service, 2, Effect.update, Risk.safe, params=params.ReclaimService),
    # Moves a renamed lane's service to it in the ownership registry; nothing in Dokploy.
    OpSpec(Op.inherit_service, 2, Effect.update, Risk.safe, params=params.InheritService),
    OpSpec(Op.set_image, 3, Effect.update, Risk.safe, params=params.SetImage),
    OpSpec(Op.set_compose_file, 3, Effect.update, Risk.safe, params=params.SetComposeFile),
    OpSpec(Op.set_replicas, 3, Effect.update, Risk.safe, params=params.SetReplicas),
    OpSpec(Op.set_env, 3, Effect.update, Risk.safe, params=params.SetEnv),
    # Frees a route on a service this plan deletes, for the lane that takes the route over
    # (a rename): before that lane's upsert_domain (phase 4), after its service exists. The
    # service's deletion is the one the blast-radius guard counts, not its domain.
    OpSpec(Op.release_domain, 3, Effect.update, Risk.disruptive, params=params.ReleaseDomain),
    OpSpec(Op.upsert_domain, 4, Effect.update, Risk.safe, params=params.UpsertDomain),
    OpSpec(Op.delete_domain, 4, Effect.delete, Risk.disruptive, params=params.DeleteDomain),
    OpSpec(Op.deploy, 5, Effect.run, Risk.safe, params=params.Deploy),
    # Runs a lane's health checks again after a deploy whose checks failed; deploys nothing.
    OpSpec(Op.check_health, 5, Effect.run, Risk.safe, params=params.CheckHealth),
    OpSpec(Op.delete_service, 6, Effect.delete, Risk.destructive, params=params.DeleteService),
    # An environment Setpoint created, once the last lane in it is gone and it is empty.
    OpSpec(
        Op.delete_environment,
        7,
        Effect.delete,
        Risk.destructive,
        params=params.DeleteEnvironment,
    ),
)
