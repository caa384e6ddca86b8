"""Product documents for tests: the spec as a dict, and a whole document as YAML text."""

from __future__ import annotations

from typing import Any

PROD_IMAGE_DIGEST = "sha256:" + "a" * 64


def product_spec(**overrides: Any) -> dict[str, Any]:
    """A valid `shop` product spec (a testing lane and a prod lane pinned by digest), with
    `overrides` replacing whole fields."""
    spec: dict[str, Any] = {
        "repository": "acme/shop",
        "dokploy": {"project": "shop"},
        "runtime": {"port": 8080},
        "lanes": [
            {"name": "testing", "image": "ghcr.io/acme/shop:main"},
            {"name": "prod", "image": f"ghcr.io/acme/shop@{PROD_IMAGE_DIGEST}"},
        ],
    }
    spec.update(overrides)
    return spec


def product_yaml(name: str = "orca", lanes: str = "", top: str = "") -> str:
    """A Product document as an operator writes it: `lanes` is the YAML under `lanes:`,
    `top` any spec fields put before it (both indented as in the file)."""
    return (
        "apiVersion: setpoint.dev/v1\n"
        "kind: Product\n"
        "metadata:\n"
        f"  name: {name}\n"
        "spec:\n"
        "  repository: acme/orca\n"
        "  dokploy:\n"
        "    project: orca\n"
        "  runtime:\n"
        "    port: 8080\n"
        f"{top}"
        "  lanes:\n"
        f"{lanes}"
    )
