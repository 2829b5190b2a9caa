"""The README's first command: `desk demo` migrates, loads the demo desk and serves it."""

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.smtp import free_port

DESK = Path(sys.executable).with_name("desk")


def test_demo_command_serves_the_demo_desk(tmp_path):
    port = free_port()
    env = {**os.environ, "DESK_INSTANCE_PATH": str(tmp_path)}
    env.pop("DESK_DATABASE_URL", None)
    env.pop("DESK_REDIS_URL", None)
    server = subprocess.Popen(
        [str(DESK), "demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        page = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                url = f"http://127.0.0.1:{port}/profiles/freedonia/cluster-munition-ban-policy"
                with urllib.request.urlopen(url, timeout=2) as response:
                    page = response.read().decode()
                break
            except OSError:
                time.sleep(0.3)
        assert page is not None, "the demo server never answered"
        assert 'Last Updated: <time datetime="2026-03-02">2 March 2026</time>' in page
        assert (tmp_path / "desk.sqlite3").exists()
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=20)
    assert "editor@desk.example" in output
    assert "password: demo-editor-pass" in output
