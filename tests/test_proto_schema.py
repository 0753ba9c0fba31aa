"""The generated protobuf module (and its stub) still say what ``tinker_public.proto`` says.

``scripts/gen_proto.py --check`` regenerates with a pinned protoc in a venv of
its own, which needs the package index; this test needs neither. It reads the
.proto with a small parser that covers the subset the file uses (proto3
scalars, message/enum references, ``repeated``, ``optional``, ``map<,>``,
``oneof``), builds the ``FileDescriptorProto`` protoc would embed, and compares
it with the one in ``tinker_public_pb2`` field for field. Anything outside that
subset fails the test loudly instead of being skipped, so a .proto edit that
the parser cannot follow is noticed (extend the parser, or run the script).
The ``.pyi`` stub is checked for the same message, field and enum value names.
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2, text_format

from mint_async._proto import tinker_public_pb2 as pb

SRC = Path(__file__).resolve().parent.parent / "src"
PROTO_NAME = "mint_async/_proto/tinker_public.proto"
PROTO = SRC / PROTO_NAME
STUB = SRC / "mint_async/_proto/tinker_public_pb2.pyi"

FDP = descriptor_pb2.FieldDescriptorProto
SCALARS = frozenset(
    {
        "double",
        "float",
        "int32",
        "int64",
        "uint32",
        "uint64",
        "sint32",
        "sint64",
        "fixed32",
        "fixed64",
        "sfixed32",
        "sfixed64",
        "bool",
        "string",
        "bytes",
    }
)
_TOKEN = re.compile(r'\s*(?:([A-Za-z_][\w.]*)|(-?\d+)|("[^"]*")|([{}<>;=,\[\]]))')


class ProtoSyntaxError(AssertionError):
    """The .proto uses something this test's parser does not follow."""


def _tokens(text: str) -> list[str]:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)
    text = re.sub(r"//[^\n]*", " ", text)
    out: list[str] = []
    pos = 0
    while pos < len(text.rstrip()):
        m = _TOKEN.match(text, pos)
        if m is None:
            msg = f"unexpected text at {text[pos : pos + 30]!r}"
            raise ProtoSyntaxError(msg)
        out.append(m.group(m.lastindex or 0))
        pos = m.end()
    return out


@dataclass
class _Field:
    label: str  # "", "repeated" or "optional"
    type: str  # a scalar, a reference, or "map"
    name: str
    number: int
    oneof: str | None = None
    map_types: tuple[str, str] | None = None


@dataclass
class _Message:
    name: str
    fields: list[_Field] = field(default_factory=list[_Field])
    oneofs: list[str] = field(default_factory=list[str])


@dataclass
class _File:
    syntax: str = ""
    package: str = ""
    enums: dict[str, list[tuple[str, int]]] = field(
        default_factory=dict[str, list[tuple[str, int]]]
    )
    messages: list[_Message] = field(default_factory=list[_Message])


class _Parser:
    """A recursive-descent reader of the .proto subset ``tinker_public.proto`` uses."""

    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.pos = 0

    def peek(self) -> str | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            msg = f"expected {expected or 'a token'}, got {tok!r} (token {self.pos})"
            raise ProtoSyntaxError(msg)
        self.pos += 1
        return tok

    def number(self) -> int:
        tok = self.take()
        if not re.fullmatch(r"-?\d+", tok):
            msg = f"expected a number, got {tok!r}"
            raise ProtoSyntaxError(msg)
        return int(tok)

    def parse(self) -> _File:
        out = _File()
        while (tok := self.peek()) is not None:
            match tok:
                case "syntax":
                    self.take()
                    self.take("=")
                    out.syntax = self.take().strip('"')
                    self.take(";")
                case "package":
                    self.take()
                    out.package = self.take()
                    self.take(";")
                case "enum":
                    self.take()
                    name = self.take()
                    out.enums[name] = self.enum_body()
                case "message":
                    self.take()
                    out.messages.append(self.message(self.take()))
                case _:
                    msg = f"top-level {tok!r} is not supported by this parser"
                    raise ProtoSyntaxError(msg)
        return out

    def enum_body(self) -> list[tuple[str, int]]:
        self.take("{")
        values: list[tuple[str, int]] = []
        while self.peek() != "}":
            name = self.take()
            self.take("=")
            values.append((name, self.number()))
            self.take(";")
        self.take("}")
        return values

    def message(self, name: str) -> _Message:
        msg = _Message(name)
        self.take("{")
        while (tok := self.peek()) != "}":
            if tok == "oneof":
                self.take()
                oneof = self.take()
                msg.oneofs.append(oneof)
                self.take("{")
                while self.peek() != "}":
                    msg.fields.append(self.field_decl(oneof))
                self.take("}")
            elif tok in ("message", "enum", "option", "reserved", "extensions", "extend"):
                err = f"{tok!r} inside message {name} is not supported by this parser"
                raise ProtoSyntaxError(err)
            else:
                msg.fields.append(self.field_decl(None))
        self.take("}")
        return msg

    def field_decl(self, oneof: str | None) -> _Field:
        label = ""
        if self.peek() in ("repeated", "optional", "required"):
            label = self.take()
            if label == "required":
                raise ProtoSyntaxError("'required' is not proto3")
        map_types: tuple[str, str] | None = None
        if self.peek() == "map":
            self.take()
            self.take("<")
            key = self.take()
            self.take(",")
            value = self.take()
            self.take(">")
            type_, map_types = "map", (key, value)
        else:
            type_ = self.take()
        name = self.take()
        self.take("=")
        number = self.number()
        if self.peek() == "[":
            raise ProtoSyntaxError(f"field options on {name} are not supported by this parser")
        self.take(";")
        return _Field(label, type_, name, number, oneof, map_types)


def _camel(name: str) -> str:
    """protoc's map entry naming: ``loss_fn_config_v2`` -> ``LossFnConfigV2``."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def build_descriptor(text: str, name: str = PROTO_NAME) -> descriptor_pb2.FileDescriptorProto:
    """The FileDescriptorProto protoc embeds for this .proto text (for the supported subset)."""
    parsed = _Parser(text).parse()
    pkg = parsed.package
    messages = {m.name for m in parsed.messages}

    def set_type(f: descriptor_pb2.FieldDescriptorProto, type_: str) -> None:
        if type_ in SCALARS:
            f.type = FDP.Type.Value("TYPE_" + type_.upper())
        elif type_ in parsed.enums:
            f.type, f.type_name = FDP.TYPE_ENUM, f".{pkg}.{type_}"
        elif type_ in messages:
            f.type, f.type_name = FDP.TYPE_MESSAGE, f".{pkg}.{type_}"
        else:
            msg = f"unknown type {type_!r} (qualified or imported names are not supported)"
            raise ProtoSyntaxError(msg)

    out = descriptor_pb2.FileDescriptorProto(name=name, package=pkg, syntax=parsed.syntax)
    for enum_name, values in parsed.enums.items():
        enum = out.enum_type.add(name=enum_name)
        for value_name, number in values:
            enum.value.add(name=value_name, number=number)
    for m in parsed.messages:
        dm = out.message_type.add(name=m.name)
        for oneof in m.oneofs:
            dm.oneof_decl.add(name=oneof)
        synthetic: list[descriptor_pb2.FieldDescriptorProto] = []
        for f in m.fields:
            df = dm.field.add(name=f.name, number=f.number)
            df.label = FDP.LABEL_REPEATED if f.label == "repeated" else FDP.LABEL_OPTIONAL
            if f.map_types is not None:
                entry = dm.nested_type.add(name=_camel(f.name) + "Entry")
                entry.options.map_entry = True
                for number, (part, type_) in enumerate(
                    zip(("key", "value"), f.map_types, strict=True), 1
                ):
                    set_type(
                        entry.field.add(name=part, number=number, label=FDP.LABEL_OPTIONAL), type_
                    )
                df.label = FDP.LABEL_REPEATED
                df.type, df.type_name = FDP.TYPE_MESSAGE, f".{pkg}.{m.name}.{entry.name}"
            else:
                set_type(df, f.type)
            if f.oneof is not None:
                df.oneof_index = m.oneofs.index(f.oneof)
            elif f.label == "optional":
                df.proto3_optional = True
                synthetic.append(df)
        # protoc appends the synthetic oneofs of proto3 `optional` after the real ones.
        for df in synthetic:
            df.oneof_index = len(dm.oneof_decl)
            dm.oneof_decl.add(name="_" + df.name)
    return out


def generated_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The FileDescriptorProto embedded in the generated ``tinker_public_pb2``."""
    return descriptor_pb2.FileDescriptorProto.FromString(pb.DESCRIPTOR.serialized_pb)


def _diff(
    expected: descriptor_pb2.FileDescriptorProto, actual: descriptor_pb2.FileDescriptorProto
) -> str:
    lines = difflib.unified_diff(
        text_format.MessageToString(expected).splitlines(),
        text_format.MessageToString(actual).splitlines(),
        "from tinker_public.proto",
        "in tinker_public_pb2.py",
        lineterm="",
    )
    return "\n".join(lines)


def test_generated_module_matches_the_proto() -> None:
    """Every message, field (name, number, type, label, presence, oneof), map and enum of the .proto is in the _pb2, and nothing else."""
    expected = build_descriptor(PROTO.read_text())
    actual = generated_descriptor()
    assert expected == actual, (
        "tinker_public_pb2.py is stale: run `python scripts/gen_proto.py`\n"
        + _diff(expected, actual)
    )


MUTATIONS = [
    pytest.param("int32 seq_id = 2;", "int32 seq_id = 9;", id="field-number"),
    pytest.param("int32 seq_id = 2;", "int64 seq_id = 2;", id="field-type"),
    pytest.param("optional bytes logprobs = 3;", "bytes logprobs = 3;", id="presence"),
    pytest.param("repeated Datum data = 3;", "Datum data = 3;", id="label"),
    pytest.param(
        "bool forward_only = 6;", "bool forward_only = 6;\n  int32 extra = 8;", id="new-field"
    ),
    pytest.param(
        "map<string, double> metrics = 3;", "map<string, float> metrics = 3;", id="map-value"
    ),
    pytest.param("DTYPE_BFLOAT16 = 4;", "DTYPE_BFLOAT16 = 5;", id="enum-value"),
    pytest.param("string text = 2;\n  }", "}\n  string text = 2;", id="oneof-membership"),
    pytest.param("message DmelChunk {", "message AudioChunk {", id="message-name"),
]


@pytest.mark.parametrize(("old", "new"), MUTATIONS)
def test_a_changed_proto_is_noticed(old: str, new: str) -> None:
    """The comparison is not vacuous: each kind of schema edit to the .proto makes it fail."""
    text = PROTO.read_text()
    assert old in text
    mutated = text.replace(old, new, 1)
    try:
        changed = build_descriptor(mutated)
    except ProtoSyntaxError:  # a rename leaves a dangling reference: also noticed
        return
    assert changed != generated_descriptor()


@pytest.mark.parametrize(
    "text",
    [
        'syntax = "proto3";\nimport "other.proto";',
        'syntax = "proto3";\nmessage A { message B { int32 x = 1; } }',
        'syntax = "proto3";\nmessage A { int32 x = 1 [deprecated = true]; }',
        'syntax = "proto3";\nmessage A { Unknown x = 1; }',
    ],
    ids=["import", "nested-message", "field-option", "unknown-type"],
)
def test_parser_refuses_what_it_does_not_follow(text: str) -> None:
    """Constructs outside the parser's subset raise instead of being silently dropped."""
    with pytest.raises(ProtoSyntaxError):
        build_descriptor(text)


# ---------------------------------------------------------------------------
# The .pyi stub (mypy-protobuf): same messages, fields and enum values
# ---------------------------------------------------------------------------


def _stub_names() -> tuple[dict[str, set[str]], dict[str, dict[str, int]]]:
    """``{message: {FIELD_NUMBER constants}}`` and ``{enum: {value: number}}`` from the stub."""
    source = STUB.read_text()
    tree = ast.parse(source)
    fields: dict[str, set[str]] = {}
    enums: dict[str, dict[str, int]] = {}
    lines = source.splitlines()

    def walk(prefix: str, body: list[ast.stmt]) -> None:
        for node in body:
            if not isinstance(node, ast.ClassDef):
                continue
            wrapper = re.fullmatch(r"_(\w+)EnumTypeWrapper", node.name)
            annotated = [
                stmt
                for stmt in node.body
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
            ]
            if wrapper is not None:
                values: dict[str, int] = {}
                for stmt in annotated:
                    assert isinstance(stmt.target, ast.Name)
                    number = re.search(r"#\s*(-?\d+)\s*$", lines[stmt.lineno - 1])
                    if number is not None:
                        values[stmt.target.id] = int(number.group(1))
                enums[prefix + wrapper.group(1)] = values
            elif any(
                isinstance(base, ast.Attribute) and base.attr == "Message" for base in node.bases
            ):
                fields[prefix + node.name] = {
                    stmt.target.id
                    for stmt in annotated
                    if isinstance(stmt.target, ast.Name)
                    and stmt.target.id.endswith("_FIELD_NUMBER")
                }
                walk(f"{prefix}{node.name}.", node.body)

    walk("", tree.body)
    return fields, enums


def test_stub_matches_the_proto() -> None:
    """The .pyi declares exactly the .proto's messages (map entries too), field constants and enum values."""
    expected = build_descriptor(PROTO.read_text())
    want_fields: dict[str, set[str]] = {}
    for m in expected.message_type:
        want_fields[m.name] = {f.name.upper() + "_FIELD_NUMBER" for f in m.field}
        for entry in m.nested_type:
            want_fields[f"{m.name}.{entry.name}"] = {
                f.name.upper() + "_FIELD_NUMBER" for f in entry.field
            }
    want_enums = {e.name: {v.name: v.number for v in e.value} for e in expected.enum_type}
    fields, enums = _stub_names()
    assert fields == want_fields, (
        "tinker_public_pb2.pyi is stale: run `python scripts/gen_proto.py`"
    )
    assert enums == want_enums, "tinker_public_pb2.pyi is stale: run `python scripts/gen_proto.py`"
