"""A stand-in for the Hugging Face Hub: a local HTTP server speaking enough of its file-resolve API that
``huggingface_hub.hf_hub_download`` downloads from it through ``HF_ENDPOINT``.

``HEAD`` / ``GET /{owner}/{repo}/resolve/{revision}/{file}`` answer with the headers huggingface_hub
reads (``X-Repo-Commit``, ``ETag``, ``Content-Length``); a missing repository, revision or file gets
the 404 and ``X-Error-Code`` the hub sends. Each request is recorded in :attr:`HubServer.requests`.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


class HubServer:
    """``repos``: ``{"owner/name": {"files": {file: bytes}, "commit": 40-hex}}`` (one commit per repo, also
    reachable as ``main``). Use as a context manager; :attr:`url` is the endpoint."""

    def __init__(self, repos: dict[str, dict]) -> None:
        self.repos = repos
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _answer(self, *, body: bool) -> None:
                server.requests.append((self.command, unquote(self.path)))
                parts = unquote(self.path.split("?")[0]).strip("/").split("/")
                if len(parts) < 5 or parts[2] != "resolve":
                    return self._error(404, "RepoNotFound")
                repo, revision, file = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
                entry = server.repos.get(repo)
                if entry is None:
                    return self._error(404, "RepoNotFound")
                commit = entry["commit"]
                if revision not in ("main", commit):
                    return self._error(404, "RevisionNotFound")
                if file not in entry["files"]:
                    return self._error(404, "EntryNotFound", commit=commit)
                data = entry["files"][file]
                self.send_response(200)
                self.send_header("X-Repo-Commit", commit)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def _error(self, status: int, code: str, commit: str | None = None) -> None:
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", code)
                if commit:
                    self.send_header("X-Repo-Commit", commit)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def downloaded(self) -> list[str]:
        """The files fetched with GET, in order (``owner/name/file``)."""
        out = []
        for method, path in self.requests:
            parts = path.strip("/").split("/")
            if method == "GET":
                out.append("/".join([*parts[:2], *parts[4:]]))
        return out


def folder_files(folder) -> dict[str, bytes]:
    """Every file directly in ``folder``, by name (to serve a checkpoint folder written by a test)."""
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}
