"""The top layer: the `ldp_engine` CLI, project loading, rendering, the state lock and the entry
points of pipeline processes (a pipeline's entry source, the local SDP driver)."""
