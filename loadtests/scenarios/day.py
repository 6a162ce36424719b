"""A working day: every commune's agent heartbeating, organizers at work, a monitor.

With `--vcs-organizer-users 0 --vcs-expect-restart` it is the reconnect storm
the runner provokes by restarting the orchestrator during the hold.
"""

from locust import events

from loadtests import hooks
from loadtests.admin import MonitorUser
from loadtests.endpoint import EndpointUser
from loadtests.organizer import OrganizerUser
from loadtests.shapes import WorkingDay

__all__ = ["EndpointUser", "MonitorUser", "OrganizerUser", "WorkingDay"]

hooks.install(events)
