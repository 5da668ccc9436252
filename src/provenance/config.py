"""User defaults from ``<config dir>/config.toml`` and the environment.

Only settings a user sets once belong here: the TSAs to ask and the TSA roots to trust.

```toml
tsa = ["https://freetsa.org/tsr"]
tsa_roots = ["~/.config/provenance/freetsa-cacert.pem"]
```

``PROVENANCE_TSA`` (URLs separated by spaces or commas) overrides ``tsa``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from provenance.errors import UsageError
from provenance.keys import config_dir

CONFIG_FILE = "config.toml"
ENV_TSA = "PROVENANCE_TSA"


@dataclass(frozen=True)
class UserConfig:
    tsa: tuple[str, ...] = ()
    tsa_roots: tuple[Path, ...] = ()


def _strings(value: object, key: str, path: Path) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise UsageError(f"{path}: '{key}' must be a string or a list of strings")


def load_config() -> UserConfig:
    path = config_dir() / CONFIG_FILE
    data: dict[str, object] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise UsageError(f"{path}: cannot read the configuration: {error}") from None
    tsa = _strings(data.get("tsa", []), "tsa", path)
    roots = _strings(data.get("tsa_roots", []), "tsa_roots", path)
    from_env = os.environ.get(ENV_TSA)
    if from_env:
        tsa = tuple(url for url in from_env.replace(",", " ").split() if url)
    return UserConfig(tsa=tsa, tsa_roots=tuple(Path(p).expanduser() for p in roots))
