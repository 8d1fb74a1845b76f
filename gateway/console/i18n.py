"""The console's words, Chinese first and English beside: ``?lang=en`` or ``?lang=zh`` switches (and a cookie
remembers it), Chinese by default. Every text a page shows is a key of ``TEXT``; statuses, reason codes, roles,
audit actions and case states have labels of their own, and a code without one shows as it is.
tests/unit/test_console_words.py checks that every key a template uses exists in both languages and that every
reason code has a label.
"""

from __future__ import annotations

from starlette.requests import Request

LANGS = ("zh", "en")
COOKIE = "console_lang"

TEXT: dict[str, tuple[str, str]] = {
    "brand": ("有奖发票 · 运营控制台", "Prize invoices · Operator console"),
    "nav.today": ("今日", "Today"),
    "nav.held": ("待审核", "Held queue"),
    "nav.lookup": ("发票查询", "Invoice lookup"),
    "nav.cases": ("咨询投诉", "Cases"),
    "nav.reports": ("报表", "Reports"),
    "nav.channels": ("渠道", "Channels"),
    "nav.audit": ("审计日志", "Audit log"),
    "logout": ("退出", "Log out"),
    "lang.switch": ("English", "中文"),
    "login.title": ("登录", "Log in"),
    "login.name": ("用户名", "Name"),
    "login.password": ("密码", "Password"),
    "login.submit": ("登录", "Log in"),
    "login.wrong": ("用户名或密码错误。", "Wrong name or password."),
    "login.locked": (
        "密码错误次数过多，账号已暂时锁定，请稍后再试或联系管理员。",
        "Too many wrong passwords: the account is locked for a while. Try later, or ask an admin.",
    ),
    "login.ended": (
        "会话已结束（长时间未操作或已退出），请重新登录。",
        "Your session ended (idle, or logged out): log in again.",
    ),
    "login.staff_only": ("仅限工作人员。接口客户端不能登录控制台。", "Staff only. API clients cannot log in here."),
    "error.title": ("出错了", "Something went wrong"),
    "error.csrf": (
        "表单已失效（缺少或错误的令牌），请刷新页面后重试。",
        "The form is stale (missing or wrong token): reload the page and retry.",
    ),
    "error.role": ("您的角色（{role}）无权进行此操作。", "Your role ({role}) may not do this."),
    "error.store": (
        "数据库或 Redis 暂时无法访问，请稍后再试。",
        "PostgreSQL or Redis does not answer now: retry in a moment.",
    ),
    "error.not_found": ("页面不存在。", "No such page."),
    "error.back": ("返回今日概览", "Back to Today"),
    "today.title": ("今日概览", "Today"),
    "today.date": ("日期（活动时区）", "Date (campaign time zone)"),
    "today.closed": ("已结账", "closed"),
    "today.open": ("进行中", "open"),
    "today.per_hour": ("每小时上传量", "Uploads per hour"),
    "today.mix": ("上传结果构成", "Outcome of uploads"),
    "today.top_reasons": ("主要退回原因", "Top rejection reasons"),
    "today.by_channel": ("分渠道", "Per channel"),
    "today.received_by_channel": ("各渠道收到", "Received per channel"),
    "today.same_as_report": (
        "数据与日报 GET /v1/reports/daily 同源（汇总表）。",
        "The same figures as the daily report, GET /v1/reports/daily (from the rollups).",
    ),
    "today.hourly_note": ("按上传时间统计；时区：{zone}。", "By upload time; time zone {zone}."),
    "figure.received": ("收到", "Received"),
    "figure.accepted": ("受理", "Accepted"),
    "figure.duplicate": ("重复", "Duplicate"),
    "figure.rejected": ("校验退回", "Rejected"),
    "figure.rate_limited": ("限流", "Rate-limited"),
    "figure.capped": ("超上限", "Over a cap"),
    "figure.verified": ("已验真", "Verified"),
    "figure.eligible": ("合格入池", "Eligible"),
    "figure.ineligible": ("不合格", "Ineligible"),
    "figure.held": ("风控待审", "Held"),
    "figure.reversed": ("红冲", "Reversed"),
    "figure.merchants": ("合格商户数", "Merchants"),
    "figure.consumers": ("合格消费者数", "Consumers"),
    "figure.received_amount_fen": ("收到金额", "Amount received"),
    "figure.eligible_amount_fen": ("合格金额", "Eligible amount"),
    "figure.reversed_amount_fen": ("红冲金额", "Amount reversed"),
    "figure.refused": ("拒绝合计", "Refused"),
    "col.channel": ("渠道", "Channel"),
    "col.industry": ("行业", "Industry"),
    "col.key": ("发票号码（键）", "Invoice key"),
    "col.reason": ("原因", "Reason"),
    "col.amount": ("金额", "Amount"),
    "col.seller": ("销售方税号", "Seller tax id"),
    "col.accepted_at": ("受理时间", "Accepted at"),
    "col.age": ("已等待", "Waiting"),
    "col.status": ("状态", "Status"),
    "col.time": ("时间", "Time"),
    "col.count": ("数量", "Count"),
    "col.date": ("日期", "Date"),
    "col.issue_date": ("开票日期", "Issue date"),
    "col.category": ("类别", "Category"),
    "col.batch": ("批次", "Batch"),
    "col.share": ("占比", "Share"),
    "all": ("全部", "All"),
    "filter": ("筛选", "Filter"),
    "none": ("无", "None"),
    "held.title": ("风控待审核发票", "Held invoices"),
    "held.rule": ("规则", "Rule"),
    "held.count": ("共 {n} 张待审核", "{n} held"),
    "held.select_all": ("全选", "Select all"),
    "held.note": (
        "审核意见（必填，将记入发票历史和审计日志）",
        "Note (required: kept in the invoice's history and the audit log)",
    ),
    "held.release": ("放行", "Release"),
    "held.reject": ("驳回", "Reject"),
    "held.confirm_reject": ("确定驳回所选发票？", "Reject the selected invoices?"),
    "held.done": ("已放行 {released} 张，已驳回 {rejected} 张。", "{released} released, {rejected} rejected."),
    "held.skipped": (
        "{n} 张已不在待审核状态（可能已被他人处理），未作改动。",
        "{n} were no longer held (someone decided them first): left as they are.",
    ),
    "held.none_selected": ("请至少选择一张发票。", "Select at least one invoice."),
    "held.empty": ("没有待审核的发票。", "No invoice is held."),
    "held.more": ("仅显示最早的 {n} 张。", "Only the oldest {n} are shown."),
    "lookup.title": ("发票查询", "Invoice lookup"),
    "lookup.by_key": ("按发票号码查询", "By invoice key"),
    "lookup.key_hint": ("数电票 20 位号码；纸质票为代码+号码", "20 digits, or a legacy code followed by its number"),
    "lookup.by_user": ("按渠道用户查询", "By a channel's user"),
    "lookup.user_id": ("渠道用户 ID", "The channel's user id"),
    "lookup.user_hint": ("仅用于计算哈希，不会被保存或记录。", "Only hashed, as uploads are: never kept or logged."),
    "lookup.search": ("查询", "Look up"),
    "lookup.not_found": ("查无此发票。", "No invoice with this key."),
    "lookup.queued": ("已受理，排队中（尚未写入数据库）。", "Accepted and still queued (not in PostgreSQL yet)."),
    "lookup.history": ("状态历史", "Status history"),
    "lookup.feed": ("抽奖数据流位置", "Place in the feed"),
    "lookup.feed_entry": (
        "第 {seq} 批，批内第 {n} 条（共 {count} 条），封存于 {at}",
        "Batch {seq}, entry {n} of {count}, sealed {at}",
    ),
    "lookup.feed_pending": ("等待封存入批", "Waiting to be sealed"),
    "lookup.not_in_feed": ("不在抽奖数据流中", "Not in the feed"),
    "lookup.reviews": ("审核记录", "Reviews"),
    "lookup.duplicates": ("其他渠道的重复上传", "Duplicate uploads by other channels"),
    "lookup.reversal": ("红冲记录", "Reversal"),
    "lookup.cases": ("相关工单", "Cases"),
    "lookup.open_case": ("就此发票新建工单", "Open a case on this invoice"),
    "lookup.user_invoices": ("该用户的发票（最近 {n} 张）", "This user's invoices (latest {n})"),
    "lookup.no_invoices": ("该用户没有发票记录。", "This user has no invoice."),
    "lookup.privacy": ("本页不显示身份证号、姓名或位置。", "This page never shows an ID number, a name or a location."),
    "cases.title": ("咨询投诉台账", "Cases"),
    "cases.new": ("新建工单", "New case"),
    "cases.open_by_age": ("未结工单（按等待时间）", "Open cases, oldest first"),
    "cases.state": ("状态", "State"),
    "cases.assignee": ("负责人", "Assignee"),
    "cases.due": ("办结期限", "Due"),
    "cases.overdue": ("已超期", "overdue"),
    "cases.summary": ("事由", "Summary"),
    "cases.kind": ("类型", "Kind"),
    "cases.kind.invoice": ("发票", "Invoice"),
    "cases.kind.question": ("咨询", "Question"),
    "cases.opened": ("登记时间", "Opened"),
    "cases.opened_by": ("登记人", "Opened by"),
    "cases.empty": ("没有符合条件的工单。", "No case."),
    "cases.mine": ("我负责的", "Mine"),
    "cases.due_days": ("办结期限（天）", "Due in (days)"),
    "cases.first_note": ("情况说明", "What the consumer asks"),
    "cases.notes": ("处理记录", "Timeline"),
    "cases.add_note": ("添加记录", "Add a note"),
    "cases.change": ("变更", "Change"),
    "cases.save": ("保存", "Save"),
    "cases.create": ("登记", "Open the case"),
    "cases.user_optional": ("渠道与用户 ID（可选，仅保存哈希）", "Channel and user id (optional: only a hash is kept)"),
    "cases.privacy": (
        "请勿填写身份证号、手机号、姓名或住址：台账只记录事由与处理过程。",
        "Write no ID number, phone number, name or address: the ledger keeps what was asked and done.",
    ),
    "cases.personal_data": (
        "内容含有疑似身份证号或手机号，请删除后再提交。",
        "The text holds what looks like an ID or phone number: remove it.",
    ),
    "cases.no_text": ("请填写内容（1 至 2000 字）。", "Write something (1 to 2,000 characters)."),
    "cases.back": ("返回台账", "Back to the cases"),
    "cases.change_note": ("变更：{what}", "Changed: {what}"),
    "state.open": ("待处理", "open"),
    "state.waiting": ("等待回复", "waiting"),
    "state.closed": ("已办结", "closed"),
    "reports.title": ("日报", "Daily reports"),
    "reports.from": ("起始日期", "From"),
    "reports.to": ("截止日期", "To"),
    "reports.show": ("查看", "Show"),
    "reports.csv": ("下载 CSV", "Download CSV"),
    "reports.xlsx": ("下载 Excel", "Download XLSX"),
    "reports.day_detail": ("{date} 分渠道、分行业", "{date} per channel and industry"),
    "reports.closed": ("已结账", "Closed"),
    "channels.title": ("渠道运行情况", "Channels"),
    "channels.hours": ("最近 {n} 小时", "Last {n} hours"),
    "channels.per_hour": ("每小时上传", "Per hour"),
    "channels.peak": ("峰值小时", "Peak hour"),
    "channels.trend": ("走势", "Trend"),
    "channels.refusal_share": ("拒绝率", "Refused"),
    "channels.duplicate_share": ("重复率", "Duplicates"),
    "channels.note": (
        "按上传时间逐小时汇总（汇总表 report_hourly），不扫描发票表；拒绝 = 校验退回 + 限流 + 超上限。",
        "Hourly rollups by upload time (report_hourly), never a scan of the invoices; refused = rejected +"
        " rate-limited + over a cap.",
    ),
    "audit.title": ("审计日志", "Audit log"),
    "audit.actor": ("操作人", "Who"),
    "audit.role": ("角色", "Role"),
    "audit.via": ("途径", "Via"),
    "audit.source": ("来源地址", "From"),
    "audit.action": ("操作", "Action"),
    "audit.subject": ("对象", "Subject"),
    "audit.detail": ("详情", "Detail"),
    "audit.older": ("更早", "Older"),
    "audit.append_only": (
        "审计日志只增不改：数据库拒绝任何修改或删除。",
        "Append-only: PostgreSQL refuses any change or removal.",
    ),
    "page.next": ("下一页", "Next"),
}

LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "role": {
        "reviewer": ("审核员", "reviewer"),
        "support": ("客服", "support"),
        "analyst": ("分析员", "analyst"),
        "auditor": ("审计员", "auditor"),
        "admin": ("管理员", "admin"),
    },
    "status": {
        "accepted": ("已受理", "accepted"),
        "verified": ("已验真", "verified"),
        "eligible": ("合格", "eligible"),
        "ineligible": ("不合格", "ineligible"),
        "held": ("待审核", "held"),
        "duplicate": ("重复", "duplicate"),
        "reversed": ("已红冲", "reversed"),
    },
    "action": {
        "login": ("登录", "login"),
        "login_failed": ("登录失败", "failed login"),
        "lockout": ("账号锁定", "lockout"),
        "logout": ("退出", "logout"),
        "release": ("放行", "release"),
        "reject": ("驳回", "reject"),
        "lookup": ("查询", "lookup"),
        "case_open": ("新建工单", "case opened"),
        "case_note": ("工单记录", "case note"),
        "case_change": ("工单变更", "case changed"),
        "export": ("导出", "export"),
        "staff_saved": ("保存账号", "staff saved"),
        "staff_disabled": ("停用账号", "staff disabled"),
    },
    "reason": {
        # The upload's own rules (gateway/rules.py).
        "invalid_shape": ("格式错误", "invalid shape"),
        "unknown_field": ("含未知字段", "unknown field"),
        "invalid_number": ("发票号码无效", "invalid number"),
        "missing_code": ("缺少发票代码", "missing code"),
        "invalid_code": ("发票代码无效", "invalid code"),
        "invalid_check_code": ("校验码无效", "invalid check code"),
        "invalid_issue_date": ("开票日期无效", "invalid issue date"),
        "issue_date_in_future": ("开票日期晚于今天", "issue date in the future"),
        "invalid_amount": ("金额无效", "invalid amount"),
        "invalid_seller_tax_id": ("销售方税号无效", "invalid seller tax id"),
        "invalid_buyer_name": ("购买方名称无效", "invalid buyer name"),
        "invalid_user": ("用户信息无效", "invalid user"),
        "invalid_id_number": ("身份证号无效", "invalid ID number"),
        "invalid_location": ("位置无效", "invalid location"),
        "invalid_text": ("文本无效", "invalid text"),
        "outside_campaign_window": ("不在活动期内", "outside the campaign window"),
        "invoice_outside_region": ("非本地发票", "invoice outside the region"),
        "seller_outside_region": ("销售方不在本地", "seller outside the region"),
        "below_minimum_amount": ("低于最低金额", "below the minimum amount"),
        "buyer_name_mismatch": ("购买方与实名不符", "buyer name mismatch"),
        # Decided later (core/reasons.py).
        "person_daily_cap": ("超过每人每日上限", "person's daily cap"),
        "person_monthly_cap": ("超过每人每月上限", "person's monthly cap"),
        "seller_person_monthly_cap": ("超过同商户每人每月上限", "monthly cap per seller and person"),
        "not_found_at_tax_authority": ("税务系统查无此票", "not found at the tax authority"),
        "verification_failed": ("验真服务持续失败", "verification failed"),
        "amount_mismatch": ("金额与税务记录不符", "amount mismatch"),
        "issue_date_mismatch": ("开票日期与税务记录不符", "issue date mismatch"),
        "seller_mismatch": ("销售方与税务记录不符", "seller mismatch"),
        "excluded_invoice_kind": ("代开、定额或收购发票", "excluded invoice kind"),
        "buyer_not_natural_person": ("购买方非自然人", "buyer not a natural person"),
        "category_not_eligible": ("行业不在活动范围", "category not eligible"),
        "category_unknown": ("行业未知", "category unknown"),
        "reversed_at_verification": ("验真时已红冲", "reversed at verification"),
        "reversed_at_reverification": ("兑付前复核时已红冲", "reversed at re-verification before payout"),
        "changed_at_reverification": ("兑付前复核时信息已变更", "changed at re-verification before payout"),
        "not_found_at_reverification": ("兑付前复核时查无此票", "not found at re-verification before payout"),
        "blacklisted_person": ("黑名单人员", "blacklisted person"),
        "blacklisted_device": ("黑名单设备", "blacklisted device"),
        "blacklisted_seller": ("黑名单商户", "blacklisted seller"),
        "device_many_persons": ("同一设备为多人上传", "one device, many persons"),
        "seller_few_persons": ("商户发票集中于极少数人", "seller's invoices to very few persons"),
        "seller_high_value_burst": ("商户大额发票集中出现", "burst of high-value invoices"),
        "seller_reversal_spike": ("商户红冲异常增多", "seller's reversal spike"),
        "upload_far_from_city": ("上传位置远离活动城市", "uploaded far from the city"),
        "released_in_review": ("审核放行", "released in review"),
        "rejected_in_review": ("审核驳回", "rejected in review"),
        "reversed_by_red_invoice": ("红字发票冲销", "reversed by a red-letter invoice"),
    },
    "problem": {
        "invalid_note": ("请填写审核意见（1 至 500 字）。", "Write a note: why, 1 to 500 characters."),
        "not_held": ("该发票已不在待审核状态。", "The invoice is no longer held."),
        "unknown_invoice": ("查无此发票。", "No invoice with this key."),
        "bad_parameter": ("参数有误：{detail}", "A parameter is wrong: {detail}"),
    },
}


class Words:
    """The words of one language: ``words("key")``, and labels of codes (``words.reason(code)``...)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGS else LANGS[0]
        self.index = LANGS.index(self.lang)
        self.other = LANGS[1 - self.index]

    def __call__(self, key: str) -> str:
        return TEXT[key][self.index]

    def label(self, kind: str, code: str | None) -> str:
        if not code:
            return ""
        found = LABELS[kind].get(code)
        return code if found is None else found[self.index]

    def role(self, code: str) -> str:
        return self.label("role", code)

    def status(self, code: str | None) -> str:
        return self.label("status", code)

    def reason(self, code: str | None) -> str:
        return self.label("reason", code)

    def action(self, code: str) -> str:
        return self.label("action", code)

    def problem(self, code: str, detail: str) -> str:
        found = LABELS["problem"].get(code)
        return detail if found is None else found[self.index].format(detail=detail)


def words_of(request: Request) -> Words:
    """The language asked for (``?lang=``), else the one remembered (cookie), else Chinese."""
    asked = request.query_params.get("lang")
    return Words(asked if asked in LANGS else request.cookies.get(COOKIE, LANGS[0]))
