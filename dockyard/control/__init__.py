"""The control workers (``--control-workers N``): processes that share the public control
port, answer read-only operations themselves and forward the rest to the main process.

``workers`` is the package's interface; ``_http1`` (the HTTP/1.1 transport they serve the
port with) is private to it. The package imports no part and not the assembly
(``dockyard.platform``): the process entry point that builds a worker's Platform is
``dockyard.control_worker``, which the main process names when it starts the workers.
"""
