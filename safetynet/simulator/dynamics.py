"""The monthly latent process: one vectorised `step` over all households and persons.

The same `step` drives the world (`record=True`: hardship onsets happen, households apply for
help, events are returned for the departments to record) and the Monte Carlo replicates that
estimate the truth probability (`record=False`: no onset is drawn, the caller accumulates the
survival product of the onset hazard instead). Latent drivers never depend on whether an onset
happened, so the Rao-Blackwellized product is exact given the simulated driver path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from safetynet.simulator.config import SimulationConfig
from safetynet.simulator.population import Population

PROG = ("dibao", "marginal_dibao", "special_hardship", "temporary", "rigid_expenditure")
DIBAO, MARGINAL, SPECIAL, TEMPORARY, RIGID = range(5)
NEVER = np.int32(10**6)
F32 = np.float32


def _sig(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x))).astype(F32)


@dataclass
class State:
    """Latent state: person arrays `p` (sorted by household) and household arrays `h`."""

    p: dict[str, np.ndarray]
    h: dict[str, np.ndarray]
    hh_start: np.ndarray  # persons of household i are hh_start[i]:hh_start[i+1]
    level_ready: bool = False  # p["level"] holds this school year's levels

    @property
    def n_households(self) -> int:
        return len(self.h["buffer"])

    def replicate(self, h0: int, h1: int, hh_start: np.ndarray, reps: int) -> State:
        """Households h0..h1 (and their members) copied `reps` times, for the Monte Carlo."""
        p0, p1 = int(hh_start[h0]), int(hh_start[h1])
        n = h1 - h0
        p = {k: np.tile(v[p0:p1], reps) for k, v in self.p.items() if k != "hh"}
        p["hh"] = (np.tile(self.p["hh"][p0:p1] - h0, reps)
                   + np.repeat(np.arange(reps, dtype=np.int32) * n, p1 - p0)).astype(np.int32)
        h = {k: np.tile(v[h0:h1], reps) for k, v in self.h.items()}
        local = hh_start[h0:h1] - p0
        starts = (np.tile(local, reps) + np.repeat(np.arange(reps) * (p1 - p0), n))
        return State(p, h, np.append(starts, reps * (p1 - p0)), self.level_ready)

    def household_sums(self, cols: list[np.ndarray]) -> np.ndarray:
        """Per-household sums of person columns, shape (H, len(cols))."""
        H, hh = self.n_households, self.p["hh"]
        return np.stack([np.bincount(hh, weights=c, minlength=H) for c in cols], axis=1
                        ).astype(F32)


def initial_state(pop: Population, cfg: SimulationConfig, rng: np.random.Generator) -> State:
    """State at the start of the burn-in, with the chronically poor already in hardship."""
    H, P = len(pop.buffer), len(pop.hh)
    size = np.diff(pop.hh_start).astype(F32)
    earn = np.bincount(pop.hh, weights=np.where(pop.employed, pop.wage, 0), minlength=H)
    pens = np.bincount(pop.hh, weights=pop.pension, minlength=H)
    own = earn + pens + pop.other_income
    ratio = (own / (pop.line * size)).astype(F32)
    types = [n for n, _ in cfg.composition]
    elderly_alone = pop.hh_type == (types.index("elderly_alone") if "elderly_alone" in types
                                    else -1)
    in_hard = (ratio < 1.0) & (rng.random(H) < 0.85)
    buffer = np.where(in_hard, np.minimum(pop.buffer, 0.5 * pop.line * size), pop.buffer)
    p = {
        "hh": pop.hh, "male": pop.male, "birth_month": pop.birth_month,
        "alive": np.ones(P, bool), "in_labour": pop.in_labour.copy(),
        "employed": pop.employed.copy(), "formal": pop.formal.copy(),
        "business": pop.business.copy(), "wage": pop.wage.copy(),
        "wage_mult": np.ones(P, F32), "unemp_months": np.zeros(P, np.int16),
        "registered": np.zeros(P, bool), "reg_months": np.zeros(P, np.int16),
        "ill_months": np.zeros(P, np.int16), "ill_cost": np.zeros(P, F32),
        "ill_off": np.zeros(P, bool), "dis_grade": pop.dis_grade.copy(),
        "pension": pop.pension.copy(), "formal_history": pop.formal_history,
        "insured": pop.insured, "college": pop.college, "vocational": pop.vocational,
        "dropped": np.zeros(P, bool),
        "retire_m": np.where(pop.male, 720, 660).astype(np.int16),
        "pay": (1 - np.where(pop.insured, np.where(pop.formal | pop.formal_history,
                                                   cfg.reimbursement_employee,
                                                   cfg.reimbursement_resident), 0.0)
                ).astype(F32),
        "school_factor": np.where(pop.urban[pop.hh], 1.0, 0.6).astype(F32),
        "level": np.full(P, -1, np.int8),
    }
    h = {
        "line": pop.line, "level": pop.level, "urban": pop.urban,
        "other_income": pop.other_income, "apply_prop": pop.apply_prop,
        "elderly_alone": elderly_alone, "buffer": buffer.astype(F32),
        "cons_pc": (np.maximum(cfg.consumption_share * own, 0.9 * pop.line * size) / size
                    ).astype(F32),
        "vehicle": pop.vehicle_value.copy(), "active": np.ones(H, bool),
        "ema": ratio, "gross": ratio.copy(), "shortfall": np.where(ratio < 1, 3, 0).astype(
            np.int16),
        "good": np.zeros(H, np.int16), "in_hard": in_hard,
        "asst_prog": np.full(H, -1, np.int8), "asst_amount": np.zeros(H, F32),
        "asst_end": np.full(H, NEVER, np.int32), "pending": np.full(H, -1, np.int32),
        "ever_assisted": np.zeros(H, bool), "stress": in_hard.copy(),
        "size": size,
    }
    return State(p, h, pop.hh_start)


def initial_assistance(st: State, cfg: SimulationConfig, rng: np.random.Generator
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Long-term recipients at the burn-in start: (households, start month g < 0, programme,
    amount). Most households already in hardship were found long ago; the rest never asked."""
    h = st.h
    H = st.n_households
    r = rng.random((3, H))
    idx = np.flatnonzero(h["in_hard"] & (r[0] < cfg.initial_assisted_share
                                         * np.clip(h["apply_prop"] / 0.6, 0.2, 1.3)))
    mask = np.zeros(H, bool)
    mask[idx] = True
    h["shortfall"][idx] = 6  # long spells: never classified as temporary
    ev: dict = {}
    _start_assistance(st, mask, -1, cfg, rng, ev)
    start_g = -(1 + (r[1][idx] * 72).astype(np.int32))
    return idx, start_g, ev["asst_start_prog"], ev["asst_start_amount"]


def _level_table() -> np.ndarray:
    """Level by [age at school-year start (0..30), college, vocational]."""
    lut = np.full((31, 2, 2), -1, np.int8)
    lut[3:6] = 0
    lut[6:12] = 1
    lut[12:15] = 2
    lut[15:18, :, 0] = 3
    lut[15:18, :, 1] = 4
    lut[18:22, 1, :] = 5
    return lut


_LEVELS = _level_table()
_CARE = np.array([0, 1, 1 / 2, 1 / 3, 1 / 4, 0, 0, 0], F32)  # care cost share by grade


def school_level(age_sy: np.ndarray, college: np.ndarray, vocational: np.ndarray) -> np.ndarray:
    """School level by age at the start of the school year (-1 = not of school age)."""
    return _LEVELS[np.clip(age_sy, 0, 30), college.astype(np.intp), vocational.astype(np.intp)]


class Clock:
    """Month arithmetic: global month g = 0 at the burn-in start; window month m = g - burn_in."""

    def __init__(self, cfg: SimulationConfig):
        self.window_start = np.datetime64(cfg.start, "M")
        self.burn_in = cfg.burn_in_months
        self.origin = self.window_start - cfg.burn_in_months
        self.origin_abs = int(self.origin.astype(np.int64))  # months since 1970-01

    def month(self, g: int | np.ndarray) -> np.ndarray:
        return self.origin + np.asarray(g)

    def first_day(self, g: int | np.ndarray) -> np.ndarray:
        """Days since 1970-01-01 of the first day of month g."""
        return (self.origin + np.asarray(g)).astype("datetime64[D]").astype(np.int64)

    def calendar_month(self, g: int) -> int:
        return int((self.origin_abs + g) % 12) + 1


def step(st: State, g: int, cfg: SimulationConfig, clock: Clock, rng: np.random.Generator,
         record: bool) -> tuple[np.ndarray, dict | None]:
    """Advance every household one month. Returns (effective onset hazard, events or None).

    The effective hazard is 0 for households already in hardship or dissolved.
    """
    p, h = st.p, st.h
    H, P = st.n_households, len(p["hh"])
    hh = p["hh"]
    m = g - clock.burn_in
    downturn = cfg.downturn_start <= m < cfg.downturn_start + cfg.downturn_months
    macro = cfg.downturn_factor if downturn else 1.0
    month_abs = clock.origin_abs + g
    age_m = month_abs - p["birth_month"]
    age = age_m.astype(F32) / F32(12)
    alive = p["alive"]
    ev: dict = {} if record else None  # type: ignore[assignment]

    # assistance spells: end those past their end month, start approved applications
    hard_start = h["in_hard"].copy()
    on = h["asst_prog"] >= 0
    ending = on & ((h["asst_end"] < g) | ~h["active"])
    if record:
        ev["asst_end_hh"] = np.flatnonzero(ending)
        ev["asst_end_month"] = np.where(h["active"][ending], h["asst_end"][ending], g - 1)
    h["asst_prog"][ending] = -1
    h["asst_amount"][ending] = 0
    h["asst_end"][ending] = NEVER
    starting = (h["pending"] == g) & h["active"]
    h["pending"][h["pending"] == g] = -1
    starting &= h["in_hard"] & (h["asst_prog"] < 0)
    if starting.any():
        _start_assistance(st, starting, g, cfg, rng, ev)

    # Two uniforms per person and month: rare events take disjoint slices of u0 (at most
    # one of death, disability, serious illness, hospital stay, dropout per month), labour
    # events slices of u1; magnitudes are drawn only for the few persons concerned.
    u0 = rng.random(P, dtype=F32)
    u1 = rng.random(P, dtype=F32)
    ill = p["ill_months"]
    chronic = alive & (ill > 0)
    q = (F32(cfg.death_gompertz_a / 12.0) * np.exp(F32(cfg.death_gompertz_b)
                                                    * np.minimum(age, F32(105)))
         * np.where(chronic, F32(cfg.illness_death_factor), F32(1.0)))
    dis = p["dis_grade"]
    q_dis = np.where(dis == 0, F32(cfg.disability_onset_rate)
                     + F32(3e-5) * np.maximum(age - 50, F32(0)),
                     np.where(dis > 1, F32(cfg.disability_worsen_rate), F32(0)))
    q_ill = np.where(ill == 0, F32(cfg.serious_illness_rate)
                     + F32(cfg.serious_illness_age_slope) * np.maximum(age - 40, F32(0)), F32(0))
    q_inp = F32(cfg.inpatient_rate) * np.where(age >= 65, F32(3.0), F32(1.0))
    c1 = q
    c2 = c1 + q_dis
    c3 = c2 + q_ill
    c4 = c3 + q_inp
    died = alive & (u0 < c1)
    ev_dis = alive & (u0 >= c1) & (u0 < c2)
    s_on = alive & (u0 >= c2) & (u0 < c3)
    i_on = alive & (u0 >= c3) & (u0 < c4)

    # deaths
    alive &= ~died
    funeral = np.bincount(hh[died], minlength=H) * cfg.funeral_cost

    # disability onset and worsening
    d_on = ev_dis & (dis == 0)
    worse = ev_dis & (dis > 1)
    dis[d_on] = rng.integers(1, 5, int(d_on.sum()), dtype=np.int8)
    dis[worse] -= 1
    severe = alive & (dis >= 1) & (dis <= 2)

    # serious illness, continuing treatment, ordinary hospital stays
    n_on = int(s_on.sum())
    s_total = np.zeros(P, F32)
    s_total[s_on] = cfg.serious_illness_cost * np.exp(rng.normal(-0.18, 0.6, n_on))
    ill[s_on] = 1 + rng.geometric(1.0 / cfg.chronic_months_mean, n_on).astype(np.int16)
    p["ill_cost"][s_on] = (cfg.chronic_monthly_cost * np.exp(rng.normal(-0.1, 0.45, n_on))
                           ).astype(F32)
    stop = np.flatnonzero(s_on)[rng.random(n_on) < cfg.stop_work_when_ill]
    p["ill_off"][stop] = True
    c_total = np.where(chronic, p["ill_cost"], F32(0))
    ill[chronic] -= 1
    p["ill_off"] &= ill > 0
    i_total = np.zeros(P, F32)
    i_total[i_on] = cfg.inpatient_cost * np.exp(rng.normal(-0.1, 0.5, int(i_on.sum())))
    pay = p["pay"]
    oop = (s_total + c_total + i_total) * pay

    # school and labour market
    retire_m = p["retire_m"]
    working_age = (age_m >= 216) & (age_m < retire_m)
    retiring = alive & (age_m == retire_m)
    age_sy = (month_abs - (clock.calendar_month(g) - 9) % 12 - p["birth_month"]) // 12
    if clock.calendar_month(g) == 9 or not st.level_ready:
        p["level"] = school_level(age_sy, p["college"], p["vocational"])
        st.level_ready = True
    level = p["level"]
    student = alive & (level >= 0) & ~p["dropped"]
    d_rate = np.where(student & (age_sy >= 14) & (age_sy <= 17),
                      F32(cfg.dropout_rate) + F32(cfg.dropout_stress) * h["stress"][hh], F32(0))
    drop = student & (u0 >= c4) & (u0 < c4 + d_rate)
    p["dropped"] |= drop
    student &= ~drop
    p["in_labour"] |= drop  # school leavers look for (informal) work at 16+
    able = alive & p["in_labour"] & working_age & ~student & ~severe & ~p["ill_off"]
    emp = p["employed"]
    left = emp & ~able  # retirement, death, illness, severe disability: no job-loss event
    emp &= able
    loss_rate = (F32(cfg.job_loss_rate * macro)
                 * np.where(p["formal"], F32(1.0), F32(cfg.informal_job_loss_factor))
                 * np.where(age >= 50, F32(1.3), F32(1.0)))
    lost = emp & (u1 < loss_rate)
    cut = emp & (u1 >= loss_rate) & (u1 < loss_rate + F32(cfg.wage_shock_rate))
    re_rate = F32(cfg.reemployment_rate / macro) * np.where(age >= 50, F32(0.5), F32(1.0))
    seeking = able & ~emp
    found = seeking & (u1 < re_rate)
    emp |= found
    emp &= ~lost
    n_found = int(found.sum())
    p["wage"][found] *= np.exp(-cfg.reemployment_wage_loss
                               + 0.2 * rng.standard_normal(n_found)).astype(F32)
    wm = p["wage_mult"]
    wm[found] = 1.0
    p["unemp_months"] = np.where(emp, 0, np.where(seeking | lost, p["unemp_months"] + 1, 0)
                                 ).astype(np.int16)
    reg = p["registered"]
    li = np.flatnonzero(lost)
    p_reg = np.where(p["formal"][li], cfg.register_unemployed_formal,
                     cfg.register_unemployed_informal)
    new_reg = np.zeros(P, bool)
    new_reg[li[rng.random(len(li)) < p_reg]] = True
    reg_end = reg & (found | ~alive | retiring | (~able & ~lost))
    reg &= ~reg_end
    reg |= new_reg
    p["reg_months"] = np.where(reg, np.where(new_reg, 0, p["reg_months"] + 1), 0).astype(
        np.int16)
    benefit = np.where(reg & p["formal"] & (p["reg_months"] < cfg.benefit_months),
                       F32(cfg.unemployment_benefit) * h["level"][hh], F32(0))
    wm += F32(cfg.wage_recovery) * (F32(1) - wm)
    n_cut = int(cut.sum())
    wm[cut] *= (0.5 + 0.3 * rng.random(n_cut)).astype(F32)
    ri = np.flatnonzero(retiring)
    p["pension"][ri] = np.where(
        p["formal_history"][ri] | p["formal"][ri],
        cfg.employee_pension * h["level"][hh[ri]] * (0.8 + 0.4 * rng.random(len(ri))),
        np.where(h["urban"][hh[ri]], cfg.resident_pension_urban,
                 cfg.resident_pension_rural)).astype(F32)

    # household budget
    school = (np.asarray((0.0, *cfg.school_cost_urban), F32)[level + 1] * student
              * p["school_factor"])
    care = _CARE[dis] * F32(cfg.disability_care_cost) * alive
    earn_p = np.where(emp, p["wage"] * wm, F32(0))
    income_p = np.where(alive, p["pension"], F32(0)) + benefit
    # counts packed into one exact float64 sum (fields of 8 bits: members are < 256)
    packed = (alive.astype(np.float64) + 256.0 * (alive & (ill > 0))
              + 65536.0 * (seeking & ~emp) + 16777216.0 * severe)
    sums = st.household_sums([earn_p + income_p, oop + school + care])
    counts = np.bincount(hh, weights=packed, minlength=H).astype(np.int64)
    size = (counts & 255).astype(F32)
    active = size > 0
    dissolved = h["active"] & ~active
    h["active"] = active
    sz = np.maximum(size, 1)
    own = sums[:, 0] + h["other_income"] * active
    rigid = sums[:, 1] + funeral
    line_hh = h["line"] * sz
    ratio = ((own - rigid) / line_hh).astype(F32)
    h["gross"] = (own / line_hh).astype(F32)
    ema = h["ema"] = (cfg.ema_weight * ratio + (1 - cfg.ema_weight) * h["ema"]).astype(F32)
    available = own - rigid + h["asst_amount"]
    buf = h["buffer"]
    habitual = h["cons_pc"] * sz
    subsist = 0.9 * line_hh
    desired = np.maximum(subsist, np.minimum(habitual, available + 0.25 * np.maximum(buf, 0)))
    spend = np.maximum(np.minimum(desired, available + np.maximum(buf, 0)), 0.6 * subsist)
    buf += (available - spend).astype(F32)
    buf[~active] = 0
    sell = (buf < 0) & (h["vehicle"] > 0) & (rng.random(H, dtype=F32) < cfg.vehicle_sale_rate)
    buf[sell] += 0.8 * h["vehicle"][sell]
    if record:
        ev["vehicle_sold"] = np.flatnonzero(sell)
    h["vehicle"][sell] = 0
    h["shortfall"] = np.where(ema < 1, np.minimum(h["shortfall"] + 1, 120), 0).astype(np.int16)
    ill_any = (counts >> 8) & 255 > 0
    unemp_any = (counts >> 16) & 255 > 0
    vulnerable = h["elderly_alone"] | ((counts >> 24) > 0)
    buf_months = buf / line_hh
    logit = (cfg.hazard_intercept + cfg.hazard_depth * np.clip(1.2 - ema, 0, 1.5)
             + cfg.hazard_no_buffer * (buf_months < 1) + cfg.hazard_debt * (buf < 0)
             + cfg.hazard_shortfall * np.minimum(h["shortfall"], 6)
             + cfg.hazard_vulnerable * vulnerable + cfg.hazard_ill * ill_any)
    hazard = np.where(active & ~hard_start, _sig(logit), 0).astype(F32)

    # recovery (deterministic given the drivers) and the assistance that follows it
    ok = hard_start & (ema >= cfg.recovery_ratio) & (buf >= 0)
    h["good"] = np.where(ok, h["good"] + 1, 0).astype(np.int16)
    recovered = hard_start & (h["good"] >= cfg.recovery_months)
    h["in_hard"] &= ~recovered & active
    h["good"][recovered] = 0
    exit_ = recovered & (h["asst_prog"] >= 0) & (h["asst_prog"] != TEMPORARY) & (
        h["asst_end"] == NEVER)
    h["asst_end"][exit_] = g + cfg.gradual_exit_months
    h["pending"][dissolved] = -1
    h["stress"] = h["in_hard"] | (h["shortfall"] > 0) | ill_any | unemp_any
    h["size"] = size

    if record:
        onset = active & ~hard_start & (rng.random(H, dtype=F32) < hazard)
        h["in_hard"] |= onset
        _applications(st, onset, g, cfg, rng)
        ev.update(
            onset=onset, died=np.flatnonzero(died), job_loss=np.flatnonzero(lost),
            reemployed=np.flatnonzero(found), new_reg=np.flatnonzero(new_reg),
            reg_end=np.flatnonzero(reg_end), serious=np.flatnonzero(s_on),
            chronic=np.flatnonzero(chronic), inpatient=np.flatnonzero(i_on),
            s_total=s_total, c_total=c_total, i_total=i_total, pay=pay,
            dis_onset=np.flatnonzero(d_on), dis_worse=np.flatnonzero(worse),
            dropout=np.flatnonzero(drop), retiring=np.flatnonzero(retiring),
            left_job=np.flatnonzero(left), student=student, level=level, benefit=benefit,
            employed=emp, wage_now=p["wage"] * wm, stress=h["stress"], ratio=ratio,
            own=own, rigid=rigid, hazard=hazard, recovered=recovered,
        )
    return hazard, ev


def _start_assistance(st: State, starting: np.ndarray, g: int, cfg: SimulationConfig,
                      rng: np.random.Generator, ev: dict | None) -> None:
    """Grant assistance to approved applicants; the programme follows their situation."""
    p, h = st.p, st.h
    idx = np.flatnonzero(starting)
    H = st.n_households
    hh = p["hh"]
    alive = p["alive"]
    sel = np.flatnonzero(starting[hh])
    support = np.bincount(hh[sel], weights=alive[sel] & p["in_labour"][sel]
                          & ((p["dis_grade"][sel] == 0) | (p["dis_grade"][sel] > 2))
                          & ~p["college"][sel], minlength=H)
    employed = np.bincount(hh[sel], weights=alive[sel] & p["employed"][sel], minlength=H)
    ema, gross = h["ema"][idx], h["gross"][idx]
    line_hh = h["line"][idx] * np.maximum(h["size"][idx], 1)
    short = h["shortfall"][idx] <= 1
    r = rng.random(len(idx))
    no_support = (support[idx] == 0) & (employed[idx] == 0) & (h["size"][idx] <= 2)
    prog = np.select(
        [no_support & (ema < 1.1), short & (r < 0.4), (ema < 1) & (gross >= 1), ema < 1,
         ema < 1.5],
        [SPECIAL, TEMPORARY, RIGID, DIBAO, MARGINAL], TEMPORARY).astype(np.int8)
    gap = np.clip(1 - ema, 0.2, 1.0) * line_hh
    amount = np.select([prog == SPECIAL, prog == MARGINAL, prog == TEMPORARY],
                       [1.3 * line_hh, 0.35 * line_hh, 1.5 * line_hh], gap)
    h["asst_prog"][idx] = prog
    h["asst_amount"][idx] = np.round(amount, 0).astype(F32)
    dur = (rng.random(len(idx)) * cfg.temporary_months_max).astype(np.int32)
    h["asst_end"][idx] = np.where(prog == TEMPORARY, g + dur, NEVER)
    h["ever_assisted"][idx] = True
    if ev is not None:
        ev["asst_start_hh"] = idx
        ev["asst_start_prog"] = prog
        ev["asst_start_amount"] = h["asst_amount"][idx].copy()


def _applications(st: State, onset: np.ndarray, g: int, cfg: SimulationConfig,
                  rng: np.random.Generator) -> None:
    """Who asks for help: at onset with the household's propensity, later only rarely."""
    h = st.h
    H = st.n_households
    prop = h["apply_prop"]
    logit = np.log(prop / (1 - prop)) + cfg.apply_prior_assistance * h["ever_assisted"]
    p_apply = _sig(logit)
    r = rng.random((3, H), dtype=F32)
    idle = h["in_hard"] & (h["asst_prog"] < 0) & (h["pending"] < 0)
    asks = onset & (r[0] < p_apply)
    asks |= idle & ~onset & (r[0] < cfg.late_application_rate * p_apply)
    granted = asks & (r[1] < cfg.approval_rate)
    lag = 1 + np.floor(np.log(np.maximum(r[2], 1e-9)) / np.log(
        1 - 1 / (1 + cfg.application_lag_mean))).astype(np.int32)
    h["pending"] = np.where(granted & (h["pending"] < 0), g + lag, h["pending"]).astype(np.int32)
