"""Console messages of the account pages: the forced change of a one-time password at first login."""

MESSAGES: dict[str, tuple[str, str]] = {
    "password.title": ("修改初始密码", "Change your one-time password"),
    "password.intro": (
        "这是一次性初始密码。继续使用控制台之前，请设置您自己的新密码（至少 10 个字符）。",
        "You signed in with a one-time password. Choose your own (at least 10 characters) before using the console.",
    ),
    "password.current": ("当前密码", "Current password"),
    "password.new": ("新密码", "New password"),
    "password.confirm": ("再次输入新密码", "Repeat the new password"),
    "password.submit": ("修改密码", "Change password"),
    "password.err.current": ("当前密码不正确", "The current password is wrong"),
    "password.err.short": ("新密码至少需要 10 个字符", "The new password needs at least 10 characters"),
    "password.err.mismatch": ("两次输入的新密码不一致", "The two new passwords differ"),
    "password.err.same": ("新密码不能与当前密码相同", "The new password must differ from the current one"),
    "password.err.throttled": ("登录失败次数过多，请稍后再试", "Too many failed attempts; try again later"),
    # the menu button of narrow screens (phones): the side navigation collapses behind it
    "a11y.menu_toggle": ("菜单", "Menu"),
}
