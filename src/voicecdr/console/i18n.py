"""The console's words in English and Chinese: one catalog, a dict per language.

Templates call ``t("key")``; a key missing from Chinese falls back to English, and a key
missing from English is a bug (tests/unit/test_console_i18n.py checks both catalogs
name the same keys). Pages add their keys here.
"""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("en", "zh")
LANGUAGE_NAMES = {"en": "English", "zh": "中文"}

EN: dict[str, str] = {
    "console": "voicecdr console",
    "skip": "Skip to content",
    "nav": "Main",
    "nav.overview": "Overview",
    "nav.calls": "Calls",
    "nav.receipts": "Receipts",
    "nav.rates": "Rate plan",
    "nav.apps": "Apps",
    "app": "App",
    "switch": "Switch",
    "language": "Language",
    "change": "Change",
    "sign_out": "Sign out",
    "sign_in": "Sign in",
    "signin.title": "Sign in to the voicecdr console",
    "signin.customer": "Customer",
    "signin.customer_help": "Your app's appkey and secretkey, as your operator gave them.",
    "signin.operator": "Operator",
    "signin.operator_help": "The operator token set in VOICECDR_OPERATOR_TOKEN.",
    "appkey": "Appkey",
    "secretkey": "Secretkey",
    "operator_token": "Operator token",
    "signin.wrong": "The appkey or secretkey is incorrect.",
    "signin.wrong_operator": "The operator token is incorrect.",
    "signin.operator_off": "Operator sign-in is off: the operator has not set "
    "VOICECDR_OPERATOR_TOKEN.",
    "signin.locked_out": "Too many failed sign-ins from this address: try again in {wait} seconds.",
    "signin.busy": "Too many requests for this app just now: try again in {wait} seconds.",
    "error.title": "Something is wrong",
    "error.csrf": "This form has expired or did not come from this console. Go back, "
    "reload the page and try again.",
    "error.not_found": "There is no such page, or it is not yours to see.",
    "error.forbidden": "You may not do that.",
    "error.no_apps": "There are no apps yet: create one with `voicecdr apps create`.",
    "error.unavailable": "The database is unavailable; try again shortly.",
    "back": "Back to the overview",
    "times_in": "Times in {zone}",
    "window": "Window",
    "from": "From",
    "to": "To",
    "show": "Show",
    "today": "Today",
    "yesterday": "Yesterday",
    "attempts": "Attempts",
    "answered": "Answered",
    "asr": "ASR",
    "acd": "ACD",
    "cost": "Cost",
    "calls": "Calls",
    "hour": "Hour",
    "country": "Country",
    "hangup_cause": "Hangup cause",
    "overview.title": "Overview",
    "overview.today": "Today against yesterday",
    "overview.today_help": "Today so far, against yesterday up to the same time of day.",
    "overview.per_hour": "Calls per hour",
    "overview.by_country": "ASR and cost by country",
    "overview.causes": "Hangup causes",
    "overview.chart_table": "The chart's figures",
    "overview.empty": "No calls in this window.",
    "seconds": "s",
}

ZH: dict[str, str] = {
    "console": "voicecdr 控制台",
    "skip": "跳到正文",
    "nav": "主菜单",
    "nav.overview": "概览",
    "nav.calls": "通话记录",
    "nav.receipts": "回执",
    "nav.rates": "费率",
    "nav.apps": "应用",
    "app": "应用",
    "switch": "切换",
    "language": "语言",
    "change": "更改",
    "sign_out": "退出",
    "sign_in": "登录",
    "signin.title": "登录 voicecdr 控制台",
    "signin.customer": "客户",
    "signin.customer_help": "运营方提供给您的应用 appkey 和 secretkey。",
    "signin.operator": "运营方",
    "signin.operator_help": "VOICECDR_OPERATOR_TOKEN 中设置的运营方令牌。",
    "appkey": "Appkey",
    "secretkey": "Secretkey",
    "operator_token": "运营方令牌",
    "signin.wrong": "appkey 或 secretkey 不正确。",
    "signin.wrong_operator": "运营方令牌不正确。",
    "signin.operator_off": "运营方登录未开启：运营方尚未设置 VOICECDR_OPERATOR_TOKEN。",
    "signin.locked_out": "此地址登录失败次数过多：请在 {wait} 秒后重试。",
    "signin.busy": "此应用当前请求过多：请在 {wait} 秒后重试。",
    "error.title": "出错了",
    "error.csrf": "此表单已过期或并非来自本控制台。请返回，刷新页面后重试。",
    "error.not_found": "页面不存在，或您无权查看。",
    "error.forbidden": "您无权执行此操作。",
    "error.no_apps": "还没有应用：请用 `voicecdr apps create` 创建。",
    "error.unavailable": "数据库暂时不可用，请稍后重试。",
    "back": "返回概览",
    "times_in": "时间按 {zone} 显示",
    "window": "时间范围",
    "from": "开始",
    "to": "结束",
    "show": "查看",
    "today": "今天",
    "yesterday": "昨天",
    "attempts": "呼叫次数",
    "answered": "接通",
    "asr": "接通率",
    "acd": "平均通话时长",
    "cost": "费用",
    "calls": "通话",
    "hour": "小时",
    "country": "国家/地区",
    "hangup_cause": "挂断原因",
    "overview.title": "概览",
    "overview.today": "今天与昨天对比",
    "overview.today_help": "今天截至目前，对比昨天同一时刻之前。",
    "overview.per_hour": "每小时通话",
    "overview.by_country": "各国家/地区接通率与费用",
    "overview.causes": "挂断原因",
    "overview.chart_table": "图表数据",
    "overview.empty": "此时间范围内没有通话。",
    "seconds": "秒",
}

CATALOGS = {"en": EN, "zh": ZH}


def language(requested: str | None, fallback: str) -> str:
    """``requested`` if it is one we have, else ``fallback`` if so, else English."""
    for lang in (requested, fallback):
        if lang in CATALOGS:
            return lang
    return "en"


def translator(lang: str) -> Callable[..., str]:
    """``t(key, **values)`` in ``lang``: the message, its ``{names}`` filled in."""
    catalog = CATALOGS.get(lang, EN)

    def t(key: str, **values: object) -> str:
        text = catalog.get(key) or EN[key]
        return text.format(**values) if values else text

    return t
