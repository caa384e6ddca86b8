"""Host adapters: clients for the machines and services Setpoint places products on.

`base.py` is the one protocol every adapter speaks (`HostAdapter`). An adapter that talks
HTTP builds on providers/http_core.py, as the Dokploy and GitHub
clients do: `send` for one exchange under a deadline, its own exception classes that
inherit `TransientFailure` for 5xx and 429, and `with_retries` with `idempotent` set
per call, so that a mutation that may have reached the host is never repeated blindly.
The module docstring of providers/http_core.py shows the whole pattern.
"""
