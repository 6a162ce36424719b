"""The Starlette application: JSON API, organizer UI, signaling mount and live updates."""
