"""How Setpoint shows itself to a person, below every adapter that does (cli, web, demo).

`words`: what the terminal and the review pages both say (risk words, a lane's one-word
state and the condition that explains it, a change's value, a plan's risk summary).
`failures`: the one line for a failure an operator can act on. `console` and `tables`:
plans, apply results, status and tables in a terminal (the CLI and the demo).
Nothing here imports an adapter, and nothing here writes.
"""
