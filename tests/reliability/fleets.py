"""The desired states the reliability suites drive Setpoint through.

Fault matrix: `BEFORE` is converged first; `AFTER` then asks for every kind of change at
once, so the one plan under fault has creates (a project, an environment, an application
and a compose service, domains), updates (image, replicas, env, compose file, a domain's
port), deploys of both service types, a domain delete and two service deletes.

Crash points: `crash_fleet(products)` is N products of two application lanes with a
domain each, all new: 12 actions per product.
"""

from __future__ import annotations

DIGEST = "sha256:" + "ab" * 32
# The one secret in the fleet; the suites look for it in everything Setpoint writes.
SECRET_ENV = {
    "SETPOINT_SECRET_ALPHA_DATABASE_URL": "postgres://alpha:reliability-s3cret-value@db.internal/alpha"
}
SECRET_VALUES = tuple(SECRET_ENV.values())
# Short, so a deploy whose polls see nothing (an empty deployment list) gives up quickly.
DEPLOY_TIMEOUT = 2

_ALPHA = """\
apiVersion: setpoint.dev/v1
kind: Product
metadata: {{name: alpha}}
spec:
  repository: acme/alpha
  dokploy: {{project: alpha}}
  runtime: {{port: 8080}}
  env: {{LOG_LEVEL: info}}
  secrets:
    DATABASE_URL: {{fromEnv: SETPOINT_SECRET_ALPHA_DATABASE_URL}}
  lanes:
    - name: testing
      environment: testing
      image: ghcr.io/acme/alpha:{testing_tag}
      domains: [{{host: testing.alpha.example.com, port: {testing_port}}}]
      deployTimeoutSeconds: {timeout}
    - name: prod
      image: ghcr.io/acme/alpha@{digest}
      replicas: {prod_replicas}
      env: {{LOG_LEVEL: {prod_log_level}}}
      domains: {prod_domains}
      deployTimeoutSeconds: {timeout}
"""

_BETA = """\
apiVersion: setpoint.dev/v1
kind: Product
metadata: {{name: beta}}
spec:
  repository: acme/beta
  dokploy: {{project: beta}}
  runtime: {{port: 8000}}
  lanes:
    - name: testing
      target: compose
      environment: testing
      env: {{MODE: {mode}}}
      composeFile: |
        services:
          api:
            image: ghcr.io/acme/beta-api:{api_tag}
      domains: [{{host: testing.beta.example.com, service: api}}]
      deployTimeoutSeconds: {timeout}
"""

_GAMMA = """\
apiVersion: setpoint.dev/v1
kind: Product
metadata: {{name: gamma}}
spec:
  repository: acme/gamma
  dokploy: {{project: gamma}}
  runtime: {{port: 8080}}
  lanes:
    - name: testing
      environment: testing
      image: ghcr.io/acme/gamma:main
      deployTimeoutSeconds: {timeout}
    - name: batch
      target: compose
      environment: testing
      composeFile: |
        services:
          job:
            image: ghcr.io/acme/gamma-job:main
      deployTimeoutSeconds: {timeout}
"""

_DELTA = """\
apiVersion: setpoint.dev/v1
kind: Product
metadata: {{name: delta}}
spec:
  repository: acme/delta
  dokploy: {{project: delta}}
  runtime: {{port: 8080}}
  env: {{LOG_LEVEL: info}}
  lanes:
    - name: testing
      environment: testing
      image: ghcr.io/acme/delta:main
      domains: [{{host: testing.delta.example.com}}]
      deployTimeoutSeconds: {timeout}
    - name: jobs
      target: compose
      composeFile: |
        services:
          worker:
            image: ghcr.io/acme/delta-worker:main
      domains: [{{host: jobs.delta.example.com, service: worker}}]
      deployTimeoutSeconds: {timeout}
"""

BEFORE = "---\n".join(
    [
        _ALPHA.format(
            testing_tag="main",
            testing_port=8080,
            digest=DIGEST,
            prod_replicas=1,
            prod_log_level="info",
            prod_domains="[{host: alpha.example.com}, {host: www.alpha.example.com}]",
            timeout=DEPLOY_TIMEOUT,
        ),
        _BETA.format(mode="green", api_tag="1", timeout=DEPLOY_TIMEOUT),
        _GAMMA.format(timeout=DEPLOY_TIMEOUT),
    ]
)

AFTER = "---\n".join(
    [
        _ALPHA.format(
            testing_tag="next",  # set_image
            testing_port=8081,  # domain.update
            digest=DIGEST,
            prod_replicas=2,  # application.update
            prod_log_level="warn",  # application.saveEnvironment
            prod_domains="[{host: alpha.example.com}]",  # domain.delete
            timeout=DEPLOY_TIMEOUT,
        ),
        _BETA.format(mode="blue", api_tag="2", timeout=DEPLOY_TIMEOUT),  # compose updates
        # gamma is gone: application.delete and compose.delete
        _DELTA.format(timeout=DEPLOY_TIMEOUT),  # every create
    ]
)

# Lane key -> Dokploy service name, for the lanes AFTER wants.
AFTER_LANES = {
    "product:alpha/testing": "alpha-testing",
    "product:alpha/prod": "alpha-prod",
    "product:beta/testing": "beta-testing",
    "product:delta/testing": "delta-testing",
    "product:delta/jobs": "delta-jobs",
}
# Lanes BEFORE made that AFTER keeps: their services must be the very same objects after.
KEPT_LANES = ("product:alpha/testing", "product:alpha/prod", "product:beta/testing")
# Services AFTER no longer wants.
REMOVED_SERVICES = ("gamma-testing", "gamma-batch")

_CRASH_PRODUCT = """\
apiVersion: setpoint.dev/v1
kind: Product
metadata: {{name: {name}}}
spec:
  repository: acme/{name}
  dokploy: {{project: {name}}}
  runtime: {{port: 8080}}
  env: {{LOG_LEVEL: info}}
  lanes:
    - name: testing
      environment: testing
      image: ghcr.io/acme/{name}:main
      domains: [{{host: testing.{name}.example.com}}]
      deployTimeoutSeconds: {timeout}
    - name: prod
      image: ghcr.io/acme/{name}@{digest}
      domains: [{{host: {name}.example.com}}]
      deployTimeoutSeconds: {timeout}
"""

CRASH_PRODUCTS = ("atlas", "birch", "cedar", "dune")


def crash_fleet(products: tuple[str, ...] = CRASH_PRODUCTS, deploy_timeout: int = 600) -> str:
    """`deploy_timeout`: the lanes' deployTimeoutSeconds (600, the default, unless given)."""
    return "---\n".join(
        _CRASH_PRODUCT.format(name=name, digest=DIGEST, timeout=deploy_timeout) for name in products
    )


def crash_lanes(products: tuple[str, ...] = CRASH_PRODUCTS) -> dict[str, str]:
    """Lane key -> service name of `crash_fleet(products)`."""
    return {
        f"product:{name}/{lane}": f"{name}-{lane}"
        for name in products
        for lane in ("testing", "prod")
    }
