"""`liebian`: the command line. Each domain adds its sub-commands from its own cli.py.

A domain's module is imported when one of its commands is invoked, not to list them: the tables
below name every command with the help `liebian --help` shows (tests/test_cli_startup.py checks them
against the modules), so `liebian --help` does not import pandas, scikit-learn, DuckDB, … .
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import typer
from typer.core import TyperCommand, TyperGroup

from liebian import ports
from liebian.click_compat import click
from liebian.lazy import collector_paused

# (module, sub-command name, help)
DOMAINS = [
    ("liebian.db.cli", "db", "Schema versions: operational store migrations, warehouse version."),
    ("liebian.ingest.cli", "import", "Import events, orders, identities and messages from files."),
    ("liebian.identity.cli", "identity", "One person across channels (OneID)."),
    ("liebian.quality.cli", "quality", "Data-quality report."),
    ("liebian.campaigns.cli", "campaign", "Fission campaigns, invites and posters."),
    ("liebian.rewards.cli", "ledger", "The reward ledger, payouts and webhooks."),
    ("liebian.rewards.points_cli", "points", "Points (积分): balances, history, chain verify."),
    ("liebian.fraud.cli", "fraud", "Anti-fraud rules, graph scan and review queue."),
    ("liebian.fx_cli", "fx", "Exchange rates to CNY for amounts in other currencies."),
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
    ("liebian.decisions.cli", "decisions", "Options with expected effects; change proposals."),
    ("liebian.job_cli", "job", "Run a scheduled job once (for cron)."),
    ("liebian.calendar_cli", "calendar", "Holiday calendar: public holidays, 调休, 春节 window, promotions."),
    ("liebian.complaints.cli", "complaints", "Complaints and data-subject requests with their deadlines."),
    ("liebian.costs.cli", "costs", "Other costs per campaign and period (media, staff, tools)."),
]

# Commands of a domain's module merged into the root: (module, command name, its docstring's first line)
ROOT_COMMANDS = [
    (
        "liebian.demo.cli",
        "demo",
        "Generate the demo brand 茶语 TeaWords, import it and print its KPI summary.",
    ),
    ("liebian.web.cli", "serve", "Serve the HTTP API and the console."),
]

# Commands that must not touch the operational store before they run.
NO_AUTO_MIGRATE = {"db", None}


def load_command(name: str) -> click.Command:
    """Import the module of the root command or group `name` and build its click command, each of its
    commands guarded by auth.policy.COMMANDS."""
    # deferred: the CLI root loads a domain only when one of its commands runs
    from liebian.auth.cli_guard import (
        install,  # with the command: auth and SQLAlchemy are not needed for --help
    )

    for module_name, command_name, _help in ROOT_COMMANDS:
        if command_name == name:
            sub = importlib.import_module(module_name).app
            install(sub)
            holder = typer.Typer()
            holder.add_typer(sub)  # no name: its commands become the holder's, as they are the root's
            return typer.main.get_group(holder).commands[name]
    for module_name, group_name, help_text in DOMAINS:
        if group_name == name:
            sub = importlib.import_module(module_name).app
            install(sub, (name,))
            holder = typer.Typer()
            holder.add_typer(sub, name=name, help=help_text)
            return typer.main.get_group(holder).commands[name]
    raise KeyError(name)


class RootGroup(TyperGroup):
    """The root command group: knows every command's name and help, imports its module on use."""

    def __init__(self, **attrs) -> None:
        super().__init__(**attrs)
        self.listed = {name: help_text for _module, name, help_text in ROOT_COMMANDS}
        self.listed |= {name: help_text for _module, name, help_text in DOMAINS}
        self.listing = False
        for name in self.listed:
            # None until the module is imported; the names are what typo suggestions choose from
            self.commands.setdefault(name, None)  # type: ignore[arg-type]

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.listed:
            return super().get_command(ctx, cmd_name)
        if self.listing:  # the help page only needs the name and the help
            return TyperCommand(cmd_name, help=self.listed[cmd_name])
        if self.commands[cmd_name] is None:
            with collector_paused():  # the domain's modules are imported now (start-up time)
                self.commands[cmd_name] = load_command(cmd_name)
        return self.commands[cmd_name]

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing = False


app = typer.Typer(
    cls=RootGroup,
    help="liebian 裂变 — fission campaigns, anti-fraud and growth analytics.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Where liebian keeps its state."),
    user: str | None = typer.Option(
        None, "--user", envvar="LIEBIAN_USER", help="Act as this console user (or set LIEBIAN_API_KEY)."
    ),
) -> None:
    with collector_paused():  # settings, the store and its migration check: imports (start-up time)
        _start(ctx, data_dir, user)


def _start(ctx: typer.Context, data_dir: Path | None, user: str | None) -> None:
    """What every command needs before it runs: settings, the wiring, a store at the head."""
    # imported when a command runs, not for `liebian --help` (start-up time: settings and the store
    # bring pydantic-settings and SQLAlchemy)
    from liebian.auth import cli_guard
    from liebian.config import reset_settings_cache
    from liebian.db import migrate
    from liebian.db.pool import PoolConfigError
    from liebian.privacy import logfilter

    logfilter.install()  # no phone, e-mail or ID-card number in any log line
    cli_guard.CLI_USER = user  # read when the command runs (per invocation, never left in the env)
    if data_dir is not None:
        os.environ["LIEBIAN_DATA_DIR"] = str(data_dir)
        reset_settings_cache()
    # the links between the domains (risk checks, merge followers, ledger subscribers, jobs), built
    # when a command first crosses one: a command imports only the domains it uses
    ports.wire_on_first_use()
    if ctx.invoked_subcommand not in NO_AUTO_MIGRATE and "--help" not in sys.argv:
        # A fresh data directory works without a separate `liebian db upgrade` first.
        try:
            migrate.ensure_current()
        except PoolConfigError as exc:  # the first connection plans the pool: settings that cannot fit
            from liebian.serving import refuse_to_start  # uvicorn: only on this path (start-up time)

            refuse_to_start(exc)


if __name__ == "__main__":  # pragma: no cover
    app()
