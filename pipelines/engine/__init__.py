"""The top layer: the `ldp_engine` CLI, project loading, rendering, the state lock and the entry
points of pipeline processes (a pipeline's entry source, the local SDP driver)."""

__all__ = ["cli", "project", "render", "state_lock", "entry", "sdp_driver"]  # public modules; the rest is internal
