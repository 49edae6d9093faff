"""Every `ldp_engine` option, declared once (as dbt's `cli/params.py`): a command stacks the ones it
takes, so an option's name, type, default, env var and help are the same wherever it appears.

Options whose meaning differs per command (`--table`, `--version`, `--limit`) stay with their command.
"""
from __future__ import annotations

from typing import Any, Callable

import click

from pipelines.core.results import RUN_ID_ENV

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
CONFIG_ENV = "LDP_CONFIG"
RUNNER_NAMES = ("spark", "sdp", "pipeline")  # the keys of `launch.RUNNERS` (a unit test keeps them equal)


def stack(*options: Decorator) -> Decorator:
    """Several options as one decorator, listed in `--help` in the order given."""

    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


def format_option(*choices: str) -> Decorator:
    """--format with these choices, the first the default (graph draws; the others print text or json)."""
    return click.option("--format", "output_format", type=click.Choice(choices), default=choices[0],
                        show_default=True, help="Output format (json: only JSON on stdout).")


VARIABLES = "ldp.variables"  # click context meta: the --var pairs and --var-file, read by `options.overrides`


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Keep --var/--var-file as given; they are parsed inside the command, where errors are reported."""
    ctx.meta.setdefault(VARIABLES, {})[param.name] = value
    return value


# what (nearly) every command takes
config = stack(
    click.option("--config", "config", type=click.Path(), envvar=CONFIG_ENV,
                 help="Path to config.yml [default: ./config.yml, else the example shipped in the wheel; "
                      "env LDP_CONFIG]."),
    click.option("--var", "var", multiple=True, expose_value=False, callback=_remember, metavar="NAME=VALUE",
                 help="The value of config.yml's ${var.NAME} (repeat for more); beats --var-file and the "
                      "config's variables: defaults."),
    click.option("--var-file", "var_file", type=click.Path(dir_okay=False), expose_value=False,
                 callback=_remember, help="A YAML file of NAME: VALUE for config.yml's ${var.NAME}."))
verbose = click.option("--verbose", "-v", is_flag=True, help="Show logs and tracebacks.")
wait = click.option("--wait", type=click.FloatRange(min=0), default=0, show_default=True,
                    help="Seconds to wait while another run holds the state folder, then exit 3.")
output_format = format_option("text", "json")
state_dir = click.option("--state-dir", type=click.Path(file_okay=False),
                         help="Local warehouse, metastore and checkpoints [default: ./.ldp; env LDP_STATE_DIR].")

# which tables: read them with `options.selection`
tags = click.option("--tags", help="Comma-separated tags; a table must carry all of them (see --match).")
match = click.option("--match", type=click.Choice(["all", "any"]), default="all", show_default=True,
                     help="all: a table needs every tag (AND); any: at least one (OR).")
select = click.option("--select", "select_", help="Comma-separated table names; '+name' adds its upstream.")
exclude = click.option("--exclude", help="Comma-separated table names to leave out.")
selection = stack(tags, match, select, exclude)

# where the tables are, and which run writes them
catalog = click.option("--catalog", help="Override pipeline.catalog (Databricks), e.g. per bundle target.")
schema = click.option("--schema", help="Override pipeline.schema.")
target = stack(catalog, schema)
run_id = click.option("--run-id", envvar=RUN_ID_ENV, help="The run's id (e.g. {{job.run_id}}): a retried run keeps "
                      "it, so its inventory records and appended sink rows are replaced, not doubled [env LDP_RUN_ID].")

# how a run runs
mode = click.option("--mode", type=click.Choice(["batch", "streaming"]), default="batch", show_default=True,
                    help="batch recomputes tables; streaming appends only new source files.")
runner = click.option("--runner", type=click.Choice(RUNNER_NAMES), default="spark", show_default=True,
                      help="spark: run the plan on this Spark session; sdp: as a local Spark Declarative "
                           "Pipeline; pipeline: start an update of the Databricks pipeline --pipeline-id.")
pipeline_id = click.option("--pipeline-id", envvar="LDP_PIPELINE_ID",
                           help="Databricks pipeline to update (--runner pipeline).")
full_refresh = click.option("--full-refresh", is_flag=True, help="sdp/pipeline: reset the selected tables "
                            "(streaming checkpoints included) and recompute.")
dry_run = click.option("--dry-run", is_flag=True, help="Print the plan without starting Spark "
                       "(with --runner sdp: resolve every flow on empty inputs in a scratch schema).")
max_parallel = click.option("--max-parallel", type=click.IntRange(min=1), default=4, show_default=True,
                            help="Tables that may run at the same time.")
fail_fast = click.option("--fail-fast", is_flag=True, help="Stop starting tables after the first failure.")
table_timeout = click.option("--table-timeout", type=click.FloatRange(min=0, min_open=True),
                             help="Fail a table still running after this many seconds (spark runner); its "
                                  "downstream tables are skipped, independent ones finish.")
