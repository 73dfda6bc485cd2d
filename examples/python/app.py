"""shipper's Python sample app, the twin of examples/hello.

"/" answers a random Docker-style name (distracted_clarke), "/version" the
short commit SHA from APP_VERSION, and every response carries the header
"env: python-<version>". Standard library only: requirements.txt is empty.
"""

import http.server
import os
import platform
import random
import sys

ADJECTIVES = ["admiring", "brave", "busy", "clever", "distracted", "eager", "ecstatic", "elegant",
              "focused", "gallant", "happy", "hopeful", "jolly", "keen", "laughing", "modest", "nostalgic",
              "peaceful", "quirky", "relaxed", "serene", "sharp", "stoic", "tender", "upbeat", "vibrant",
              "wizardly", "zealous"]
NAMES = ["albattani", "babbage", "bohr", "clarke", "curie", "darwin", "einstein", "euler", "feynman",
         "galileo", "goldberg", "hopper", "hypatia", "kepler", "knuth", "lamarr", "lovelace", "mccarthy",
         "meitner", "newton", "noether", "pasteur", "ritchie", "shannon", "thompson", "turing", "wozniak",
         "yonath"]

ENV = "python-" + platform.python_version()


def random_name():
    return random.choice(ADJECTIVES) + "_" + random.choice(NAMES)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every reply has a Content-Length

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/":
            self.reply(200, random_name())
        elif path == "/version":
            self.reply(200, os.environ.get("APP_VERSION") or "unknown")
        else:
            self.reply(404, "not found")

    def reply(self, code, text):
        body = (text + "\n").encode()
        self.send_response(code)
        self.send_header("env", ENV)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    port = int(os.environ.get("PORT") or 8080)
    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    print(f"python {os.environ.get('APP_VERSION') or 'unknown'} listening on 0.0.0.0:{port}",
          file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
