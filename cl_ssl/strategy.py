"""Strategy specs on the command line -> Avalanche plugins.

A strategy is a plugin class registered with ``@register_strategy(name)``; it has an
``Options`` frozen dataclass and is built as ``PluginClass(options)``. A spec such as
``"naive,lwf-ssl+replay"`` names runs separated by ``,``; ``+`` composes the plugins of one
run. Options arrive as ``{"lwf-ssl": {"lambda": "1.0"}}`` and apply wherever that strategy
appears.

A plugin declares what it owns in a run as a class attribute, ``owns``: the loss terms it
adds (``"distill"``) and shared roles from :data:`ROLES` (CaSSLe's
``{"distill", "predictor"}``). Two plugins of one run that own the same thing would collide or
count one term twice, so such a composition (``cassle+pnr``, ``lwf-ssl+cassle``) is refused
when the spec is parsed, before any data is read. Plugins that own nothing in common compose
(``lwf-ssl+replay``, ``ewc+replay``, ``lwf-ssl+pnr``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from avalanche.core import SupervisedPlugin

from cl_ssl.flags import parse_option_flags  # noqa: F401  (its home before cl_ssl.flags)
from cl_ssl.options import parse_options
from cl_ssl.registry import strategies

# Roles a plugin can own besides its loss terms (``owns``), as the clash message says them.
ROLES = {
    "predictor": "CaSSLe's predictor and distillation term (PNR's regularization contains them)",
}


@dataclass(frozen=True)
class NoOptions:
    """Options of a strategy that has none."""


def parse_spec(spec: str) -> list[tuple[str, ...]]:
    """``"naive,lwf-ssl+replay"`` -> ``[("naive",), ("lwf-ssl", "replay")]``, names checked.

    A plugin named twice in one run, a run named twice, or two plugins of one run that own
    one role (:func:`check_roles`) is an error.
    """
    runs = [tuple(p.strip() for p in run.split("+")) for run in spec.split(",") if run.strip()]
    if not runs:
        raise ValueError("no strategy given: pass --strategy NAME[,NAME...]")
    for run in runs:
        for name in run:
            strategies.get(name)
        if len(set(run)) != len(run):
            raise ValueError(f"strategy '{'+'.join(run)}' repeats a plugin: name each once")
        check_roles(run)
    repeated = next((run for i, run in enumerate(runs) if run in runs[:i]), None)
    if repeated is not None:  # both would train into one <strategy>/seed<s>/ directory
        raise ValueError(
            f"--strategy names '{'+'.join(repeated)}' twice: name each run once "
            "(--seeds repeats runs over seeds)"
        )
    return runs


def check_roles(run: Sequence[str]) -> None:
    """Refuse a composition in which two plugins own one role or loss term (``owns``)."""
    owners: dict[str, str] = {}
    for name in run:
        for role in sorted(getattr(strategies.get(name), "owns", ())):
            other = owners.setdefault(role, name)
            if other != name:
                what = ROLES.get(role, f"the '{role}' loss term")
                raise ValueError(
                    f"--strategy {'+'.join(run)}: '{other}' and '{name}' both own {what}: "
                    f"compose only one of them, or compare them as separate runs "
                    f"(--strategy {other},{name})"
                )


def check_options(
    runs: Sequence[Sequence[str]], options: Mapping[str, Mapping[str, str]] | None
) -> None:
    """Parse every strategy's options into its ``Options`` dataclass, building nothing.

    A bad option fails before any data is loaded (and before any plugin is built). Every
    plugin class must implement the checkpoint protocol (:class:`cl_ssl.state.Stateful`).

    An option for a strategy that no run uses is an error too (a silently ignored flag
    reads as if it had been applied).
    """
    options = options or {}
    used = {name for run in runs for name in run}
    for name in options:
        strategies.get(name)  # unknown names list the valid ones
        if name not in used:
            raise ValueError(
                f"--opt {name}.* given but '{name}' is not in --strategy: add it or drop the option"
            )
    for name in sorted(used):
        cls = strategies.get(name)
        parse_options(getattr(cls, "Options", NoOptions), options.get(name, {}), name)
        if not all(callable(getattr(cls, m, None)) for m in ("state_dict", "load_state_dict")):
            raise ValueError(
                f"strategy '{name}' ({cls.__module__}) has no state_dict/"
                "load_state_dict, so checkpoints cannot carry it: implement both, or "
                "inherit cl_ssl.state.NoState if it keeps no state"
            )


def run_name(run: Sequence[str]) -> str:
    """Directory- and table-friendly name of one composed run."""
    return "+".join(run)


def build_plugins(
    run: Sequence[str], options: Mapping[str, Mapping[str, str]] | None = None
) -> list[SupervisedPlugin]:
    """Instantiate the plugins of one run with their parsed options."""
    options = options or {}
    unknown = set(options) - set(strategies.names())
    if unknown:
        strategies.get(sorted(unknown)[0])  # raises with the list of valid names
    plugins = []
    for name in run:
        cls = strategies.get(name)
        opts = parse_options(getattr(cls, "Options", NoOptions), options.get(name, {}), name)
        plugins.append(cls(opts))
    return plugins
