"""From trajectory groups to training data: group-relative advantages, RL datums.

Every datum carries the *sampler's* logprobs of its action tokens under
``logprobs``, so ``importance_sampling``, ``ppo``, ``cispo`` and ``dro`` correct
for exactly the policy that produced the sample, however stale it is.

Advantages are ``reward - mean(group)`` (``"mean"``) or that divided by the
group's standard deviation (``"mean_std"``). A group whose rewards are all
equal has no signal and is left out (the caller counts it).

Multi-turn trajectories become one datum when each observation extends the
previous observation + action (the usual chat case), else one datum per turn.
Observation tokens get advantage 0, so only the policy's own tokens are trained.

``stable_reinforce`` (tinker 0.38) datums also carry provenance spans (protocol
§8.2): the server checks every token against its record of the sample and uses
the *recorded* logprobs. A datum's tokens are runs: the first observation of a
datum is positions ``[0, n)`` of the prompt of the turn that sampled next
(``PromptProvenanceSpan``), each action the tokens of its own sampled sequence
(``SampledProvenanceSpan``), and the tokens a later observation adds are
positions ``[len(datum so far), len(observation))`` of *that* turn's prompt.
:func:`shifted_spans` trims the runs to ``model_input`` (``tokens[:-1]``) and
``target_tokens`` (``tokens[1:]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np

from .. import types as t
from .._exceptions import InvalidInputError
from ._rollout import Trajectory, TrajectoryGroup

__all__ = [
    "AdvantageMode",
    "SpanRun",
    "group_advantages",
    "group_datums",
    "shifted_spans",
    "trajectory_datums",
]

AdvantageMode = Literal["mean", "mean_std"]


def group_advantages(rewards: list[float], mode: AdvantageMode = "mean") -> list[float] | None:
    """Group-relative advantages, or ``None`` if the rewards are all equal (no signal)."""
    r = np.asarray(rewards, dtype=np.float64)
    centred = r - r.mean()
    if r.size == 0 or not np.any(np.abs(centred) > 1e-12):
        return None
    if mode == "mean_std":
        centred = centred / (r.std() + 1e-6)
    return [float(a) for a in centred]


class SpanRun(NamedTuple):
    """Consecutive tokens of a datum that are consecutive positions of one recorded source."""

    kind: Literal["prompt", "sampled"]
    """``"prompt"``: positions of the prompt of the request that sampled ``sequence_id``;
    ``"sampled"``: positions of the tokens sampled as ``sequence_id``."""
    sequence_id: str
    offset: int
    length: int


def _span(run: SpanRun) -> t.ProvenanceSpan:
    if run.kind == "prompt":
        return t.PromptProvenanceSpan(
            sequence_id=run.sequence_id, offset=run.offset, length=run.length
        )
    return t.SampledProvenanceSpan(
        sequence_id=run.sequence_id, offset=run.offset, length=run.length
    )


def shifted_spans(
    runs: Sequence[SpanRun],
) -> tuple[list[t.ProvenanceSpan], list[t.ProvenanceSpan]]:
    """The tilings of ``model_input`` and ``target_tokens`` from the runs of the full token list.

    ``runs`` tile the tokens of a datum before the shift; ``model_input`` is
    ``tokens[:-1]`` (the last run loses its last position) and ``target_tokens``
    is ``tokens[1:]`` (the first run loses its first, its offset moves by one).
    Runs left empty are dropped.

    Example::

        shifted_spans([SpanRun("prompt", "s:0", 0, 3), SpanRun("sampled", "s:0", 0, 1)])
        # model_input:   prompt [0, 3)
        # target_tokens: prompt [1, 3), sampled [0, 1)
    """
    if any(run.length < 0 or run.offset < 0 for run in runs):
        msg = "span runs need offset >= 0 and length >= 0"
        raise InvalidInputError(msg)
    kept = [run for run in runs if run.length > 0]
    if not kept:
        msg = "span runs must cover at least one token"
        raise InvalidInputError(msg)
    first, last = kept[0], kept[-1]
    head = [*kept[:-1], last._replace(length=last.length - 1)]
    tail = [first._replace(offset=first.offset + 1, length=first.length - 1), *kept[1:]]
    return (
        [_span(run) for run in head if run.length > 0],
        [_span(run) for run in tail if run.length > 0],
    )


@dataclass(slots=True)
class _Segment:
    """The tokens of one datum before the shift, what is action, and where each run came from."""

    tokens: list[int] = field(default_factory=list[int])
    mask: list[bool] = field(default_factory=list[bool])
    logprobs: list[float] = field(default_factory=list[float])
    runs: list[SpanRun] = field(default_factory=list[SpanRun])


def _segments(trajectory: Trajectory) -> list[_Segment]:
    """One segment per datum; consecutive turns merged when prefixed."""
    out: list[_Segment] = []
    for tr in trajectory.transitions:
        if out and tr.observation[: len(out[-1].tokens)] == out[-1].tokens:
            seg = out[-1]
        else:
            seg = _Segment()
            out.append(seg)
        start = len(seg.tokens)
        extra = tr.observation[start:]
        # Both runs name this turn's sequence: its request's prompt is this observation.
        sid = tr.action.sequence_id or ""
        seg.runs.append(SpanRun("prompt", sid, start, len(extra)))
        seg.tokens += extra
        seg.mask += [False] * len(extra)
        seg.logprobs += [0.0] * len(extra)
        seg.runs.append(SpanRun("sampled", sid, 0, len(tr.action.tokens)))
        seg.tokens += tr.action.tokens
        seg.mask += [True] * len(tr.action.tokens)
        seg.logprobs += tr.action.logprobs
    return out


def trajectory_datums(
    trajectory: Trajectory, advantage: float, *, provenance: bool = False
) -> list[t.Datum]:
    """RL datums (``target_tokens``, ``logprobs``, ``advantages``) for one trajectory.

    ``provenance``: also attach ``stable_reinforce`` provenance spans (every action
    must carry the ``sequence_id`` of a sample drawn with ``record_stability_info``).
    """
    if provenance and any(tr.action.sequence_id is None for tr in trajectory.transitions):
        msg = (
            "stable_reinforce needs every action's sequence_id (samples drawn with "
            "record_stability_info=True); an action of this trajectory has none"
        )
        raise InvalidInputError(msg)
    datums: list[t.Datum] = []
    for seg in _segments(trajectory):
        tokens, mask = seg.tokens, seg.mask
        if len(tokens) < 2 or not any(mask[1:]):
            continue
        # Position i predicts token i + 1: shift the per-token columns by one.
        action = np.asarray(mask[1:], dtype=bool)
        # The spans go in with the rest: one Datum, validated (and its tilings checked) once.
        input_spans, target_spans = shifted_spans(seg.runs) if provenance else (None, None)
        datums.append(
            t.Datum(
                model_input=t.ModelInput.from_ints(tokens[:-1]),
                loss_fn_inputs={
                    "target_tokens": np.asarray(tokens[1:], dtype=np.int64),
                    "logprobs": np.where(
                        action, np.asarray(seg.logprobs[1:], dtype=np.float32), 0.0
                    ).astype(np.float32),
                    "advantages": np.where(action, advantage, 0.0).astype(np.float32),
                },
                model_input_spans=input_spans,
                loss_fn_input_spans=target_spans,
            )
        )
    return datums


def group_datums(
    group: TrajectoryGroup,
    mode: AdvantageMode = "mean",
    weight: float = 1.0,
    *,
    provenance: bool | None = None,
) -> list[t.Datum] | None:
    """All datums of a group (advantages scaled by ``weight``), ``None`` for a constant group.

    ``provenance`` (default: whether the group's samples were ``recorded``) attaches
    ``stable_reinforce`` provenance spans to every datum.
    """
    advantages = group_advantages(group.rewards, mode)
    if advantages is None:
        return None
    spans = group.recorded if provenance is None else provenance
    datums: list[t.Datum] = []
    for trajectory, adv in zip(group.trajectories, advantages, strict=True):
        datums += trajectory_datums(trajectory, adv * weight, provenance=spans)
    return datums
