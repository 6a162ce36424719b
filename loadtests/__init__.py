"""Locust load tests of the whole system: endpoint agents, organizers, the join storm, the media plane.

`python -m loadtests` (and `make loadtest`) provisions a deployment and runs
the scenarios in `loadtests/scenarios/` headless; see docs/loadtests.md.
Importing this package does not import Locust (which monkey-patches the
process); the user classes live in their own modules.
"""
