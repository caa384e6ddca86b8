"""The example fleet on a test's database: copies with edits, stored documents an older
Setpoint could have left, and converging it through the engine."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from desired_state.document import spec_hash
from desired_state.loader import load_text
from reconciler.core.apply import ApplyResult, apply_plan
from reconciler.core.planning import compute_plan
from reconciler.records.database import session_scope
from reconciler.records.desired import DesiredObject
from reconciler.runtime import Runtime, utcnow
from tests.conftest import EXAMPLES
from tests.reconciler.conftest import dokploy

# A product of one lane, for `.format(name=..., host=...)`.
NEW_PRODUCT = """\
apiVersion: setpoint.dev/v1
kind: Product
metadata:
  name: {name}
spec:
  repository: acme/{name}
  dokploy:
    project: {name}
  runtime:
    port: 8080
  lanes:
    - name: live
      image: ghcr.io/acme/{name}:main
      environment: testing
      domains:
        - host: {host}
"""


def example_fleet(
    tmp_path: Path, *, without: Collection[str] = (), edit: tuple[str, str, str] | None = None
) -> Path:
    """A copy of examples/fleet in `tmp_path/fleet`, leaving out the files named in
    `without`; `edit` is (file, old, new): that file with `old` (which must be there)
    replaced by `new`."""
    target = tmp_path / "fleet"
    target.mkdir(exist_ok=True)
    for source in (EXAMPLES / "fleet").glob("*.yaml"):
        if source.name in without:
            continue
        text = source.read_text()
        if edit is not None and source.name == edit[0]:
            assert edit[1] in text, f"{edit[1]!r} is not in {source.name}"
            text = text.replace(edit[1], edit[2])
        (target / source.name).write_text(text)
    return target


async def converge(runtime: Runtime, lanes: list[str] | None = None) -> ApplyResult:
    """Plan every lane (or `lanes`) and apply the plan; the apply must succeed."""
    plan = await compute_plan(runtime, lanes)
    result = await apply_plan(runtime, plan.plan_id)
    assert result.ok, result
    return result


def spec_of(text: str) -> dict[str, Any]:
    """The spec of the one document in `text`, as stored."""
    [loaded] = load_text(text)
    return loaded.document.spec_dict()


def store_unchecked(engine: Engine, name: str, spec: dict[str, Any]) -> None:
    """A Product stored as an older Setpoint (or a hand edit) could have: not validated."""
    with session_scope(engine) as session:
        session.add(
            DesiredObject(
                kind="Product",
                name=name,
                spec=spec,
                spec_hash=spec_hash(spec),
                source_file=f"{name}.yaml",
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )


async def hand_made_docs_service(runtime: Runtime, image: str) -> str:
    """A hand-made service with the docs-site testing lane's name, as an operator might have
    made before Setpoint (unowned, with an env line of its own); returns its id."""
    created = await dokploy(runtime).project_create("docs")
    environment = await dokploy(runtime).environment_create(created.project.project_id, "testing")
    app = await dokploy(runtime).application_create("docs-site-testing", environment.environment_id)
    await dokploy(runtime).application_save_docker_provider(app.application_id, docker_image=image)
    await dokploy(runtime).application_save_environment(
        app.application_id, "# hand-made\nKEEP=me\n"
    )
    return app.application_id
