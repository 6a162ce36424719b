"""The join storm: every commune online, then a national meeting booked a few minutes ahead."""

from locust import events

from loadtests import hooks
from loadtests.admin import MonitorUser, StormAdmin
from loadtests.endpoint import EndpointUser
from loadtests.media import MediaUser, StudioUser
from loadtests.shapes import JoinStorm

__all__ = ["EndpointUser", "JoinStorm", "MediaUser", "MonitorUser", "StormAdmin", "StudioUser"]

hooks.install(events)
