"""The runner lane kind: one lane per self-hosted GitHub Actions runner slot of a RunnerPool.

`lanes.py` (pools, slots, names, labels), `hosts.py` (which host adapter serves which Host
type), `observe.py` + `observed.py` (GitHub's registrations joined with the host's
processes), `diff.py` (pure: what a slot needs, gated by the pool's opt-in), `ops.py`,
`policy.py`, `execute.py` + `register.py` (the only side effects), `listing.py` (`setpoint
runners list`), `kind.py` (wires them). `docs/runners.md` tells the policy and safety rules.
"""
