"""The `notes` product the rollback, request, preview and CLI tests reconcile, written out
once: `notes_fleet` takes what those tests vary (the testing lane's image, checks, apply
mode and health rules, a prod lane, a promotion gate, previews) and leaves the rest as
every one of them had it. `NOTES_FLEET` is the CLI's end-to-end fleet, with one secret."""

from __future__ import annotations

from collections.abc import Mapping


def notes_fleet(
    *,
    image: str = "ghcr.io/acme/notes:main",
    health_path: str | None = None,
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
    gate: str | None = None,
    environment: bool = True,
    health_check: str | None = "{}",
    apply: str | None = "auto-safe",
    on_failed_health: str | None = None,
    runtime_identity: bool | None = None,
    prod_image: str | None = None,
    preview: str | None = None,
) -> str:
    """The fleet's YAML: `notes` with its testing lane (and a prod lane with `prod_image`).

    `health_path` is the runtime's, `health_check` the testing lane's one check as a YAML
    flow mapping (None: no checks); `env` and `secrets` (name to the variable it comes
    from) are the product's; `gate` is the promotion gate as YAML; `preview` is the
    spec's `preview:` block, indented under `spec`. What is None is left out.
    """
    runtime = {"port": "3000"} | ({} if health_path is None else {"healthPath": health_path})
    lines = [
        "apiVersion: setpoint.dev/v1",
        "kind: Product",
        "metadata: {name: notes}",
        "spec:",
        "  repository: acme/notes",
        "  dokploy: {project: notes}",
        f"  runtime: {_flow(runtime)}",
    ]
    if env is not None:
        lines.append(f"  env: {_flow(env)}")
    if secrets is not None:
        from_env = {name: _flow({"fromEnv": variable}) for name, variable in secrets.items()}
        lines.append(f"  secrets: {_flow(from_env)}")
    if gate is not None:
        lines += ["  promotion:", f"    gate: {gate}"]
    lines += ["  lanes:", "    - name: testing"]
    if environment:
        lines.append("      environment: testing")
    lines += [f"      image: {image}", "      domains: [{host: testing.notes.example.com}]"]
    optional = {
        "healthChecks": None if health_check is None else f"[{health_check}]",
        "apply": apply,
        "onFailedHealth": on_failed_health,
        "runtimeIdentity": None if runtime_identity is None else str(runtime_identity).lower(),
    }
    lines += [f"      {key}: {value}" for key, value in optional.items() if value is not None]
    if prod_image is not None:
        lines += [
            "    - name: prod",
            f"      image: {prod_image}",
            "      domains: [{host: notes.example.com}]",
            "      healthChecks: [{}]",
        ]
    return "\n".join(lines) + "\n" + (preview or "")


def _flow(mapping: Mapping[str, str]) -> str:
    """A YAML flow mapping of plain values: `{key: value, ...}`."""
    return "{" + ", ".join(f"{key}: {value}" for key, value in mapping.items()) + "}"


NOTES_SECRET = "notes-signing-key-0123456789abcdef"
NOTES_FLEET = notes_fleet(
    env={"LOG_LEVEL": "info"},
    secrets={"SIGNING_KEY": "SETPOINT_SECRET_NOTES_SIGNING_KEY"},
    health_check=None,
)
