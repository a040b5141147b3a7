#!/usr/bin/env python3
"""Minimal reproduction of the WebKitGTK hang the harness met (docs/webkit-hang.md).

No harness code: plain WebDriver over HTTP against WebKitWebDriver and MiniBrowser on an Xvfb
display of its own, and two tiny pages on loopback. A page on one origin has a button that
opens, with window.open, a page on another origin that closes itself 100 ms after it loads
(what the connector callback does). Each round navigates to the first page, clicks the button
(WebDriver Element Click), waits until the popup has closed, and asks for the window list.
Every WebDriver request has a deadline: a request that does not answer is the hang, reported
with the round and the command.

    scripts/repro/webkit-popup-hang.py --rounds 50              # quiet machine
    scripts/repro/webkit-popup-hang.py --rounds 50 --load 2     # two busy loops beside it
    scripts/repro/webkit-popup-hang.py --rounds 50 --proxy      # through an HTTP proxy, as the harness

Exit status: 0 when every round finished, 1 at the first request that did not answer.
"""

import argparse
import http.server
import json
import multiprocessing
import os
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

DEADLINE_S = 20


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(host, page):
    class Handler(Quiet):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", "0")))
            self.send_response(204)
            self.end_headers()

        def do_GET(self):
            body = page(self.path).encode()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = socketserver.ThreadingTCPServer((host, 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return "http://%s:%d" % (host, server.server_address[1])


class Proxy(Quiet):
    """A forwarding HTTP proxy (GET only), like the harness's recording proxy without the
    recorder."""

    def do_GET(self):
        try:
            with urllib.request.urlopen(self.path, timeout=DEADLINE_S) as answer:
                body = answer.read()
                status = answer.status
        except urllib.error.HTTPError as error:
            body, status = error.read(), error.code
        self.send_response(status)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def busy():
    while True:
        pass


class WebDriver:
    def __init__(self, url):
        self.url = url
        self.session = None

    def call(self, method, path, body=None, what=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("content-type", "application/json")
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=DEADLINE_S) as answer:
                return json.loads(answer.read())["value"]
        except (socket.timeout, TimeoutError):
            raise Hang(what or "%s %s" % (method, path), time.monotonic() - started)
        except urllib.error.HTTPError as error:
            return json.loads(error.read()).get("value")

    def s(self, method, path, body=None, what=None):
        return self.call(method, "/session/%s%s" % (self.session, path), body, what)


class Hang(Exception):
    def __init__(self, command, after):
        super().__init__("%s did not answer within %.0f s" % (command, after))
        self.command = command


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--load", type=int, default=0, help="busy-loop processes beside it")
    parser.add_argument("--proxy", action="store_true", help="send the browser through a proxy")
    parser.add_argument("--new-window", action="store_true",
                        help="each round in a window opened by WebDriver's New Window, as the harness's named tabs")
    parser.add_argument("--focus", choices=["none", "maximize", "script", "switch-again"], default="none",
                        help="what to do to the window before the click")
    parser.add_argument("--script-before-click", action="store_true",
                        help="run a script in the page between finding the button and clicking it")
    parser.add_argument("--window-type", choices=["tab", "window"], default="tab")
    parser.add_argument("--like-callback", action="store_true",
                        help="the popup posts on BroadcastChannel, writes storage, posts to its opener and sends beacons before closing")
    args = parser.parse_args()

    other_host = "127.0.0.2"
    try:
        socket.socket().bind((other_host, 0))
    except OSError:
        other_host = "localhost"
    # What the connector callback does: three channels, reports, then close.
    callback_script = (
        "var data = {result: 'success', connectionId: 'c1'};"
        "try { new BroadcastChannel('alumia').postMessage(data); } catch (e) {}"
        "try { localStorage.removeItem('k'); localStorage.setItem('k', JSON.stringify(data)); } catch (e) {}"
        "try { if (window.opener) { window.opener.postMessage(data, location.origin); } } catch (e) {}"
        "for (var i = 0; i < 5; i++) { if (!navigator.sendBeacon('/report', JSON.stringify({i: i}))) {"
        "  fetch('/report', {method: 'POST', body: String(i)}); } }"
    ) if args.like_callback else ""
    popup = serve(other_host, lambda path: (
        "<!doctype html><title>popup</title><p>closing</p>"
        "<script>%s setTimeout(function () { window.close(); }, 100);</script>" % callback_script))
    opener = serve("127.0.0.1", lambda path: (
        "<!doctype html><title>opener</title><button id=open>Open</button><script>"
        "document.getElementById('open').onclick = function () {"
        "  var w = window.open('%s/popup?' + Date.now(), '_blank');"
        "  document.title = w === null ? 'blocked' : 'opener'; };"
        "</script>" % popup))

    loads = [multiprocessing.Process(target=busy, daemon=True) for _ in range(args.load)]
    for process in loads:
        process.start()

    read, write = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                            pass_fds=[write], stderr=subprocess.DEVNULL)
    os.close(write)
    display = os.read(read, 16).decode().strip()
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="webkitwebdriver-", suffix=".log", delete=False)
    driver = subprocess.Popen(["WebKitWebDriver", "--port=%d" % port], stdout=log, stderr=log,
                              env=dict(os.environ, DISPLAY=":" + display))
    wd = WebDriver("http://127.0.0.1:%d" % port)
    for _ in range(100):
        try:
            wd.call("GET", "/status")
            break
        except Exception:
            time.sleep(0.05)

    capabilities = {"webkitgtk:browserOptions": {
        "binary": "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser", "args": ["--automation"]}}
    if args.proxy:
        proxy = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Proxy)
        proxy.daemon_threads = True
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        capabilities["proxy"] = {"proxyType": "manual",
                                 "httpProxy": "127.0.0.1:%d" % proxy.server_address[1], "noProxy": []}
    status = 0
    try:
        wd.session = wd.call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}},
                             "New Session")["sessionId"]
        first = wd.s("GET", "/window", None, "Get Window Handle")
        blocked = 0
        for round_number in range(1, args.rounds + 1):
            if args.new_window:
                # As the harness opens a named tab: New Window, then switch to it.
                made = wd.s("POST", "/window/new", {"type": args.window_type}, "New Window")
                wd.s("POST", "/window", {"handle": made["handle"]}, "Switch To Window")
            wd.s("POST", "/url", {"url": opener + "/?round=%d" % round_number}, "Navigate To")
            if args.focus == "maximize":
                wd.s("POST", "/window/maximize", {}, "Maximize Window")
            elif args.focus == "script":
                wd.s("POST", "/execute/sync", {"script": "window.focus();", "args": []}, "Execute Script")
            elif args.focus == "switch-again":
                current = wd.s("GET", "/window", None, "Get Window Handle")
                wd.s("POST", "/window", {"handle": current}, "Switch To Window")
            button = wd.s("POST", "/element", {"using": "css selector", "value": "#open"}, "Find Element")
            element = list(button.values())[0]
            # As the harness tells its hostile page what to open: a script just before the click.
            if args.script_before_click:
                wd.s("POST", "/execute/sync", {"script": "document.body.setAttribute('data-round', arguments[0]);",
                                               "args": [round_number]}, "Execute Script")
            wd.s("POST", "/element/%s/click" % element, {}, "Element Click")
            deadline = time.monotonic() + 10
            expected = 2 if args.new_window else 1
            while True:
                handles = wd.s("GET", "/window/handles", None, "Get Window Handles")
                if len(handles) <= expected or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            title = wd.s("GET", "/title", None, "Get Title")
            print("round %d: %d window(s), title %r" % (round_number, len(handles), title), flush=True)
            if title == "blocked":
                blocked += 1
            if args.new_window:
                wd.s("DELETE", "/window", None, "Close Window")
                wd.s("POST", "/window", {"handle": first}, "Switch To Window")
        print("%d of %d popups blocked by the browser" % (blocked, args.rounds), flush=True)
        status = 1 if blocked else 0
    except Hang as hang:
        print("HANG in round %d: %s (driver log: %s)" % (round_number, hang, log.name), flush=True)
        status = 1
    finally:
        driver.kill()
        xvfb.terminate()
        for process in loads:
            process.terminate()
    sys.exit(status)


if __name__ == "__main__":
    main()
