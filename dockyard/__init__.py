"""Dockyard: a self-hosted OCI registry, ECS and Cloud Map on Docker (ECR API and mesh coming)."""

__version__ = "0.1.0"
