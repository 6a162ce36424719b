"""Scenario locustfiles, one load shape each: `locust -f loadtests/scenarios/<name>.py` (the runner does this)."""
