"""Settings shared by every qev process: one TOML file, ``QEV_*`` overrides, a deployment file.

Precedence, highest first: values passed in code, ``QEV_*`` environment variables, the
config file (``--config FILE`` or ``QEV_CONFIG``), the deployment file written by
``qev deploy`` (addresses, chain id, genesis), then defaults. The config file has a
``[chain]`` table read by every process and one table per process (``[service]``,
``[keeper]``, ``[deploy]``, ``[keyper]``); top-level keys count as ``[chain]``.

Settings are read once, by the command line, and passed in; nothing reads them at import.
The RPC URL and passphrases are secrets: their reprs are masked, and ``redact_url`` is the
one way a URL reaches a log or a message.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from clearing.calendar import REDEMPTION_WINDOW
from clearing.errors import QevError
from clearing.keyfiles import Passphrase

ENV_PREFIX = "QEV_"
DEPLOYMENT_KEYS = ("chain_id", "vault", "settlement", "usdai", "genesis", "receipt_signer")


class ConfigError(QevError):
    """A setting that is missing or invalid, or a config or deployment file that is not."""

    code = "config"


def redact_url(url: str | None) -> str:
    """``scheme://host[:port]/...``: credentials, path and query hidden (API keys live there)."""
    if not url:
        return "(unset)"
    if url.startswith("sqlite:"):
        return url  # a local path: no credentials
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparsable URL)"
    if not parts.scheme or not host:
        return "(unparsable URL)"
    hidden = "/..." if (parts.path not in ("", "/") or parts.query) else ""
    user = "***@" if parts.username or parts.password else ""
    return urlunsplit((parts.scheme, f"{user}{host}{port}", hidden, "", ""))


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()]+")
_URL_PATH = re.compile(r"(with url: )\S+")


def scrub(text: str) -> str:
    """``text`` with every URL redacted (errors from HTTP clients repeat the URL, key and all)."""
    return _URL_PATH.sub(r"\1/...", _URL.sub(lambda m: redact_url(m.group(0)), text))


def scrub_error(exc: BaseException) -> str:
    """An upstream error as one line of at most 200 characters, every URL redacted (it may
    hold an API key); the exception's type name when it has no text."""
    lines = scrub(str(exc)).splitlines()
    return lines[0][:200] if lines and lines[0] else type(exc).__name__


def read_deployment(path: Path) -> dict[str, Any]:
    """The deployment file ``qev deploy`` wrote (JSON); a one-line error if unreadable."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"deployment file {path} does not exist (run `qev deploy`)") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"deployment file {path} is not readable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"deployment file {path} is not a JSON object")
    return data


class TomlSections(PydanticBaseSettingsSource):
    """Values from the config file's ``[chain]`` table and the process's own table."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self._values: dict[str, Any] = {}
        if path is None:
            return
        try:
            document = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
        sections: tuple[str, ...] = getattr(settings_cls, "config_sections", ("chain",))
        self._values = {k: v for k, v in document.items() if not isinstance(v, dict)}
        for name in sections:
            table = document.get(name, {})
            if not isinstance(table, dict):
                raise ConfigError(f"config file {path}: [{name}] must be a table")
            self._values.update(table)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """One field's value (unused: ``__call__`` returns them all)."""
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._values.items() if k in self.settings_cls.model_fields}


class ChainSettings(BaseSettings):
    """What every qev process shares: the chain, the contracts, the target and the store."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")
    config_sections: ClassVar[tuple[str, ...]] = ("chain",)
    reads_deployment: ClassVar[bool] = True  # False where the deployment file is the output
    _config_file: ClassVar[Path | None] = None

    rpc_url: SecretStr | None = Field(default=None, description="chain JSON-RPC URL (secret)")
    chain_id: int | None = Field(default=None, description="checked against the RPC's")
    vault: str | None = Field(default=None, description="the sUSDai vault address")
    settlement: str | None = Field(default=None, description="the QEVSettlement address")
    usdai: str | None = None
    genesis: int | None = Field(default=None, description="auction genesis; read from the vault")
    receipt_signer: str | None = Field(default=None, description="from the deployment file")
    deployment_file: Path | None = Field(default=None, description="written by `qev deploy`")
    target: Literal["merkle", "registry"] = "merkle"
    eip712_name: str | None = None  # default per target: QEVSettlement / QEVRegistry
    eip712_version: str | None = None  # default per target: 1 / 1.0
    window: int = REDEMPTION_WINDOW
    store_url: SecretStr = SecretStr("sqlite:///qev-data/qev.db")
    keystore_passphrase_file: Path | None = None
    keystore_passphrase: SecretStr | None = None

    @model_validator(mode="before")
    @classmethod
    def _fill_from_deployment(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("deployment_file") and cls.reads_deployment:
            deployment = read_deployment(Path(data["deployment_file"]))
            for key in DEPLOYMENT_KEYS:
                if data.get(key) is None and deployment.get(key) is not None:
                    data[key] = deployment[key]
        return data

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Code, then ``QEV_*``, then the config file (the deployment file fills the rest)."""
        return init_settings, env_settings, TomlSections(settings_cls, cls._config_file)

    def domain_name(self) -> str:
        """The EIP-712 domain name for the configured target."""
        return self.eip712_name or ("QEVSettlement" if self.target == "merkle" else "QEVRegistry")

    def domain_version(self) -> str:
        """The EIP-712 domain version for the configured target."""
        return self.eip712_version or ("1" if self.target == "merkle" else "1.0")

    def passphrase(self) -> Passphrase:
        """Where keystores of this process are unlocked from."""
        value = self.keystore_passphrase
        return Passphrase(
            self.keystore_passphrase_file, value.get_secret_value() if value else None
        )

    def rpc(self) -> str:
        """The RPC URL (a secret: pass it to a provider, never to a log)."""
        if self.rpc_url is None:
            raise missing("rpc_url")
        return self.rpc_url.get_secret_value()

    def store(self) -> str:
        """The store URL (may hold a password: never log it)."""
        return self.store_url.get_secret_value()

    def require(self, *names: str) -> None:
        """Raise ``ConfigError`` naming the first of ``names`` that is unset."""
        for name in names:
            if getattr(self, name) in (None, ""):
                raise missing(name)

    def summary(self) -> dict[str, object]:
        """Every setting as it may be logged: secrets masked, URLs redacted."""
        out: dict[str, object] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in ("rpc_url", "store_url"):
                out[name] = redact_url(value.get_secret_value() if value is not None else None)
            elif isinstance(value, SecretStr):
                out[name] = "***"
            elif isinstance(value, Path):
                out[name] = str(value)
            else:
                out[name] = value
        return out


def missing(name: str) -> ConfigError:
    """The one-line error for an unset setting, naming every way to set it."""
    return ConfigError(
        f"missing setting {name}: set {ENV_PREFIX}{name.upper()}, `{name}` in the config file"
        + (", or deployment_file" if name in DEPLOYMENT_KEYS else "")
    )


S = TypeVar("S", bound=ChainSettings)


def load_settings(cls: type[S], config_file: Path | None = None, **overrides: Any) -> S:
    """Settings of type ``cls`` from ``overrides``, the environment and ``config_file``.

    Errors become one ``ConfigError`` line naming the setting (never its value).
    """
    bound = type(cls.__name__, (cls,), {"_config_file": config_file})
    try:
        settings: S = bound(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from None
    return settings


def unknown_keys(path: Path, known: dict[str, set[str]]) -> list[str]:
    """Keys in the config file that no table's settings know (typos), as ``table.key``."""
    document = tomllib.loads(path.read_text())
    out = []
    for key, value in document.items():
        if isinstance(value, dict):
            fields = known.get(key)
            if fields is None:
                out.append(f"[{key}]")
                continue
            out.extend(f"{key}.{k}" for k in value if k not in fields)
        elif key not in known.get("chain", set()):
            out.append(key)
    return out


__all__ = [
    "DEPLOYMENT_KEYS",
    "ChainSettings",
    "ConfigError",
    "TomlSections",
    "load_settings",
    "missing",
    "read_deployment",
    "redact_url",
    "scrub",
    "unknown_keys",
]
