"""The server under load and abuse, over real sockets (uvicorn on 127.0.0.1, a free port): bounded load
with no 5xx and bounded memory, oversized bodies, slow clients, wrong content types, overload -> 503."""

from __future__ import annotations

import asyncio
import io
import socket
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from _serve_helpers import LiveServer, synthetic_images
from conftest import REPO
from handsign.infer.predict import Predictor
from handsign.serve import Limits, create_app, uvicorn_options


def live(predictors, **limits):
    limits = Limits(**limits)
    return LiveServer(create_app(predictors, limits), **uvicorn_options(limits))


def png(seed=0) -> bytes:
    x, _ = synthetic_images(1, 24, seed=seed)
    b = io.BytesIO()
    Image.fromarray((x[0, 0] * 255).astype(np.uint8)).save(b, "PNG")
    return b.getvalue()


def rss_bytes(pid="self") -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def load(url: str, n: int, concurrency: int) -> tuple[dict, list]:
    """n requests (3 of 4 /predict multipart, 1 of 4 v2 infer) at `concurrency`; -> ({status: count}, seconds)."""
    images = [png(i) for i in range(8)]
    x, _ = synthetic_images(1, 24, seed=3)
    infer = {"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": x.ravel().tolist()}]}
    statuses, latencies, todo = {}, [], iter(range(n))
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=concurrency)) as c:
        async def worker():
            for i in todo:
                t = time.perf_counter()
                if i % 4 == 3:
                    r = await c.post("/v2/models/asl/infer", json=infer)
                else:
                    r = await c.post("/predict", files={"file": (f"{i}.png", images[i % 8], "image/png")})
                latencies.append(time.perf_counter() - t)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses, latencies


def test_bounded_load_no_5xx_and_bounded_memory(predictors):
    with live(predictors) as server:
        asyncio.run(load(server.url, 100, 32))  # warm-up: thread pool, allocator, connections
        before = rss_bytes()
        statuses, latencies = asyncio.run(load(server.url, 400, 32))
        growth = rss_bytes() - before
    assert statuses == {200: 400}, statuses
    assert growth < 64 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB over 400 requests"
    assert np.percentile(latencies, 99) < 10  # seconds; generous for 2 shared cores


def _raw(port: int, head: bytes, timeout=10) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(head)
    return s


def _read_all(s: socket.socket) -> bytes:
    reply = b""
    try:
        while chunk := s.recv(65536):
            reply += chunk
    except ConnectionResetError:
        pass
    return reply


@pytest.mark.parametrize("chunked", [False, True])
def test_oversized_body_is_413_without_reading_it_whole(predictors, chunked, monkeypatch):
    """A client that says (or streams) 1 GB gets 413 after at most the limit + the drain (64 MiB; 4 here)."""
    import handsign.serve.limits

    monkeypatch.setattr(handsign.serve.limits, "DRAIN_BYTES", 4 * 2**20)
    with live(predictors, max_upload_bytes=2**20) as server:
        framing = b"Transfer-Encoding: chunked\r\n" if chunked else b"Content-Length: 1000000000\r\n"
        s = _raw(server.port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n" + framing + b"\r\n")
        block = b"\0" * 2**20
        if chunked:
            block = b"%x\r\n" % len(block) + block + b"\r\n"
        # send from a thread with blocking writes (a write that stalls while the loaded server is slow to
        # read is not the server refusing); this thread waits for the answer
        sent, done = 0, threading.Event()

        def sender():
            nonlocal sent
            try:
                while sent < 1_000_000_000 and not done.is_set():
                    s.sendall(block)
                    sent += len(block)
            except OSError:  # the server closed the connection after answering
                pass

        s.settimeout(30)
        t = threading.Thread(target=sender, daemon=True)
        t.start()
        reply = s.recv(65536)  # the first bytes of the answer: how much had gone in by then?
        done.set()
        sent_before_answer = sent
        reply += _read_all(s)
        s.close()
        t.join(30)
        sent = sent_before_answer
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), reply[:200]
    # the JSON body names the limit (test_serve.py checks its words); here the server closes with the
    # client's bytes still in flight, and the reset that this sends can drop the body from the client's
    # receive queue after the headers arrived (seen once in CI on a loaded machine): checked when it came
    assert not body or b"over the limit" in body, body[:200]
    assert sent < 32 * 2**20, f"the client got {sent / 2**20:.0f} MiB in before the answer"


def test_slow_body_is_cut_off_with_408(predictors):
    with live(predictors, body_timeout=1.0) as server:
        s = _raw(server.port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                              b"Content-Length: 100000\r\n\r\n")
        start, reply = time.monotonic(), b""
        s.settimeout(0.2)
        while time.monotonic() - start < 10:  # a byte every 0.2 s: 100 kB would take 5.5 hours
            try:
                s.sendall(b"\0")
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        elapsed = time.monotonic() - start
        s.close()
        with httpx.Client(base_url=server.url) as c:  # the server still answers others
            assert c.post("/predict", content=png(), headers={"content-type": "image/png"}).status_code == 200
    assert reply.startswith(b"HTTP/1.1 408") and b"within 1 s" in reply, reply[:200]
    assert elapsed < 5, f"connection held for {elapsed:.1f} s"


@pytest.mark.parametrize("head", [b"", b"POST /predict HTTP/1.1\r\nHost: x\r\n"], ids=["silent", "trickled-headers"])
def test_slow_headers_are_cut_off(predictors, head):
    with live(predictors, header_timeout=1.0) as server:
        s = _raw(server.port, head)
        start, closed = time.monotonic(), False
        s.settimeout(0.2)
        while time.monotonic() - start < 10:
            try:
                s.sendall(b"X-Slow: 1\r\n" if head else b"")
                if s.recv(65536) == b"":
                    closed = True
                    break
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        elapsed = time.monotonic() - start
        s.close()
    assert closed and elapsed < 5, f"closed={closed} after {elapsed:.1f} s"


def test_keep_alive_connection_serves_many_requests_despite_header_timeout(predictors):
    """The header timer restarts after each answer: a busy keep-alive connection is never cut."""
    with live(predictors, header_timeout=0.5) as server, httpx.Client(base_url=server.url) as c:
        for _ in range(3):
            for _ in range(5):
                assert c.post("/predict", content=png(), headers={"content-type": "image/png"}).status_code == 200
            time.sleep(0.2)


@pytest.mark.parametrize("path, ctype", [("/predict", "text/csv"), ("/predict", "application/x-www-form-urlencoded"),
                                         ("/v2/models/asl/infer", "text/plain"), ("/v2/models/asl/infer", "image/png")])
def test_wrong_content_type_is_415(predictors, path, ctype):
    with live(predictors) as server, httpx.Client(base_url=server.url) as c:
        r = c.post(path, content=b"a=1", headers={"content-type": ctype})
    assert r.status_code == 415 and ctype in r.json()["error"]


class Held:
    """A Predictor whose calls wait until the test releases them (an event, not a delay): requests stay
    in flight exactly as long as the test needs, on any machine. `inside` counts the calls waiting."""

    def __init__(self, p: Predictor):
        self.p, self.release, self.inside, self._lock = p, threading.Event(), 0, threading.Lock()
        self.labels, self.spec, self.meta, self.backend = p.labels, p.spec, p.meta, p.backend
        self.entered = threading.Condition(self._lock)

    def _hold(self):
        with self.entered:
            self.inside += 1
            self.entered.notify_all()
        assert self.release.wait(60), "the test never released the held requests"

    def predict_arrays(self, x, top_k=3):
        self._hold()
        return self.p.predict_arrays(x, top_k)

    def predict_image(self, img, top_k=3, name="image"):  # what POST /predict calls
        self._hold()
        return self.p.predict_image(img, top_k, name)

    def logits(self, x):
        self._hold()
        return self.p.logits(x)


def test_past_max_concurrency_503_comes_at_once_with_retry_after(predictors):
    held = Held(predictors["asl"])
    limits = Limits(max_concurrency=2)
    with LiveServer(create_app({"asl": held}, limits), **uvicorn_options(limits)) as server:
        results = {}

        def one(i):
            with httpx.Client(base_url=server.url, timeout=60) as c:
                r = c.post("/predict", content=png(i), headers={"content-type": "image/png"})
                results[i] = (r.status_code, r.headers.get("retry-after"), r.json())

        first = [threading.Thread(target=one, args=(i,)) for i in range(2)]
        for t in first:
            t.start()
        with held.entered:  # both slots taken: two requests are inside the model
            assert held.entered.wait_for(lambda: held.inside == 2, timeout=60)
        rest = [threading.Thread(target=one, args=(i,)) for i in range(2, 8)]
        for t in rest:
            t.start()
        for t in rest:  # answered while both slots are still held: at once, not after a slot frees
            t.join(60)
        assert not held.release.is_set() and sorted(results) == list(range(2, 8))
        held.release.set()
        for t in first:
            t.join(60)
        with httpx.Client(base_url=server.url) as c:  # the slots were given back: served again
            assert c.post("/predict", content=png(), headers={"content-type": "image/png"}).status_code == 200
            assert c.get("/v2/health/ready").status_code == 200
            bad = [c.post("/predict", content=b"junk", headers={"content-type": "image/png"}) for _ in range(4)]
            assert [r.status_code for r in bad] == [400] * 4  # failed requests give their slot back too
            assert c.post("/predict", content=png(), headers={"content-type": "image/png"}).status_code == 200
    assert [results[i][0] for i in range(8)] == [200, 200] + [503] * 6, results
    assert all(results[i][1] == "1" and "busy" in results[i][2]["error"] for i in range(2, 8)), results
    assert held.inside == 2 + 2  # the two held requests, then the two served after (the junk never got there)


def test_cli_serve_limits_apply_and_bad_values_are_one_line(model_paths):
    r = subprocess.run([sys.executable, "-m", "handsign", "serve", "--model", str(model_paths["asl"]),
                        "--max-concurrency", "0"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("handsign: error:") and "max_concurrency" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    with socket.socket() as s:  # a free port (tiny race: nothing else on this machine grabs ports in a loop)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "handsign", "serve", "--model", str(model_paths["asl"]),
                             "--backend", "torch", "--port", str(port), "--header-timeout", "1",
                             "--body-timeout", "1", "--max-concurrency", "4"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        s = _raw(port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 10\r\n\r\n")
        start = time.monotonic()
        reply = _read_all(s)
        s.close()
        assert reply.startswith(b"HTTP/1.1 408") and time.monotonic() - start < 5
        s = _raw(port, b"")
        start = time.monotonic()
        assert _read_all(s) == b"" and time.monotonic() - start < 5
        s.close()
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:  # uvicorn waits for open requests: only a bug leaves one open
            proc.kill()
            proc.wait(10)
