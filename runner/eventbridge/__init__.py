"""EventBridge for ECS (issue 15 item 3): event patterns (:mod:`.pattern`)."""
