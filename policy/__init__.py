"""Policy as code over the synthesized app: rules every stack must satisfy."""
