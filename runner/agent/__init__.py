"""The Docker side of the runner: make one Docker host match what the control plane asks.

* :mod:`runner.agent.transport`: the one seam over the Docker Engine API (``DockerTransport``
  over the ``docker`` SDK; unit tests pass a fake with the same methods).
* :mod:`runner.agent.spec`: pure translation of an ECS task definition into container specs.
* :mod:`runner.agent.meshed`: pure specs of a meshed task's pause container, redirect and
  sidecar (Service Connect).
* :mod:`runner.agent.lifecycle`: pure task-state rules (dependsOn, health, why a task stopped).
* :mod:`runner.agent.host`: one Docker host: run, stop, adopt and watch the task containers.
* :mod:`runner.agent.worker`: one task's worker, driving its containers on its host.

The control-plane loop that hands tasks to their hosts is :mod:`runner.supervisor`.
"""
