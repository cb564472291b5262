"""Dockyard: a self-hosted ECR + ECS + Cloud Map + App Mesh on Docker and Envoy."""

__version__ = "0.1.0"
