"""Serving a built page on 127.0.0.1 and driving it in headless Chromium (Playwright with the
system's browser; no browser download). Used by tests/test_export_web.py and benchmark.py.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import importlib.util
import os
import shutil
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def load_module(filename, name):
    """The module in export/web/`filename`, imported by path under `name` (build.py's name would
    otherwise clash with PyPA's `build` package)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, filename))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def load_build():
    """export/web/build.py as a module."""
    return load_module("build.py", "draw_tf_web_build")


def chromium_path():
    """The system Chromium ($DRAW_TF_CHROMIUM, else chromium on the PATH), or None."""
    explicit = os.environ.get("DRAW_TF_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def missing_prerequisites():
    """Why the page cannot be driven here (a list of reasons; empty when everything is present)."""
    reasons = []
    if chromium_path() is None:
        reasons.append("no Chromium (apt-get install chromium, or set DRAW_TF_CHROMIUM)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reasons.append("no playwright Python package (pip install playwright; its driver ships in the wheel)")
    try:
        load_build().check_node_modules()
    except FileNotFoundError as e:
        npm = shutil.which("npm")
        reasons.append(str(e) if npm else f"no node/npm to install LiteRT.js ({e})")
    return reasons


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                      ".js": "text/javascript", ".tflite": "application/octet-stream"}

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(directory):
    """Serves `directory` over HTTP on 127.0.0.1 (a free port); yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=directory))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def browser():
    """A headless Chromium (the system's) through Playwright; yields (playwright, browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        instance = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=["--no-sandbox"])
        try:
            yield playwright, instance
        finally:
            instance.close()


class PageLog:
    """Console messages, uncaught exceptions and failed requests of a page."""

    def __init__(self, page):
        self.messages = []
        page.on("console", lambda m: self.messages.append((m.type, m.text)))
        page.on("pageerror", lambda e: self.messages.append(("pageerror", str(e))))
        page.on("requestfailed", lambda r: self.messages.append(("requestfailed", f"{r.url}: {r.failure}")))
        page.on("response", lambda r: r.status >= 400 and self.messages.append(("http", f"{r.status} {r.url}")))

    def errors(self):
        return [(kind, text) for kind, text in self.messages if kind in ("error", "pageerror", "requestfailed", "http")]

    def warnings(self):
        return [(kind, text) for kind, text in self.messages if kind == "warning"]


def open_page(browser_instance, url, timeout_ms=120_000, viewport=(1000, 900)):
    """Opens the page, waits until the sampler is loaded; returns (page, PageLog)."""
    page = browser_instance.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    log = PageLog(page)
    page.goto(url)
    page.wait_for_function(
        "['ready', 'drawing', 'done', 'error'].includes(document.body.dataset.state)", timeout=timeout_ms
    )
    if page.evaluate("document.body.dataset.state") == "error":
        raise RuntimeError(f"The page failed to load its model: {page.inner_text('#error')}\n{log.messages}")
    return page, log
