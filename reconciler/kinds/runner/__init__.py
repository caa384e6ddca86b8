"""The runner lane kind: one lane per self-hosted GitHub Actions runner slot of a RunnerPool."""
