"""The run stage: pipeline, terminate decision, retry policy, rate gate, shutdown."""
