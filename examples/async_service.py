"""An async HTTP service answering with a fine-tuned model: ``await sampler.sample(...)`` per request.

A plain ASGI application served by uvicorn on asyncio. At start-up (the ASGI
lifespan) it opens a ``ServiceClient``, fine-tunes a LoRA on the
multiplication table and keeps a ``SamplingClient`` of the result; every
``GET /multiply?a=7&b=8`` then awaits one sample. Requests are served
concurrently on the one event loop: while one handler waits for its sample,
the others run, and the client multiplexes all of them over its connection
pool. mint_async runs on whatever loop the application runs (it is written on
anyio), so nothing here is asyncio-specific but the server.

Two modes (``--help`` says the same):

* serve (the default): fine-tune, then serve on ``--host``/``--port``
  (127.0.0.1:8080) until Ctrl+C; it prints the URL and a ``curl`` to try::

      python examples/async_service.py
      curl 'http://127.0.0.1:8080/multiply?a=7&b=8'

* ``--smoke N``: fine-tune, serve on a free port, send N concurrent requests,
  print the answers and exit::

      python examples/async_service.py --smoke 16

Fine-tuning prints a progress line every tenth of the way; on the local torch
backend it takes about 12 s on a quiet 2-core machine (start-up included).
uvicorn's access log is off unless ``--access-log``. Runs against the embedded
local server unless ``MINT_BASE_URL`` is set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Generator, MutableMapping
from types import FrameType
from typing import Any
from urllib.parse import parse_qs

import httpx
import uvicorn

from mint_async import SamplingClient, ServiceClient
from mint_async import types as t
from mint_async.server import ServerConfig
from mint_async.testing import serve_loopback

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

HELP = """\
An async HTTP service that answers "What is a * b?" with a model it fine-tunes at start-up.

modes:
  serve (default)  fine-tune, then serve GET /multiply?a=7&b=8 on --host:--port until
                   Ctrl+C; prints the URL and a curl command to try
  --smoke N        fine-tune, serve on a free port, send N concurrent requests, print
                   the answers and exit
"""

EPILOG = """\
Fine-tuning prints a progress line every tenth of the way; with the local torch backend
it takes about 12 s on a quiet 2-core machine (start-up included). Uses MINT_BASE_URL /
MINT_API_KEY if set, else starts the local MinT server in this process.

examples:
  python examples/async_service.py
  curl 'http://127.0.0.1:8080/multiply?a=7&b=8'
  python examples/async_service.py --smoke 16
"""


@contextlib.contextmanager
def endpoint() -> Generator[tuple[str, str | None]]:
    """``MINT_BASE_URL`` (and ``MINT_API_KEY``) if set, else a local server on loopback."""
    url = os.environ.get("MINT_BASE_URL")
    if url:
        print(f"MinT endpoint: {url}", flush=True)
        yield url, os.environ.get("MINT_API_KEY")
        return
    backend = "torch" if importlib.util.find_spec("torch") else "synthetic"
    print(f"starting the local MinT server ({backend} backend)...", flush=True)
    with serve_loopback(ServerConfig(backend=backend)) as server:
        yield server.base_url, server.api_key


def prompt_of(a: int, b: int) -> str:
    """The MinT SFT guide's prompt format."""
    return f"Question: What is {a} * {b}?\nAnswer:"


class MultiplyService:
    """The ASGI app: the lifespan opens the clients and fine-tunes; ``/multiply`` samples."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        train_steps: int,
        lr: float,
        max_operand: int,
        batches: int = 3,
        seed: int | None = 0,
    ) -> None:
        self.base_url, self.api_key = base_url, api_key
        self.train_steps, self.lr, self.max_operand = train_steps, lr, max_operand
        self.batches, self.seed = batches, seed
        self.interrupted = False
        """Set (from a signal handler) to end fine-tuning early: the server is stopping."""
        self._stack = contextlib.AsyncExitStack()
        self._sampler: SamplingClient | None = None
        self._tokenizer: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:  # noqa: BLE001 - reported to the ASGI server
                    await self._stack.aclose()
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._stack.aclose()  # closes the ServiceClient (same task that opened it)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        """Open the ServiceClient for the app's lifetime and fine-tune a sampler."""
        service = await self._stack.enter_async_context(
            ServiceClient(base_url=self.base_url, api_key=self.api_key)
        )
        training = await service.create_lora_training_client(
            "Qwen/Qwen3-0.6B", rank=16, seed=self.seed
        )
        tokenizer = await training.get_tokenizer()
        examples: list[t.Datum] = []
        for a in range(1, self.max_operand + 1):
            for b in range(1, self.max_operand + 1):
                prompt = tokenizer.encode(prompt_of(a, b))
                completion = [*tokenizer.encode(f" {a * b}"), tokenizer.eos_token_id]
                tokens = prompt + completion
                weights = [0.0] * (len(prompt) - 1) + [1.0] * len(completion)
                examples.append(
                    t.Datum(
                        model_input=t.ModelInput.from_ints(tokens[:-1]),
                        loss_fn_inputs={"target_tokens": tokens[1:], "weights": weights},
                    )
                )
        # A step trains on a slice of the table: on the tiny local model three
        # updates per pass learn it in about half the time whole-table steps take.
        n = max(1, min(self.batches, len(examples)))
        batches = [examples[i::n] for i in range(n)]
        tokens_of = [
            sum(float(d.loss_fn_inputs["weights"].to_numpy().sum()) for d in b) for b in batches
        ]
        print(
            f"fine-tuning on {len(examples)} questions: {self.train_steps} steps, each on "
            f"{'all' if n == 1 else f'1/{n}'} of them, AdamW lr {self.lr:g}",
            flush=True,
        )
        started = time.perf_counter()
        every = max(1, self.train_steps // 10)
        last_pass: deque[tuple[float, float]] = deque(maxlen=n)  # (loss:sum, tokens)
        for step in range(1, self.train_steps + 1):
            if self.interrupted:  # Ctrl+C: uvicorn stops once start-up returns
                print(f"training: interrupted at step {step}", flush=True)
                return
            i = (step - 1) % n
            fb = await training.forward_backward(batches[i], "cross_entropy")
            opt = await training.optim_step(t.AdamParams(learning_rate=self.lr))
            last_pass.append(((await fb).loss, tokens_of[i]))
            await opt
            if step % every == 0 or step == self.train_steps:
                loss = sum(x for x, _ in last_pass) / sum(k for _, k in last_pass)
                print(
                    f"training: step {step:>4}/{self.train_steps}  loss/token {loss:.4f}"
                    f"  {time.perf_counter() - started:5.1f} s",
                    flush=True,
                )
        self._sampler = await training.save_weights_and_get_sampling_client()
        self._tokenizer = tokenizer

    async def _http(self, scope: Scope, send: Send) -> None:
        if scope["method"] != "GET" or scope["path"] != "/multiply":
            await _json(send, 404, {"error": "try GET /multiply?a=3&b=4"})
            return
        query = parse_qs(scope["query_string"].decode())
        try:
            a, b = int(query["a"][0]), int(query["b"][0])
        except (KeyError, ValueError):
            await _json(send, 400, {"error": "a and b must be integers"})
            return
        if self._sampler is None:
            await _json(send, 503, {"error": "the model is not ready"})
            return
        started = time.perf_counter()
        tokenizer = self._tokenizer
        prompt = t.ModelInput.from_ints(tokenizer.encode(prompt_of(a, b)))
        params = t.SamplingParams(max_tokens=8, temperature=0.0, stop=[tokenizer.eos_token_id])
        # The point of this example: the handler awaits the model, the loop serves others.
        response = await self._sampler.sample(prompt, num_samples=1, sampling_params=params)
        answer: str = tokenizer.decode(response.sequences[0].tokens, skip_special_tokens=True)
        await _json(
            send,
            200,
            {
                "question": f"What is {a} * {b}?",
                "answer": answer.strip(),
                "correct": answer.strip() == str(a * b),
                "latency_ms": round(1000 * (time.perf_counter() - started), 1),
            },
        )


async def _json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class _ThisThreadOnly(logging.Filter):
    """Passes records logged on the thread that made it, and warnings from any thread.

    The service and the local MinT server (in a thread of its own) are both
    uvicorns and share its loggers: ``--access-log`` shows the service's
    requests, not the hundreds its fine-tuning makes to the MinT server.
    """

    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == self.thread or record.levelno >= logging.WARNING


@contextlib.contextmanager
def only_this_threads_logs() -> Generator[None]:
    """:class:`_ThisThreadOnly` on uvicorn's loggers for the block."""
    loggers = [logging.getLogger(name) for name in ("uvicorn.access", "uvicorn.error")]
    only_ours = _ThisThreadOnly()
    for logger in loggers:
        logger.addFilter(only_ours)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(only_ours)


class _Server(uvicorn.Server):
    """uvicorn whose Ctrl+C also cuts the app's fine-tuning short (start-up is not cancellable)."""

    def __init__(self, config: uvicorn.Config, app: MultiplyService) -> None:
        super().__init__(config)
        self.app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self.app.interrupted = True  # a plain flag: safe to set from a signal handler


def listen(host: str, port: int) -> socket.socket:
    """A listening socket, bound before fine-tuning so a busy port fails at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    return sock


async def run(
    app: MultiplyService, sock: socket.socket, *, requests: int, access_log: bool
) -> list[dict[str, Any]]:
    """Serve ``app`` on ``sock``: until interrupted, or (``requests`` > 0) for that many
    concurrent questions, whose answers are printed and returned."""
    # ws="none": no websocket routes here (and older uvicorn warns importing new websockets).
    config = uvicorn.Config(
        app, log_level="info" if access_log else "warning", access_log=access_log, ws="none"
    )
    return await _serve(app, _Server(config, app), sock, requests)


async def _serve(
    app: MultiplyService, server: uvicorn.Server, sock: socket.socket, requests: int
) -> list[dict[str, Any]]:
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():  # start-up failed (uvicorn raises SystemExit)
            await serving
            return []
        await asyncio.sleep(0.05)
    if server.should_exit:  # Ctrl+C while training: uvicorn is already stopping
        await serving
        return []
    host, port = sock.getsockname()[:2]
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    if not requests:
        print(f"serving at {url}  (Ctrl+C to stop)", flush=True)
        print(f"try:  curl '{url}/multiply?a=7&b=8'", flush=True)
        await serving
        return []
    pairs = [
        (1 + i % app.max_operand, 1 + (i // app.max_operand) % app.max_operand)
        for i in range(requests)
    ]
    try:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            replies = await asyncio.gather(
                *(http.get("/multiply", params={"a": a, "b": b}) for a, b in pairs)
            )
    finally:
        server.should_exit = True
        await serving
    answers: list[dict[str, Any]] = [r.raise_for_status().json() for r in replies]
    for answer in answers:
        print(answer)
    print(f"{sum(a['correct'] for a in answers)}/{len(answers)} answered correctly")
    return answers


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Serve until interrupted, or (``--smoke N``) answer N concurrent requests and return them."""
    parser = argparse.ArgumentParser(
        description=HELP, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1", help="serve mode: address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="serve mode: port (0: any free)")
    parser.add_argument(
        "--smoke",
        type=int,
        default=0,
        metavar="N",
        help="smoke mode: answer N concurrent requests and exit",
    )
    parser.add_argument(
        "--access-log", action="store_true", help="print uvicorn's access log of the service"
    )
    parser.add_argument("--train-steps", type=int, default=270, help="fine-tuning steps")
    parser.add_argument(
        "--batches", type=int, default=3, help="each step trains on 1/N of the questions"
    )
    parser.add_argument("--lr", type=float, default=2e-3, help="suits the local tiny model")
    parser.add_argument("--max-operand", type=int, default=9, help="questions cover a, b in 1..N")
    parser.add_argument(
        "--seed", type=int, default=0, help="the LoRA's initial weights; -1 lets the server pick"
    )
    args = parser.parse_args(argv)
    host, port = ("127.0.0.1", 0) if args.smoke else (args.host, args.port)
    try:
        sock = listen(host, port)
    except OSError as exc:
        parser.error(f"cannot listen on {host}:{port} ({exc.strerror}): pick another --port")
    with only_this_threads_logs(), sock, endpoint() as (base_url, api_key):
        app = MultiplyService(
            base_url,
            api_key,
            train_steps=args.train_steps,
            lr=args.lr,
            max_operand=args.max_operand,
            batches=args.batches,
            seed=None if args.seed < 0 else args.seed,
        )
        try:
            answers = asyncio.run(run(app, sock, requests=args.smoke, access_log=args.access_log))
        except KeyboardInterrupt:  # uvicorn re-raises the Ctrl+C it handled
            answers = []
    if not args.smoke:
        print("stopped")
    return answers


if __name__ == "__main__":
    main()
