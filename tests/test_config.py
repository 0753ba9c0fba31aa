"""ClientConfig.resolve: arguments, then MINT_*, then TINKER_* environment variables, then defaults."""

from __future__ import annotations

from typing import Any

import pytest

from mint_async import ClientConfig, InvalidInputError
from mint_async._config import DEFAULT_BASE_MODEL, DEFAULT_BASE_URL, DEFAULT_LORA_RANK

SETTINGS = ("API_KEY", "BASE_URL", "BASE_MODEL", "LORA_RANK", "PROJECT_ID", "TAGS")
KEY = "sk-config-test-key"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No MINT_* / TINKER_* variable from the caller's environment leaks into these tests."""
    for setting in SETTINGS:
        monkeypatch.delenv(f"MINT_{setting}", raising=False)
        monkeypatch.delenv(f"TINKER_{setting}", raising=False)
    monkeypatch.delenv("MINT_WIRE", raising=False)


def test_defaults() -> None:
    """With only a key, every setting has its documented default (the MinT endpoint)."""
    cfg = ClientConfig.resolve(api_key=KEY)
    assert DEFAULT_BASE_URL == "https://mint.macaron.xin"
    assert cfg.base_url == DEFAULT_BASE_URL
    assert cfg.base_model == DEFAULT_BASE_MODEL == "Qwen/Qwen3-0.6B"
    assert cfg.lora_rank == DEFAULT_LORA_RANK == 16
    assert cfg.project_id is None and cfg.tags == () and cfg.wire == "auto"


# setting, argument, MINT_ value, TINKER_ value, default (None: see the test)
PRECEDENCE: list[tuple[str, Any, str, str, Any]] = [
    ("API_KEY", "sk-from-argument", "sk-from-mint", "tml-from-tinker", None),
    ("BASE_URL", "http://arg.invalid", "http://mint.invalid", "http://tinker.invalid", None),
    ("BASE_MODEL", "arg/model", "mint/model", "tinker/model", DEFAULT_BASE_MODEL),
    ("LORA_RANK", 8, "32", "64", DEFAULT_LORA_RANK),
    ("PROJECT_ID", "arg-project", "mint-project", "tinker-project", None),
]


@pytest.mark.parametrize(
    ("setting", "argument", "mint", "tinker", "default"),
    PRECEDENCE,
    ids=[row[0] for row in PRECEDENCE],
)
def test_precedence(
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    argument: Any,
    mint: str,
    tinker: str,
    default: Any,
) -> None:
    """An argument beats MINT_*, which beats TINKER_*, which beats the default."""
    name = setting.lower()
    base: dict[str, Any] = {} if setting == "API_KEY" else {"api_key": KEY}

    def resolved(**kwargs: Any) -> Any:
        cfg = ClientConfig.resolve(**base, **kwargs)
        return getattr(cfg, name)

    def as_attr(text: str) -> Any:
        return int(text) if setting == "LORA_RANK" else text

    monkeypatch.setenv(f"MINT_{setting}", mint)
    monkeypatch.setenv(f"TINKER_{setting}", tinker)
    assert resolved(**{name: argument}) == argument
    assert resolved() == as_attr(mint)
    monkeypatch.setenv(f"MINT_{setting}", "")  # set but empty counts as unset
    assert resolved() == as_attr(tinker)
    monkeypatch.delenv(f"MINT_{setting}")
    assert resolved() == as_attr(tinker)
    monkeypatch.delenv(f"TINKER_{setting}")
    if setting == "API_KEY":
        with pytest.raises(InvalidInputError, match="MINT_API_KEY"):
            resolved()
    elif setting == "BASE_URL":
        assert resolved() == DEFAULT_BASE_URL
    else:
        assert resolved() == default


def test_tags_precedence_and_normalisation(monkeypatch: pytest.MonkeyPatch) -> None:
    """MINT_TAGS beats TINKER_TAGS; tags are split on commas, stripped, deduplicated and sorted."""
    monkeypatch.setenv("TINKER_TAGS", "tinker")
    assert ClientConfig.resolve(api_key=KEY).tags == ("tinker",)
    monkeypatch.setenv("MINT_TAGS", " b, a,,b ,c")
    assert ClientConfig.resolve(api_key=KEY).tags == ("a", "b", "c")


@pytest.mark.parametrize(
    "key",
    ["sk-mint-key", "tml-tinker-key", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln"],
    ids=["mint", "tinker", "jwt"],
)
def test_accepted_key_formats(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    """MinT sk- keys, Tinker tml- keys and JWTs are accepted, as arguments and from the environment."""
    assert ClientConfig.resolve(api_key=key).api_key == key
    monkeypatch.setenv("MINT_API_KEY", key)
    assert ClientConfig.resolve().api_key == key


@pytest.mark.parametrize("key", ["pk-live-123", "bearer sk-123", "SK-upper", "jwt.token.here"])
def test_bad_key_prefix_rejected(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    """A key without a known prefix is an InvalidInputError naming the prefixes, never the key."""
    with pytest.raises(InvalidInputError, match=r"'sk-'.*'tml-'.*JWT") as info:
        ClientConfig.resolve(api_key=key)
    assert key not in str(info.value)
    monkeypatch.setenv("TINKER_API_KEY", key)
    with pytest.raises(InvalidInputError, match="must start with"):
        ClientConfig.resolve()


def test_key_never_in_repr() -> None:
    """The API key is not part of the config's repr."""
    cfg = ClientConfig.resolve(api_key=KEY)
    assert KEY not in repr(cfg) and "api_key" not in repr(cfg)


def test_base_url_validated_and_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    """A trailing slash is dropped; a URL that is not http(s) is rejected before anything is sent."""
    monkeypatch.setenv("MINT_BASE_URL", "https://mint.macaron.xin/")
    assert ClientConfig.resolve(api_key=KEY).base_url == "https://mint.macaron.xin"
    with pytest.raises(InvalidInputError, match="http"):
        ClientConfig.resolve(api_key=KEY, base_url="mint.macaron.xin")


def test_bad_lora_rank_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A non-integer rank is rejected naming the variable it came from; out-of-range ranks too."""
    monkeypatch.setenv("TINKER_LORA_RANK", "sixteen")
    with pytest.raises(InvalidInputError, match="TINKER_LORA_RANK must be an integer"):
        ClientConfig.resolve(api_key=KEY)
    assert ClientConfig.resolve(api_key=KEY, lora_rank=4).lora_rank == 4  # argument wins
    monkeypatch.setenv("MINT_LORA_RANK", "0")
    with pytest.raises(InvalidInputError, match=r"1\.\.64"):
        ClientConfig.resolve(api_key=KEY)


def test_overrides() -> None:
    """Other settings pass through as keyword overrides; unknown names are rejected."""
    cfg = ClientConfig.resolve(api_key=KEY, stuck_timeout=None, http_client="httpx")
    assert cfg.stuck_timeout is None and cfg.http_client == "httpx"
    with pytest.raises(InvalidInputError, match="unknown client settings"):
        ClientConfig.resolve(api_key=KEY, stuck_timeuot=1.0)
