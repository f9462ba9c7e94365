"""The population at the start of the burn-in: households, persons and their latent traits.

Everything is vectorised: persons are generated with `np.repeat` over household member counts
and kept sorted by household, so `hh_start[h]:hh_start[h+1]` are household h's members.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from safetynet.ids import check_chars
from safetynet.simulator.config import SimulationConfig

SURNAMES = np.array(list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
                         "郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋"))
SURNAME_W = np.linspace(3.0, 0.6, len(SURNAMES))
GIVEN = np.array(list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文斌"
                      "鹏辉俊浩宇欣怡梓涵子轩雨晨博思佳嘉"))
STREET_WORDS = np.array([
    "中南", "水果湖", "首义", "紫阳", "白沙洲", "粮道", "杨园", "积玉桥", "黄鹤楼", "徐家棚",
    "珞南", "关山", "狮子山", "张家湾", "和平", "洪山", "青山", "花山", "九峰", "流芳",
    "纸坊", "金口", "山坡", "五里界", "邾城", "阳逻", "仓埠", "汪集", "李集", "三店",
    "潘塘", "旧街", "道观河", "凤凰", "徐古", "民族", "花桥", "唐家墩", "万松", "汉兴",
])
COMMUNITY_WORDS = np.array([
    "东湖", "南湖", "桃园", "杨柳", "新村", "长春", "光明", "幸福", "友谊", "建设",
    "胜利", "团结", "青石", "枫林", "竹园", "梅岭", "荷塘", "石桥", "金桥", "柳湾",
])

# age range of the household head by household type
HEAD_AGES = {
    "elderly_alone": (65, 92), "elderly_couple": (62, 88), "adult_alone": (22, 60),
    "couple_no_children": (25, 60), "couple_children": (28, 52), "single_parent": (25, 50),
    "three_generation": (30, 52), "adult_siblings": (22, 55),
}
# relation codes (contracts: head, spouse, child, parent, grandchild, sibling, other)
RELATIONS = np.array(["head", "spouse", "child", "parent", "grandchild", "sibling", "other"])
HEAD, SPOUSE, CHILD, PARENT, SIBLING = 0, 1, 2, 3, 5
# school levels (contracts.SCHOOL_LEVELS order); -1 = not in school
PRESCHOOL, PRIMARY, JUNIOR, SENIOR, VOCATIONAL, TERTIARY = range(6)


@dataclass
class Population:
    """Static attributes plus the initial latent state (arrays over households H / persons P)."""

    # households
    district: np.ndarray  # int8
    urban: np.ndarray  # bool
    street: np.ndarray  # int16 (within district)
    community: np.ndarray  # int16 (within street)
    hh_type: np.ndarray  # int8 index into config.composition
    line: np.ndarray  # float32 local dibao line per person
    level: np.ndarray  # float32 district income level
    other_income: np.ndarray  # float32 latent
    apply_prop: np.ndarray  # float32 probability of applying when in hardship
    vehicle_value: np.ndarray  # float32 (0 = none)
    has_property: np.ndarray  # bool
    floor_area: np.ndarray  # float32
    buffer: np.ndarray  # float32 latent savings
    hh_start: np.ndarray  # int64, len H+1
    # persons
    hh: np.ndarray  # int32 household index
    relation: np.ndarray  # int8
    male: np.ndarray  # bool
    birth_day: np.ndarray  # int32 days since 1970-01-01
    birth_month: np.ndarray  # int32 months since 1970-01
    dis_grade: np.ndarray  # int8 0 = none
    dis_category: np.ndarray  # int8
    in_labour: np.ndarray  # bool: participates when of working age
    employed: np.ndarray  # bool
    formal: np.ndarray  # bool
    business: np.ndarray  # bool
    wage: np.ndarray  # float32 base wage
    insured: np.ndarray  # bool
    formal_history: np.ndarray  # bool (employee pension at retirement)
    college: np.ndarray  # bool (goes to tertiary at 18)
    vocational: np.ndarray  # bool
    pension: np.ndarray  # float32 (0 = none)


def _rng_choice(rng: np.random.Generator, n: int, p: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.cumsum(p) / np.sum(p), rng.random(n), side="right").astype(np.int8)


def build_population(cfg: SimulationConfig, rng: np.random.Generator,
                     burn_in_start: np.datetime64) -> Population:
    """Draw households and members; ages are relative to the burn-in start."""
    H = cfg.households
    D = cfg.districts
    weights = np.array([1.0 + d.urban_share * 0.5 for d in D])
    district = _rng_choice(rng, H, weights)
    urban = rng.random(H) < np.array([d.urban_share for d in D])[district]
    n_streets = np.array([d.streets for d in D])[district]
    street = (rng.random(H) * n_streets).astype(np.int16)
    community = (rng.random(H) * np.array([d.communities_per_street for d in D])[district]
                 ).astype(np.int16)
    types = [n for n, _ in cfg.composition]
    hh_type = _rng_choice(rng, H, np.array([s for _, s in cfg.composition]))
    none = np.zeros(H, bool)
    t_is = {n: none for n in HEAD_AGES} | {n: hh_type == i for i, n in enumerate(types)}

    u = rng.random((H, 4))
    n_spouse = (t_is["elderly_couple"] | t_is["couple_no_children"] | t_is["couple_children"]
                | t_is["three_generation"]).astype(np.int64)
    n_child = np.zeros(H, np.int64)
    cc = t_is["couple_children"]
    n_child[cc] = 1 + (u[cc, 0] > 0.55) + (u[cc, 0] > 0.93)
    sp = t_is["single_parent"]
    n_child[sp] = 1 + (u[sp, 0] > 0.7)
    tg = t_is["three_generation"]
    n_child[tg] = 1 + (u[tg, 0] > 0.5)
    n_parent = np.where(tg, 1 + (u[:, 1] > 0.45), 0).astype(np.int64)
    n_sib = np.where(t_is["adult_siblings"], 1 + (u[:, 1] > 0.7), 0).astype(np.int64)
    size = 1 + n_spouse + n_child + n_parent + n_sib
    hh_start = np.concatenate([[0], np.cumsum(size)])
    P = int(hh_start[-1])
    hh = np.repeat(np.arange(H, dtype=np.int32), size)
    pos = np.arange(P) - np.repeat(hh_start[:-1], size)
    c1 = 1 + n_spouse[hh]
    c2 = c1 + n_child[hh]
    c3 = c2 + n_parent[hh]
    relation = np.select([pos == 0, pos < c1, pos < c2, pos < c3],
                         [HEAD, SPOUSE, CHILD, PARENT], SIBLING).astype(np.int8)

    # head age and sex by household type
    lo = np.array([HEAD_AGES.get(n, (22, 60))[0] for n in types], dtype=np.float64)
    hi = np.array([HEAD_AGES.get(n, (22, 60))[1] for n in types], dtype=np.float64)
    head_age = lo[hh_type] + (hi - lo)[hh_type] * rng.random(H) ** 1.2
    head_male = rng.random(H) < np.where(t_is["elderly_alone"], 0.35,
                                         np.where(sp, 0.2, 0.55))
    r = rng.random(P)
    ha = head_age[hh]
    age = np.select(
        [relation == HEAD, relation == SPOUSE, relation == CHILD, relation == PARENT],
        [ha, np.clip(ha + rng.normal(-1.5, 3.0, P), 20, 95),
         r * np.clip(ha - 20, 0.5, 23.0), np.clip(ha + 24 + 10 * r, 55, 98)],
        np.clip(ha + rng.uniform(-8, 8, P), 18, 70))
    male = np.select([relation == HEAD, relation == SPOUSE], [head_male[hh], ~head_male[hh]],
                     rng.random(P) < 0.5)
    start_day = burn_in_start.astype("datetime64[D]").astype(np.int64)
    birth_day = (start_day - (age * 365.25).astype(np.int64)).astype(np.int32)
    birth_month = birth_day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int32)

    # disability (rises with age)
    p_dis = cfg.disability_prevalence * (0.35 + np.clip(age, 0, 90) / 45.0)
    disabled = rng.random(P) < p_dis
    dis_grade = np.where(disabled, 1 + _rng_choice(rng, P, np.array([0.12, 0.2, 0.3, 0.38])),
                         0).astype(np.int8)
    dis_category = _rng_choice(rng, P, np.array([0.1, 0.2, 0.03, 0.36, 0.07, 0.1, 0.14]))

    # district level and urban/rural
    level = np.array([d.income_level for d in D], dtype=np.float32)[district]
    line = np.where(urban, np.array([d.urban_line for d in D])[district],
                    np.array([d.rural_line for d in D])[district]).astype(np.float32)
    urban_p = urban[hh]
    college = rng.random(P) < cfg.college_share * np.where(urban_p, 1.1, 0.75)
    vocational = rng.random(P) < cfg.vocational_share
    in_labour = rng.random(P) < np.where(male, cfg.participation_male, cfg.participation_female)
    # a person who heads a household alone or as a single parent has to work
    in_labour |= (relation == HEAD) & (t_is["adult_alone"] | sp)[hh] & (rng.random(P) < 0.9)
    in_labour &= dis_grade[...] != 1
    formal = rng.random(P) < np.where(urban_p, cfg.formal_share_urban, cfg.formal_share_rural)
    business = ~formal & (rng.random(P) < cfg.business_rate * 2.5)
    wage = (cfg.city_wage * level[hh] * np.where(urban_p, 1.0, cfg.rural_wage_factor)
            * np.where(formal, 1.0, cfg.informal_wage_factor) * np.where(business, 1.35, 1.0)
            * np.exp(rng.normal(0, cfg.wage_sigma, P))
            * (0.8 + 0.2 * np.clip((age - 18) / 20, 0, 1))).astype(np.float32)
    working_age = (age >= 18) & (age < np.where(male, 60, 55))
    student_now = (age < 22) & (age >= 18) & college
    employed = in_labour & working_age & ~student_now & (dis_grade != 2) & (rng.random(P) < 0.95)
    insured = rng.random(P) >= cfg.uninsured_share
    formal_history = rng.random(P) < np.where(urban_p, 0.7, 0.15)
    retired = age >= np.where(male, 60, 55)
    pension = np.where(
        retired,
        np.where(formal_history,
                 cfg.employee_pension * level[hh] * np.exp(rng.normal(0, 0.25, P)),
                 np.where(urban_p, cfg.resident_pension_urban, cfg.resident_pension_rural)),
        0.0).astype(np.float32)

    # household latent other income, assets, buffer
    elderly_hh = t_is["elderly_alone"] | t_is["elderly_couple"]
    other_income = np.where(
        rng.random(H) < cfg.other_income_zero_share, 0.0,
        np.where(elderly_hh, cfg.elderly_support_median, cfg.other_income_median)
        * np.where(urban, 1.0, 1.3) * np.exp(rng.normal(0, cfg.other_income_sigma, H))
    ).astype(np.float32)
    earnings = np.bincount(hh, weights=np.where(employed, wage, 0.0), minlength=H)
    pens = np.bincount(hh, weights=pension, minlength=H)
    income = earnings + pens + other_income
    rel_income = income / (line * size * 2.5)
    veh_p = np.where(urban, cfg.vehicle_rate_urban, cfg.vehicle_rate_rural) * np.clip(
        rel_income, 0.1, 2.2)
    has_vehicle = rng.random(H) < veh_p
    vehicle_value = np.where(has_vehicle, 25_000 * np.exp(rng.normal(0.3, 0.6, H)) * np.clip(
        rel_income, 0.3, 2.0), 0.0).astype(np.float32)
    prop_p = np.where(urban, cfg.property_rate_urban, cfg.property_rate_rural) * np.clip(
        0.6 + 0.4 * rel_income, 0.3, 1.3)
    has_property = rng.random(H) < prop_p
    floor_area = np.where(has_property, np.clip(rng.normal(85, 25, H), 25, 220), 0).astype(
        np.float32)
    consumption = np.maximum(cfg.consumption_share * income, 0.9 * line * size)
    buffer = (consumption * cfg.buffer_months_median * np.exp(rng.normal(0, 1.0, H))
              * np.where(has_property, 1.8, 0.8) * np.where(has_vehicle, 1.5, 1.0)).astype(
        np.float32)

    # propensity to ask for help when in hardship
    severe = np.bincount(hh, weights=(dis_grade > 0) & (dis_grade <= 2), minlength=H) > 0
    logit = (cfg.apply_logit + cfg.apply_elderly_alone * t_is["elderly_alone"]
             + cfg.apply_severe_disability * severe + cfg.apply_rural * ~urban
             + rng.normal(0, cfg.apply_propensity_sigma, H))
    apply_prop = (1 / (1 + np.exp(-logit))).astype(np.float32)

    return Population(
        district=district, urban=urban, street=street, community=community, hh_type=hh_type,
        line=line, level=level, other_income=other_income, apply_prop=apply_prop,
        vehicle_value=vehicle_value, has_property=has_property, floor_area=floor_area,
        buffer=buffer, hh_start=hh_start, hh=hh, relation=relation, male=male,
        birth_day=birth_day, birth_month=birth_month, dis_grade=dis_grade,
        dis_category=dis_category, in_labour=in_labour, employed=employed, formal=formal,
        business=business, wage=wage, insured=insured, formal_history=formal_history,
        college=college, vocational=vocational, pension=pension,
    )


def resident_ids(pop: Population, cfg: SimulationConfig) -> np.ndarray:
    """Valid 18-character IDs as a numpy 'S18' array (unique sequence per region and birth date)."""
    region = np.array([d.region_code for d in cfg.districts])[pop.district[pop.hh]]
    region_idx = pop.district[pop.hh].astype(np.int64)
    key = (region_idx * 100_000 + pop.birth_day.astype(np.int64)) * 2 + pop.male
    rank = pd.Series(key).groupby(key).cumcount().to_numpy()
    seq = np.where(pop.male, 2 * rank + 1, 2 * rank + 2) % 1000
    born = pop.birth_day.astype("datetime64[D]").astype(str)
    ymd = np.char.replace(born, "-", "")
    first17 = np.char.add(np.char.add(region, ymd), np.char.zfill(seq.astype(str), 3))
    check = check_chars(pd.Series(first17)).to_numpy()
    return np.char.add(first17, check.astype("U1")).astype("S18")


def person_names(pop: Population, rng: np.random.Generator) -> np.ndarray:
    """Plausible Chinese names: surname + one or two given characters (children share the
    head's surname)."""
    P = len(pop.hh)
    head_sur = SURNAMES[_rng_choice(rng, len(pop.hh_start) - 1, SURNAME_W)]
    own_sur = SURNAMES[_rng_choice(rng, P, SURNAME_W)]
    sur = np.where(np.isin(pop.relation, [HEAD, CHILD, SIBLING]), head_sur[pop.hh], own_sur)
    g1 = GIVEN[rng.integers(0, len(GIVEN), P)]
    g2 = np.where(rng.random(P) < 0.6, GIVEN[rng.integers(0, len(GIVEN), P)], "")
    return np.char.add(np.char.add(sur, g1), g2)


def place_names(cfg: SimulationConfig) -> tuple[list[list[str]], list[list[list[str]]]]:
    """Street names per district and community names per street (deterministic)."""
    streets, communities = [], []
    for di, d in enumerate(cfg.districts):
        rural = d.urban_share < 0.5
        s_names, c_names = [], []
        for s in range(d.streets):
            w = STREET_WORDS[(di * 7 + s) % len(STREET_WORDS)]
            s_names.append(f"{w}{'镇' if rural and s >= 2 else '街道'}")
            c_names.append([
                f"{COMMUNITY_WORDS[(di * 3 + s * 5 + c) % len(COMMUNITY_WORDS)]}"
                f"{'村' if rural and s >= 2 else '社区'}" for c in range(d.communities_per_street)
            ])
        streets.append(s_names)
        communities.append(c_names)
    return streets, communities
