"""What every unitcorn process shares about being a process: signals, heartbeats, exit codes, environment.

Below both `arbiter/` (the master) and `workers/`, and below `cli.py`: the master and a worker
meet here (a worker writes the heartbeat slot the master reads, and exits with the code the
master classifies) without either importing the other. A package rather than loose modules so
the rule is one line: nothing in it imports anything else from unitcorn (test_architecture.py).
"""
