"""The media ramp: a studio publishing into one room (or hosting a meeting) and more and more real WHEP subscribers."""

from locust import events

from loadtests import hooks
from loadtests.admin import MediaAdmin
from loadtests.media import MediaUser, StudioUser
from loadtests.shapes import MediaRamp

__all__ = ["MediaAdmin", "MediaRamp", "MediaUser", "StudioUser"]

hooks.install(events)
