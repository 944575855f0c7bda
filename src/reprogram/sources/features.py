"""``features:NAME`` — a white-box source that answers with its features instead of logits.

The source ``NAME`` is built as usual, then its classifier (the last ``nn.Linear`` of the
module) is replaced by the identity, so the source maps pixels ``[B, 3, H, W]`` to the pooled
features ``[B, D]`` that classifier would have read (1,280 for EfficientNet-Lite0). A program
trained in front of it, with a ``linear`` mapping as the new head, is visual prompting plus a
linear probe ("VP + LP"): the mapping's ``init=probe`` warm start is then exactly a linear probe
on the frozen features, and training the program can only be chosen when validation says it
beats that probe. Mappings that read source *labels* (``random``, ``flm``, ``ilm``) refuse such
a source: a feature index is not a label.

Image sources lose their last linear layer. A source may instead define its own feature view
(``feature_module()``): Whisper's is its encoder, mean-pooled over time (the decoder's
vocabulary is not a classifier head). A black box answers probabilities, not features, so it
is refused.

Options of the feature view follow the name after ``#``: ``features:whisper-tiny.en#layers=all``
pools every encoder layer, not only the last, and sets the pooled states side by side
(``layers=last`` is the default; ``layers=2+3`` picks layers); ``#pool=mean+std`` keeps each
state's standard deviation over time beside its mean (``pool=mean`` is the default). Image
sources take no options.
"""

from __future__ import annotations

from torch import nn

from ..errors import ReprogramError
from . import SOURCES, build_source
from .base import Source


def last_linear(module: nn.Module) -> tuple[str, nn.Linear]:
    """The last ``nn.Linear`` registered in ``module`` (its classifier) and its dotted name.

    Raises:
        ReprogramError: the module has no ``nn.Linear`` (its penultimate features are not
            defined).
    """
    found = [(n, m) for n, m in module.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise ReprogramError(
            f"{type(module).__name__} has no nn.Linear classifier, so its penultimate features "
            f"are not defined; linear-probe, finetune and features: sources need a model whose "
            f"last layer is linear."
        )
    return found[-1]


def _replace(module: nn.Module, dotted: str, new: nn.Module) -> None:
    """Set submodule ``dotted`` (``a.b.c``) of ``module`` to ``new``."""
    parent_name, _, child = dotted.rpartition(".")
    parent = module.get_submodule(parent_name) if parent_name else module
    setattr(parent, child, new)


def parse_view_options(name: str) -> tuple[str, dict[str, str]]:
    """``NAME[#key=value#...]`` → the source name and its feature-view options.

    Raises:
        ReprogramError: an option that is not ``key=value``.
    """
    name, *parts = name.split("#")
    options: dict[str, str] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or not key or not value:
            raise ReprogramError(
                f"features:{name}: options after '#' are key=value (e.g. "
                f"features:whisper-tiny.en#layers=all); got {part!r}."
            )
        options[key.replace("-", "_")] = value
    return name, options


def feature_source(base: Source, options: dict[str, str] | None = None) -> Source:
    """``base`` with its classifier removed: pixels ``[B, C, H, W]`` → features ``[B, D]``.

    The returned source shares ``base``'s module (the classifier is replaced in place), its
    input contract and normalisation; its outputs are named ``feature_0`` … ``feature_{D-1}``
    and its ``outputs`` attribute is ``"features"``. ``options`` go to the source's own
    feature view (Whisper: ``layers``, ``pool``).

    Raises:
        ReprogramError: ``base`` is a black box or not an image source, or has no linear
            classifier; an option the feature view does not have.
    """
    options = dict(options or {})
    if not isinstance(base, Source) or base.spec().get("access") == "query":
        raise ReprogramError(
            f"features:{getattr(base, 'name', base)!s} needs a white-box source: a black box "
            f"answers class probabilities only, not its penultimate features."
        )
    hook = getattr(base, "feature_module", None)
    if callable(hook):  # a source that knows its own feature view (Whisper: pooled encoder)
        import inspect

        known = [p for p in inspect.signature(hook).parameters if p != "self"]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ReprogramError(
                f"features:{base.name} has no option {unknown[0]!r}; its feature view takes "
                f"{', '.join(known) or 'no options'}."
            )
        module, dim = hook(**options)
        suffix = "".join(f"#{k}={v}" for k, v in options.items())
        return _features(base, module, dim, name=f"features:{base.name}{suffix}")
    if options:
        raise ReprogramError(
            f"features:{base.name} takes no options (got {', '.join(sorted(options))}); "
            f"only Whisper feature views do (layers=…, pool=…)."
        )
    if len(base.input_size) != 3:
        raise ReprogramError(
            f"features:{base.name} needs an image source ([C, H, W] input) or a source with a "
            f"feature view (Whisper); {base.name} takes {list(base.input_size)}. Use "
            f"{base.name} itself with the random, flm, ilm or linear mapping."
        )
    dotted, classifier = last_linear(base.module)
    dim = int(classifier.in_features)
    _replace(base.module, dotted, nn.Identity())
    return _features(base, base.module, dim)


def with_program_views(source: Source, program: nn.Module) -> Source:
    """``source``, or a copy that encodes each of ``program.views`` separately (or, for a
    program with ``output_positions`` ``P``, a language source's last ``P`` states).

    A program may hear one series in several consecutive views (``views``: their sample
    counts, e.g. ``sonify``'s raw window and tone); a feature view that supports it
    (``with_views``: Whisper's pooled encoder) then returns ``V·d`` features, the ``V`` pooled
    views side by side. The frozen module is shared, not copied. Programs without ``views``
    leave the source as it is.

    Raises:
        ReprogramError: the program has views and the source cannot encode them apart.
    """
    positions = getattr(program, "output_positions", None)
    if positions:
        hook = getattr(source, "with_positions", None)
        if not callable(hook):
            raise ReprogramError(
                f"this program reads {positions} output states, one per input position; source "
                f"{source.name!r} does not give them. Use a language source (smollm2-135m, "
                "minilm-l6, hf:NAME)."
            )
        return hook(int(positions))
    views = getattr(program, "views", None)
    if not views:
        return source
    hook = getattr(source.module, "with_views", None)
    if getattr(source, "outputs", "logits") != "features" or not callable(hook):
        raise ReprogramError(
            f"this program makes {len(views)} views of each input, encoded one by one; source "
            f"{source.name!r} cannot do that. Use a Whisper feature view (e.g. --source "
            f"features:whisper-tiny.en with --mapping linear), or turn the extra view off "
            f"(sonify: --program-opt raw=0)."
        )
    module, dim = hook(tuple(views))
    out = _features(source, module, dim, name=source.name)
    return out


def _features(base: Source, module: nn.Module, dim: int, name: str | None = None) -> Source:
    source = Source(
        module,
        name=name or f"features:{base.name}",
        input_size=base.input_size,
        mean=base.mean_values,
        std=base.std_values,
        label_names=[f"feature_{i}" for i in range(dim)],
    )
    source.outputs = "features"
    return source


@SOURCES.register(
    "features:",
    prefix=True,
    help="NAME a white-box source answering features instead of logits (images: penultimate "
    "layer; Whisper: pooled encoder, #layers=all pools every layer); use with --mapping linear "
    "(prompting + linear probe)",
)
def build_features(name: str) -> Source:
    if not name:
        raise ReprogramError(
            "features: needs a source name after the colon, e.g. features:efficientnet-lite0."
        )
    name, options = parse_view_options(name)
    return feature_source(build_source(name), options)


__all__ = [
    "build_features",
    "feature_source",
    "last_linear",
    "parse_view_options",
    "with_program_views",
]
