"""The page's words in English and Chinese, and the choice of language per request.

A plain dict catalogue: the page has a few dozen strings, and feature sentences and
programme names already come in both languages from the feature definitions and the policy.
"""

from __future__ import annotations

from safetynet.serving.lang import LANGS, language

LANG_COOKIE = "sn_cw_lang"

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "title": "SafetyNet caseworker",
        "login": "Log in",
        "login_intro": "Log in with your caseworker API key.",
        "api_key": "API key",
        "logout": "Log out",
        "bad_key": "Unknown or revoked API key.",
        "wrong_role": "This page is for caseworker keys only.",
        "signed_in_as": "Key #{key_id} · districts: {districts}",
        "all_districts": "all",
        "worklist": "Worklist",
        "worklist_intro": "Households to visit this month, by priority (run of {run}).",
        "no_run": "No monitoring run yet: there is no worklist to show.",
        "empty_worklist": "No households on the worklist of your districts.",
        "rank": "#",
        "household": "Household",
        "name_address": "Name and address",
        "district": "District",
        "street": "Street",
        "community": "Community",
        "tier": "Tier",
        "score": "Score",
        "reasons": "Top reasons",
        "indicators": "Indicators",
        "programmes": "Matching programmes",
        "audit": "Audit",
        "audit_help": "Random audit visit: below the list's cut, visited to measure what the "
                      "list misses.",
        "alerts": "alerts",
        "open": "Open",
        "none": "none",
        "unknown": "not on record",
        "back": "Back to worklist",
        "explanation": "Why this score",
        "explanation_help": "Each bar is one fact's contribution to the model's log-odds, from "
                            "the base value (the average household) to this household's "
                            "value. The calibrated probability is reported separately; it is "
                            "not a sum of these bars.",
        "base_value": "Base value (log-odds)",
        "final_value": "This household (log-odds)",
        "other_features": "{n} other facts",
        "probability": "Calibrated probability of hardship",
        "model": "Model",
        "as_of": "Data as of",
        "history": "Score history",
        "no_history": "No earlier monitoring runs for this household.",
        "run": "Run",
        "model_version": "Model version",
        "record_outcome": "Record the visit outcome",
        "visit_date": "Visit date",
        "outcome": "Outcome",
        "hardship_type": "Hardship type (if confirmed)",
        "programmes_referred": "Referred to",
        "programmes_enrolled": "Enrolled in",
        "disagrees": "I disagree with the score",
        "disagreement_code": "Reason",
        "disagreement_text": "Comment (optional)",
        "submit": "Save outcome",
        "saved": "Outcome saved.",
        "saved_before": "This outcome was already saved; nothing was duplicated.",
        "recorded_outcomes": "Recorded visits",
        "error": "Error",
        "forbidden": "This household is outside your districts.",
        "not_found": "Unknown household.",
        "csrf": "The form expired or did not come from this page. Reload and try again.",
        "server_error": "Something went wrong; the error was logged.",
        "language": "中文",
        "choose": "— choose —",
        "tier_red": "Red", "tier_orange": "Orange", "tier_yellow": "Yellow", "tier_green": "Green",
        "outcome_hardship_confirmed": "Hardship confirmed",
        "outcome_not_in_hardship": "Not in hardship",
        "outcome_could_not_reach": "Could not reach",
        "outcome_moved": "Moved away",
        "code_score_too_high": "Score too high",
        "code_score_too_low": "Score too low",
        "code_reasons_wrong": "Reasons are wrong",
        "code_data_outdated": "Data are out of date",
        "code_other": "Other",
        "type_dibao": "Minimum living allowance (dibao)",
        "type_marginal_dibao": "Marginal dibao (low-income)",
        "type_special_hardship": "Extreme hardship (tekun)",
        "type_temporary": "Temporary hardship",
        "type_rigid_expenditure": "Rigid expenditure (medical, education)",
        "type_other": "Other",
    },
    "zh": {
        "title": "SafetyNet 社工工作台",
        "login": "登录",
        "login_intro": "请使用社工 API 密钥登录。",
        "api_key": "API 密钥",
        "logout": "退出",
        "bad_key": "密钥无效或已被吊销。",
        "wrong_role": "本页面仅供社工密钥使用。",
        "signed_in_as": "密钥 #{key_id} · 辖区：{districts}",
        "all_districts": "全部",
        "worklist": "走访清单",
        "worklist_intro": "本月待走访家庭，按优先级排序（{run} 监测批次）。",
        "no_run": "尚无监测批次，暂无走访清单。",
        "empty_worklist": "您辖区的走访清单中没有家庭。",
        "rank": "序号",
        "household": "家庭",
        "name_address": "姓名与地址",
        "district": "区",
        "street": "街道",
        "community": "社区",
        "tier": "等级",
        "score": "评分",
        "reasons": "主要原因",
        "indicators": "预警指标",
        "programmes": "匹配的救助项目",
        "audit": "抽查",
        "audit_help": "随机抽查走访：低于清单分数线，用于估计清单遗漏的困难家庭。",
        "alerts": "条预警",
        "open": "查看",
        "none": "无",
        "unknown": "无记录",
        "back": "返回走访清单",
        "explanation": "评分依据",
        "explanation_help": "每一条表示一项事实对模型对数几率的贡献："
                            "从基准值（平均家庭）到本家庭的值。"
                            "校准后的概率单独列出，并不是这些贡献之和。",
        "base_value": "基准值（对数几率）",
        "final_value": "本家庭（对数几率）",
        "other_features": "其余 {n} 项事实",
        "probability": "校准后的困难概率",
        "model": "模型",
        "as_of": "数据截至",
        "history": "评分历史",
        "no_history": "该家庭没有更早的监测记录。",
        "run": "批次",
        "model_version": "模型版本",
        "record_outcome": "登记走访结果",
        "visit_date": "走访日期",
        "outcome": "走访结果",
        "hardship_type": "困难类型（确认困难时填写）",
        "programmes_referred": "已转介项目",
        "programmes_enrolled": "已纳入项目",
        "disagrees": "我不同意该评分",
        "disagreement_code": "原因",
        "disagreement_text": "说明（可选）",
        "submit": "保存结果",
        "saved": "走访结果已保存。",
        "saved_before": "该结果此前已保存，未重复登记。",
        "recorded_outcomes": "已登记的走访",
        "error": "错误",
        "forbidden": "该家庭不在您的辖区内。",
        "not_found": "未找到该家庭。",
        "csrf": "表单已过期或并非来自本页面，请刷新后重试。",
        "server_error": "系统出错，已记录日志。",
        "language": "English",
        "choose": "— 请选择 —",
        "tier_red": "红色", "tier_orange": "橙色", "tier_yellow": "黄色", "tier_green": "绿色",
        "outcome_hardship_confirmed": "确认困难",
        "outcome_not_in_hardship": "不存在困难",
        "outcome_could_not_reach": "未能联系",
        "outcome_moved": "已迁出",
        "code_score_too_high": "评分偏高",
        "code_score_too_low": "评分偏低",
        "code_reasons_wrong": "原因不准确",
        "code_data_outdated": "数据已过时",
        "code_other": "其他",
        "type_dibao": "最低生活保障（低保）",
        "type_marginal_dibao": "低保边缘",
        "type_special_hardship": "特困供养",
        "type_temporary": "临时困难",
        "type_rigid_expenditure": "刚性支出困难（医疗、教育）",
        "type_other": "其他",
    },
}


def pick_language(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """'zh' or 'en': the `lang` query parameter, else the cookie, else Accept-Language
    (highest q among zh/en; default en)."""
    for choice in (query, cookie):
        if choice in LANGS:
            return choice
    return language(accept_language)


def translator(lang: str):  # type: ignore[no-untyped-def]
    """`t(key, **fields)` for templates; a missing key shows the key (never a crash)."""
    table = MESSAGES[lang]

    def t(key: str, **fields: object) -> str:
        text = table.get(key) or MESSAGES["en"].get(key) or key
        return text.format(**fields) if fields else text

    return t
