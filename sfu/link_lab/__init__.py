"""The link lab (``vcs bench links``): does each commune receive what its real link carries?

A real node on the host side, one subscriber (aiortc or headless Chromium)
in a network namespace behind a router namespace whose downlink is shaped
with ``tbf`` and whose delay and loss come from a small user-space element
(the kernel has no ``netem``). Modules: `netns` (the network), `impairment`
(delay and loss), `scenarios` (the four links), `node` and `peers` (the
processes), `receivers`, `figures` (what is printed) and `run`.
"""
