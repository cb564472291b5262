"""The test images are real: built from local busybox, they run on the real Docker Engine."""

from __future__ import annotations

import subprocess
import time
import urllib.request

from tests.support.images import echo_image
from tests.support.server import free_port


def get(url: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.read().decode().strip()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_the_echo_app_answers_its_version_and_relays_a_downstream_call(docker_engine):
    image = echo_image()
    down, up = free_port(), free_port()
    names = [f"dy-echo-down-{down}", f"dy-echo-up-{up}"]
    try:
        subprocess.run(
            ["docker", "run", "-d", "--rm", "--network", "host", "--name", names[0],
             "-e", "VERSION=v-down", "-e", f"PORT={down}", image], check=True, capture_output=True,
        )
        subprocess.run(
            ["docker", "run", "-d", "--rm", "--network", "host", "--name", names[1],
             "-e", "VERSION=v-up", "-e", f"PORT={up}",
             "-e", f"DOWNSTREAM_URL=http://127.0.0.1:{down}/", image], check=True, capture_output=True,
        )
        assert get(f"http://127.0.0.1:{up}/") == "v-up"
        assert get(f"http://127.0.0.1:{up}/cgi-bin/call") == "v-down"
    finally:
        subprocess.run(["docker", "rm", "-f", *names], capture_output=True)
