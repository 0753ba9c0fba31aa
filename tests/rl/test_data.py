"""mint_async.rl data: group-relative advantages and RL datums (shifted, masked, exact logprobs)."""

from __future__ import annotations

import numpy as np
import pytest

from mint_async import InvalidInputError, rl
from mint_async import types as t
from mint_async.rl._data import SpanRun, shifted_spans
from mint_async.server._stability import StabilityRecords, resolve_stable_reinforce


def _traj(*turns: tuple[list[int], list[int], list[float], float]) -> rl.Trajectory:
    return rl.Trajectory(
        [
            rl.Transition(ob, rl.Action(tokens=ac, logprobs=lp, stop_reason="stop"), reward)
            for ob, ac, lp, reward in turns
        ]
    )


def _col(datum: t.Datum, key: str) -> list[float]:
    value = datum.loss_fn_inputs[key]
    data = value.data if isinstance(value, t.TensorData) else value
    return [float(x) for x in np.asarray(data).ravel()]


def test_mean_advantages_are_centred() -> None:
    """ "mean" subtracts the group mean."""
    assert rl.group_advantages([1.0, 0.0, 0.0, 1.0]) == [0.5, -0.5, -0.5, 0.5]


def test_mean_std_advantages_are_scaled() -> None:
    """ "mean_std" divides by the group's standard deviation."""
    adv = rl.group_advantages([1.0, 0.0, 0.0, 1.0], "mean_std")
    assert adv is not None
    assert adv == pytest.approx([1.0, -1.0, -1.0, 1.0], rel=1e-4)


def test_constant_group_has_no_advantages() -> None:
    """A group whose rewards are all equal carries no signal: None."""
    assert rl.group_advantages([0.3, 0.3, 0.3]) is None
    group = rl.TrajectoryGroup(
        index=0, version=0, trajectories=[_traj(([1, 2], [3], [-0.1], 0.3))] * 2
    )
    assert rl.group_datums(group) is None


def test_single_turn_datum_is_shifted_and_masked() -> None:
    """Targets are tokens[1:]; only action positions carry sampler logprobs and the advantage."""
    (datum,) = rl.trajectory_datums(_traj(([1, 2, 3], [7, 8], [-0.5, -0.25], 1.0)), 2.0)
    assert datum.model_input.to_ints() == [1, 2, 3, 7]
    assert _col(datum, "target_tokens") == [2, 3, 7, 8]
    assert _col(datum, "logprobs") == [0.0, 0.0, -0.5, -0.25]
    assert _col(datum, "advantages") == [0.0, 0.0, 2.0, 2.0]


def test_multi_turn_prefix_turns_merge_into_one_datum() -> None:
    """A turn whose observation extends the previous one joins its datum; the new tokens are masked."""
    traj = _traj(([1, 2], [5], [-0.1], 0.0), ([1, 2, 5, 9], [6], [-0.2], 1.0))
    (datum,) = rl.trajectory_datums(traj, 1.0)
    assert _col(datum, "target_tokens") == [2, 5, 9, 6]
    assert _col(datum, "advantages") == [0.0, 1.0, 0.0, 1.0]
    assert _col(datum, "logprobs") == pytest.approx([0.0, -0.1, 0.0, -0.2])


def test_multi_turn_without_prefix_gives_one_datum_per_turn() -> None:
    """A turn that does not extend the previous sequence starts a new datum."""
    traj = _traj(([1, 2], [5], [-0.1], 0.0), ([4, 4], [6], [-0.2], 1.0))
    assert len(rl.trajectory_datums(traj, 1.0)) == 2


def test_group_weight_scales_advantages() -> None:
    """Down-weighted (stale) groups train with scaled advantages."""
    group = rl.TrajectoryGroup(
        index=3,
        version=0,
        trajectories=[_traj(([1, 2], [3], [-0.1], 1.0)), _traj(([1, 2], [4], [-0.2], 0.0))],
    )
    full = rl.group_datums(group)
    half = rl.group_datums(group, weight=0.5)
    assert full is not None and half is not None
    assert _col(half[0], "advantages")[-1] == pytest.approx(0.5 * _col(full[0], "advantages")[-1])


# ---------------------------------------------------------------------------
# stable_reinforce provenance spans
# ---------------------------------------------------------------------------

Tagged = list[tuple[str, str, int]]
"""One ``(kind, sequence_id, position in its source)`` per token."""


def _expand(spans: list[t.ProvenanceSpan]) -> Tagged:
    kind = {t.PromptProvenanceSpan: "prompt", t.SampledProvenanceSpan: "sampled"}
    return [(kind[type(s)], s.sequence_id, s.offset + i) for s in spans for i in range(s.length)]


def _expand_runs(runs: list[SpanRun]) -> Tagged:
    return [(r.kind, r.sequence_id, r.offset + i) for r in runs for i in range(r.length)]


def test_shifted_spans_trim_the_last_and_the_first_position() -> None:
    """model_input loses the last position (of the last run), target_tokens the first (offset + 1)."""
    model_input, targets = shifted_spans(
        [SpanRun("prompt", "s", 0, 3), SpanRun("sampled", "s", 0, 2)]
    )
    assert model_input == [
        t.PromptProvenanceSpan(sequence_id="s", offset=0, length=3),
        t.SampledProvenanceSpan(sequence_id="s", offset=0, length=1),
    ]
    assert targets == [
        t.PromptProvenanceSpan(sequence_id="s", offset=1, length=2),
        t.SampledProvenanceSpan(sequence_id="s", offset=0, length=2),
    ]


def test_shifted_spans_drop_length_one_runs_at_the_edges() -> None:
    """A one-token first run is absent from target_tokens, a one-token last run from model_input."""
    runs = [
        SpanRun("prompt", "a", 4, 1),
        SpanRun("sampled", "a", 0, 2),
        SpanRun("sampled", "b", 0, 1),
    ]
    model_input, targets = shifted_spans(runs)
    assert model_input == [
        t.PromptProvenanceSpan(sequence_id="a", offset=4, length=1),
        t.SampledProvenanceSpan(sequence_id="a", offset=0, length=2),
    ]
    assert targets == [
        t.SampledProvenanceSpan(sequence_id="a", offset=0, length=2),
        t.SampledProvenanceSpan(sequence_id="b", offset=0, length=1),
    ]
    # Two tokens, one run each: one span per side.
    one, other = shifted_spans([SpanRun("prompt", "a", 0, 1), SpanRun("sampled", "a", 0, 1)])
    assert one == [t.PromptProvenanceSpan(sequence_id="a", offset=0, length=1)]
    assert other == [t.SampledProvenanceSpan(sequence_id="a", offset=0, length=1)]
    # A single token: both sides are empty.
    assert shifted_spans([SpanRun("sampled", "a", 3, 1)]) == ([], [])


@pytest.mark.parametrize("seed", range(20))
def test_shifted_spans_tile_tokens_minus_last_and_tokens_minus_first(seed: int) -> None:
    """For random runs (some empty), the tilings name exactly tokens[:-1] and tokens[1:]."""
    rng = np.random.default_rng(seed)
    runs = [
        SpanRun(
            "prompt" if rng.random() < 0.5 else "sampled",
            f"s{rng.integers(3)}",
            int(rng.integers(5)),
            int(rng.integers(4)),
        )
        for _ in range(int(rng.integers(1, 6)))
    ]
    if not any(r.length for r in runs):
        runs.append(SpanRun("sampled", "s9", 0, 1))
    full = _expand_runs(runs)
    model_input, targets = shifted_spans(runs)
    assert _expand(model_input) == full[:-1]
    assert _expand(targets) == full[1:]
    assert all(s.length > 0 for s in [*model_input, *targets])


def test_shifted_spans_refuse_empty_or_negative_runs() -> None:
    """No token at all, or a negative offset/length: InvalidInputError."""
    with pytest.raises(InvalidInputError, match="at least one token"):
        shifted_spans([SpanRun("prompt", "a", 0, 0)])
    with pytest.raises(InvalidInputError, match="offset >= 0"):
        shifted_spans([SpanRun("prompt", "a", -1, 2)])


def _recorded(*turns: tuple[list[int], list[int], str]) -> rl.Trajectory:
    """A trajectory whose actions name their sampled sequences (logprob -0.1 * position)."""
    return rl.Trajectory(
        [
            rl.Transition(
                ob,
                rl.Action(
                    tokens=ac,
                    logprobs=[-0.1 * (i + 1) for i in range(len(ac))],
                    stop_reason="stop",
                    sequence_id=sid,
                ),
                1.0,
            )
            for ob, ac, sid in turns
        ]
    )


def _records(trajectory: rl.Trajectory) -> StabilityRecords:
    """The server's records of each turn's sample: prompt = observation, tokens = action."""
    records = StabilityRecords()
    for tr in trajectory.transitions:
        assert tr.action.sequence_id is not None
        response = t.SampleResponse(
            sequences=[
                t.SampledSequence(
                    stop_reason="stop",
                    tokens_np=tr.action.tokens,
                    logprobs_np=[x - 1.0 for x in tr.action.logprobs],  # the server's own
                )
            ]
        )
        records.record(
            [tr.action.sequence_id],
            response,
            session_id="s",
            owner="o",
            prompt=np.asarray(tr.observation, dtype=np.int64),
        )
    return records


def _resolve(datum: t.Datum, records: StabilityRecords) -> tuple[list[float], list[float]]:
    """What the server trains on: (recorded logprobs, weights) per target position."""
    resolved = resolve_stable_reinforce(datum, 0, records, owner="o", session_id="s")
    return _col(resolved, "logprobs"), _col(resolved, "weights")


def test_single_turn_provenance() -> None:
    """Prompt then sample: the spans the server checks, recorded logprobs on the sampled targets."""
    traj = _recorded(([1, 2, 3], [7, 8], "r:0"))
    (datum,) = rl.trajectory_datums(traj, 2.0, provenance=True)
    assert datum.model_input_spans == [
        t.PromptProvenanceSpan(sequence_id="r:0", offset=0, length=3),
        t.SampledProvenanceSpan(sequence_id="r:0", offset=0, length=1),
    ]
    assert datum.loss_fn_input_spans == [
        t.PromptProvenanceSpan(sequence_id="r:0", offset=1, length=2),
        t.SampledProvenanceSpan(sequence_id="r:0", offset=0, length=2),
    ]
    logprobs, weights = _resolve(datum, _records(traj))
    assert weights == [0.0, 0.0, 1.0, 1.0]
    assert logprobs == pytest.approx([0.0, 0.0, -1.1, -1.2])


def test_multi_turn_merged_provenance_names_the_later_prompt() -> None:
    """Tokens a later observation adds are positions of *that* turn's prompt, past the earlier turns."""
    traj = _recorded(([1, 2], [5, 6], "a:0"), ([1, 2, 5, 6, 9, 9], [4], "b:0"))
    (datum,) = rl.trajectory_datums(traj, 1.0, provenance=True)
    assert datum.model_input.to_ints() == [1, 2, 5, 6, 9, 9]
    assert datum.model_input_spans == [
        t.PromptProvenanceSpan(sequence_id="a:0", offset=0, length=2),
        t.SampledProvenanceSpan(sequence_id="a:0", offset=0, length=2),
        t.PromptProvenanceSpan(sequence_id="b:0", offset=4, length=2),
    ]
    assert datum.loss_fn_input_spans == [
        t.PromptProvenanceSpan(sequence_id="a:0", offset=1, length=1),
        t.SampledProvenanceSpan(sequence_id="a:0", offset=0, length=2),
        t.PromptProvenanceSpan(sequence_id="b:0", offset=4, length=2),
        t.SampledProvenanceSpan(sequence_id="b:0", offset=0, length=1),
    ]
    logprobs, weights = _resolve(datum, _records(traj))
    assert weights == [0.0, 1.0, 1.0, 0.0, 0.0, 1.0]
    assert logprobs == pytest.approx([0.0, -1.1, -1.2, 0.0, 0.0, -1.1])


def test_multi_turn_split_provenance_one_datum_per_turn() -> None:
    """A turn that does not extend the previous one starts a datum of its own; a third merges into it."""
    traj = _recorded(
        ([1, 2], [5], "a:0"),
        ([7, 7, 7], [6, 3], "b:0"),
        ([7, 7, 7, 6, 3, 8], [2], "c:0"),
    )
    first, second = rl.trajectory_datums(traj, 1.0, provenance=True)
    assert first.loss_fn_input_spans == [
        t.PromptProvenanceSpan(sequence_id="a:0", offset=1, length=1),
        t.SampledProvenanceSpan(sequence_id="a:0", offset=0, length=1),
    ]
    assert second.model_input_spans == [
        t.PromptProvenanceSpan(sequence_id="b:0", offset=0, length=3),
        t.SampledProvenanceSpan(sequence_id="b:0", offset=0, length=2),
        t.PromptProvenanceSpan(sequence_id="c:0", offset=5, length=1),
    ]
    assert second.loss_fn_input_spans == [
        t.PromptProvenanceSpan(sequence_id="b:0", offset=1, length=2),
        t.SampledProvenanceSpan(sequence_id="b:0", offset=0, length=2),
        t.PromptProvenanceSpan(sequence_id="c:0", offset=5, length=1),
        t.SampledProvenanceSpan(sequence_id="c:0", offset=0, length=1),
    ]
    records = _records(traj)
    assert _resolve(first, records)[1] == [0.0, 1.0]
    assert _resolve(second, records)[1] == [0.0, 0.0, 1.0, 1.0, 0.0, 1.0]


def test_a_shifted_offset_is_refused_by_the_server_check() -> None:
    """The server's check sees a prompt span one position off (the offsets above are not vacuous)."""
    traj = _recorded(([1, 2], [5, 6], "a:0"), ([1, 2, 5, 6, 9, 8], [4], "b:0"))
    (datum,) = rl.trajectory_datums(traj, 1.0, provenance=True)
    assert datum.loss_fn_input_spans is not None and datum.model_input_spans is not None
    spans = list(datum.loss_fn_input_spans)
    spans[2] = t.PromptProvenanceSpan(sequence_id="b:0", offset=3, length=2)
    bad = datum.with_provenance(model_input=datum.model_input_spans, loss_fn_inputs=spans)
    with pytest.raises(InvalidInputError, match="are not the tokens"):
        _resolve(bad, _records(traj))


def test_provenance_needs_every_sequence_id() -> None:
    """An action without a sequence_id cannot be named: InvalidInputError before anything is sent."""
    traj = _traj(([1, 2], [3, 4], [-0.1, -0.2], 1.0))
    with pytest.raises(InvalidInputError, match="sequence_id"):
        rl.trajectory_datums(traj, 1.0, provenance=True)


def test_group_datums_carry_provenance_when_the_group_was_recorded() -> None:
    """A recorded group's datums carry spans; an unrecorded group's do not (unless asked)."""
    trajectories = [_recorded(([1, 2], [3], "a:0")), _recorded(([1, 2], [4], "a:1"))]
    trajectories[1] = rl.Trajectory(
        [rl.Transition(tr.observation, tr.action, 0.0) for tr in trajectories[1].transitions]
    )
    recorded = rl.TrajectoryGroup(index=0, version=0, trajectories=trajectories, recorded=True)
    plain = rl.TrajectoryGroup(index=0, version=0, trajectories=trajectories)
    with_spans = rl.group_datums(recorded)
    without = rl.group_datums(plain)
    asked = rl.group_datums(plain, provenance=True)
    assert with_spans is not None and without is not None and asked is not None
    assert all(d.loss_fn_input_spans is not None for d in with_spans + asked)
    assert all(d.model_input_spans is None for d in without)
