"""CloudWatch Logs for the runner's containers (docs/logs.md): ``pattern`` and ``rules`` (pure),
``data`` (the log store's SQL), ``collector`` (container output into streams), ``api`` (the
``Logs_20140328`` operations) and ``service`` (wiring and the retention loop)."""
