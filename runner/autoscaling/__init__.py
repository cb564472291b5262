"""Application Auto Scaling for ECS services (issue 15): the pure decisions (:mod:`.decide`)."""
