"""Meetings: booking rules, recurrence, conflicts, bandwidth plan, lifecycle jobs."""
