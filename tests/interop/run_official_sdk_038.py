"""Interop smoke: the official, unmodified tinker 0.38 SDK against our server on the 0.38 wire.

Run by ``nox -s interop038`` in a venv holding ``tinker==0.38.0`` and
``mint-async[server]``. Starts the local server with ``wire="0.38"`` (protobuf
forward_backward bodies required, protobuf results) on a loopback port, drives
the SDK's main flows — lazy ServiceClient, LoRA training client (with its
``get_info``), forward_backward / forward (``forward_only`` protobuf bodies),
optim_step, save_state, create-via-load ``create_training_client_from_state``,
sampling clients from saved weights, sampling with ``num_samples > 1`` and
prompt / top-k logprobs (``sample_sequence_ids`` stamped), every 0.38 sampling
field (``topk_sample_logprobs``, ``target_prompt_logprobs``, ``prompt_alt_tokens_k``,
``prompt_logprobs_last_n``), ``gspo``, ``stable_reinforce`` over provenance spans of
samples drawn with ``record_stability_info``, REST reads, ``copy_weights``
(ServiceClient and RestClient; the copy loads and samples) and ``close()``
(``sessions/{id}/finish``) — checks the answers and that every body and result
went as protobuf, and exits non-zero on the first failure. The server runs with
its default keys: the SDK connects with the documented ``tml-mint-async-local``,
no server flags. ``--zstd`` also turns on ``proto_compress_fwdbwd`` (zstd bodies);
``--default-server`` serves with every default (the 0.22 wire), which the 0.38 SDK
needs nothing more than (it sends protobuf and polls for protobuf anyway).

The SDK is imported dynamically and handled as ``Any``: this file is type-checked in
environments without the SDK, and the SDK's own typing is not ours to check.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mint_async.server import DEFAULT_TINKER_API_KEY, ServerConfig
from mint_async.testing import LoopbackServer, serve_loopback

BASE_MODEL = "Qwen/Qwen3-0.6B"
API_KEY = DEFAULT_TINKER_API_KEY  # the server's documented default (tinker takes tml- keys only)


def check(condition: bool, message: str) -> None:
    """Fail the run with ``message`` unless ``condition``."""
    if not condition:
        raise AssertionError(message)


def step(name: str, fn: Callable[[], None]) -> None:
    """Run one named flow, printing its outcome and duration."""
    start = time.perf_counter()
    fn()
    print(f"ok   {name} ({time.perf_counter() - start:.2f} s)", flush=True)


class Flows:
    """The SDK flows, sharing clients and paths between steps."""

    def __init__(self, server: LoopbackServer, *, zstd: bool) -> None:
        self.server = server
        self.zstd = zstd
        self.tinker: Any = importlib.import_module("tinker")
        self.types: Any = self.tinker.types
        self.service: Any = None
        self.training: Any = None
        self.tokenizer: Any = None
        self.data: list[Any] = []
        self.state_path = ""
        self.sampler_path = ""
        self.recorded: tuple[list[int], list[Any]] = ([], [])

    # -- helpers -----------------------------------------------------------------

    def datum(self, text: str) -> Any:
        """A next-token datum of ``text`` (targets are the input shifted by one)."""
        tokens: list[int] = self.tokenizer.encode(text)
        inputs: dict[str, Any] = {"target_tokens": tokens[1:], "weights": [1.0] * (len(tokens) - 1)}
        return self.types.Datum(
            model_input=self.types.ModelInput.from_ints(tokens[:-1]), loss_fn_inputs=inputs
        )

    def rest_client(self) -> Any:
        """A session-less RestClient (0.38 deprecates ``ServiceClient.create_rest_client``)."""
        return self.tinker.RestClient(base_url=self.server.base_url, api_key=API_KEY)

    def loss(self, training: Any = None) -> float:
        out = (training or self.training).forward(self.data, "cross_entropy").result()
        return float(out.metrics["loss:sum"])

    # -- flows -------------------------------------------------------------------

    def service_client(self) -> None:
        self.service = self.tinker.ServiceClient(base_url=self.server.base_url, api_key=API_KEY)
        caps = self.rest_client().get_server_capabilities().result()
        names = [m.model_name for m in caps.supported_models]
        check(BASE_MODEL in names, f"capabilities list {names}")

    def training_client(self) -> None:
        self.training = self.service.create_lora_training_client(
            base_model=BASE_MODEL, rank=8
        ).result()
        check(":train:" in self.training.model_id, f"model id {self.training.model_id}")
        info = self.training.get_info()  # cached from the get_info right after creation
        check(info.model_id == self.training.model_id and info.lora_rank == 8, f"info {info}")
        check(info.optimizer_config.type == "adamw", f"optimizer echo {info.optimizer_config}")
        self.tokenizer = self.training.get_tokenizer()
        texts = ["Question: What is 3 * 4?\nAnswer: 12", "What is 5 + 7? 12", "hello world"]
        self.data = [self.datum(t) for t in texts]

    def supervised(self) -> None:
        fwd = self.training.forward(self.data, "cross_entropy").result()
        fb = self.training.forward_backward(self.data, "cross_entropy").result()
        check(len(fb.loss_fn_outputs) == len(self.data), "one output per datum")
        total = 0.0
        for datum, out in zip(self.data, fb.loss_fn_outputs, strict=True):
            logprobs = out["logprobs"].tolist()
            check(
                len(logprobs) == len(datum.loss_fn_inputs["target_tokens"].data), "logprobs length"
            )
            check(all(lp < 0 for lp in logprobs), "logprobs are log-probabilities")
            total -= sum(logprobs)
        loss = fb.metrics["loss:sum"]
        check(math.isclose(loss, total, rel_tol=1e-4), f"loss:sum {loss} != -sum(logprobs) {total}")
        check(
            math.isclose(loss, fwd.metrics["loss:sum"], rel_tol=1e-6), "forward == forward_backward"
        )
        opt = self.training.optim_step(self.types.AdamParams(learning_rate=0.05)).result()
        check(opt.metrics is not None, "optim_step metrics")
        for _ in range(4):
            self.training.forward_backward(self.data, "cross_entropy")
            self.training.optim_step(self.types.AdamParams(learning_rate=0.05))
        after = self.loss()
        check(after < loss, f"loss went from {loss} to {after} on repeated data")

    def reinforcement(self) -> None:
        fwd = self.training.forward(self.data, "cross_entropy").result()
        rl_data: list[Any] = []
        for datum, out in zip(self.data, fwd.loss_fn_outputs, strict=True):
            logprobs = out["logprobs"].tolist()
            rl_data.append(
                self.types.Datum(
                    model_input=datum.model_input,
                    loss_fn_inputs={
                        "target_tokens": datum.loss_fn_inputs["target_tokens"],
                        "logprobs": logprobs,
                        "advantages": [1.0] * len(logprobs),
                    },
                )
            )
        n_tokens = sum(len(d.loss_fn_inputs["logprobs"].data) for d in rl_data)
        # loss_fn_config travels in the v2 map (numbers dual-written): the server reads it.
        config = {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2}
        ppo = self.training.forward_backward(rl_data, "ppo", config).result()
        check(
            math.isclose(ppo.metrics["loss:sum"], -n_tokens, rel_tol=1e-4),
            f"PPO loss {ppo.metrics}",
        )
        self.training.optim_step(self.types.AdamParams(learning_rate=0.01)).result()

    def checkpoints(self) -> None:
        before = self.loss()
        self.state_path = self.training.save_state("ckpt-1").result().path
        check(self.state_path.endswith("/weights/ckpt-1"), self.state_path)
        self.training.forward_backward(self.data, "cross_entropy")
        self.training.optim_step(self.types.AdamParams(learning_rate=0.1)).result()
        check(not math.isclose(self.loss(), before), "a step changes the loss")
        # create-via-load: one load_weights with session_id/model_seq_id, no create_model.
        restored = self.service.create_training_client_from_state(self.state_path).result()
        check(restored.model_id != self.training.model_id, "a new training run")
        check(math.isclose(self.loss(restored), before, rel_tol=1e-6), "restored weights")
        resumed = self.service.create_training_client_from_state_with_optimizer(
            self.state_path
        ).result()
        resumed.forward_backward(self.data, "cross_entropy")
        resumed.optim_step(self.types.AdamParams(learning_rate=0.05)).result()
        check(self.loss(resumed) < before, "training goes on after create-via-load")

    def sampling(self) -> None:
        self.sampler_path = self.training.save_weights_for_sampler("sampler-1").result().path
        check("/sampler_weights/sampler-1" in self.sampler_path, self.sampler_path)
        prompt = self.types.ModelInput.from_ints(self.tokenizer.encode("What is 3 * 4?"))
        params = self.types.SamplingParams(max_tokens=8, temperature=1.0, seed=3)
        for client in (
            self.training.save_weights_and_get_sampling_client().result(),
            self.service.create_sampling_client(model_path=self.sampler_path).result(),
        ):
            res = client.sample(
                prompt,
                num_samples=3,
                sampling_params=params,
                include_prompt_logprobs=True,
                topk_prompt_logprobs=4,
            ).result()
            check(len(res.sequences) == 3, "num_samples sequences")
            ids = [seq.sequence_id for seq in res.sequences]
            check(len(set(ids)) == 3 and all(ids), f"sample_sequence_ids stamped: {ids}")
            for seq in res.sequences:
                check(
                    seq.stop_reason in ("stop", "length") and 0 < len(seq.tokens) <= 8,
                    f"sequence {seq}",
                )
                check(len(seq.logprobs) == len(seq.tokens), "one logprob per token")
            check(
                res.prompt_logprobs[0] is None and len(res.prompt_logprobs) == prompt.length,
                "prompt logprobs",
            )
            check(res.topk_prompt_logprobs[0] is None, "top-k of the first position is null")
            check(all(len(row) == 4 for row in res.topk_prompt_logprobs[1:]), "top-k rows")
            logprobs = client.compute_logprobs(prompt).result()
            check(logprobs[0] is None and len(logprobs) == prompt.length, "compute_logprobs")
            check(
                all(
                    math.isclose(a, b, rel_tol=1e-5)
                    for a, b in zip(logprobs[1:], res.prompt_logprobs[1:], strict=True)
                ),
                "compute_logprobs == prompt logprobs",
            )
            greedy = self.types.SamplingParams(max_tokens=6, temperature=0.0)
            a = client.sample(prompt, 1, greedy).result().sequences[0].tokens
            b = client.sample(prompt, 1, greedy).result().sequences[0].tokens
            check(a == b, "temperature 0 is deterministic")

    def sampling_038(self) -> None:
        """Every 0.38 sampling field, through the SDK's own checks and types."""
        client = self.training.save_weights_and_get_sampling_client(
            record_stability_info=True
        ).result()
        ids = self.tokenizer.encode("What is 3 * 4?")
        prompt = self.types.ModelInput.from_ints(ids)
        rows = len(ids) - 1
        targets = [[ids[i + 1], -1] for i in range(rows)]
        res = client.sample(
            prompt,
            num_samples=2,
            sampling_params=self.types.SamplingParams(max_tokens=6, temperature=1.0, seed=5),
            include_prompt_logprobs=True,
            topk_prompt_logprobs=2,
            topk_sample_logprobs=3,
            target_prompt_logprobs=self.types.TensorData(
                data=[v for row in targets for v in row], dtype="int64", shape=[rows, 2]
            ),
            prompt_alt_tokens_k=2,
            prompt_logprobs_last_n=2,
        ).result()
        lps = res.prompt_logprobs
        check(all(v is None for v in lps[:-2]) and None not in lps[-2:], f"last_n: {lps}")
        check(all(row is None for row in res.topk_prompt_logprobs[:-2]), "top-k honours last_n")
        for seq in res.sequences:
            check(seq.sequence_id is not None, "sequence ids stamped")
            check(seq.topk_logprobs is not None, "top-k of sampled tokens returned")
            topk: list[Any] = list(seq.topk_logprobs)
            check(len(topk) == len(seq.tokens), f"top-k rows {topk}")
            check(all(len(row) == 3 for row in topk), "3 per sampled token")
        target = res.target_prompt_logprobs
        check(list(target.shape) == [rows, 2], f"target shape {target.shape}")
        values = target.to_numpy()
        full = client.compute_logprobs(prompt).result()
        for i in range(rows):
            check(math.isclose(values[i, 0], full[i + 1], rel_tol=1e-4), "target logprobs")
            check(values[i, 1] == 0.0, "-1 cells read 0.0")
        alt = res.prompt_alt_tokens
        check(list(alt.tokens.shape) == [rows, 2], f"alt tokens {alt.tokens.shape}")
        check(bool((alt.logprobs.to_numpy() <= 0).all()), "alt logprobs")
        self.recorded = (ids, res.sequences)

    def losses_038(self) -> None:
        """gspo on-policy (ratio 1), stable_reinforce over the recorded samples."""
        fwd = self.training.forward(self.data, "cross_entropy").result()
        rl_data = [
            self.types.Datum(
                model_input=datum.model_input,
                loss_fn_inputs={
                    "target_tokens": datum.loss_fn_inputs["target_tokens"],
                    "logprobs": out["logprobs"].tolist(),
                    "advantages": [1.0] * len(out["logprobs"].tolist()),
                },
            )
            for datum, out in zip(self.data, fwd.loss_fn_outputs, strict=True)
        ]
        n_tokens = sum(len(d.loss_fn_inputs["logprobs"].data) for d in rl_data)
        config = {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2}
        gspo = self.training.forward_backward(rl_data, "gspo", config).result()
        check(math.isclose(gspo.metrics["loss:sum"], -n_tokens, rel_tol=1e-4), f"gspo {gspo}")

        ids, sequences = self.recorded
        data: list[Any] = []
        expected = 0.0
        for seq in sequences:
            tokens = list(seq.tokens)
            if len(tokens) < 2:
                continue
            full = ids + tokens
            advantages = [0.0] * (len(ids) - 1) + [1.0] * len(tokens)
            sid = seq.sequence_id
            datum = self.types.Datum(
                model_input=self.types.ModelInput.from_ints(full[:-1]),
                loss_fn_inputs={
                    "target_tokens": full[1:],
                    "logprobs": [0.0] * (len(ids) - 1) + list(seq.logprobs),
                    "advantages": advantages,
                },
            ).with_provenance(
                model_input=[
                    self.types.PromptProvenanceSpan(sequence_id=sid, length=len(ids)),
                    self.types.SampledProvenanceSpan(sequence_id=sid, length=len(tokens) - 1),
                ],
                loss_fn_inputs=[
                    self.types.PromptProvenanceSpan(sequence_id=sid, offset=1, length=len(ids) - 1),
                    self.types.SampledProvenanceSpan(sequence_id=sid, length=len(tokens)),
                ],
            )
            data.append(datum)
            expected -= sum(seq.logprobs)  # on-policy: weight 1, A = 1 on sampled tokens
        check(bool(data), "samples long enough to train on")
        stable = self.training.forward_backward(data, "stable_reinforce").result()
        loss = stable.metrics["loss:sum"]
        check(math.isclose(loss, expected, rel_tol=1e-3, abs_tol=1e-3), f"{loss} != {expected}")
        self.training.optim_step(self.types.AdamParams(learning_rate=0.01)).result()

    def rest(self) -> None:
        rest = self.rest_client()
        model_id = self.training.model_id
        run = rest.get_training_run(model_id).result()
        check(run.base_model == BASE_MODEL and run.lora_rank == 8, f"training run {run}")
        listed = [c.tinker_path for c in rest.list_checkpoints(model_id).result().checkpoints]
        check(self.state_path in listed and self.sampler_path in listed, f"checkpoints {listed}")
        info = rest.get_weights_info_by_tinker_path(self.state_path).result()
        check(info.base_model == BASE_MODEL and info.lora_rank == 8, f"weights info {info}")
        admin = self.tinker.AdminClient(base_url=self.server.base_url, api_key=API_KEY)
        log = admin.get_audit_log("checkpoints").result()
        saved = {
            e.event_details.get("tinker_path") for e in log.entries if e.event == "checkpoint_saved"
        }
        check({self.state_path, self.sampler_path} <= saved, f"audit log {log.entries}")

    def copy_weights(self) -> None:
        # ServiceClient.copy_weights copies into the client's project, RestClient's into the
        # one named; the SDK sends one idempotency key for all retries, and the token as a header.
        archive = self.tinker.ServiceClient(
            project_id="proj-copies", base_url=self.server.base_url, api_key=API_KEY
        )
        copy = archive.copy_weights(self.state_path, ttl_seconds=3600).result()
        check(copy.endswith("/weights/ckpt-1") and copy != self.state_path, f"copy {copy}")
        from_copy = self.service.create_training_client_from_state(copy).result()
        from_source = self.service.create_training_client_from_state(self.state_path).result()
        check(
            math.isclose(self.loss(from_copy), self.loss(from_source), rel_tol=1e-6),
            "the copy holds the source's weights",
        )
        rest = self.rest_client()
        copy_s = rest.copy_weights(self.sampler_path, "proj-b").result()
        check(copy_s.endswith("/sampler_weights/sampler-1"), f"sampler copy {copy_s}")
        sampler = self.service.create_sampling_client(model_path=copy_s).result()
        prompt = self.types.ModelInput.from_ints(self.tokenizer.encode("What is 2 + 2?"))
        params = self.types.SamplingParams(max_tokens=4, temperature=0.0)
        check(len(sampler.sample(prompt, 1, params).result().sequences) == 1, "sample the copy")
        expiring = [
            c for c in rest.list_user_checkpoints().result().checkpoints if c.tinker_path == copy
        ]
        check(len(expiring) == 1 and expiring[0].expires_at is not None, f"ttl {expiring}")
        try:
            rest.copy_weights(self.state_path, "proj-b", weights_access_token="tok").result()
        except self.tinker.BadRequestError as exc:
            check("weights_access_token" in str(exc), f"refusal {exc}")
        else:
            raise AssertionError("weights_access_token was not refused")
        archive.close("success").result()

    def wire(self) -> None:
        stats = self.server.statistics()
        bodies, results = dict(stats.fwdbwd_bodies), dict(stats.results_sent)
        binary = "protobuf+zstd" if self.zstd else "protobuf"
        check(set(bodies) == {binary} and bodies[binary] > 0, f"bodies by wire {bodies}")
        check(set(results) == {"protobuf"}, f"results by wire {results}")
        print(f"     wire: bodies {bodies}, results {results}", flush=True)

    def close(self) -> None:
        session_id = self.service.holder.get_session_id()
        self.service.close("success", detail="interop smoke done").result()
        session = self.rest_client().get_session(session_id).result()
        check(self.training.model_id in session.training_run_ids, f"session {session}")
        check(self.server.statistics().sessions == 0, "close() finished the session")


def run(server: LoopbackServer, *, zstd: bool) -> None:
    """Point the SDK at ``server`` and run every flow."""
    flows = Flows(server, zstd=zstd)
    for name in (
        "service_client",
        "training_client",
        "supervised",
        "reinforcement",
        "checkpoints",
        "sampling",
        "sampling_038",
        "losses_038",
        "rest",
        "copy_weights",
        "wire",
        "close",
    ):
        step(name, getattr(flows, name))
    stats = server.statistics()
    duplicated = {rid: n for rid, n in server.execution_counts().items() if n != 1}
    check(not duplicated, f"requests executed more than once: {duplicated}")
    print(f"server: {dict(stats.executed)}; {stats.rejected} error answers", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the smoke; 0 when every flow passed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backend", default="synthetic", help="server backend (synthetic, torch)")
    parser.add_argument("--zstd", action="store_true", help="ask for zstd-compressed bodies")
    parser.add_argument(
        "--default-server",
        action="store_true",
        help="serve with every default (the 0.22 wire, no flags) instead of --wire 0.38",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        with tempfile.TemporaryDirectory(prefix="mint-interop-038-") as data_dir:
            # No api_keys: the defaults, which include the SDK's tml- key.
            config = ServerConfig(
                data_dir=Path(data_dir),
                backend=args.backend,
                wire="0.22" if args.default_server else "0.38",
                proto_compress_fwdbwd=args.zstd,
            )
            with serve_loopback(config) as server:
                run(server, zstd=args.zstd)
    except Exception:  # noqa: BLE001 - any failure is reported as exit status 1
        traceback.print_exc()
        print("FAILED: tinker 0.38 does not work against the local server", flush=True)
        return 1
    wire = "protobuf+zstd" if args.zstd else "protobuf"
    server_wire = "default 0.22 wire, no flags" if args.default_server else "0.38 wire"
    print(
        f"PASSED: tinker 0.38 against the local server ({server_wire}, {wire} bodies, "
        f"{args.backend} backend)",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # The SDK keeps background threads (heartbeat, telemetry) alive; do not wait for them.
    os._exit(status)
