"""An async HTTP service answering with a fine-tuned model: ``await sampler.sample(...)`` per request.

A plain ASGI application served by uvicorn on asyncio. At start-up (the ASGI
lifespan) it opens a ``ServiceClient``, fine-tunes a LoRA on the
multiplication table and keeps a ``SamplingClient`` of the result; every
``GET /multiply?a=7&b=8`` then awaits one sample. Requests are served
concurrently on the one event loop: while one handler waits for its sample,
the others run, and the client multiplexes all of them over its connection
pool. mint_async runs on whatever loop the application runs (it is written on
anyio), so nothing here is asyncio-specific but the server.

Runs against the embedded local server unless ``MINT_BASE_URL`` is set::

    python examples/async_service.py --port 8080 &
    curl 'http://127.0.0.1:8080/multiply?a=7&b=8'
    python examples/async_service.py --smoke 16     # start, 16 concurrent requests, stop
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import time
from collections.abc import Awaitable, Callable, Generator, MutableMapping
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


@contextlib.contextmanager
def endpoint() -> Generator[tuple[str, str | None]]:
    """``MINT_BASE_URL`` (and ``MINT_API_KEY``) if set, else a local server on loopback."""
    url = os.environ.get("MINT_BASE_URL")
    if url:
        yield url, os.environ.get("MINT_API_KEY")
        return
    backend = "torch" if importlib.util.find_spec("torch") else "synthetic"
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
        seed: int | None = 0,
    ) -> None:
        self.base_url, self.api_key = base_url, api_key
        self.train_steps, self.lr, self.max_operand = train_steps, lr, max_operand
        self.seed = seed
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
        batch: list[t.Datum] = []
        for a in range(1, self.max_operand + 1):
            for b in range(1, self.max_operand + 1):
                prompt = tokenizer.encode(prompt_of(a, b))
                completion = [*tokenizer.encode(f" {a * b}"), tokenizer.eos_token_id]
                tokens = prompt + completion
                weights = [0.0] * (len(prompt) - 1) + [1.0] * len(completion)
                batch.append(
                    t.Datum(
                        model_input=t.ModelInput.from_ints(tokens[:-1]),
                        loss_fn_inputs={"target_tokens": tokens[1:], "weights": weights},
                    )
                )
        for _ in range(self.train_steps):
            fb = await training.forward_backward(batch, "cross_entropy")
            opt = await training.optim_step(t.AdamParams(learning_rate=self.lr))
            await fb
            await opt
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


async def smoke(app: MultiplyService, requests: int) -> list[dict[str, Any]]:
    """Serve ``app`` on a free port, send ``requests`` concurrent questions, stop; the answers."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():  # start-up failed
            await serving
            msg = "the service did not start"
            raise RuntimeError(msg)
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    pairs = [
        (1 + i % app.max_operand, 1 + (i // app.max_operand) % app.max_operand)
        for i in range(requests)
    ]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            replies = await asyncio.gather(
                *(http.get("/multiply", params={"a": a, "b": b}) for a, b in pairs)
            )
    finally:
        server.should_exit = True
        await serving
    answers: list[dict[str, Any]] = [r.raise_for_status().json() for r in replies]
    for answer in answers:
        print(answer)
    return answers


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Serve until interrupted, or (``--smoke N``) answer N concurrent requests and return them."""
    parser = argparse.ArgumentParser(
        description="an async HTTP service sampling a fine-tuned model"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--smoke", type=int, default=0, help="answer N requests and exit")
    parser.add_argument("--train-steps", type=int, default=160)
    parser.add_argument("--lr", type=float, default=3e-3, help="suits the local tiny model")
    parser.add_argument("--max-operand", type=int, default=9)
    parser.add_argument(
        "--seed", type=int, default=0, help="the LoRA's initial weights; -1 lets the server pick"
    )
    args = parser.parse_args(argv)
    with endpoint() as (base_url, api_key):
        app = MultiplyService(
            base_url,
            api_key,
            train_steps=args.train_steps,
            lr=args.lr,
            max_operand=args.max_operand,
            seed=None if args.seed < 0 else args.seed,
        )
        if args.smoke:
            return asyncio.run(smoke(app, args.smoke))
        uvicorn.run(app, host=args.host, port=args.port)
    return []


if __name__ == "__main__":
    main()
