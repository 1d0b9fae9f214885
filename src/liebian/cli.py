"""`liebian`: the command line. Each domain adds its sub-commands from its own cli.py."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import typer

from liebian.config import reset_settings_cache
from liebian.db import migrate

app = typer.Typer(
    help="liebian 裂变 — fission campaigns, anti-fraud and growth analytics.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

# (module, sub-command name or None to merge commands into the root, help)
DOMAINS = [
    ("liebian.db.cli", "db", "Schema versions: operational store migrations, warehouse version."),
    ("liebian.ingest.cli", "import", "Import events, orders, identities and messages from files."),
    ("liebian.identity.cli", "identity", "One person across channels (OneID)."),
    ("liebian.quality.cli", "quality", "Data-quality report."),
    ("liebian.demo.cli", None, "The demo brand."),
    ("liebian.web.cli", None, "Serve the API and console."),
    ("liebian.campaigns.cli", "campaign", "Fission campaigns, invites and posters."),
    ("liebian.rewards.cli", "ledger", "The reward ledger, payouts and webhooks."),
    ("liebian.fraud.cli", "fraud", "Anti-fraud rules, graph scan and review queue."),
    ("liebian.analytics.cli", "analyze", "Growth analytics."),
    ("liebian.predict.cli", "predict", "Predictive models and experiments."),
    ("liebian.tags.cli", "tags", "Tags, the rule language and the health score."),
    ("liebian.monitor.cli", "alerts", "Monitoring and alerts."),
    ("liebian.community.cli", "community", "Community health."),
    ("liebian.automation.cli", "journey", "Marketing automation."),
    ("liebian.reports.cli", "report", "Operating reports."),
    ("liebian.privacy.cli", "privacy", "Consent, data-subject requests, retention."),
    ("liebian.auth.cli", "auth", "Users, roles, API keys, audit."),
    ("liebian.wecom.cli", "wecom", "WeCom (企业微信) contact ways and callbacks."),
    ("liebian.jobs", "job", "Run a scheduled job once (for cron)."),
]


# Commands that must not touch the operational store before they run.
NO_AUTO_MIGRATE = {"db", None}


@app.callback()
def main(
    ctx: typer.Context,
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Where liebian keeps its state."),
    user: str | None = typer.Option(
        None, "--user", envvar="LIEBIAN_USER", help="Act as this console user (or set LIEBIAN_API_KEY)."
    ),
) -> None:
    from liebian.privacy import logfilter

    logfilter.install()  # no phone, e-mail or ID-card number in any log line
    from liebian.auth import cli_guard

    cli_guard.CLI_USER = user  # read when the command runs (per invocation, never left in the env)
    if data_dir is not None:
        os.environ["LIEBIAN_DATA_DIR"] = str(data_dir)
        reset_settings_cache()
    from liebian.bootstrap import bootstrap  # deferred: it loads every domain; `liebian --help` does not

    bootstrap()  # the links between the domains (risk checks, merge followers, ledger subscribers, jobs)
    if ctx.invoked_subcommand not in NO_AUTO_MIGRATE and "--help" not in sys.argv:
        # A fresh data directory works without a separate `liebian db upgrade` first.
        migrate.ensure_current()


def _register() -> None:
    for module_name, name, help_text in DOMAINS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # that domain has no commands yet
            raise
        sub = module.app
        if name is None:
            for command in sub.registered_commands:
                app.registered_commands.append(command)
        else:
            app.add_typer(sub, name=name, help=help_text)
    from liebian.auth.cli_guard import install

    install(app)  # every command checks auth.policy.COMMANDS before it runs


_register()

if __name__ == "__main__":  # pragma: no cover
    app()
