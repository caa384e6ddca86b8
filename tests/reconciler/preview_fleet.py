"""A product with previews, written as an operator would, for the preview lifecycle tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from providers.dokploy.emulator import Emulator
from reconciler.fleet import load_fleet
from reconciler.kinds.preview.lanes import AnchorView, preview_set, running_shas
from reconciler.records.ownership import snapshot
from tests.reconciler.conftest import store_fleet

PRODUCT = """\
apiVersion: setpoint.dev/v1
kind: Product
metadata: {{name: {name}}}
spec:
  repository: {repository}
  dokploy: {{project: {name}}}
  runtime: {{port: 3000, healthPath: /health}}
  lanes:
    - name: testing
      environment: testing
      image: ghcr.io/acme/{name}:main
      domains: [{{host: testing.{name}.example.com}}]
      healthChecks: [{{path: /health}}]
      apply: auto-safe
  preview:
    enabled: true
    label: preview
    templateLane: testing
    domain: "{{slug}}.preview.{name}.example.com"
    image: "{image}"
    maxActive: {max_active}
    gracePeriodMinutes: {grace}
    teardown: auto
    allowForks: {allow_forks}
    ttlHours: {ttl}
    deploy: {deploy}
"""


def product_yaml(name: str, **options: Any) -> str:
    values: dict[str, Any] = {
        "repository": f"acme/{name}",
        "image": f"ghcr.io/acme/{name}:pr-{{number}}-{{sha7}}",
        "max_active": 3,
        "grace": 0,
        "allow_forks": "[]",
        "ttl": "null",
        "deploy": "on-push",
    }
    values.update(options)
    return PRODUCT.format(name=name, **values)


def write_product(folder: Path, name: str, **options: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(product_yaml(name, **options))
    return path


def store_product(engine: Engine, folder: Path, name: str, **options: Any) -> None:
    write_product(folder, name, **options)
    store_fleet(engine, folder)


def preview_services(emulator: Emulator, product: str) -> dict[str, str | None]:
    """Each preview service of `product` in Dokploy and the image it runs (None: never
    deployed)."""
    running = {}
    for service_id, app in emulator.state.applications.items():
        if app["name"].startswith(f"{product}-pr-"):
            live = emulator.state.live.get(service_id)
            running[app["name"]] = live.docker_image if live else None
    return running


def deployments_of(emulator: Emulator, name: str) -> int:
    for service_id, app in emulator.state.applications.items():
        if app["name"] == name:
            return len(emulator.state.deployments(service_id))
    return 0


def views(engine: Engine, now: float) -> dict[str, AnchorView]:
    """What `previews list` shows, by lane."""
    shown = preview_set(load_fleet(engine), now, running_shas(snapshot(engine))).anchors
    return {view.lane: view for view in shown}


def listed(stdout: str) -> dict[int, dict[str, Any]]:
    """`previews list -o json` by pull request number."""
    return {row["pullRequest"]: row for row in json.loads(stdout)}
