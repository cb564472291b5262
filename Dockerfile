# Dockyard's own image: `dockyard up` on all interfaces.
#
#   docker build -t dockyard .
#   docker run -d --name dockyard --network host \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     -v dockyard-data:/var/lib/dockyard \
#     dockyard
#
# The Docker socket mount lets the runner start task containers on the host's Docker Engine
# (the local container instance); without it the registry, discovery and control API still
# work but no task can run. Host networking keeps the default ports (5000, 8080, 18000, 8053)
# reachable and lets tasks in host/awsvpc mode reach the registry on 127.0.0.1:5000.
# The admin credentials are written to /var/lib/dockyard/admin-credentials on first start.
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    DOCKYARD_DATA_DIR=/var/lib/dockyard DOCKYARD_HOST=0.0.0.0 \
    PATH=/opt/venv/bin:$PATH
WORKDIR /opt/dockyard
COPY requirements.lock pyproject.toml README.md ./
# A virtualenv of its own: works on python:*-slim and on a distribution's python3 alike.
RUN python3 -m venv /opt/venv && pip install --no-cache-dir -r requirements.lock
COPY dockyard ./dockyard
COPY registry ./registry
COPY discovery ./discovery
COPY runner ./runner
COPY mesh ./mesh
RUN pip install --no-cache-dir --no-deps .
VOLUME /var/lib/dockyard
EXPOSE 5000 8080 18000 8053/udp 8053/tcp
ENTRYPOINT ["dockyard"]
CMD ["up", "--host", "0.0.0.0"]
