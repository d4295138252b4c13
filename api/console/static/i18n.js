// Every string of the console, in Chinese (default) and English.

const DICT = {
  "zh-CN": {
    app_title: "明厨亮灶 监管平台",
    skip: "跳到正文",
    lang_name: "中文",
    switch_lang: "English",
    switch_lang_label: "切换语言为英文",
    signin_title: "登录",
    username: "用户名",
    password: "密码",
    signin: "登录",
    signin_failed: "用户名或密码错误，或账号已锁定。",
    signout: "退出",
    signed_in_as: "当前用户",
    role_admin: "管理员", role_regulator: "监管人员", role_inspector: "执法检查人员", role_officer: "食品安全员",
    role_director: "食品安全总监", role_insurer: "保险机构", role_device: "设备",
    nav: "主导航",
    nav_overview: "总览", nav_tickets: "整改台账", nav_reviews: "抓拍审核",
    nav_g_supervise: "监管", nav_g_records: "台账", nav_g_settings: "设置",
    overview_title: "食堂总览",
    duty_today: "今日食安职责", duty_check_done: "日管控已于 {t} 完成", duty_check_due: "日管控请于 {t} 前完成",
    duty_check_overdue: "日管控逾期未完成", duty_meals: "留样 {s}/{n} 餐", duty_meals_overdue: "{n} 餐逾期未留样",
    duty_go: "去填写", duty_summary: "日管控已完成 {done}/{n} 家，逾期 {over} 家；{meals} 餐逾期未留样",
    filter_name: "按名称筛选", all_regions: "全部区域",
    canteens: "食堂", open_tickets: "未关闭整改单", overdue_tickets: "逾期整改单",
    active_alarms: "未消除报警", risk: "风险分", region: "区域", name: "名称", state: "状态",
    state_red: "有逾期", state_amber: "待整改", state_green: "正常",
    no_sites: "没有可显示的食堂。",
    sort_by: "排序：{col}",
    tickets_title: "整改台账",
    filters: "筛选",
    status: "状态", tier: "级别", rule: "规则", site: "食堂", overdue: "仅逾期",
    any: "全部", apply: "应用", reset: "重置",
    export_csv: "导出 CSV", export_xlsx: "导出 Excel 台账", print: "打印", printed_at: "打印时间：{at}",
    notice_title: "整改通知书", notice_print: "打印整改通知书", notice_to: "致：{site}",
    notice_body: "经在线监测/检查发现你单位存在下列食品安全问题，请于整改期限前完成整改，并通过平台提交整改照片和说明。",
    notice_problem: "问题", notice_found: "发现时间", notice_deadline: "整改期限", notice_requirement: "整改要求",
    notice_issuer: "签发单位（盖章）", notice_receiver: "食堂负责人签收", notice_date: "日期",
    ticket_no: "编号", title: "标题", opened_at: "开单时间", due_at: "整改期限",
    escalation: "升级级别", occurrences: "发生次数",
    count_of: "共 {n} 条", page_of: "第 {p} / {n} 页", prev: "上一页", next: "下一页",
    no_tickets: "没有符合条件的整改单。",
    overdue_badge: "已逾期",
    status_open: "待处理", status_acknowledged: "已接收", status_rectified: "已整改",
    status_closed: "已关闭", status_rejected: "已驳回",
    tier_n: "{n} 级",
    ticket: "整改单", facts: "基本信息", subject: "对象", source: "来源",
    acknowledged_at: "接收时间", closed_at: "关闭时间", close_proposed_at: "数据建议关闭", close_confirmable_from: "{at} 起可确认关闭", close_confirmable_now: "可确认关闭",
    last_occurrence_at: "最近发生",
    cards: "警示牌", card_yellow: "黄牌", card_red: "红牌", no_card: "无",
    level_n: "第 {n} 级", not_escalated: "未升级",
    actions: "处理", note: "说明 / 理由", photos: "整改照片",
    no_actions: "您当前无可执行的操作。",
    needs_note: "此操作需要填写说明或理由。",
    needs_photo: "提交整改需要至少一张照片。",
    action_done: "已完成：{a}",
    act_acknowledge: "接收", act_rectify: "提交整改", act_verify: "验收通过",
    act_reject: "驳回", act_reopen: "重新打开", act_close: "关闭", act_confirm_close: "确认关闭",
    evidence: "证据", no_evidence: "暂无证据照片。",
    uploaded_by: "上传：{who}",
    timeline: "处理记录", actor_system: "系统自动",
    ev_opened: "开单", ev_occurrence: "再次发生", ev_acknowledged: "已接收", ev_rectified: "提交整改",
    ev_verified: "验收通过", ev_rejected: "驳回", ev_reopened: "重新打开", ev_closed: "关闭",
    ev_close_confirmed: "确认关闭", ev_close_proposed: "数据建议关闭", ev_alarm_cleared: "报警已消除",
    ev_escalation_reminder: "提醒", ev_escalation_warning: "预警", ev_escalation_director: "升级至总监",
    ev_escalation_regulator: "升级至监管", ev_escalation_yellow_card: "黄牌警示",
    ev_escalation_red_card: "红牌警示",
    back_to_ledger: "返回整改台账",
    reviews_title: "抓拍审核",
    reviews_read_only: "您的角色只能查看，不能审核。",
    no_reviews: "没有待审核的抓拍。", reviews_waiting: "待审核 {n} 条，最早的在前",
    camera: "摄像头", model_version: "模型版本", created_at: "时间", capture: "抓拍",
    confirm: "确认违规", dismiss: "误报驳回", reason: "理由",
    needs_reason: "驳回需要填写理由。",
    site_title: "食堂：{name}",
    address: "地址", sensors: "传感器", no_sensors: "没有传感器。",
    last_24h: "最近 24 小时（5 分钟）", no_readings: "最近 24 小时没有数据。",
    limits: "限值", latest: "最新", min: "最低", max: "最高",
    risk_now: "当前风险分", risk_history: "风险分历史", components: "构成", no_history: "暂无历史。",
    alarms: "未消除报警", no_alarms: "没有未消除的报警。",
    inspections: "检查记录", no_inspections: "没有检查记录。", notice: "整改通知书",
    kind: "类型", items: "检查项", failed: "不合格",
    not_found: "未找到，或不在您的管辖范围内。",
    error: "出错了：{msg}",
    loading: "加载中…",
    comp_overdue: "逾期整改", comp_repeated: "重复问题", comp_excursion: "温度超限",
    comp_sensor_downtime: "传感器离线", comp_camera_downtime: "摄像头离线", comp_inspection_fail: "检查不合格",
    yes: "是", no: "否",
    live_connecting: "● 连接中", live_open: "● 实时", live_down: "● 已断开",
    live_connecting_hint: "正在连接实时更新…", live_open_hint: "新报警和整改单变化会自动显示。",
    live_down_hint: "实时更新已断开，正在自动重连；页面数据可能不是最新的。",
    toast_alarm: "新报警：{what} · {site}", toast_violation: "新违规抓拍：{what} · {site}",
    toast_ticket: "新整改单：{what} · {site}", toast_cleared: "报警已消除：{what} · {site}",
    page_missing: "没有这个页面", page_missing_hint: "地址可能输错了，或该页面已移动。请从导航进入。",
    kitchen_advice_default: "请立即检查现场并处理，处理后点“已处理”。",
    device: "设备",
    stale_notice: "此页内容已有更新。", reload: "刷新",
    dis_title: "餐具消毒", dis_ledger: "消毒台账", dis_day: "日期", dis_meal: "餐次", dis_cabinet: "消毒柜", dis_outcome: "结果",
    dis_done: "已消毒", dis_missed: "未消毒", dis_failed: "消毒不合格",
    meal_breakfast: "早餐", meal_lunch: "午餐", meal_dinner: "晚餐", meal_snack: "加餐", meal_other: "其他餐次",
    missed_meal: "未留样的餐次", missed_check: "未完成检查的日期",
    nav_wall: "大屏", wall_title: "食品安全监管大屏", wall_window: "统计区间", wall_days: "{n} 天",
    wall_fullscreen: "全屏", wall_exit: "退出大屏", wall_online: "在线食堂", wall_rate: "{n} 天整改完成率",
    wall_mttr: "平均整改用时", wall_districts: "各区食堂状态", wall_trend: "每日新开整改单（按类别）", wall_kinds: "近 {n} 天各类别合计", opened_since: "{date} 起开单",
    wall_tickets_per_day: "张/天", wall_riskiest: "风险最高的食堂",
    no_readings_in: "最近 {range} 没有数据。", range_24h: "1 天", range_7d: "7 天", range_30d: "30 天", range_365d: "1 年", chart_range: "时间范围",
    chart_hint: "绿色为允许范围，红色为报警时段；悬停看数值，拖动放大，双击还原。",
    chart_time: "时间", chart_avg: "平均", chart_unavailable: "图表库未加载。",
    cam_last_report: "最近上报", cam_latest: "最新抓拍", cam_no_snapshot: "暂无抓拍。", no_cameras: "没有摄像头。",
    risk_stored_at: "计算于 {at}（定时更新，与总览一致）", risk_not_stored: "尚未计算，显示实时估算", risk_live: "实时估算 {v}",
    ticket_curve: "报警前后的温度曲线",
    cabinet_curve: "消毒柜在检查时段的温度与功率", chart_temp: "温度", chart_power: "功率", chart_current: "电流",
    cabinet_no_data: "这段时间消毒柜没有发来温度或功率数据。",
    refused_role: "您的角色不能执行这个操作。", refused_state: "当前状态不允许这个操作（可能已被他人处理），请刷新后再试。",
    refused_too_big: "照片太大，请压缩后再上传。", refused_type: "只能上传 JPEG 或 PNG 照片。",
    refused_input: "填写的内容有误：{msg}", refused_unavailable: "服务暂时不可用，请稍后再试。", refused_network: "网络连接中断，未能送达服务器，请检查网络后重试。",
    refused_signin: "登录已过期，请重新登录。",
    nav_inspections: "监督检查", nav_insurance: "食安保险", nav_settings: "用户与设置",
    inspection: "检查", insp_routine: "日常检查", insp_special: "专项检查", insp_joint: "联合检查",
    insp_random: "随机抽查", insp_public_spot: "百姓点检",
    insp_plan: "按风险随机抽取", insp_plan_n: "抽取数量", insp_plan_seed: "随机种子",
    insp_plan_draw: "抽取", insp_plan_hint: "风险分越高，被抽中的机会越大；同一种子得到同一名单，便于留痕复核。",
    insp_plan_eligible: "可抽取食堂 {n} 家，种子 {seed}：",
    insp_record: "记录检查", insp_submit: "提交检查结果", insp_no_templates: "还没有检查表，请管理员或监管人员先创建。", insp_no_templates_author: "还没有检查表。可以从标准的学校食堂日常监督检查表开始（15 项，之后可通过接口修改或新增）。", insp_use_standard: "使用标准检查表", insp_template: "检查表",
    insp_inspectors: "检查人员", insp_signed: "{who} 于 {at} 签发", insp_sign: "签发整改通知书",
    insp_print_notice: "打印整改通知书", print_record: "打印检查记录",
    insp_item: "检查项", insp_result: "结果", result_pass: "合格", result_fail: "不合格", result_na: "不适用",
    ticket: "整改单",
    ins_risk_record: "承保食堂风险记录", ins_risk_hint: "只读：保险机构可查看所承保食堂的风险，不能处理整改。",
    ins_repeated: "重复问题", ins_excursion: "超温分钟", ins_sensor_uptime: "传感器在线率",
    ins_camera_uptime: "摄像头在线率", ins_fail_rate: "检查不合格率", ins_none: "没有保单。",
    ins_policies: "保单", ins_insurer: "保险机构", ins_policy_no: "保单号", ins_cover: "保额",
    ins_premium: "保费", ins_period: "保险期间", ins_incidents: "事故与理赔", ins_description: "经过",
    ins_claim: "理赔状态", ins_amount: "金额", ins_bundle: "理赔证据包", ins_download: "下载",
    ins_no_incidents: "没有事故记录。",
    ticket_policy: "食安责任险", ticket_uninsured: "开单时未投保",
    claim_none: "未理赔", claim_filed: "已报案", claim_accepted: "已受理", claim_rejected: "拒赔", claim_paid: "已赔付",
    set_hint: "您管辖范围内的食堂、传感器和摄像头。", set_registry: "食堂与设备",
    set_profile: "设备类型", set_last_heard: "最近上报", cameras: "摄像头",
    cam_online: "在线", cam_offline: "离线", cam_frozen: "画面冻结/遮挡", cam_unknown: "未上报",
    set_deadlines: "整改期限", working_days_n: "{n} 个工作日", set_calendar: "工作日历（节假日与调休）", cal_working: "上班", cal_off: "放假", cal_none: "今后一年没有登记节假日或调休：按工作日计算的期限只跳过周末。管理员可按国务院当年的放假通知登记（PUT /api/v1/settings/calendar）。",
    hours_n: "{n} 小时", minutes_n: "{n} 分钟", seconds_n: "{n} 秒", set_read_only: "上级设定，只读",
    set_users: "用户与角色", set_role: "角色", set_active: "启用", set_disabled: "停用",
    set_users_admin_only: "用户由管理员和辖区监管人员维护；如需新增或停用账号，请联系他们。",
    set_channels: "告警通道", set_channels_hint: "各食堂相关人员的告警通道（地址已脱敏）。点击“发送测试”立即发送一条测试消息。",
    ch_person: "人员", ch_kind: "通道", ch_address: "地址", ch_sites: "食堂与角色", ch_result: "测试结果",
    ch_send_test: "发送测试", ch_sending: "发送中…", ch_delivered: "已送达（{ms} 毫秒）", ch_failed: "未送达：{detail}",
    ch_none: "您的食堂尚未登记任何告警通道。",
    kind_webhook: "Webhook", kind_email: "电子邮件", kind_wecom: "企业微信", kind_dingtalk: "钉钉", kind_sms: "短信",
    ev_comment: "评论", comment: "评论", comment_add: "发表评论", comment_done: "评论已添加。", comment_empty: "请输入评论内容。",
    to_ticket: "查看整改单",
    reviews_keys: "快捷键：J / K 上下移动，C 确认违规，D 误报驳回（先填理由），R 填写理由。",
    reviews_stats: "误报率", reviews_by_camera: "按摄像头", reviews_by_rule: "按规则", reviews_none_decided: "还没有审核过的抓拍。",
    reviews_by_model: "按模型版本", model_unknown: "未记录版本",
    reviews_export: "导出审核数据集", reviews_export_hint: "按审核日期导出已审核的抓拍（Pascal VOC 格式，含照片与确认 / 驳回结论），用于模型训练。",
    reviews_export_from: "审核日期从", reviews_export_to: "到", reviews_export_go: "下载数据集",
    reviews_export_order: "结束日期不能早于开始日期。", download_preparing: "正在准备下载……", download_done: "已下载 {name}。",
    reviews_rate: "{rate} 误报（已审 {n} 条）",
    nav_kitchen: "后厨看板",
    nav_rapid_tests: "快检",
    nav_deliveries: "进货查验",
    nav_complaints: "群众投诉",
    nav_publication: "阳光公示",
    site_print_qr: "打印门口二维码（公示页）",
    nav_duties: "每日职责",
    nav_coverage: "包保覆盖",
    nav_visits: "包保督导",
    nav_reports: "周排查月调度",
    kitchen_title: "后厨看板", kitchen_pick: "选择要显示的食堂：",
    kitchen_do_now: "现在要做：", kitchen_since: "开始于 {at}", kitchen_peak: "最高 {v} °C",
    kitchen_acked_by: "已于 {at} 确认处理", kitchen_ack: "已处理", kitchen_ack_note: "后厨看板确认",
    kitchen_acked: "已确认，正在处理。", kitchen_already_cleared: "该报警已经消除。",
    kitchen_more: "另有 {n} 条报警未消除", kitchen_all_clear: "一切正常",
    kitchen_arm: "点击开启提示音", kitchen_armed: "提示音已开启",
    kitchen_recent: "最近报警", kitchen_no_recent: "最近没有报警。",
    alarm_active: "未消除", alarm_acknowledged: "处理中", alarm_cleared: "已消除",
  },
  en: {
    app_title: "Bright Kitchen · Regulator console",
    skip: "Skip to content",
    lang_name: "English",
    switch_lang: "中文",
    switch_lang_label: "Switch language to Chinese",
    signin_title: "Sign in",
    username: "Username",
    password: "Password",
    signin: "Sign in",
    signin_failed: "Wrong username or password, or the account is locked.",
    signout: "Sign out",
    signed_in_as: "Signed in as",
    role_admin: "Administrator", role_regulator: "Regulator", role_inspector: "Inspector", role_officer: "Food-safety officer",
    role_director: "Food-safety director", role_insurer: "Insurer", role_device: "Device",
    nav: "Main navigation",
    nav_overview: "Overview", nav_tickets: "Rectification ledger", nav_reviews: "Capture review",
    nav_g_supervise: "Supervision", nav_g_records: "Records", nav_g_settings: "Settings",
    overview_title: "Canteens at a glance",
    duty_today: "Today's food-safety duties", duty_check_done: "daily check done at {t}", duty_check_due: "daily check due by {t}",
    duty_check_overdue: "daily check overdue", duty_meals: "meals sampled {s}/{n}", duty_meals_overdue: "meals past due without samples: {n}",
    duty_go: "open", duty_summary: "Daily checks done {done}/{n}, overdue {over}; meals past due without samples: {meals}",
    filter_name: "Filter by name", all_regions: "All regions",
    canteens: "Canteens", open_tickets: "Open tickets", overdue_tickets: "Overdue tickets",
    active_alarms: "Active alarms", risk: "Risk score", region: "Region", name: "Name", state: "State",
    state_red: "Overdue", state_amber: "Open tickets", state_green: "All clear",
    no_sites: "No canteens to show.",
    sort_by: "Sort by {col}",
    tickets_title: "Rectification ledger",
    filters: "Filters",
    status: "Status", tier: "Tier", rule: "Rule", site: "Canteen", overdue: "Overdue only",
    any: "Any", apply: "Apply", reset: "Reset",
    export_csv: "Export CSV", export_xlsx: "Export Excel ledger", print: "Print", printed_at: "Printed {at}",
    notice_title: "Rectification notice", notice_print: "Print the rectification notice", notice_to: "To: {site}",
    notice_body: "Monitoring or inspection found the food-safety problem below at your canteen. Rectify it before the deadline and submit photos and a note in the platform.",
    notice_problem: "Problem", notice_found: "Found", notice_deadline: "Deadline", notice_requirement: "What to do",
    notice_issuer: "Issued by (seal)", notice_receiver: "Received by the canteen", notice_date: "Date",
    ticket_no: "No.", title: "Title", opened_at: "Opened", due_at: "Due",
    escalation: "Escalation", occurrences: "Occurrences",
    count_of: "{n} in all", page_of: "Page {p} of {n}", prev: "Previous", next: "Next",
    no_tickets: "No tickets match.",
    overdue_badge: "Overdue",
    status_open: "Open", status_acknowledged: "Acknowledged", status_rectified: "Rectified",
    status_closed: "Closed", status_rejected: "Rejected",
    tier_n: "Tier {n}",
    ticket: "Ticket", facts: "Facts", subject: "Subject", source: "Source",
    acknowledged_at: "Acknowledged", closed_at: "Closed", close_proposed_at: "Close proposed by data", close_confirmable_from: "can be confirmed from {at}", close_confirmable_now: "can be confirmed now",
    last_occurrence_at: "Last occurrence",
    cards: "Cards", card_yellow: "Yellow card", card_red: "Red card", no_card: "None",
    level_n: "Level {n}", not_escalated: "not escalated",
    actions: "Actions", note: "Note / reason", photos: "Photos of the fix",
    no_actions: "You have no action to take now.",
    needs_note: "This action needs a note or a reason.",
    needs_photo: "A rectification needs at least one photo.",
    action_done: "Done: {a}",
    act_acknowledge: "Acknowledge", act_rectify: "Submit rectification", act_verify: "Verify",
    act_reject: "Reject", act_reopen: "Reopen", act_close: "Close", act_confirm_close: "Confirm close",
    evidence: "Evidence", no_evidence: "No evidence photos yet.",
    uploaded_by: "Uploaded by {who}",
    timeline: "Timeline", actor_system: "system (automatic)",
    ev_opened: "Opened", ev_occurrence: "Occurred again", ev_acknowledged: "Acknowledged",
    ev_rectified: "Rectification submitted", ev_verified: "Verified", ev_rejected: "Rejected",
    ev_reopened: "Reopened", ev_closed: "Closed", ev_close_confirmed: "Close confirmed",
    ev_close_proposed: "Close proposed by data", ev_alarm_cleared: "Alarm cleared",
    ev_escalation_reminder: "Reminder", ev_escalation_warning: "Warning",
    ev_escalation_director: "Escalated to director", ev_escalation_regulator: "Escalated to regulator",
    ev_escalation_yellow_card: "Yellow card", ev_escalation_red_card: "Red card",
    back_to_ledger: "Back to the ledger",
    reviews_title: "Capture review",
    reviews_read_only: "Your role may look but not review.",
    no_reviews: "No captures wait for review.", reviews_waiting: "{n} waiting, the oldest first",
    camera: "Camera", model_version: "Model version", created_at: "Time", capture: "Capture",
    confirm: "Confirm", dismiss: "Dismiss", reason: "Reason",
    needs_reason: "Dismissing needs a reason.",
    site_title: "Canteen: {name}",
    address: "Address", sensors: "Sensors", no_sensors: "No sensors.",
    last_24h: "Last 24 h (5 min)", no_readings: "No readings in the last 24 h.",
    limits: "Limits", latest: "Latest", min: "Min", max: "Max",
    risk_now: "Risk score now", risk_history: "Risk history", components: "Components", no_history: "No history yet.",
    alarms: "Active alarms", no_alarms: "No active alarms.",
    inspections: "Inspections", no_inspections: "No inspections.", notice: "Rectification notice",
    kind: "Kind", items: "Items", failed: "Failed",
    not_found: "Not found, or outside your sites.",
    error: "Something went wrong: {msg}",
    loading: "Loading…",
    comp_overdue: "Overdue tickets", comp_repeated: "Repeated problems", comp_excursion: "Temperature excursions",
    comp_sensor_downtime: "Sensor downtime", comp_camera_downtime: "Camera downtime", comp_inspection_fail: "Failed inspection items",
    yes: "yes", no: "no",
    live_connecting: "● Connecting", live_open: "● Live", live_down: "● Offline",
    live_connecting_hint: "Connecting to live updates…", live_open_hint: "New alarms and ticket changes appear by themselves.",
    live_down_hint: "Live updates are disconnected and reconnecting; what you see may be out of date.",
    toast_alarm: "New alarm: {what} · {site}", toast_violation: "New violation: {what} · {site}",
    toast_ticket: "New ticket: {what} · {site}", toast_cleared: "Alarm cleared: {what} · {site}",
    page_missing: "No such page", page_missing_hint: "The address may be mistyped or the page has moved. Use the navigation.",
    kitchen_advice_default: "Check on the spot and fix it, then press “Done”.",
    device: "device",
    stale_notice: "This page has changed since you opened it.", reload: "Reload",
    dis_title: "Tableware disinfection", dis_ledger: "Disinfection ledger", dis_day: "Date", dis_meal: "Meal", dis_cabinet: "Cabinet", dis_outcome: "Result",
    dis_done: "disinfected", dis_missed: "missed", dis_failed: "failed",
    meal_breakfast: "breakfast", meal_lunch: "lunch", meal_dinner: "dinner", meal_snack: "snack", meal_other: "other meal",
    missed_meal: "Meal without samples", missed_check: "Check not done for",
    nav_wall: "Wall screen", wall_title: "Food-safety supervision wall", wall_window: "Window", wall_days: "{n} days",
    wall_fullscreen: "Full screen", wall_exit: "Leave the wall", wall_online: "Canteens online", wall_rate: "Rectified within {n} days",
    wall_mttr: "Mean time to rectify", wall_districts: "Canteens by district", wall_trend: "Tickets opened per day, by kind", wall_kinds: "By kind, last {n} days", opened_since: "opened since {date}",
    wall_tickets_per_day: "per day", wall_riskiest: "Riskiest canteens",
    no_readings_in: "No readings in the last {range}.", range_24h: "1 day", range_7d: "7 days", range_30d: "30 days", range_365d: "1 year", chart_range: "Time range",
    chart_hint: "Green: the allowed range; red: alarm periods. Hover for values, drag to zoom, double-click to zoom out.",
    chart_time: "Time", chart_avg: "Average", chart_unavailable: "The chart library did not load.",
    cam_last_report: "Last report", cam_latest: "Latest capture", cam_no_snapshot: "No capture yet.", no_cameras: "No cameras.",
    risk_stored_at: "computed at {at} (refreshed on a schedule, as on the overview)", risk_not_stored: "not computed yet: estimated now", risk_live: "estimate now {v}",
    ticket_curve: "Temperature around the alarm",
    cabinet_curve: "Cabinet temperature and power over the checked window", chart_temp: "Temperature", chart_power: "Power", chart_current: "Current",
    cabinet_no_data: "The cabinet sent no temperature or power in this window.",
    refused_role: "Your role may not do this.", refused_state: "This cannot be done in the current state (someone may have acted already). Reload and try again.",
    refused_too_big: "The photo is too large; make it smaller and upload again.", refused_type: "Only JPEG or PNG photos can be uploaded.",
    refused_input: "Something in the form is not right: {msg}", refused_unavailable: "The service is unavailable for a moment; try again shortly.", refused_network: "No connection to the server: check the network and try again.",
    refused_signin: "Your session has ended; sign in again.",
    nav_inspections: "Inspections", nav_insurance: "Insurance", nav_settings: "Users & settings",
    inspection: "Inspection", insp_routine: "Routine", insp_special: "Special", insp_joint: "Joint",
    insp_random: "Random", insp_public_spot: "Public spot check",
    insp_plan: "Risk-weighted random draw", insp_plan_n: "How many", insp_plan_seed: "Seed",
    insp_plan_draw: "Draw", insp_plan_hint: "The higher the risk score, the likelier a canteen is drawn; the same seed gives the same list, for review.",
    insp_plan_eligible: "{n} canteens eligible, seed {seed}:",
    insp_record: "Record an inspection", insp_submit: "Submit the results", insp_no_templates: "No checklist yet; an administrator or a regulator creates one first.", insp_no_templates_author: "No checklist yet. Start from the standard routine checklist of a school canteen (15 items; change it or add others through the API later).", insp_use_standard: "Use the standard checklist", insp_template: "Checklist",
    insp_inspectors: "Inspectors", insp_signed: "signed by {who} at {at}", insp_sign: "Sign the rectification notice",
    insp_print_notice: "Print the rectification notice", print_record: "Print the record",
    insp_item: "Item", insp_result: "Result", result_pass: "Pass", result_fail: "Fail", result_na: "n/a",
    ticket: "Ticket",
    ins_risk_record: "Risk record of insured canteens", ins_risk_hint: "Read-only: an insurer sees the risk of the canteens it insures and takes no action.",
    ins_repeated: "Repeated", ins_excursion: "Excursion minutes", ins_sensor_uptime: "Sensor uptime",
    ins_camera_uptime: "Camera uptime", ins_fail_rate: "Inspection fail rate", ins_none: "No policies.",
    ins_policies: "Policies", ins_insurer: "Insurer", ins_policy_no: "Policy no.", ins_cover: "Cover",
    ins_premium: "Premium", ins_period: "Period", ins_incidents: "Incidents and claims", ins_description: "What happened",
    ins_claim: "Claim", ins_amount: "Amount", ins_bundle: "Claim evidence", ins_download: "Download",
    ins_no_incidents: "No incidents.",
    ticket_policy: "Liability policy", ticket_uninsured: "not insured when opened",
    claim_none: "none", claim_filed: "filed", claim_accepted: "accepted", claim_rejected: "rejected", claim_paid: "paid",
    set_hint: "The canteens, sensors and cameras in your scope.", set_registry: "Canteens and devices",
    set_profile: "Equipment", set_last_heard: "Last heard", cameras: "Cameras",
    cam_online: "online", cam_offline: "offline", cam_frozen: "frozen / covered", cam_unknown: "not reported",
    set_deadlines: "Rectification deadlines", working_days_n: "{n} working days", set_calendar: "Working-day calendar (holidays and adjusted working days)", cal_working: "working", cal_off: "holiday", cal_none: "No holidays or adjusted working days on record for the next year: working-day deadlines skip weekends only. An administrator enters the year's official holidays (PUT /api/v1/settings/calendar).",
    hours_n: "{n} h", minutes_n: "{n} min", seconds_n: "{n} s", set_read_only: "set above you, read-only",
    set_users: "Users and roles", set_role: "Role", set_active: "active", set_disabled: "disabled",
    set_users_admin_only: "Administrators and the regulators of your region manage users; ask them to add or disable an account.",
    set_channels: "Alert channels", set_channels_hint: "The alert channels of your canteens' people (addresses masked). Send test sends a test message now.",
    ch_person: "Person", ch_kind: "Channel", ch_address: "Address", ch_sites: "Canteens and roles", ch_result: "Test result",
    ch_send_test: "Send test", ch_sending: "Sending…", ch_delivered: "Delivered ({ms} ms)", ch_failed: "Not delivered: {detail}",
    ch_none: "No alert channel is registered for your canteens.",
    kind_webhook: "Webhook", kind_email: "E-mail", kind_wecom: "WeCom", kind_dingtalk: "DingTalk", kind_sms: "SMS",
    ev_comment: "Comment", comment: "Comment", comment_add: "Add comment", comment_done: "Comment added.", comment_empty: "Write a comment first.",
    to_ticket: "Open the ticket",
    reviews_keys: "Keys: J / K move, C confirms, D dismisses (after a reason), R types the reason.",
    reviews_stats: "False-alarm rate", reviews_by_camera: "By camera", reviews_by_rule: "By rule", reviews_none_decided: "No capture reviewed yet.",
    reviews_by_model: "By model version", model_unknown: "version not recorded",
    reviews_export: "Export the review dataset", reviews_export_hint: "The reviewed captures by the day they were reviewed (Pascal VOC: photos with the confirm / dismiss verdict), for training the models.",
    reviews_export_from: "Reviewed from", reviews_export_to: "to", reviews_export_go: "Download the dataset",
    reviews_export_order: "The last day cannot be before the first.", download_preparing: "Preparing the download…", download_done: "Downloaded {name}.",
    reviews_rate: "{rate} false alarms ({n} reviewed)",
    nav_kitchen: "Kitchen display",
    nav_rapid_tests: "Rapid tests",
    nav_deliveries: "Deliveries",
    nav_complaints: "Complaints",
    nav_publication: "Public pages",
    site_print_qr: "Print the QR code for the door (public page)",
    nav_duties: "Daily duties",
    nav_coverage: "Coverage",
    nav_visits: "Visits",
    nav_reports: "Reviews & reports",
    kitchen_title: "Kitchen display", kitchen_pick: "Pick the canteen to show:",
    kitchen_do_now: "Do now:", kitchen_since: "since {at}", kitchen_peak: "peak {v} °C",
    kitchen_acked_by: "acknowledged at {at}", kitchen_ack: "Done", kitchen_ack_note: "acknowledged on the kitchen display",
    kitchen_acked: "Acknowledged: someone is on it.", kitchen_already_cleared: "That alarm has already cleared.",
    kitchen_more: "{n} more active alarms", kitchen_all_clear: "All clear",
    kitchen_arm: "Click to turn on the alert sound", kitchen_armed: "Alert sound on",
    kitchen_recent: "Recent alarms", kitchen_no_recent: "No recent alarms.",
    alarm_active: "active", alarm_acknowledged: "being handled", alarm_cleared: "cleared",
  },
};

export const LANGS = Object.keys(DICT);
let lang = LANGS.includes(localStorage.getItem("bk.lang")) ? localStorage.getItem("bk.lang") : "zh-CN";

/** The current language tag. */
export function getLang() {
  return lang;
}

/** Switch language (kept in localStorage); the caller re-renders. */
export function setLang(next) {
  lang = LANGS.includes(next) ? next : "zh-CN";
  localStorage.setItem("bk.lang", lang);
  document.documentElement.lang = lang;
}

/** The text of `key` in the current language with {name} placeholders filled. */
export function t(key, vars = {}) {
  const s = DICT[lang][key] ?? DICT["zh-CN"][key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : `{${k}}`));
}

/** A page's own word table ({"zh-CN": {...}, en: {...}}) as a `w(key, vars)` like `t`: a key
 * the table lacks reads as itself, a placeholder whose value is missing as `missing` (e.g. "—"
 * on a printed notice, "" in a sentence). One lookup for every page with its own words. */
export function wordsOf(table, { missing = null } = {}) {
  return (key, vars = {}) => String((table[lang] || table["zh-CN"])[key] ?? table["zh-CN"][key] ?? key).replace(/\{(\w+)\}/g, (_, k) => {
    const v = vars[k];
    if (v !== undefined && v !== null) return String(v);
    return missing ?? `{${k}}`;
  });
}

/** `key` translated when the dictionary knows it, else `fallback`. */
export function tOr(key, fallback) {
  return key in DICT[lang] ? t(key) : fallback;
}

let timeZone = "Asia/Shanghai";

/** Show times in the region's time zone (from the server's console config). */
export function setTimeZone(tz) {
  try {
    new Intl.DateTimeFormat("en", { timeZone: tz });
    timeZone = tz;
  } catch (e) {
    console.warn("unknown time zone", tz);
  }
}

/** A length of time given in hours, in the unit a person would say it in: 72 小时, 1.5 小时,
 * 30 分钟, 18 秒 (a deadline of 0.005 h reads as seconds, not as a fraction of an hour). */
export function fmtHours(hours) {
  if (hours === null || hours === undefined) return "—";
  const trim = (x, d) => String(Number(x.toFixed(d)));
  if (hours >= 1) return t("hours_n", { n: trim(hours, 1) });
  if (hours * 60 >= 1) return t("minutes_n", { n: trim(hours * 60, 1) });
  return t("seconds_n", { n: trim(hours * 3600, 0) });
}

/** The time zone times are shown in. */
export function getTimeZone() {
  return timeZone;
}

/** Now as YYYY-MM-DDTHH:MM in the region's time zone (a datetime-local input's default). */
export function localNow() {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-CA", {
    timeZone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).formatToParts(new Date()).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
}

/** The instant (ISO 8601 with the offset, as the API requires) of `local`, a datetime-local
 * input's YYYY-MM-DDTHH:MM read in the region's time zone; "" for an empty input. */
export function localToIso(local) {
  if (!local) return "";
  const wall = new Date(`${local}:00Z`);
  // the offset in force at the instant the wall time names, not at the wall time read as UTC
  // (hours apart: on the day the clocks change the two differ, and the time was an hour off):
  // guess the instant with the offset at `wall`, then take the offset at that instant
  const first = offsetAt(wall);
  return `${local}:00${offsetAt(new Date(wall.getTime() - offsetMinutes(first) * 60000))}`;
}

/** The region's UTC offset (+08:00) at the instant `d`. */
function offsetAt(d) {
  const name = new Intl.DateTimeFormat("en-US", { timeZone, timeZoneName: "longOffset" })
    .formatToParts(d).find((p) => p.type === "timeZoneName").value;
  const m = name.match(/GMT([+-]\d\d:\d\d)/);
  return m ? m[1] : "+00:00";
}

/** Minutes east of UTC of an offset such as -05:00. */
function offsetMinutes(offset) {
  const sign = offset[0] === "-" ? -1 : 1;
  return sign * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4, 6)));
}

/** A date and time in the current language, in the region's time zone: 2026/12/4 21:05. */
export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return new Intl.DateTimeFormat(lang, {
    timeZone, year: "numeric", month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).format(d);
}

/** Only the time of day (HH:MM:SS) in the region's time zone. */
export function fmtClock(iso) {
  const d = iso ? new Date(iso) : new Date();
  return new Intl.DateTimeFormat(lang, { timeZone, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }).format(d);
}

/** A number with `digits` decimals, or a dash. */
export function fmtNum(x, digits = 1) {
  return x === null || x === undefined ? "—" : Number(x).toFixed(digits);
}

/** A refusal or failure of the API in the user's language (never a raw English 409). */
export function explain(e) {
  const byStatus = { 401: "refused_signin", 403: "refused_role", 409: "refused_state", 413: "refused_too_big", 415: "refused_type", 503: "refused_unavailable" };
  if (e && e.status === 0 && e.reason === "network") return t("refused_network");
  if (e && e.status === 404) return t("not_found");
  if (e && e.status === 422) return t("refused_input", { msg: e.message });
  if (e && byStatus[e.status]) return t(byStatus[e.status]);
  return t("error", { msg: e && e.message ? e.message : String(e) });
}
