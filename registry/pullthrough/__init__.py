"""The pull-through cache: repositories under a rule's prefix are filled from an upstream
OCI registry on first pull and served from the registry's own storage from then on.

* :mod:`registry.pullthrough.rules` (pure): rule validation, prefix matching, the refresh
  decision, the credential secret's format;
* :mod:`registry.pullthrough.challenge` (pure): ``WWW-Authenticate`` parsing;
* :mod:`registry.pullthrough.upstream`: the aiohttp client of one upstream (Basic and the
  Docker token flow, timeouts, bounded manifest reads, streamed blobs);
* :mod:`registry.pullthrough.cache`: :class:`~registry.pullthrough.cache.PullThrough`, what the
  manifest and blob handlers ask on a miss (single-flight fetches, digest-checked storage).

The ECR operations that manage rules are :mod:`registry.ecr.pullthrough`; see
``docs/registry.md`` ("Pull-through cache").
"""
