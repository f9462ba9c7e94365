"""What the departments record: an imperfect, lagged view of the latent events.

`Recorder.month` is called after every simulated month with the events of `dynamics.step`;
monthly tables (claims, attendance, benefits, contributions) are streamed to their sinks,
spell and registry tables are accumulated (they are small) and written by `Recorder.finish`.
"""

from __future__ import annotations

import numpy as np

from safetynet.contracts import DIAGNOSIS_GROUPS, DISABILITY_CATEGORIES, SCHOOL_LEVELS, table
from safetynet.simulator.config import SimulationConfig
from safetynet.simulator.dynamics import PROG, Clock, State
from safetynet.simulator.output import Messer, TableSink, to_arrow
from safetynet.simulator.population import RELATIONS, Population

SCHOOL_DAYS = np.array([12, 10, 22, 20, 20, 21, 5, 0, 21, 16, 22, 22])  # Jan..Dec
LEVEL_START_AGE = np.array([3, 6, 12, 15, 15, 18])
SERIOUS = np.array([i for i, g in enumerate(DIAGNOSIS_GROUPS) if i >= 6])
ORDINARY = np.array([0, 1, 2, 3, 5])
DAY0 = -(10**9)  # null date marker (see output.to_arrow)
STREAMED = ("claims", "attendance", "unemployment_benefits", "contributions")


def _serial(prefix: str, start: int, n: int, width: int = 10) -> np.ndarray:
    nums = np.char.zfill(np.arange(start, start + n).astype(str), width)
    return np.char.add(prefix, nums)


class Recorder:
    def __init__(self, cfg: SimulationConfig, pop: Population, clock: Clock, ids: np.ndarray,
                 hh_ids: np.ndarray, sinks: dict[str, TableSink], messer: Messer,
                 rng: np.random.Generator, extract_day: int):
        self.cfg, self.pop, self.clock, self.ids, self.hh_ids = cfg, pop, clock, ids, hh_ids
        self.sinks, self.messer, self.rng, self.extract_day = sinks, messer, rng, extract_day
        self.lags = {d: (a, b) for d, a, b in cfg.lag_days}
        P = len(pop.hh)
        self.p_district = pop.district[pop.hh]
        self.claim_serial = 0
        self.serious_dx = SERIOUS[rng.integers(0, len(SERIOUS), P)]
        self.floor_declared = rng.random(P) < cfg.contribution_floor_share
        self.death_day = np.full(P, DAY0, np.int64)
        # spells: lists of per-month arrays, joined at the end
        self.reg_person, self.reg_start, self.reg_end = [], [], []
        self.reg_open = np.full(P, -1, np.int64)
        self.n_reg = 0
        self.asst: list[tuple] = []  # (hh, start_g, prog, amount)
        self.asst_end: dict[int, int] = {}
        self.asst_open = np.full(len(pop.buffer), -1, np.int64)
        self.enr_person, self.enr_level, self.enr_day, self.enr_assist = [], [], [], []
        self.enr_open = np.full(P, -1, np.int64)
        self.enr_cur_level = np.full(P, -1, np.int8)
        self.enr_drop: dict[int, int] = {}
        self.n_enr = 0
        self.cert: list[tuple] = []  # (person array, category, grade, issue day array)
        self.cert_open = np.full(P, -1, np.int64)
        self.n_cert = 0
        self.cert_revoke: dict[int, int] = {}
        self.pension_rows: list[tuple] = []  # (person, start_day, amount)
        self.vehicle_sold_day = np.full(len(pop.buffer), DAY0, np.int64)
        self.business_end_day = np.full(P, DAY0, np.int64)
        self._initial_records()

    # --- helpers --------------------------------------------------------------------------
    def lag(self, dept: str, n: int) -> np.ndarray:
        a, b = self.lags[dept]
        return (a + self.rng.exponential(b, n)).astype(np.int64)

    def day_in(self, g: int, n: int) -> np.ndarray:
        return self.clock.first_day(g) + self.rng.integers(0, 28, n)

    def _emit(self, name: str, cols: dict, person: np.ndarray | None,
              district: np.ndarray) -> None:
        t = table(name)
        if person is not None and t.person_column:
            cols[t.person_column] = person  # replaced by the (messy) ID in Messer.apply
        known = cols["knowledge_date"] <= self.extract_day
        if not known.all():
            cols = {k: v[known] for k, v in cols.items()}
            person = person[known] if person is not None else None
            district = district[known]
        sink = self.sinks[name]
        cols = self.messer.apply(t, cols, person, district, sink.counts)
        sink.write(to_arrow(t, cols))

    # --- stocks at the burn-in start -------------------------------------------------------
    def _initial_records(self) -> None:
        pop, rng, cfg = self.pop, self.rng, self.cfg
        start = int(self.clock.first_day(0))
        P = len(pop.hh)
        dis = np.flatnonzero((pop.dis_grade > 0) & (rng.random(P) < cfg.disability_certified))
        lo = np.maximum(pop.birth_day[dis].astype(np.int64) + 365, 10957)  # >= 2000-01-01
        issue = lo + (rng.random(len(dis)) * np.maximum(start - lo, 1)).astype(np.int64)
        self._new_certs(dis, pop.dis_category[dis], pop.dis_grade[dis], issue)
        pens = np.flatnonzero(pop.pension > 0)
        retire_years = np.where(pop.male[pens], 60, 55)
        bm = pop.birth_month[pens].astype(np.int64) + 12 * retire_years
        day = bm.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
        self.pension_rows.append((pens, np.minimum(day, start - 1), pop.pension[pens]))

    def _new_certs(self, person: np.ndarray, category: np.ndarray, grade: np.ndarray,
                   issue: np.ndarray) -> None:
        ids = np.arange(self.n_cert, self.n_cert + len(person))
        prev = self.cert_open[person]
        for old, new_day in zip(prev[prev >= 0], issue[prev >= 0], strict=True):
            self.cert_revoke[int(old)] = int(new_day)  # few per month: worsening only
        self.cert_open[person] = ids
        self.cert.append((person, category, grade, issue))
        self.n_cert += len(person)

    # --- monthly ---------------------------------------------------------------------------
    def month(self, g: int, ev: dict, st: State) -> None:
        cfg, rng, clock = self.cfg, self.rng, self.clock
        in_window = g >= clock.burn_in
        first = int(clock.first_day(g))
        p, h = st.p, st.h
        # deaths, pensions, unemployment registrations, businesses, vehicles
        self.death_day[ev["died"]] = self.day_in(g, len(ev["died"]))
        r = ev["retiring"]
        if len(r):
            self.pension_rows.append((r, np.full(len(r), first), p["pension"][r].copy()))
        nr = ev["new_reg"]
        self.reg_person.append(nr)
        self.reg_start.append(self.day_in(g, len(nr)))
        self.reg_open[nr] = np.arange(self.n_reg, self.n_reg + len(nr))
        self.n_reg += len(nr)
        self.reg_end.append((self.reg_open[ev["reg_end"]], self.day_in(g, len(ev["reg_end"]))))
        self.reg_open[ev["reg_end"]] = -1
        jl = ev["job_loss"]
        closing = jl[p["business"][jl] & (self.business_end_day[jl] == DAY0)]
        self.business_end_day[closing] = self.day_in(g, len(closing))
        self.vehicle_sold_day[ev["vehicle_sold"]] = self.day_in(g, len(ev["vehicle_sold"]))
        # assistance spells
        for hh_, end_g in zip(ev["asst_end_hh"], ev["asst_end_month"], strict=True):
            k = int(self.asst_open[hh_])
            if k >= 0:
                self.asst_end[k] = int(end_g)
                self.asst_open[hh_] = -1
        if "asst_start_hh" in ev:
            s = ev["asst_start_hh"]
            base = len(self.asst)
            for i, (hh_, prog, amt) in enumerate(zip(s, ev["asst_start_prog"],
                                                     ev["asst_start_amount"], strict=True)):
                self.asst.append((int(hh_), g, int(prog), float(amt)))
                self.asst_open[hh_] = base + i
        # disability certificates: after an assessment delay, and not for everyone
        for key, worse in (("dis_onset", False), ("dis_worse", True)):
            idx = ev[key]
            if not len(idx):
                continue
            if worse:
                idx = idx[self.cert_open[idx] >= 0]
                take = rng.random(len(idx)) < 0.7
            else:
                take = rng.random(len(idx)) < cfg.disability_certified
            idx = idx[take]
            issue = self.day_in(g, len(idx)) + rng.integers(60, 240, len(idx))
            self._new_certs(idx, self.pop.dis_category[idx], p["dis_grade"][idx].copy(), issue)
        # enrolment spells
        student, level = ev["student"], ev["level"]
        new = np.flatnonzero(student & (level != self.enr_cur_level))
        if len(new):
            lv = level[new]
            if g == 0:  # already enrolled at the burn-in start: back-date to level start
                age_sy = (clock.origin_abs + g - (clock.calendar_month(g) - 9) % 12
                          - p["birth_month"][new]) // 12
                years_in = np.maximum(age_sy - LEVEL_START_AGE[lv], 0)
            else:
                years_in = np.zeros(len(new), np.int64)
            sept = clock.origin_abs + g - (clock.calendar_month(g) - 9) % 12 - 12 * years_in
            day = sept.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
            on_help = np.isin(h["asst_prog"][p["hh"][new]], [0, 1, 2])
            self.enr_person.append(new)
            self.enr_level.append(lv)
            self.enr_day.append(day)
            self.enr_assist.append(on_help & (rng.random(len(new)) < 0.8))
            self.enr_open[new] = np.arange(self.n_enr, self.n_enr + len(new))
            self.n_enr += len(new)
            self.enr_cur_level[new] = lv
        for i, d in zip(self.enr_open[ev["dropout"]], self.day_in(g, len(ev["dropout"])),
                        strict=True):
            if i >= 0:
                self.enr_drop[int(i)] = int(d)
        self.enr_cur_level[~student] = -1
        if in_window:
            self._monthly_tables(g, ev, st)

    def _monthly_tables(self, g: int, ev: dict, st: State) -> None:
        cfg, rng, clock = self.cfg, self.rng, self.clock
        p, h = st.p, st.h
        first = int(clock.first_day(g))
        month_end = int(clock.first_day(g + 1)) - 1
        insured = p["insured"]
        P = len(p["hh"])
        # claims
        parts = []
        for key, total_key, care, serious in (("serious", "s_total", "inpatient", True),
                                              ("chronic", "c_total", "outpatient", True),
                                              ("inpatient", "i_total", "inpatient", False)):
            idx = ev[key]
            idx = idx[insured[idx]]
            if key == "chronic":
                idx = idx[rng.random(len(idx)) < 0.85]
            parts.append((idx, ev[total_key][idx], care, serious))
        alive = p["alive"]
        age = (clock.origin_abs + g - p["birth_month"]) / 12.0
        o_rate = cfg.outpatient_rate * np.where(age >= 65, 2.5, 1.0)
        out = np.flatnonzero(alive & insured & (rng.random(P) < o_rate))
        parts.append((out, 300 * np.exp(rng.normal(0, 0.8, len(out))), "outpatient", False))
        person = np.concatenate([x[0] for x in parts])
        n = len(person)
        total = np.concatenate([x[1] for x in parts]).astype(np.float64)
        care = np.concatenate([np.full(len(x[0]), x[2]) for x in parts])
        serious = np.concatenate([np.full(len(x[0]), x[3]) for x in parts])
        pay = ev["pay"][person].astype(np.float64)
        dx = np.where(serious, self.serious_dx[person], ORDINARY[rng.integers(0, 5, n)])
        claim_date = self.day_in(g, n)
        cols = {
            "claim_id": _serial("C", self.claim_serial, n), "resident_id": None,
            "claim_date": claim_date, "care_type": care, "total_cost": np.round(total, 2),
            "reimbursed": np.round(total * (1 - pay), 2),
            "out_of_pocket": np.round(total, 2) - np.round(total * (1 - pay), 2),
            "diagnosis_group": np.array(DIAGNOSIS_GROUPS)[dx], "serious_illness": serious,
            "knowledge_date": claim_date + self.lag("medical_insurance", n),
        }
        self.claim_serial += n
        self._emit("claims", cols, person, self.p_district[person])
        # attendance (primary to senior secondary and vocational), not in August
        days = int(SCHOOL_DAYS[clock.calendar_month(g) - 1])
        if days:
            lv = ev["level"]
            pupils = np.flatnonzero(ev["student"] & (lv >= 1) & (lv <= 4))
            stress = ev["stress"][p["hh"][pupils]]
            own_ill = p["ill_months"][pupils] > 0
            lam = (cfg.absence_base + cfg.absence_stress * stress + 4.0 * own_ill) * days / 20
            absence = np.minimum(rng.poisson(lam), days)
            n = len(pupils)
            self._emit("attendance", {
                "resident_id": None, "month": np.full(n, first),
                "school_days": np.full(n, days), "absence_days": absence,
                "knowledge_date": month_end + self.lag("education", n),
            }, pupils, self.p_district[pupils])
        # unemployment benefits
        ben = np.flatnonzero(ev["benefit"] > 0)
        n = len(ben)
        self._emit("unemployment_benefits", {
            "resident_id": None, "month": np.full(n, first),
            "amount": np.round(ev["benefit"][ben].astype(np.float64), 0),
            "knowledge_date": month_end + self.lag("hrss", n),
        }, ben, self.p_district[ben])
        # contributions: formal jobs only, base clipped to 60%..300% of the local average
        w = np.flatnonzero(ev["employed"] & p["formal"])
        avg = cfg.city_wage * 1.15 * h["level"][p["hh"][w]]
        base = np.where(self.floor_declared[w], 0.6 * avg,
                        np.clip(ev["wage_now"][w], 0.6 * avg, 3 * avg))
        n = len(w)
        self._emit("contributions", {
            "resident_id": None, "month": np.full(n, first),
            "contribution_base": np.round(base.astype(np.float64), 0),
            "knowledge_date": month_end + self.lag("hrss", n),
        }, w, self.p_district[w])

    # --- end of run: spell and registry tables --------------------------------------------
    def finish(self, st: State, names: np.ndarray, streets: list, communities: list) -> None:
        cfg, rng, pop, clock = self.cfg, self.rng, self.pop, self.clock
        X = self.extract_day
        H, P = len(pop.buffer), len(pop.hh)
        start0 = int(clock.first_day(0))
        # households
        reg = start0 - rng.integers(200, 12_000, H)
        dn = np.array([d.name for d in cfg.districts])
        s_name = np.array([s for ss in streets for s in ss])
        s_off = np.concatenate([[0], np.cumsum([len(ss) for ss in streets])])[:-1]
        c_flat = [c for cs in communities for cc in cs for c in cc]
        c_off_street = np.concatenate([[0], np.cumsum([len(cc) for cs in communities
                                                       for cc in cs])])[:-1]
        sidx = s_off[pop.district] + pop.street
        cidx = c_off_street[sidx] + np.minimum(pop.community, 3)
        number = rng.integers(1, 300, H).astype(str)
        addr = np.char.add(np.char.add(np.char.add(s_name[sidx], np.array(c_flat)[cidx]),
                                       number), "号")
        self._emit("households", {
            "household_id": self.hh_ids, "district": dn[pop.district], "street": s_name[sidx],
            "community": np.array(c_flat)[cidx],
            "urban_rural": np.where(pop.urban, "urban", "rural"), "address": addr,
            "registered_date": reg, "knowledge_date": reg + self.lag("civil_affairs", H),
        }, None, pop.district)
        # persons
        hreg = reg[pop.hh]
        preg = np.where(pop.relation == 2, np.maximum(pop.birth_day.astype(np.int64) + 20, hreg),
                        hreg)
        death = np.where(self.death_day + 15 <= X, self.death_day, DAY0)
        self._emit("persons", {
            "resident_id": None, "name": names, "sex": np.where(pop.male, "M", "F"),
            "birth_date": pop.birth_day.astype(np.int64),
            "relation_to_head": RELATIONS[pop.relation], "household_id": self.hh_ids[pop.hh],
            "registered_date": preg, "death_date": death,
            "knowledge_date": preg + self.lag("civil_affairs", P),
        }, np.arange(P), self.p_district)
        # assistance spells (start known with the civil-affairs lag; end as of the extract)
        if self.asst:
            a = np.array([x[0] for x in self.asst])
            sg = np.array([x[1] for x in self.asst])
            prog = np.array([x[2] for x in self.asst])
            amt = np.array([x[3] for x in self.asst])
            n = len(a)
            eg = np.array([self.asst_end.get(i, -(10**6)) for i in range(n)])
            # spells granted before the burn-in (long-term recipients) are back-dated
            start_day = clock.first_day(sg).astype(np.int64)
            end_day = np.where(eg > -(10**6), clock.first_day(eg + 1).astype(np.int64) - 1, DAY0)
            end_day = np.where(end_day <= X, end_day, DAY0)
            order = np.lexsort((a, start_day))
            cols = {
                "record_id": _serial("A", 0, n, 8)[np.argsort(order)],
                "household_id": self.hh_ids[a], "programme": np.array(PROG)[prog],
                "start_date": start_day, "end_date": end_day, "monthly_amount": amt,
                "knowledge_date": start_day + self.lag("civil_affairs", n),
            }
            cols = {k: v[order] for k, v in cols.items()}
            self._emit("assistance", cols, None, pop.district[a[order]])
        # disability certificates
        person = np.concatenate([c[0] for c in self.cert])
        n = len(person)
        issue = np.concatenate([c[3] for c in self.cert]).astype(np.int64)
        know = issue + self.lag("disability", n)
        revoke = np.full(n, DAY0, np.int64)
        for k, d in self.cert_revoke.items():
            if know[k] <= X and d <= X:
                revoke[k] = d
        dead = (self.death_day[person] > DAY0) & (self.death_day[person] + 90 <= X)
        revoke = np.where((revoke == DAY0) & dead, self.death_day[person] + 90, revoke)
        self._emit("disability_certificates", {
            "certificate_id": _serial("D", 0, n, 9), "resident_id": None,
            "category": np.array(DISABILITY_CATEGORIES)[
                np.concatenate([c[1] for c in self.cert])],
            "grade": np.concatenate([c[2] for c in self.cert]).astype(np.int64),
            "issue_date": issue, "revoked_date": revoke, "knowledge_date": know,
        }, person, self.p_district[person])
        # enrolment
        person = np.concatenate(self.enr_person)
        n = len(person)
        drop = np.full(n, DAY0, np.int64)
        if self.enr_drop:
            k = np.fromiter(self.enr_drop.keys(), np.int64)
            drop[k] = np.fromiter(self.enr_drop.values(), np.int64)
        enrol = np.concatenate(self.enr_day).astype(np.int64)
        self._emit("enrolment", {
            "enrolment_id": _serial("E", 0, n, 9), "resident_id": None,
            "school_level": np.array(SCHOOL_LEVELS)[np.concatenate(self.enr_level)],
            "enrol_date": enrol, "dropout_date": np.where(drop <= X, drop, DAY0),
            "education_assistance": np.concatenate(self.enr_assist),
            "knowledge_date": enrol + self.lag("education", n),
        }, person, self.p_district[person])
        # unemployment registrations
        person = np.concatenate(self.reg_person)
        n = len(person)
        start = np.concatenate(self.reg_start).astype(np.int64)
        end = np.full(n, DAY0, np.int64)
        for k, d in self.reg_end:
            ok = k >= 0
            end[k[ok]] = d[ok]
        end = np.maximum(end, np.where(end > DAY0, start, DAY0))
        self._emit("unemployment", {
            "registration_id": _serial("U", 0, n, 9), "resident_id": None,
            "start_date": start, "end_date": np.where(end <= X, end, DAY0),
            "knowledge_date": start + self.lag("hrss", n),
        }, person, self.p_district[person])
        # pensions
        person = np.concatenate([x[0] for x in self.pension_rows])
        n = len(person)
        sd = np.concatenate([x[1] for x in self.pension_rows]).astype(np.int64)
        amt = np.concatenate([x[2] for x in self.pension_rows]).astype(np.float64)
        self._emit("pensions", {
            "pension_id": _serial("P", 0, n, 9), "resident_id": None,
            "pension_type": np.where(amt >= 1000, "employee", "resident"), "start_date": sd,
            "monthly_amount": np.round(amt, 0), "knowledge_date": sd + self.lag("hrss", n),
        }, person, self.p_district[person])
        # economic status: vehicles and real estate of the head, businesses of the owner
        head = pop.hh_start[:-1]
        hv = np.flatnonzero(pop.vehicle_value > 0)
        n = len(hv)
        rd = start0 - rng.integers(30, 3650, n)
        sold = self.vehicle_sold_day[hv]
        self._emit("vehicles", {
            "vehicle_id": _serial("V", 0, n, 9), "resident_id": None, "registered_date": rd,
            "deregistered_date": np.where(sold + 30 <= X, sold, DAY0),
            "estimated_value": np.round(pop.vehicle_value[hv].astype(np.float64), -2),
            "knowledge_date": rd + self.lag("economic", n),
        }, head[hv], self.p_district[head[hv]])
        hp = np.flatnonzero(pop.has_property)
        n = len(hp)
        ad = start0 - rng.integers(60, 9000, n)
        self._emit("real_estate", {
            "property_id": _serial("R", 0, n, 9), "resident_id": None, "acquired_date": ad,
            "disposed_date": np.full(n, DAY0), "floor_area": pop.floor_area[hp],
            "knowledge_date": ad + self.lag("economic", n),
        }, head[hp], self.p_district[head[hp]])
        bo = np.flatnonzero(pop.business & pop.employed)
        n = len(bo)
        bd = start0 - rng.integers(30, 5000, n)
        closed = self.business_end_day[bo]
        self._emit("businesses", {
            "business_id": _serial("B", 0, n, 9), "resident_id": None, "registered_date": bd,
            "deregistered_date": np.where(closed + 30 <= X, closed, DAY0),
            "registered_capital": np.round(10_000 * np.exp(rng.normal(1.0, 1.0, n)), -2),
            "knowledge_date": bd + self.lag("economic", n),
        }, bo, self.p_district[bo])
