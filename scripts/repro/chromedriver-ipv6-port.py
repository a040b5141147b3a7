#!/usr/bin/env python3
"""chromedriver exits with status 1 when the port it is given is taken on ::1, even if it is
free on 127.0.0.1 ("IPv6 port not available. Exiting..."). With --port=0 it takes an ephemeral
IPv4 port and then the same number on ::1, which a connection to `localhost` may hold: the
cause of the one unexplained red CI run of stop 18. The harness's free_port() therefore picks a
port free on both loopbacks (harness/src/browser/webdriver.rs).

Run: python3 scripts/repro/chromedriver-ipv6-port.py   (prints the exit code and the log)
"""
import socket
import subprocess
import time

taken = socket.socket(socket.AF_INET6)
taken.bind(("::1", 0))
taken.listen()
port = taken.getsockname()[1]
driver = subprocess.Popen(
    ["chromedriver", f"--port={port}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
)
time.sleep(2)
code = driver.poll()
if code is None:
    driver.kill()
print(f"port {port} taken on ::1 only; chromedriver exit code: {code}")
print(driver.stdout.read().decode()[-300:])
