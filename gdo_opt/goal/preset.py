"""Goal presets: TOML files loaded into a typed, fully validated tree.

A preset says what a goal rewards (the score ρ), how big the subset is (the budget rule) and which
subsets are acceptable (the feasibility set C_g). Validation is strict because a typo in a preset
silently changes a training set: every unknown key, wrong type or impossible value is a GdoError
naming the file, the dotted key and the value. The loader lives in ``gdo_opt.goal.preset`` (singular)
because ``gdo_opt.presets`` is the package that ships the TOML files (see pyproject).
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from gdo_opt.config import KeyChecker, parse_toml
from gdo_opt.errors import GdoError

BUILTIN = ("minloss", "diverse", "temp", "temp_plus")  # the paper's goals, as released (a [published] table)
WEIGHTED = tuple(f"{name}_weighted" for name in BUILTIN)  # our weighted-descriptor extensions
# Raw descriptor columns a score term may use (CONTRACTS.md descriptor table + GDO JSONL extras).
DESCRIPTORS = (
    "amm", "frame_diversity", "loss_video", "loss_blind", "vds", "ppl", "temporal_prob",
    "stability", "coverage", "hardness", "ost", "quality_score", "tnc_score", "self_consistency",
    "cluster_score", "cluster_hardness",
)
# Which descriptors each ablation switch removes from ρ.
ABLATIONS = {
    "drop_vds": ("vds",),
    "drop_ppl": ("ppl", "loss_video"),
    "drop_self_consistency": ("stability", "quality_score"),
}
TRANSFORMS = ("none", "log", "log1p")
NORMALIZATIONS = ("robust_z", "rank", "none")
STRATUM_FIELDS = ("duration_bucket", "temporal_category", "question_form", "q_len_bucket", "a_len_bucket")


@dataclass(frozen=True)
class Term:
    """One descriptor's contribution to ρ: sign · weight · normalize(transform(value))."""

    descriptor: str
    weight: float = 1.0
    sign: int = 1
    transform: str = "none"
    required: bool = False  # False: silently dropped (and reported) when the metrics lack the column


@dataclass(frozen=True)
class ScoreSpec:
    terms: tuple[Term, ...]
    normalization: str = "robust_z"
    clip: float = 5.0
    drop_vds: bool = False
    drop_ppl: bool = False
    drop_self_consistency: bool = False
    missing: str = "penalty"  # candidates with no usable descriptor: "penalty" or "exclude"
    missing_penalty: float = -5.0

    def active_terms(self) -> tuple[Term, ...]:
        """Terms left after the ablation switches."""
        dropped = {d for flag, ds in ABLATIONS.items() if getattr(self, flag) for d in ds}
        return tuple(t for t in self.terms if t.descriptor not in dropped)


@dataclass(frozen=True)
class BudgetRule:
    kind: str = "auto"  # fixed | ratio | auto
    count: int | None = None
    ratio: float | None = None
    min: int = 1
    max: int | None = None
    # auto rule parameters (see gdo_opt.goal.budget)
    per_stratum: int = 20
    tail_coverage: float = 0.95
    min_positive_vds_share: float = 0.5
    max_ratio: float = 0.25  # auto: K <= max_ratio x pool size


@dataclass(frozen=True)
class SourceFloors:
    top_n: int = 0
    floor: float = 0.0  # fraction of the group's proportional share that must be kept


@dataclass(frozen=True)
class Feasibility:
    video_share: tuple[float, float] = (0.0, 1.0)
    temporal_share_within_video: float = 0.0
    temporal_categories: tuple[str, ...] = ("temporal",)
    temporal_prob_threshold: float = 0.5
    source_floors: SourceFloors = field(default_factory=SourceFloors)
    per_video_cap: int | None = 8
    dedup: bool = True
    dedup_key: str = "dedup_key"
    stratum_fields: tuple[str, ...] = ("duration_bucket", "question_form", "q_len_bucket", "a_len_bucket")
    stratum_tolerance: float | None = 0.5


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    score: ScoreSpec | None  # None for a paper goal (the shared published ρ)
    budget: BudgetRule | None
    feasibility: Feasibility | None
    source: str  # file the preset came from (for messages and the report)
    published: Any = None  # gdo_opt.goal.paper.PublishedParams for the paper's goals

    @property
    def is_paper(self) -> bool:
        return self.published is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON view for report.json (stable: no absolute paths)."""
        from dataclasses import asdict

        out = asdict(self)
        out["source"] = Path(self.source).name
        return out


def _defaults(cls) -> dict[str, Any]:
    """Field defaults of a preset dataclass: the one place each default is written."""
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


def _parse_terms(ctx: KeyChecker, raw: Any) -> tuple[Term, ...]:
    if not isinstance(raw, list) or not raw:
        raise ctx.fail("score.terms", raw, "expected a non-empty array of tables ([[score.terms]])")
    T = _defaults(Term)
    terms = []
    seen = set()
    for i, item in enumerate(raw):
        prefix = f"score.terms[{i}]"
        ctx.check_keys(item, prefix, {"descriptor", "weight", "sign", "transform", "required"})
        if "descriptor" not in item:
            raise ctx.fail(prefix, item, "missing key descriptor")
        descriptor = ctx.choice(item, prefix, "descriptor", None, DESCRIPTORS)
        if descriptor in seen:
            raise ctx.fail(f"{prefix}.descriptor", descriptor, "descriptor listed twice")
        seen.add(descriptor)
        sign = item.get("sign", T["sign"])
        if sign not in (1, -1) or isinstance(sign, bool):
            raise ctx.fail(f"{prefix}.sign", sign, "expected 1 or -1")
        terms.append(
            Term(
                descriptor=descriptor,
                weight=ctx.num(item, prefix, "weight", T["weight"], lo=0.0),
                sign=int(sign),
                transform=ctx.choice(item, prefix, "transform", T["transform"], TRANSFORMS),
                required=ctx.boolean(item, prefix, "required", T["required"]),
            )
        )
    if not any(t.weight > 0 for t in terms):
        raise ctx.fail("score.terms", raw, "every weight is 0")
    return tuple(terms)


def _parse_score(ctx: KeyChecker, raw: Any) -> ScoreSpec:
    ctx.check_keys(raw, "score", {"terms", "normalization", "clip", "ablations", "missing", "missing_penalty"})
    S = _defaults(ScoreSpec)
    ablations = raw.get("ablations", {})
    ctx.check_keys(ablations, "score.ablations", set(ABLATIONS))
    spec = ScoreSpec(
        terms=_parse_terms(ctx, raw.get("terms")),
        normalization=ctx.choice(raw, "score", "normalization", S["normalization"], NORMALIZATIONS),
        clip=ctx.num(raw, "score", "clip", S["clip"], lo=0.0),
        missing=ctx.choice(raw, "score", "missing", S["missing"], ("penalty", "exclude")),
        missing_penalty=ctx.num(raw, "score", "missing_penalty", S["missing_penalty"]),
        **{k: ctx.boolean(ablations, "score.ablations", k, S[k]) for k in ABLATIONS},
    )
    if not spec.active_terms():
        raise ctx.fail("score.ablations", ablations, "the ablations drop every score term")
    return spec


def _parse_budget(ctx: KeyChecker, raw: Any) -> BudgetRule:
    keys = {"kind", "count", "ratio", "min", "max", "per_stratum", "tail_coverage", "min_positive_vds_share",
            "max_ratio"}
    ctx.check_keys(raw, "budget", keys)
    B = _defaults(BudgetRule)
    kind = ctx.choice(raw, "budget", "kind", B["kind"], ("fixed", "ratio", "auto"))
    rule = BudgetRule(
        kind=kind,
        count=ctx.num(raw, "budget", "count", B["count"], lo=1, integer=True),
        ratio=ctx.num(raw, "budget", "ratio", B["ratio"], lo=0.0, hi=1.0),
        min=ctx.num(raw, "budget", "min", B["min"], lo=1, integer=True),
        max=ctx.num(raw, "budget", "max", B["max"], lo=1, integer=True),
        per_stratum=ctx.num(raw, "budget", "per_stratum", B["per_stratum"], lo=1, integer=True),
        tail_coverage=ctx.num(raw, "budget", "tail_coverage", B["tail_coverage"], lo=0.0, hi=1.0),
        min_positive_vds_share=ctx.num(raw, "budget", "min_positive_vds_share", B["min_positive_vds_share"],
                                       lo=0.0, hi=1.0),
        max_ratio=ctx.num(raw, "budget", "max_ratio", B["max_ratio"], lo=0.0, hi=1.0),
    )
    if rule.max_ratio <= 0:
        raise ctx.fail("budget.max_ratio", rule.max_ratio, "must be > 0")
    if kind == "fixed" and rule.count is None:
        raise ctx.fail("budget.kind", kind, "kind = 'fixed' needs budget.count")
    if kind == "ratio" and (rule.ratio is None or rule.ratio <= 0):
        raise ctx.fail("budget.ratio", raw.get("ratio"), "kind = 'ratio' needs 0 < budget.ratio <= 1")
    if rule.max is not None and rule.max < rule.min:
        raise ctx.fail("budget.max", rule.max, f"smaller than budget.min = {rule.min}")
    return rule


def _pair(ctx: KeyChecker, table: dict, key: str, default: tuple[float, float]) -> tuple[float, float]:
    dotted = f"feasibility.{key}"
    if key not in table:
        return default
    value = table[key]
    if (
        not isinstance(value, list)
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value)
    ):
        raise ctx.fail(dotted, value, "expected [lo, hi] with two numbers")
    lo, hi = float(value[0]), float(value[1])
    if not (0.0 <= lo <= 1.0 and 0.0 <= hi <= 1.0):
        raise ctx.fail(dotted, value, "shares must lie in [0, 1]")
    if lo > hi:
        raise ctx.fail(dotted, value, "lo > hi")
    return lo, hi


def _parse_feasibility(ctx: KeyChecker, raw: Any) -> Feasibility:
    keys = {
        "video_share", "temporal_share_within_video", "temporal_categories", "temporal_prob_threshold",
        "source_floors", "per_video_cap", "dedup", "dedup_key", "stratum_fields", "stratum_tolerance",
    }
    ctx.check_keys(raw, "feasibility", keys)
    F, SF = _defaults(Feasibility), _defaults(SourceFloors)
    floors_raw = raw.get("source_floors", {})
    ctx.check_keys(floors_raw, "feasibility.source_floors", {"top_n", "floor"})
    floors = SourceFloors(
        top_n=ctx.num(floors_raw, "feasibility.source_floors", "top_n", SF["top_n"], lo=0, integer=True),
        floor=ctx.num(floors_raw, "feasibility.source_floors", "floor", SF["floor"], lo=0.0, hi=1.0),
    )
    cap = raw.get("per_video_cap", F["per_video_cap"])
    if cap is False:
        cap = None
    elif cap is not None:
        cap = ctx.num(raw, "feasibility", "per_video_cap", F["per_video_cap"], lo=1, integer=True)
    tol = raw.get("stratum_tolerance", F["stratum_tolerance"])
    if tol is False or tol is None:
        tol = None
    else:
        tol = ctx.num(raw, "feasibility", "stratum_tolerance", F["stratum_tolerance"], lo=0.0)
    return Feasibility(
        video_share=_pair(ctx, raw, "video_share", F["video_share"]),
        temporal_share_within_video=ctx.num(raw, "feasibility", "temporal_share_within_video",
                                            F["temporal_share_within_video"], lo=0.0, hi=1.0),
        temporal_categories=ctx.strings(raw, "feasibility", "temporal_categories", F["temporal_categories"]),
        temporal_prob_threshold=ctx.num(raw, "feasibility", "temporal_prob_threshold", F["temporal_prob_threshold"],
                                        lo=0.0, hi=1.0),
        source_floors=floors,
        per_video_cap=cap,
        dedup=ctx.boolean(raw, "feasibility", "dedup", F["dedup"]),
        dedup_key=ctx.choice(raw, "feasibility", "dedup_key", F["dedup_key"], ("dedup_key", "dedup_key_q")),
        stratum_fields=ctx.strings(raw, "feasibility", "stratum_fields", F["stratum_fields"], choices=STRATUM_FIELDS),
        stratum_tolerance=tol,
    )


def parse_preset(data: dict[str, Any], source: str) -> Preset:
    """Validate a parsed TOML document into a Preset (errors name ``source``)."""
    ctx = KeyChecker(source)
    if "published" in data:
        from gdo_opt.goal.paper import parse_published

        ctx.check_keys(data, "", {"name", "description", "published"})
        return Preset(name=ctx.string(data, "", "name", Path(source).stem),
                      description=ctx.string(data, "", "description", ""), score=None, budget=None,
                      feasibility=None, source=source, published=parse_published(data["published"], source))
    ctx.check_keys(data, "", {"name", "description", "score", "budget", "feasibility"})
    if "score" not in data:
        raise GdoError(f"{source}: missing table [score]")
    name = ctx.string(data, "", "name", Path(source).stem)
    return Preset(
        name=name,
        description=ctx.string(data, "", "description", ""),
        score=_parse_score(ctx, data["score"]),
        budget=_parse_budget(ctx, data.get("budget", {})),
        feasibility=_parse_feasibility(ctx, data.get("feasibility", {})),
        source=source,
    )


def _read(source: str, text: str) -> Preset:
    return parse_preset(parse_toml(text, source), source)


def builtin_names() -> list[str]:
    """Names of the presets shipped in gdo_opt.presets (template excluded: it is a starting point)."""
    files = resources.files("gdo_opt.presets")
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml") and p.name != "template.toml")


def load_preset(name_or_path: str | Path) -> Preset:
    """Load a preset by packaged name (``temp_plus``) or by path (``my_goal.toml``)."""
    text_name = str(name_or_path)
    path = Path(text_name)
    if path.suffix == ".toml" or path.exists() or "/" in text_name:
        if not path.is_file():
            raise GdoError(f"{text_name}: preset file not found" if not path.exists() else f"{text_name}: not a file")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            line = path.read_bytes()[: error.start].count(b"\n") + 1
            raise GdoError(f"{text_name}:{line}: not UTF-8 text (byte {error.start}); TOML files must be UTF-8") from None
        return _read(text_name, text)
    resource = resources.files("gdo_opt.presets") / f"{text_name}.toml"
    if not resource.is_file():
        raise GdoError(
            f"preset {text_name!r}: no such packaged preset (have: {', '.join(builtin_names())}); "
            "pass a path to a .toml file for a custom goal"
        )
    return _read(f"presets/{text_name}.toml", resource.read_text(encoding="utf-8"))
