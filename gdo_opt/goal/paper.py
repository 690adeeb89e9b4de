"""The paper's goal presets: every parameter of the released ``configs/*.env`` of the published builder.

A preset TOML with a ``[published]`` table is a paper goal: the shared published ρ, the published
budget rule and the published feasibility set (``gdo_opt.goal.published_set``), solved exactly.
Keys are the env names in lower case (``AUTO_MIN_COUNT`` -> ``auto_min_count``); every one is required
so a released goal can never silently pick up a default. ``[published.score]`` holds the builder's
score knobs (their CLI defaults unless given), ``[published.options]`` our own additions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from gdo_opt.errors import GdoError

ENV_KEYS = (
    "auto_min_count", "auto_max_count", "auto_min_ratio", "auto_max_ratio", "auto_effective_strata_mult",
    "auto_coverage_mass", "auto_tail_target", "auto_vds3_target_positive", "auto_vds3_threshold",
    "auto_vds3_max_mult", "min_video_ratio", "max_video_ratio", "min_temporal_in_video_ratio",
    "temporal_categories", "oversample_factor", "video_oversample_factor", "temporal_oversample_factor",
    "source_group_floor_topk", "min_source_group_ratio", "source_group_floor_frac_of_expected",
)
INT_KEYS = {"auto_min_count", "auto_max_count", "auto_vds3_target_positive", "source_group_floor_topk"}
# build_profile.sh defaults that are not in the .env files
SCRIPT_KEYS = {"max_qa_per_video": 8, "target_frames": 32, "random_target_multiplier": 10.0,
               "random_oversample_factor": 1.35}
SCORE_KEYS = {"vds3_weight": 0.95, "zscore_cap": 4.0, "video_base_weight": 0.35, "video_quality_weight": 0.35,
              "image_base_weight": 0.9, "image_quality_weight": 0.15, "missing_penalty": 0.15}
QUOTA_MODES = ("penalty", "lexicographic", "hard")
OPTION_KEYS = {"quota_mode": "penalty", "quota_penalty": 1.0, "oversample_caps": True}


@dataclass(frozen=True)
class PublishedParams:
    """One paper goal: the released env values, the script defaults and the score knobs."""

    auto_min_count: int
    auto_max_count: int
    auto_min_ratio: float
    auto_max_ratio: float
    auto_effective_strata_mult: float
    auto_coverage_mass: float
    auto_tail_target: float
    auto_vds3_target_positive: int
    auto_vds3_threshold: float
    auto_vds3_max_mult: float
    min_video_ratio: float
    max_video_ratio: float
    min_temporal_in_video_ratio: float
    temporal_categories: tuple[str, ...]
    oversample_factor: float
    video_oversample_factor: float
    temporal_oversample_factor: float
    source_group_floor_topk: int
    min_source_group_ratio: float
    source_group_floor_frac_of_expected: float
    max_qa_per_video: int = SCRIPT_KEYS["max_qa_per_video"]
    target_frames: int = SCRIPT_KEYS["target_frames"]
    random_target_multiplier: float = SCRIPT_KEYS["random_target_multiplier"]
    random_oversample_factor: float = SCRIPT_KEYS["random_oversample_factor"]
    vds3_weight: float = SCORE_KEYS["vds3_weight"]
    zscore_cap: float = SCORE_KEYS["zscore_cap"]
    video_base_weight: float = SCORE_KEYS["video_base_weight"]
    video_quality_weight: float = SCORE_KEYS["video_quality_weight"]
    image_base_weight: float = SCORE_KEYS["image_base_weight"]
    image_quality_weight: float = SCORE_KEYS["image_quality_weight"]
    missing_penalty: float = SCORE_KEYS["missing_penalty"]
    quota_mode: str = OPTION_KEYS["quota_mode"]  # ours: how the soft stratum quotas enter the MIP
    quota_penalty: float = OPTION_KEYS["quota_penalty"]  # ours: ρ units per missing quota row (quota_mode = penalty)
    oversample_caps: bool = OPTION_KEYS["oversample_caps"]  # the builder's per-stratum candidate heaps bound the candidates

    # names the budget / floor helpers of gdo_opt.goal.published read
    @property
    def min_count(self) -> int:
        return self.auto_min_count

    @property
    def max_count(self) -> int:
        return self.auto_max_count

    @property
    def min_ratio(self) -> float:
        return self.auto_min_ratio

    @property
    def max_ratio(self) -> float:
        return self.auto_max_ratio

    @property
    def effective_strata_mult(self) -> float:
        return self.auto_effective_strata_mult

    @property
    def coverage_mass(self) -> float:
        return self.auto_coverage_mass

    @property
    def tail_target(self) -> float:
        return self.auto_tail_target

    @property
    def vds3_target_positive(self) -> int:
        return self.auto_vds3_target_positive

    @property
    def vds3_threshold(self) -> float:
        return self.auto_vds3_threshold

    @property
    def vds3_max_mult(self) -> float:
        return self.auto_vds3_max_mult

    @property
    def source_floor_topk(self) -> int:
        return self.source_group_floor_topk

    @property
    def source_floor_frac_of_expected(self) -> float:
        return self.source_group_floor_frac_of_expected

    def env(self) -> dict:
        """The released env values, as the builder's command line receives them."""
        d = asdict(self)
        return {k.upper(): (",".join(d[k]) if k == "temporal_categories" else d[k]) for k in ENV_KEYS}


def _number(source: str, key: str, value, integer: bool, lo: float | None = None, hi: float | None = None):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise GdoError(f"{source}: key {key} = {value!r}: expected {'an integer' if integer else 'a number'}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise GdoError(f"{source}: key {key} = {value!r}: must lie in [{lo}, {hi}]")
    return int(value) if integer else float(value)


def parse_published(raw, source: str) -> PublishedParams:
    """Validate a ``[published]`` table (every released env key required, nothing unknown)."""
    if not isinstance(raw, dict):
        raise GdoError(f"{source}: key published: expected a table")
    score = raw.get("score", {})
    options = raw.get("options", {})
    for name, table, allowed in (("published.score", score, SCORE_KEYS), ("published.options", options,
                                                                         OPTION_KEYS)):
        if not isinstance(table, dict):
            raise GdoError(f"{source}: key {name}: expected a table")
        for key in sorted(table):
            if key not in allowed:
                raise GdoError(f"{source}: key {name}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")
    allowed = set(ENV_KEYS) | set(SCRIPT_KEYS) | {"score", "options"}
    for key in sorted(raw):
        if key not in allowed:
            raise GdoError(f"{source}: key published.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")
    missing = [k for k in ENV_KEYS if k not in raw]
    if missing:
        raise GdoError(f"{source}: key published.{missing[0]}: missing (a paper goal states every released value)")
    values: dict = {}
    for key in ENV_KEYS:
        dotted = f"published.{key}"
        if key == "temporal_categories":
            cats = raw[key]
            if not isinstance(cats, list) or not cats or not all(isinstance(c, str) and c.strip() for c in cats):
                raise GdoError(f"{source}: key {dotted} = {cats!r}: expected a non-empty list of names")
            values[key] = tuple(c.strip() for c in cats)
        elif key.endswith("_ratio") and key != "auto_max_ratio" and key != "auto_min_ratio":
            values[key] = _number(source, dotted, raw[key], False, -1.0, 1.0)  # < 0: auto, as the builder
        else:
            values[key] = _number(source, dotted, raw[key], key in INT_KEYS, 0.0)
    for key, default in SCRIPT_KEYS.items():
        values[key] = _number(source, f"published.{key}", raw.get(key, default), isinstance(default, int), 1.0)
    for key, default in SCORE_KEYS.items():
        values[key] = _number(source, f"published.score.{key}", score.get(key, default), False, 0.0)
    mode = options.get("quota_mode", OPTION_KEYS["quota_mode"])
    if mode not in QUOTA_MODES:
        raise GdoError(f"{source}: key published.options.quota_mode = {mode!r}: expected one of "
                       f"{', '.join(QUOTA_MODES)}")
    caps = options.get("oversample_caps", True)
    if not isinstance(caps, bool):
        raise GdoError(f"{source}: key published.options.oversample_caps = {caps!r}: expected true or false")
    values.update(quota_mode=mode, oversample_caps=caps,
                  quota_penalty=_number(source, "published.options.quota_penalty",
                                        options.get("quota_penalty", OPTION_KEYS["quota_penalty"]), False, 0.0))
    if values["auto_max_count"] < values["auto_min_count"]:
        raise GdoError(f"{source}: key published.auto_max_count = {values['auto_max_count']}: "
                       f"smaller than auto_min_count = {values['auto_min_count']}")
    if values["max_video_ratio"] >= 0 and values["min_video_ratio"] > values["max_video_ratio"]:
        raise GdoError(f"{source}: key published.min_video_ratio = {values['min_video_ratio']}: "
                       f"larger than max_video_ratio = {values['max_video_ratio']}")
    return PublishedParams(**values)
