"""Build the ``radiofind`` command line from the Stimela cab definitions.

``radiofind/cabs/radiofind.yml`` is the one source of every step's parameters (STYLE.md section 1):
Stimela reads it as cabs; this module turns each cab into a click command with the same names,
types, defaults, choices and help. Conventions that keep the two identical:

- a parameter ``foo_bar`` is ``--foo-bar`` (the cab policy ``replace: {"_": "-"}``);
- ``positional: true`` parameters are click arguments;
- booleans default to false and are plain flags (Stimela passes ``--flag`` only when true);
- lists are passed comma-separated (the cab policy ``repeat: ","``).
"""

from __future__ import annotations

from functools import cache, partial
from importlib import resources
from typing import Any

import click
import yaml

CAB_FILE = "radiofind.yml"
_TYPES = {"str": click.STRING, "int": click.INT, "float": click.FLOAT}
_PATH_TYPES = {"File", "Directory", "MS", "URI"}
SHORT_OPTIONS = {"outdir": "-o"}


@cache
def load_cabs() -> dict[str, dict[str, Any]]:
    """The cab definitions, keyed by cab name (``radiofind.detect``, ...)."""
    text = resources.files("radiofind.cabs").joinpath(CAB_FILE).read_text()
    # libyaml's parser when PyYAML has it: every command line starts here (0.04 s in pure Python,
    # 0.004 s in libyaml).
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)["cabs"]


def cab_parameters(cab: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Inputs and outputs of a cab, in order, as one mapping name -> schema."""
    return {**(cab.get("inputs") or {}), **(cab.get("outputs") or {})}


def _split_list(ctx, param, value, item_type=str):
    if value is None:
        return None
    items = value if isinstance(value, list | tuple) else [
        item.strip() for item in str(value).split(",") if item.strip()]
    try:
        return [item_type(item) for item in items]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated {item_type.__name__} values, "
                                 f"got {value!r}") from None


def click_params(cab: dict[str, Any]) -> list[click.Parameter]:
    """click arguments/options for every parameter of ``cab``."""
    params: list[click.Parameter] = []
    for name, schema in cab_parameters(cab).items():
        dtype = str(schema.get("dtype", "str"))
        info = " ".join(str(schema.get("info", "")).split())
        default = schema.get("default")
        required = bool(schema.get("required", False))
        positional = bool((schema.get("policies") or {}).get("positional"))
        if dtype == "bool":
            if default not in (None, False):
                raise ValueError(f"{name}: boolean parameters must default to false")
            params.append(click.Option([f"--{name.replace('_', '-')}", name], is_flag=True,
                                       default=False, help=info))
            continue
        if dtype.startswith("List["):
            kind: Any = click.STRING
            default = ",".join(map(str, default)) if default is not None else None
            item_type = {"List[float]": float, "List[int]": int}.get(dtype, str)
            callback = partial(_split_list, item_type=item_type)
        else:
            kind = click.Path() if dtype in _PATH_TYPES else _TYPES.get(dtype, click.STRING)
            callback = None
        if schema.get("choices"):
            kind = click.Choice([str(c) for c in schema["choices"]])
        if positional:
            params.append(click.Argument([name], type=kind, required=required, callback=callback))
            continue
        decls = [f"--{name.replace('_', '-')}", name]
        if name in SHORT_OPTIONS:
            decls.insert(0, SHORT_OPTIONS[name])
        params.append(click.Option(decls, type=kind, default=default, required=required,
                                   show_default=default is not None, help=info, callback=callback))
    return params


def command_from_cab(cab_name: str, callback) -> click.Command:
    """A click command named after the cab's suffix, calling ``callback(**params)``."""
    cab = load_cabs()[cab_name]
    info = " ".join(str(cab.get("info", "")).split())
    return click.Command(cab_name.split(".", 1)[1], params=click_params(cab), callback=callback,
                         help=info, short_help=info.split(" - ")[0].split(";")[0][:80])
