import http.server
import os
import re
import threading
import unittest
import urllib.error
import urllib.request

import app


class AppTest(unittest.TestCase):
    def setUp(self):
        os.environ["APP_VERSION"] = "7c77eb36"
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), app.Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.addCleanup(self.server.server_close)
        self.addCleanup(self.server.shutdown)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def get(self, path):
        try:
            with urllib.request.urlopen(self.url + path) as r:
                return r.status, r.read().decode(), r.headers["env"]
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(), e.headers["env"]

    def test_endpoints(self):
        code, body, env = self.get("/")
        self.assertEqual(code, 200)
        self.assertRegex(body, re.compile(r"^[a-z]+_[a-z]+\n$"))
        self.assertEqual(env, app.ENV)
        self.assertEqual(self.get("/version"), (200, "7c77eb36\n", app.ENV))
        self.assertEqual(self.get("/nope")[0], 404)


if __name__ == "__main__":
    unittest.main()
