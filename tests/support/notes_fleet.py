"""The one-product fleet the CLI's end-to-end tests reconcile: `notes`, with one secret."""

from __future__ import annotations

NOTES_SECRET = "notes-signing-key-0123456789abcdef"
NOTES_FLEET = """\
apiVersion: setpoint.dev/v1
kind: Product
metadata: {name: notes}
spec:
  repository: acme/notes
  dokploy: {project: notes}
  runtime: {port: 3000}
  env: {LOG_LEVEL: info}
  secrets:
    SIGNING_KEY: {fromEnv: SETPOINT_SECRET_NOTES_SIGNING_KEY}
  lanes:
    - name: testing
      environment: testing
      image: ghcr.io/acme/notes:main
      domains: [{host: testing.notes.example.com}]
      apply: auto-safe
"""
