"""Lane kinds. Each supplies desired lanes, an observer, a differ and action executors;
the engine (planner, apply, audit, status) is shared by all of them."""
