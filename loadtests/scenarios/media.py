"""The media ramp: a studio publishing into one room and more and more real WHEP subscribers."""

from locust import events

from loadtests import hooks
from loadtests.media import MediaUser, StudioUser
from loadtests.shapes import MediaRamp

__all__ = ["MediaRamp", "MediaUser", "StudioUser"]

hooks.install(events)
