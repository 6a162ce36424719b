"""A few of every user class at once, with a short national meeting: what `make test` runs."""

from locust import events

from loadtests import hooks
from loadtests.admin import MonitorUser, StormAdmin
from loadtests.endpoint import EndpointUser
from loadtests.media import MediaUser, StudioUser
from loadtests.organizer import OrganizerUser
from loadtests.shapes import Smoke

__all__ = ["EndpointUser", "MediaUser", "MonitorUser", "OrganizerUser", "Smoke", "StormAdmin", "StudioUser"]

hooks.install(events)
