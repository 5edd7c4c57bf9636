//! English and Simplified Chinese. One table, so a missing translation is visible in review
//! and a test checks that every key has both.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lang {
    En,
    Zh,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Zh];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Zh => "简体中文",
        }
    }

    pub fn from_code(code: &str) -> Lang {
        if code.to_ascii_lowercase().starts_with("zh") {
            Lang::Zh
        } else {
            Lang::En
        }
    }
}

/// (key, English, 简体中文)
const TABLE: &[(&str, &str, &str)] = &[
    ("nav.dashboard", "Dashboard", "仪表盘"),
    ("nav.overview", "Overview", "概览"),
    ("dash.requests", "Requests", "请求数"),
    ("dash.success_rate", "Success rate", "成功率"),
    ("dash.health_score", "Health score", "健康分"),
    ("dash.saved", "Saved by failover", "故障转移挽救"),
    ("dash.p50", "Latency p50", "延迟 p50"),
    ("dash.p95", "Latency p95", "延迟 p95"),
    ("dash.ttfc", "First content p50", "首个内容 p50"),
    ("dash.tokens", "Tokens in / out", "输入 / 输出 token"),
    ("dash.cost", "Cost", "费用"),
    (
        "dash.unpriced",
        "requests had no price: the cost leaves them out",
        "个请求没有价格：费用未计入它们",
    ),
    ("dash.traffic", "Requests and errors", "请求与错误"),
    (
        "dash.latency",
        "Latency percentiles (ms)",
        "延迟百分位（毫秒）",
    ),
    (
        "dash.cost_over_time",
        "Cost over time (USD)",
        "费用走势（美元）",
    ),
    (
        "dash.model_mix",
        "Model mix (requests)",
        "模型分布（请求数）",
    ),
    (
        "dash.provider_mix",
        "Provider mix (requests)",
        "提供商分布（请求数）",
    ),
    ("dash.top_keys", "Top client keys", "客户端密钥排行"),
    ("models.groups", "Groups", "分组"),
    (
        "models.groups_intro",
        "Models made by filters over every model your providers list: the ready-made auto:* ones and yours (group = {...}), as they stand now.",
        "按条件从所有提供商模型中筛选出的模型：内置的 auto:* 分组和你自己的（group = {...}），显示当前成员。",
    ),
    ("models.members", "Members", "成员"),
    ("models.ready_made", "ready-made", "内置"),
    ("models.yours", "yours", "自定义"),
    ("whatif.title", "What if", "假如"),
    (
        "whatif.intro",
        "The last days' requests replayed through another strategy: their logged tokens at today's prices, and the latency the log measured for each candidate, beside what happened.",
        "用另一种策略重放最近几天的请求：按记录的 token 和今天的价格计算，并使用日志为每个候选测得的延迟，与实际情况并列比较。",
    ),
    ("whatif.run", "Replay", "重放"),
    ("whatif.actual_cost", "Cost (actual)", "费用（实际）"),
    ("whatif.replayed_cost", "Cost (replayed)", "费用（重放）"),
    ("whatif.actual_latency", "Latency (actual)", "延迟（实际）"),
    (
        "whatif.replayed_latency",
        "Latency (replayed)",
        "延迟（重放）",
    ),
    ("whatif.moved", "Would move", "将改道"),
    ("dash.tiers", "Requests by tier", "按层级的请求"),
    ("dash.tier", "Tier", "层级"),
    (
        "dash.no_tiers",
        "No tiered model answered in this window.",
        "此时间窗口内没有分层模型的请求。",
    ),
    (
        "dash.health",
        "Health now (recent attempts)",
        "当前健康状况（最近的尝试）",
    ),
    ("nav.providers", "Providers", "提供商"),
    ("nav.models", "Models", "模型"),
    ("nav.keys", "Client keys", "客户端密钥"),
    ("nav.settings", "Settings", "设置"),
    ("nav.prices", "Prices", "价格"),
    ("nav.logs", "Logs", "日志"),
    ("logs.client_key", "Client key", "客户端密钥"),
    ("logs.any", "Any", "全部"),
    (
        "logs.text",
        "Text in the error or body",
        "错误或正文中的文字",
    ),
    ("logs.live", "Live", "实时"),
    (
        "logs.dropped",
        "requests were not logged: the log writer fell behind",
        "个请求未被记录：日志写入跟不上",
    ),
    ("logs.more", "Older requests", "更早的请求"),
    ("logs.chosen_by", "Chosen by", "选择依据"),
    ("logs.attempts", "Attempts", "尝试"),
    ("logs.first_byte", "First byte", "首字节"),
    ("logs.breaker", "Breaker", "熔断器"),
    ("logs.request_body", "Request body", "请求正文"),
    ("col.bodies", "Bodies", "正文"),
    ("field.key_bodies", "Keep bodies", "保留正文"),
    (
        "hint.key_bodies",
        "Request and answer bodies in the request log, over the Settings' choice",
        "在请求日志中保留请求与回答的正文，优先于设置中的选择",
    ),
    ("keys.bodies_default", "As in Settings", "按设置"),
    ("keys.bodies_on", "Always", "总是"),
    ("keys.bodies_off", "Never", "从不"),
    ("col.pin", "Pins providers", "可指定提供商"),
    ("field.key_pin", "May name a provider", "可指定提供商"),
    (
        "hint.key_pin",
        "Requests may ask for provider/model (relay-a/gpt-4o) to reach that provider's own model",
        "请求可使用 提供商/模型（如 relay-a/gpt-4o）直达该提供商自己的模型",
    ),
    ("keys.pin_yes", "Yes", "是"),
    ("keys.pin_no", "No", "否"),
    ("logs.response_body", "Answer", "回答"),
    ("col.status", "Status", "状态码"),
    ("col.time", "Time", "时间"),
    ("col.latency", "Latency", "延迟"),
    ("col.tokens", "Tokens in / out", "Token 输入 / 输出"),
    ("col.cost", "Cost", "费用"),
    ("col.attempts", "Attempts", "尝试次数"),
    ("col.error", "Error", "错误"),
    ("action.export_csv", "Export CSV", "导出 CSV"),
    ("action.close", "Close", "关闭"),
    (
        "prices.intro",
        "What requests cost, in USD per million tokens. The list comes with the app (genai-prices); relays often sell at a ratio of it: give a provider a multiplier, or a model its own price.",
        "请求的费用，以每百万 Token 的美元计。价格表随应用附带（genai-prices）；中转站常按其一定比例售卖：可为提供商设置倍率，或为模型设置自己的价格。",
    ),
    ("prices.list", "Price list", "价格表"),
    (
        "prices.unpriced",
        "Models without a price",
        "没有价格的模型",
    ),
    (
        "prices.unpriced_intro",
        "The routes use these, and neither the list nor an entry prices them: their cost shows as unknown until you set one.",
        "路由会用到这些模型，但价格表和条目都没有它们的价格：设置之前，它们的费用显示为未知。",
    ),
    ("prices.entries", "Your prices", "自定义价格"),
    (
        "prices.all_priced",
        "Every model the routes use has a price.",
        "路由用到的每个模型都有价格。",
    ),
    ("prices.add", "Add or change a price", "添加或修改价格"),
    ("prices.every", "(every)", "（全部）"),
    ("caps.title", "Model capabilities", "模型能力"),
    ("models.try", "Try a request", "试一个请求"),
    (
        "models.try_intro",
        "What routing would do with this request now, sending nothing: each candidate's share of next requests, and why one may not be tried",
        "路由现在会如何处理这个请求（不会发送）：每个候选承接后续请求的比例，以及不可用的原因",
    ),
    ("models.try_run", "Preview", "预览"),
    ("models.share", "Share", "比例"),
    (
        "caps.intro",
        "What each routed model is known to take: images, tools and long prompts go only where they are not known to be lacking",
        "每个已路由模型已知支持的能力：图片、工具与长提示只会发往未知不支持的模型",
    ),
    ("caps.entries", "Your capability entries", "自定义能力"),
    ("caps.add", "Add or change capabilities", "添加或修改能力"),
    (
        "caps.context",
        "Context window (tokens)",
        "上下文窗口（token）",
    ),
    (
        "caps.max_output",
        "Max output (tokens)",
        "最大输出（token）",
    ),
    ("caps.tools", "Tools", "工具调用"),
    ("caps.vision", "Images", "图片输入"),
    ("caps.reasoning", "Reasoning", "推理"),
    ("caps.structured", "Structured output", "结构化输出"),
    ("caps.yes", "Yes", "是"),
    ("caps.no", "No", "否"),
    ("caps.unknown", "Unknown", "未知"),
    ("field.caps_model", "Model (or pattern)", "模型（或通配）"),
    (
        "hint.caps_model",
        "The upstream model id; * matches any run of characters",
        "上游模型 id；* 匹配任意字符",
    ),
    ("col.provider", "Provider", "提供商"),
    ("col.multiplier", "Multiplier", "倍率"),
    ("col.input", "Input", "输入"),
    ("col.output", "Output", "输出"),
    ("col.cache_read", "Cache read", "缓存读取"),
    ("col.cache_write", "Cache write", "缓存写入"),
    ("action.set_price", "Set a price", "设置价格"),
    ("field.price_provider", "Provider", "提供商"),
    ("field.price_model", "Upstream model id", "上游模型 ID"),
    (
        "field.multiplier",
        "Multiplier of the list price",
        "价格表价格的倍率",
    ),
    (
        "field.price_input",
        "Input (USD / 1M tokens)",
        "输入（美元 / 百万 Token）",
    ),
    (
        "field.price_output",
        "Output (USD / 1M tokens)",
        "输出（美元 / 百万 Token）",
    ),
    (
        "field.price_cache_read",
        "Cache read (USD / 1M tokens)",
        "缓存读取（美元 / 百万 Token）",
    ),
    (
        "field.price_cache_write",
        "Cache write (USD / 1M tokens)",
        "缓存写入（美元 / 百万 Token）",
    ),
    ("hint.price_every", "Empty: every one.", "留空表示全部。"),
    (
        "hint.multiplier",
        "Either a multiplier (0.8: 80 % of list price) or an input and an output price.",
        "填写倍率（0.8 即价格表的 80%），或者填写输入和输出价格，二选一。",
    ),
    (
        "hint.per_mtok",
        "A price of its own: no multiplier applies to it.",
        "自定义价格：不再乘以倍率。",
    ),
    (
        "hint.cache_rate",
        "Empty: such tokens pay the input price.",
        "留空：这类 Token 按输入价格计费。",
    ),
    (
        "err.number",
        "Write a number, 0 or more.",
        "请填写不小于 0 的数字。",
    ),
    ("nav.logout", "Log out", "退出登录"),
    ("login.code", "Two-factor code", "两步验证码"),
    (
        "login.code_hint",
        "Only if two-factor login is on.",
        "仅在开启两步验证时填写。",
    ),
    (
        "login.intro",
        "Enter the admin password to manage this gateway.",
        "输入管理密码以管理此网关。",
    ),
    ("login.password", "Admin password", "管理密码"),
    ("login.submit", "Log in", "登录"),
    ("login.empty", "Enter the password.", "请输入密码。"),
    ("nav.clients", "Clients", "客户端"),
    (
        "clients.intro",
        "Point Claude Code, Codex or Gemini CLI at this gateway: each gets a client key of its own, and only Switchboard's settings are written into its files (after a backup). Disconnect puts the files back as they were; edits you made meanwhile are kept.",
        "让 Claude Code、Codex 或 Gemini CLI 使用此网关：每个客户端获得自己的客户端密钥，只在其文件中写入 Switchboard 的设置（先备份）。断开连接会把文件恢复原样；期间您所做的修改会保留。",
    ),
    ("clients.key", "Client key", "客户端密钥"),
    ("clients.state", "State", "状态"),
    ("clients.files", "Files", "文件"),
    ("clients.connected", "Connected", "已连接"),
    ("clients.not_connected", "Not connected", "未连接"),
    ("clients.connect", "Connect", "连接"),
    ("clients.disconnect", "Disconnect", "断开连接"),
    (
        "clients.from_before",
        "Still connected from before Switchboard last stopped. Keep it, or restore its files?",
        "Switchboard 上次停止前已连接，至今仍指向此网关。保留连接，还是恢复其文件？",
    ),
    ("clients.keep", "Keep", "保留"),
    ("clients.restore", "Restore files", "恢复文件"),
    (
        "clients.uses_key",
        "Its requests use the client key",
        "其请求使用客户端密钥",
    ),
    ("setup.title", "Choose an admin password", "设置管理密码"),
    (
        "setup.intro",
        "No admin password is set yet. Choose one: it guards this page and the admin API.",
        "尚未设置管理密码。请设置一个：它保护此页面和管理 API。",
    ),
    ("setup.password", "New password", "新密码"),
    ("setup.confirm", "The same again", "再输入一次"),
    ("setup.submit", "Set it and log in", "设置并登录"),
    ("setup.short", "At least 8 characters.", "至少 8 个字符。"),
    (
        "setup.mismatch",
        "The two passwords differ.",
        "两次输入的密码不一致。",
    ),
    ("down.title", "The gateway is not running", "网关未运行"),
    ("down.retry", "Start on this port", "使用此端口启动"),
    ("state.ok", "OK", "正常"),
    ("state.degraded", "Degraded", "部分降级"),
    ("state.down", "Down", "不可用"),
    ("state.paused", "Paused", "已暂停"),
    ("state.cooling", "Cooling", "冷却中"),
    ("state.key_refused", "Key refused", "密钥被拒绝"),
    ("state.closed", "Closed", "闭合"),
    ("state.open", "Open", "熔断"),
    ("state.half_open", "Half-open", "半开"),
    ("state.disabled", "Disabled", "已停用"),
    ("state.chat_only", "chat only", "仅 chat"),
    (
        "hint.chat_only",
        "No Responses API here (set, or learned from a 404): Responses clients such as Codex are converted to chat completions for it",
        "此处没有 Responses API（已设置，或从 404 得知）：Codex 等 Responses 客户端的请求会转换为 chat completions 发给它",
    ),
    ("state.unknown", "Unknown", "未知"),
    ("overview.providers", "Providers", "提供商"),
    ("overview.models", "Unified models", "统一模型"),
    ("overview.reset", "Reset all breakers", "重置所有熔断器"),
    (
        "overview.no_providers",
        "No providers yet: add one on the Providers page.",
        "还没有提供商：请在“提供商”页面添加。",
    ),
    ("col.name", "Name", "名称"),
    ("col.state", "State", "状态"),
    ("col.reason", "Reason", "原因"),
    ("col.until", "Until", "直到"),
    ("col.requests", "Requests", "请求数"),
    ("col.model", "Model", "模型"),
    ("col.models", "models", "个模型"),
    ("col.candidates", "Provider / model", "提供商 / 模型"),
    ("col.created", "Created", "创建时间"),
    ("col.budget", "Budget (used / limit)", "预算（已用 / 上限）"),
    (
        "field.daily_budget",
        "Daily budget (USD)",
        "每日预算（美元）",
    ),
    (
        "hint.daily_budget",
        "Past 80 % answers carry a warning; at the limit requests get a 429 until midnight UTC. Empty: no budget.",
        "超过 80% 时响应带警告；达到上限后请求返回 429，直到 UTC 午夜。留空：不设预算。",
    ),
    (
        "err.usd",
        "An amount in USD above 0, like 5.00",
        "请填写大于 0 的美元金额，例如 5.00",
    ),
    ("col.limit", "Limit", "限速"),
    ("col.expires", "Expires", "过期时间"),
    ("col.last_used", "Last used", "最近使用"),
    ("action.pause", "Pause", "暂停"),
    ("action.pause15", "Pause 15 min", "暂停 15 分钟"),
    ("action.resume", "Resume", "恢复"),
    ("action.edit", "Edit", "编辑"),
    ("action.delete", "Delete", "删除"),
    ("action.test", "Test & fetch models", "测试并获取模型"),
    ("action.save", "Save", "保存"),
    ("action.cancel", "Cancel", "取消"),
    ("action.create", "Create", "创建"),
    ("action.copy", "Copy", "复制"),
    ("action.done", "Done", "完成"),
    ("action.revoke", "Revoke", "吊销"),
    ("providers.add", "Add a provider", "添加提供商"),
    ("providers.edit", "Edit", "编辑"),
    ("field.name", "Name", "名称"),
    ("field.base_url", "Base URL", "基础 URL"),
    ("field.protocols", "Protocols", "协议"),
    ("field.api_key", "API key", "API 密钥"),
    ("field.weight", "Weight", "权重"),
    ("field.models", "Models", "模型"),
    ("field.enabled", "Enabled", "启用"),
    ("field.rules", "Rules", "规则"),
    ("field.include", "Always include", "手动包含"),
    ("field.exclude_providers", "Exclude providers", "排除提供商"),
    ("field.protocol", "Protocol", "协议"),
    (
        "field.default_params",
        "Default parameters (JSON)",
        "默认参数（JSON）",
    ),
    (
        "field.override_params",
        "Override parameters (JSON)",
        "覆盖参数（JSON）",
    ),
    ("field.probe", "Health probes", "健康探测"),
    (
        "field.sort",
        "Sort by (the sort strategy)",
        "排序依据（排序策略）",
    ),
    (
        "hint.sort",
        "Factors in order, each with an optional weight: cost, latency, success, quota, priority (cost, latency:0.5).",
        "按顺序列出因素，可附权重：cost、latency、success、quota、priority（例如 cost, latency:0.5）。",
    ),
    ("field.group", "Group filters (JSON)", "分组条件（JSON）"),
    (
        "hint.group",
        "Instead of rules: max_price, min_context, tools, vision, reasoning, providers, pattern. The preview shows what passes now.",
        "代替规则：max_price、min_context、tools、vision、reasoning、providers、pattern。预览显示当前符合条件的模型。",
    ),
    ("field.tiers", "Tiers (JSON)", "层级（JSON）"),
    (
        "hint.tiers",
        "A tiered model sends each request to one tier's target, picked by its classifier; leave the rules empty. Empty: no tiers.",
        "分层模型按分类器选出的层级把请求发往该层的目标模型；规则留空。留空：不分层。",
    ),
    ("field.strategy", "Strategy", "选择策略"),
    (
        "field.priority",
        "Priority (lower first, for the priority strategy)",
        "优先级（数字小者优先，用于优先级策略）",
    ),
    ("strategy.sort", "Sorted by factors", "按因素排序"),
    ("strategy.weighted", "Weighted", "按权重"),
    ("strategy.priority", "Priority tiers", "优先级分层"),
    ("strategy.round_robin", "Round robin", "轮询"),
    ("strategy.latency", "Fastest (latency)", "最快（延迟）"),
    ("strategy.cost", "Cheapest (cost)", "最便宜（成本）"),
    ("strategy.least_busy", "Least busy", "最空闲"),
    ("field.key_models", "Allowed models", "允许的模型"),
    ("field.rpm", "Requests per minute", "每分钟请求数"),
    ("field.expires", "Expires on (UTC)", "过期日期（UTC）"),
    (
        "hint.base_url",
        "The provider's origin, with its path prefix if it has one.",
        "提供商的地址，如有路径前缀请一并填写。",
    ),
    (
        "hint.api_key",
        "Never shown again once saved; env:NAME reads an environment variable instead.",
        "保存后不再显示；也可填 env:NAME 以读取环境变量。",
    ),
    ("hint.key_kept", "leave empty to keep", "留空则保持不变"),
    (
        "hint.models",
        "Leave empty to fetch the list from the provider.",
        "留空则从提供商获取模型列表。",
    ),
    (
        "hint.model_name",
        "The name clients ask for.",
        "客户端请求时使用的名称。",
    ),
    (
        "hint.rules",
        "Matched against every provider's model ids; exclusions win.",
        "与每个提供商的模型 ID 匹配；排除规则优先。",
    ),
    (
        "hint.include",
        "provider/model, one per line",
        "提供商/模型，每行一个",
    ),
    (
        "hint.params",
        "Defaults fill what the client left out; overrides always win.",
        "默认参数补充客户端未提供的字段；覆盖参数总是生效。",
    ),
    ("hint.rpm", "Empty: no limit.", "留空表示不限速。"),
    (
        "hint.expires",
        "YYYY-MM-DD; empty: never.",
        "格式 YYYY-MM-DD；留空表示永不过期。",
    ),
    (
        "hint.key_models",
        "Comma-separated; empty allows every model.",
        "用逗号分隔；留空表示允许所有模型。",
    ),
    (
        "hint.allowed_origins",
        "Comma-separated origins such as https://chat.example, or * for any page. Every other web page is refused.",
        "用逗号分隔，例如 https://chat.example；* 表示任何网页。其他网页一律拒绝。",
    ),
    (
        "hint.retry_on_keywords",
        "A 200 answer containing one of these is retried elsewhere.",
        "包含这些关键词的 200 响应会换一个提供商重试。",
    ),
    ("models.add", "Add a unified model", "添加统一模型"),
    ("models.edit", "Edit", "编辑"),
    ("models.add_rule", "Add a rule", "添加规则"),
    ("models.preview", "Preview", "预览"),
    (
        "models.preview_empty",
        "Add a rule to see which provider models it resolves to.",
        "添加规则以查看匹配到的提供商模型。",
    ),
    ("models.pairs", "provider models match", "个提供商模型匹配"),
    (
        "keys.intro",
        "Clients send one of these keys; only its hash is stored.",
        "客户端使用这些密钥访问；只保存其哈希值。",
    ),
    ("keys.create", "Create a key", "创建密钥"),
    (
        "keys.shown_once",
        "Copy this key now: it is shown only once.",
        "请立即复制此密钥：它只显示一次。",
    ),
    ("keys.all_models", "all models", "所有模型"),
    ("keys.revoked", "Revoked", "已吊销"),
    ("keys.expired", "Expired", "已过期"),
    ("keys.never", "Never", "从未"),
    ("settings.port", "Port", "端口"),
    (
        "settings.request_timeout_s",
        "Request timeout (s)",
        "请求超时（秒）",
    ),
    (
        "settings.first_byte_timeout_s",
        "First byte timeout (s)",
        "首字节超时（秒）",
    ),
    (
        "settings.stream_idle_timeout_s",
        "Stream idle timeout (s)",
        "流空闲超时（秒）",
    ),
    (
        "settings.max_attempts",
        "Attempts per request",
        "每个请求的尝试次数",
    ),
    (
        "settings.sync_interval_s",
        "Model list sync interval (s)",
        "模型列表同步间隔（秒）",
    ),
    (
        "settings.probe_interval_s",
        "Health probe interval (s, 0 = off)",
        "健康探测间隔（秒，0 为关闭）",
    ),
    (
        "settings.default_params",
        "Default parameters (JSON)",
        "默认参数（JSON）",
    ),
    (
        "hint.default_params",
        "Every request gets these when it does not set them; a model's own defaults win",
        "请求未设置时使用这些参数；模型自己的默认参数优先",
    ),
    (
        "settings.cooldown_rate_limited_s",
        "Cooldown after 429 (s)",
        "429 后冷却（秒）",
    ),
    (
        "settings.cooldown_server_error_s",
        "Cooldown after 5xx (s)",
        "5xx 后冷却（秒）",
    ),
    (
        "settings.cooldown_timeout_s",
        "Cooldown after a timeout (s)",
        "超时后冷却（秒）",
    ),
    (
        "settings.cooldown_network_error_s",
        "Cooldown after a network error (s)",
        "网络错误后冷却（秒）",
    ),
    (
        "settings.cooldown_model_not_found_s",
        "Cooldown after an unknown model (s)",
        "模型不存在后冷却（秒）",
    ),
    (
        "settings.max_failed_logins",
        "Failed logins before lockout",
        "锁定前允许的登录失败次数",
    ),
    (
        "settings.lockout_s",
        "Login lockout (s)",
        "登录锁定时长（秒）",
    ),
    (
        "settings.session_ttl_s",
        "Admin session length (s)",
        "管理会话时长（秒）",
    ),
    (
        "settings.retry_on_keywords",
        "Retry on keywords",
        "重试关键词",
    ),
    (
        "settings.allowed_origins",
        "Web pages allowed to call the gateway",
        "允许调用网关的网页来源",
    ),
    (
        "settings.header_timeout_s",
        "Header and idle connection timeout (s)",
        "请求头与空闲连接超时（秒）",
    ),
    (
        "settings.body_timeout_s",
        "Request body timeout (s)",
        "请求体读取超时（秒）",
    ),
    (
        "settings.max_connections",
        "Open connections at most",
        "最大连接数",
    ),
    (
        "settings.body_budget_mb",
        "Request bodies held at once (MB)",
        "同时持有的请求体上限（MB）",
    ),
    (
        "settings.max_body_mb",
        "Largest request body (MB)",
        "请求体大小上限（MB）",
    ),
    (
        "settings.network_failure_threshold",
        "Network failures before a provider trips",
        "提供商熔断前允许的网络失败次数",
    ),
    (
        "settings.server_error_threshold",
        "Server errors before a model trips",
        "模型熔断前允许的服务器错误次数",
    ),
    (
        "settings.cooldown_max_multiplier",
        "Cooldown grows at most (× base)",
        "冷却时间最多增长到（基础的倍数）",
    ),
    (
        "settings.cooldown_decay_s",
        "Cooldown growth decays every (s)",
        "冷却增长的衰减周期（秒）",
    ),
    (
        "settings.cooldown_max_retry_after_s",
        "Longest Retry-After honoured (s)",
        "Retry-After 的最长遵循时长（秒）",
    ),
    (
        "settings.logs_enabled",
        "Keep a request log",
        "保留请求日志",
    ),
    (
        "settings.logs_ask_usage",
        "Ask OpenAI chat streams for their token usage",
        "向 OpenAI 聊天流请求 Token 用量",
    ),
    (
        "settings.logs_retention_days",
        "Keep request log rows for (days)",
        "请求日志保留天数",
    ),
    (
        "settings.logs_capture_bodies",
        "Keep request and answer bodies",
        "保留请求与回答的正文",
    ),
    (
        "settings.logs_body_max_kb",
        "Each kept body at most (KB)",
        "每个正文上限（KB）",
    ),
    (
        "settings.logs_body_retention_days",
        "Keep bodies for (days)",
        "正文保留天数",
    ),
    (
        "settings.logs_max_size_mb",
        "Request log file at most (MB)",
        "请求日志文件上限（MB）",
    ),
    (
        "settings.pricing_refresh_url",
        "Refresh model prices from (URL, empty: bundled list only)",
        "模型价格的更新地址（URL；留空则只用内置价格表）",
    ),
    (
        "settings.pricing_refresh_hours",
        "Refresh model prices every (hours)",
        "模型价格的更新间隔（小时）",
    ),
    ("action.export", "Export configuration", "导出配置"),
    ("msg.exported_to", "Configuration saved to", "配置已保存到"),
    (
        "hint.export",
        "Download the configuration as a config file, without any key",
        "将配置下载为配置文件（不含任何密钥）",
    ),
    (
        "settings.notifications",
        "Notify when a provider trips or recovers",
        "提供商熔断或恢复时通知",
    ),
    ("settings.start_at_login", "Start at login", "登录时启动"),
    ("settings.language", "Language", "语言"),
    (
        "settings.saved_restart",
        "Saved. The new port applies at the next start.",
        "已保存。新端口将在下次启动时生效。",
    ),
    ("msg.saved", "Saved", "已保存"),
    ("msg.connected", "connected", "连接成功"),
    ("confirm.delete", "Delete", "删除"),
    ("confirm.revoke", "Revoke", "吊销"),
    ("err.required", "Required.", "必填。"),
    (
        "err.positive",
        "A whole number above 0.",
        "须为大于 0 的整数。",
    ),
    (
        "err.name_chars",
        "Letters, digits, - _ and . only.",
        "只能包含字母、数字、- _ 和 .。",
    ),
    (
        "err.url",
        "Must start with http:// or https://.",
        "必须以 http:// 或 https:// 开头。",
    ),
    ("err.protocols", "Choose at least one.", "至少选择一个。"),
    (
        "err.weight",
        "A whole number from 1 to 1000.",
        "1 到 1000 之间的整数。",
    ),
    (
        "err.priority",
        "Priority is a whole number from 0 to 100",
        "优先级须为 0 到 100 的整数",
    ),
    ("err.include", "Write provider/model", "请写成 提供商/模型"),
    (
        "err.tiers",
        "Give a JSON object with a \"tiers\" list (and optionally a \"classifier\").",
        "请填写含 \"tiers\" 列表的 JSON 对象（可选 \"classifier\"）。",
    ),
    (
        "err.json_object",
        "Must be a JSON object, like {\"temperature\": 0.7}.",
        "必须是 JSON 对象，例如 {\"temperature\": 0.7}。",
    ),
    (
        "err.port",
        "A port from 1 to 65535.",
        "1 到 65535 之间的端口。",
    ),
    ("err.range", "A whole number in", "取值范围"),
];

/// The table's own key equal to `key`, for a key made at run time (`settings.<name>`).
pub fn known_key(key: &str) -> Option<&'static str> {
    TABLE.iter().find(|(k, ..)| *k == key).map(|(k, ..)| *k)
}

/// The text for `key`; the key itself if the table lacks it (visible, never blank).
pub fn tr(lang: Lang, key: &'static str) -> &'static str {
    TABLE
        .iter()
        .find(|(k, ..)| *k == key)
        .map_or(key, |(_, en, zh)| match lang {
            Lang::En => en,
            Lang::Zh => zh,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_used_in_the_sources_is_translated() {
        let sources = [
            include_str!("app.rs"),
            include_str!("form.rs"),
            include_str!("pages/overview.rs"),
            include_str!("pages/dashboard.rs"),
            include_str!("pages/providers.rs"),
            include_str!("pages/models.rs"),
            include_str!("pages/keys.rs"),
            include_str!("pages/settings.rs"),
            include_str!("pages/prices.rs"),
            include_str!("pages/logs.rs"),
            include_str!("pages/clients.rs"),
            include_str!("pages/capabilities.rs"),
            include_str!("pages/try_request.rs"),
            include_str!("pages/whatif.rs"),
        ];
        let prefixes = [
            "nav.",
            "login.",
            "setup.",
            "down.",
            "state.",
            "overview.",
            "dash.",
            "col.",
            "action.",
            "providers.",
            "field.",
            "hint.",
            "models.",
            "keys.",
            "settings.",
            "prices.",
            "caps.",
            "logs.",
            "clients.",
            "msg.",
            "confirm.",
            "err.",
        ];
        let mut missing = Vec::new();
        for src in sources {
            for piece in src.split('"').skip(1).step_by(2) {
                if prefixes.iter().any(|p| piece.starts_with(p))
                    && piece
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._".contains(c))
                    && !TABLE.iter().any(|(k, ..)| *k == piece)
                {
                    missing.push(piece.to_owned());
                }
            }
        }
        assert!(missing.is_empty(), "untranslated keys: {missing:?}");
    }

    #[test]
    fn keys_are_unique_and_both_languages_filled() {
        for (i, (k, en, zh)) in TABLE.iter().enumerate() {
            assert!(!en.is_empty() && !zh.is_empty(), "{k}");
            assert!(!TABLE[..i].iter().any(|(k2, ..)| k2 == k), "{k} twice");
        }
        assert_eq!(Lang::from_code("zh-CN"), Lang::Zh);
        assert_eq!(Lang::from_code("en-US"), Lang::En);
    }
}
