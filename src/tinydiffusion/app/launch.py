"""Start the explorer: offline, on this machine only unless asked, with no share link and no telemetry.

Gradio reports usage and checks for new versions over the network unless ``GRADIO_ANALYTICS_ENABLED``
is ``False``; it is set here before Gradio is imported, and every Blocks is built with
``analytics_enabled=False`` as well. The default theme's fonts are served by the app itself (Gradio
ships them), so a page opened without internet looks as it does online.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import socket
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .runs import Limits, RunRegistry

DEFAULT_HOST = "127.0.0.1"
#: The ports tried when none is given (Gradio's usual range).
FIRST_PORT, PORT_TRIES = 7860, 100


@dataclass
class Server:
    """A running explorer: its Gradio app, its address, and the folder of generated files it owns."""

    app: object | None  #: the gradio.Blocks (None until it is built)
    url: str
    work_dir: Path

    def close(self) -> None:
        """Stop serving and delete the generated files."""
        if self.app is not None:
            self.app.close()  # type: ignore[attr-defined]
        shutil.rmtree(self.work_dir, ignore_errors=True)


def import_gradio():
    """The gradio module, with telemetry switched off; one clear error when the ``[app]`` extra is missing."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    try:
        import gradio
    except ImportError:
        raise UserError("the app needs Gradio, which is not installed; install the extra: "
                        "pip install 'tinydiffusion[app]'") from None
    return gradio


def start(registry: RunRegistry, limits: Limits = Limits(), *, host: str = DEFAULT_HOST, port: int | None = None,
          open_browser: bool = False, block: bool = False, quiet: bool = False) -> Server:
    """Build and serve the explorer; with ``block`` this returns only after Ctrl-C (and the server is closed)."""
    gr = import_gradio()
    from .builder import CSS, build_app

    if port is not None and not 1 <= port <= 65535:
        raise UserError(f"--port must be between 1 and 65535, got {port}")
    free = _free_port(host, [port] if port is not None else list(range(FIRST_PORT, FIRST_PORT + PORT_TRIES)))
    work_dir = Path(tempfile.mkdtemp(prefix="tinydiffusion-app-"))
    server = Server(None, "", work_dir)
    try:
        server.app = app = build_app(registry, limits, work_dir)
        app.queue(default_concurrency_limit=1)
        _, url, _ = app.launch(server_name=host, server_port=free, share=False,
                               inbrowser=open_browser, prevent_thread_lock=True, show_error=True, quiet=quiet,
                               ssr_mode=False, pwa=False, mcp_server=False, enable_monitoring=False,
                               footer_links=["api", "settings"], allowed_paths=[str(work_dir)],
                               theme=gr.themes.Default(), css=CSS)
    except BaseException:
        server.close()
        raise
    server.url = url
    if block:
        try:
            app.block_thread()
        finally:
            server.close()
    return server


def _free_port(host: str, ports: list[int]) -> int:
    """The first of ``ports`` that nothing listens on (one clear error otherwise)."""
    for port in ports:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except socket.gaierror as exc:
                raise UserError(f"--host {host}: {exc.strerror}; give an address such as 127.0.0.1") from None
            except OSError:
                continue
            return port
    if len(ports) == 1:
        raise UserError(f"port {ports[0]} on {host} is in use (or not allowed); choose another with --port")
    raise UserError(f"no free port from {ports[0]} to {ports[-1]} on {host}; choose one with --port")
