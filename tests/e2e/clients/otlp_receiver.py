"""A loopback OTLP/HTTP trace receiver for tests/e2e/otlp.rs.

Decodes each POST to /v1/traces with the official protobuf definitions (PyPI
`opentelemetry-proto`) and appends it to OUT as one JSON line (protobuf's JSON mapping, ids in
lowercase hex), then answers as a collector does: an ExportTraceServiceResponse, protobuf.
A request that does not decode is answered 400 and recorded as {"error": ...}.

Usage: otlp_receiver.py OUT   (prints "port N" once listening on 127.0.0.1)
"""

import base64
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

OUT = sys.argv[1]


def hexify(d):
    """Trace and span ids arrive base64-encoded in the JSON mapping: make them hex."""
    if isinstance(d, dict):
        for k, v in list(d.items()):
            if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str):
                d[k] = base64.b64decode(v).hex()
            else:
                hexify(v)
    elif isinstance(d, list):
        for x in d:
            hexify(x)
    return d


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        record = {
            "path": self.path,
            "content_type": self.headers.get("content-type", ""),
            "headers": {k.lower(): v for k, v in self.headers.items()},
        }
        try:
            req = trace_service_pb2.ExportTraceServiceRequest()
            req.ParseFromString(body)
            record["request"] = hexify(MessageToDict(req))
            status, reply = 200, trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        except Exception as e:  # noqa: BLE001 - anything undecodable is the test's failure
            record["error"] = repr(e)
            status, reply = 400, b""
        with open(OUT, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        self.send_response(status)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


server = HTTPServer(("127.0.0.1", 0), Handler)
print("port", server.server_address[1], flush=True)
server.serve_forever()
