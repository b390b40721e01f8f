"""A real executor plugin for tests: Argo's protocol over HTTP, in a few lines of Python."""

from __future__ import annotations

import textwrap

__all__ = ["PYTHON_PLUGIN"]

# Seed 000's python plugin, `plugin: {python: {expression: ...}}` evaluated over the template's inputs;
# run as `python plugin.py PORT` with env ARGO_TOKEN, PIDS (a file its pid is appended to per node), CRASH_AFTER.
PYTHON_PLUGIN = textwrap.dedent(
    """
    import json, os, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    PORT = int(sys.argv[1])
    CRASH_AFTER = int(os.environ.get("CRASH_AFTER", "0"))
    served = 0

    class Plugin(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            global served
            if self.path != "/api/v1/template.execute":
                return self.reply(404, {})
            if self.headers.get("Authorization", "") != "Bearer " + os.environ["ARGO_TOKEN"]:
                return self.reply(403, {"message": "bad token"})
            args = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            spec = args["template"].get("plugin", {}).get("python")
            if spec is None:
                return self.reply(200, {})
            parameters = {p["name"]: p.get("value") for p in args["template"].get("inputs", {}).get("parameters", [])}
            result = eval(spec["expression"], {}, {"parameters": parameters})
            with open(os.environ["PIDS"], "a") as out:
                out.write(f"{os.getpid()}\\n")
            self.reply(200, {"node": {"phase": "Succeeded", "message": args["workflow"]["metadata"]["name"],
                                      "outputs": {"parameters": [{"name": k, "value": str(v)} for k, v in result.items()]}}})
            served += 1
            if CRASH_AFTER and served >= CRASH_AFTER:
                self.wfile.flush()
                os._exit(3)

    HTTPServer(("127.0.0.1", PORT), Plugin).serve_forever()
    """
)
