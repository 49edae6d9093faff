"""One config.yml for every environment: `${var.NAME}` from `--var`, then `--var-file`, then the config's
`variables:`; `${env.NAME}`; `${secret.SCOPE.KEY}` only in credential keys, resolved at run time (locally
from the environment or `.ldp/secrets.toml`, on Databricks through the SDK's secrets API), its value never
echoed. Every unresolved reference is a located config error (exit 1); a malformed `--var` is a usage error."""
from __future__ import annotations

import base64
import json
from pathlib import Path
from unittest.mock import create_autospec

import pytest
from click.testing import CliRunner
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.workspace import GetSecretResponse

from pipelines.catalog.secrets import credential, local_variable, secret
from pipelines.core.config import load_config
from pipelines.core.errors import ConfigError, RunError
from pipelines.core.variables import Overrides, as_conf
from pipelines.engine.cli import cli
from tests.conftest import write_project

CANARY = "canary-7f3a9-SECRET"
CONFIG = """
variables:
  landing: ./landing
  parts: 4
  env_name: dev
pipeline: {schema: "shop_${var.env_name}", transformations: ./transformations}
tables:
  - name: raw
    layer: bronze
    tags: ["${var.env_name}"]
    source: {type: files, format: csv, path: "${var.landing}/orders", schema: "id INT", options: {header: true}}
  - name: db
    layer: bronze
    comment: "costs $${dollars} and ${spark_var} stays"
    source: {type: jdbc, url: "jdbc:postgresql://${env.SHOP_HOST}:5432/shop", table: t, user: reader,
             password: "${secret.shop.db-password}", partition_column: id, lower_bound: 0, upper_bound: 9,
             num_partitions: "${var.parts}"}
"""
MODULES = {"bronze/raw.py": "def raw(source):\n    return source\n",
           "bronze/db.py": "def db(source):\n    return source\n"}


@pytest.fixture()
def project(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SHOP_HOST", "db.internal")
    monkeypatch.setenv(local_variable("shop", "db-password"), CANARY)
    for folder in ("landing/orders", "staging/orders", "prod/orders"):
        (tmp_path / folder).mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    return write_project(tmp_path, CONFIG, MODULES)


def validate(*args: str) -> tuple[int, dict, str]:
    result = CliRunner().invoke(cli, ["validate", "--format", "json", "--show-config", *args])
    return result.exit_code, json.loads(result.stdout), result.stderr


def test_variables_take_cli_then_file_then_defaults_and_keep_a_whole_references_type(project):
    code, out, _ = validate()
    assert code == 0, out
    resolved = out["resolved"]
    assert resolved["pipeline"]["schema"] == "shop_dev" and resolved["tables"][0]["tags"] == ["dev"]
    assert resolved["tables"][0]["source"]["path"] == "./landing/orders"
    assert resolved["tables"][1]["source"]["num_partitions"] == 4  # a whole reference keeps its type
    assert resolved["tables"][1]["source"]["url"] == "jdbc:postgresql://db.internal:5432/shop"
    assert resolved["tables"][1]["comment"] == "costs ${dollars} and ${spark_var} stays"  # $${ and Spark's ${x}
    # the secret stays a reference: validate passes without reading it, and never prints it
    assert resolved["tables"][1]["source"]["password"] == "${secret.shop.db-password}"
    assert CANARY not in json.dumps(out)

    (project.parent / "staging.yml").write_text("env_name: staging\nlanding: ./staging\nparts: 8\n")
    code, out, _ = validate("--var-file", "staging.yml")
    assert code == 0 and out["resolved"]["pipeline"]["schema"] == "shop_staging"
    assert out["resolved"]["tables"][0]["source"]["path"] == "./staging/orders"
    assert out["resolved"]["tables"][1]["source"]["num_partitions"] == 8

    code, out, _ = validate("--var-file", "staging.yml", "--var", "env_name=prod", "--var", "landing=./prod")
    assert code == 0 and out["resolved"]["pipeline"]["schema"] == "shop_prod"  # --var beats --var-file
    assert out["resolved"]["tables"][0]["source"]["path"] == "./prod/orders"
    assert out["resolved"]["tables"][1]["source"]["num_partitions"] == 8  # from the file, as no --var gave it
    assert out["resolved"]["variables"] == {"landing": "./prod", "parts": 8, "env_name": "prod"}

    text = CliRunner().invoke(cli, ["validate", "--show-config", "--var", "env_name=prod"])
    assert text.exit_code == 0 and "schema: shop_prod" in text.stdout and CANARY not in text.output


def test_every_unresolved_reference_is_a_located_config_error(project, monkeypatch):
    monkeypatch.delenv("SHOP_HOST")
    text = CONFIG.replace("  env_name: dev\n", "").replace("user: reader", "user: \"${vars.user}\"").replace(
        "table: t,", "table: \"${secret.shop.table}\",")
    project.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(project, Overrides.parse(("unused=1",)))
    problems = [p.render() for p in caught.value.problems]
    assert len(problems) == 6, problems
    rendered = "\n".join(problems)
    assert "config.yml:5, key 'pipeline.schema': variable 'env_name' (${var.env_name}) has no value; give it a " \
           "default under variables: in the config, or pass --var env_name=VALUE or a --var-file naming it" in rendered
    assert "config.yml:9, table 'raw', key 'tags': variable 'env_name'" in rendered
    assert "table 'db', key 'source.url': environment variable 'SHOP_HOST' (${env.SHOP_HOST}) is not set" in rendered
    assert "table 'db', key 'source.user': unknown reference ${vars.user}; write ${var.NAME}" in rendered
    assert "table 'db', key 'source.table': a secret reference (${secret.shop.table}) goes only in a credential " \
           "key (jaas_config, password)" in rendered
    assert "variable 'unused' is given (--var) but the config never uses it" in rendered

    result = CliRunner().invoke(cli, ["validate", "--format", "json"])
    assert result.exit_code == 1 and json.loads(result.stdout)["status"] == "invalid"


def test_a_credential_written_as_text_is_refused_and_never_echoed(project):
    project.write_text(CONFIG.replace('"${secret.shop.db-password}"', CANARY))
    with pytest.raises(ConfigError) as caught:
        load_config(project)
    assert "key 'source.password': a credential never goes in config.yml" in caught.value.render()
    assert CANARY not in caught.value.render()


def test_malformed_command_line_variables_are_usage_errors(project):
    for args, message in [(["--var", "no_equals"], "--var takes NAME=VALUE"),
                          (["--var", "1bad=x"], "--var takes NAME=VALUE"),
                          (["--var-file", "missing.yml"], "cannot read the --var-file")]:
        result = CliRunner().invoke(cli, ["validate", *args])
        assert result.exit_code == 2 and message in result.stderr, (args, result.output)
    (project.parent / "nested.yml").write_text("a: {b: 1}\n")
    result = CliRunner().invoke(cli, ["validate", "--var-file", "nested.yml"])
    assert result.exit_code == 2 and "flat mapping of NAME: VALUE" in result.stderr


def test_a_local_secret_comes_from_the_environment_then_the_secrets_file(tmp_path, monkeypatch):
    reference = "${secret.shop.db-password}"
    monkeypatch.setenv("LDP_SECRET_SHOP_DB_PASSWORD", "from-env")
    assert local_variable("shop", "db-password") == "LDP_SECRET_SHOP_DB_PASSWORD"
    assert secret(reference, "the password", "source.password", tmp_path) == "from-env"
    monkeypatch.delenv("LDP_SECRET_SHOP_DB_PASSWORD")
    with pytest.raises(RunError) as caught:
        secret(reference, "the password of jdbc:x", "source.password", tmp_path)
    assert caught.value.render() == (
        "key 'source.password': the password of jdbc:x: secret ${secret.shop.db-password} is not set; locally, set "
        "the environment variable LDP_SECRET_SHOP_DB_PASSWORD or add db-password under [shop] in "
        f"{tmp_path / '.ldp/secrets.toml'} (keep that file out of git)")
    (tmp_path / ".ldp").mkdir()
    (tmp_path / ".ldp/secrets.toml").write_text('[shop]\n"db-password" = "from-file"\n')
    assert secret(reference, "the password", "source.password", tmp_path) == "from-file"
    (tmp_path / ".ldp/secrets.toml").write_text(f'[shop]\n"db-password" = "{CANARY}\n')  # broken TOML
    with pytest.raises(RunError) as caught:
        secret(reference, "the password", "source.password", tmp_path)
    assert "cannot read the local secrets file" in caught.value.render() and CANARY not in caught.value.render()
    # the *_env twin, and neither
    monkeypatch.setenv("SHOP_PASSWORD", "env-twin")
    assert credential(None, "SHOP_PASSWORD", "the password", "source.password", tmp_path) == "env-twin"
    assert credential(None, None, "the password", "source.password", tmp_path) is None


def test_on_databricks_a_secret_is_read_through_the_sdks_secrets_api(tmp_path):
    client = create_autospec(WorkspaceClient, instance=True)
    client.secrets.get_secret.return_value = GetSecretResponse(
        key="db-password", value=base64.b64encode(CANARY.encode()).decode())
    value = secret("${secret.shop.db-password}", "the password", "source.password", tmp_path,
                   workspace=lambda: client)
    assert value == CANARY
    client.secrets.get_secret.assert_called_once_with(scope="shop", key="db-password")

    client.secrets.get_secret.side_effect = PermissionError("User does not have READ permission on scope shop")
    with pytest.raises(RunError) as caught:
        secret("${secret.shop.db-password}", "the password", "source.password", tmp_path, workspace=lambda: client)
    assert "cannot read secret db-password of scope shop: PermissionError: User does not have READ" \
        in caught.value.render()


def test_a_pipeline_configuration_carries_the_variables_to_the_sdp_driver_and_databricks(project):
    config = load_config(project, Overrides.parse(("env_name=prod",)))
    conf = as_conf(config.variables)
    assert conf == {"ldp.var.landing": "./landing", "ldp.var.parts": "4", "ldp.var.env_name": "prod"}
    again = load_config(project, Overrides.from_conf({**conf, "spark.app.name": "x"}))
    assert again.pipeline.schema_name == "shop_prod" and again.variables == {
        "landing": "./landing", "parts": "4", "env_name": "prod"}


def test_the_bundle_passes_only_variables_the_example_config_declares():
    """Each task's `--var NAME=...` and the pipeline's `ldp.var.NAME` name a variable of config.yml, so
    one config serves every target (an unknown one would fail the run as a config error)."""
    import re

    import yaml

    repo = Path(__file__).resolve().parents[2]
    declared = set(load_config(repo / "config.yml").variables)
    job = (repo / "workflows/daily_job.yml").read_text()
    passed = set(re.findall(r'"--var", "(\w+)=', job))
    pipeline = yaml.safe_load((repo / "workflows/ldp_pipeline.yml").read_text())
    configuration = next(iter(pipeline["resources"]["pipelines"].values()))["configuration"]
    tasks = yaml.safe_load(job)["resources"]["jobs"]["ldp_daily"]["tasks"]
    assert passed == {"env_name"} and job.count('"--var", "env_name=${bundle.target}"') == len(tasks)  # each task
    assert set(Overrides.from_conf(configuration).values) == {"env_name", "kafka_bootstrap_servers"} <= declared


def test_kafka_takes_its_jaas_config_as_a_secret_reference_or_an_environment_variable_not_both():
    from pydantic import ValidationError

    from pipelines.core.kafka_sink import KafkaSink
    from pipelines.core.kafka_source import KafkaSource

    source = KafkaSource(type="kafka", bootstrap_servers="b:9092", topic="t", jaas_config="${secret.kafka.jaas}")
    assert source.jaas_config == "${secret.kafka.jaas}" and "kafka.sasl.jaas.config" not in source.reader_options
    sink = KafkaSink(type="kafka", bootstrap_servers="b:9092", topic="t", jaas_config="${secret.kafka.jaas}")
    assert "kafka.sasl.jaas.config" not in sink.writer_options
    for given, message in [({"jaas_config": "${secret.kafka.jaas}", "jaas_config_env": "KAFKA_JAAS"}, "not both"),
                           ({"jaas_config": CANARY}, "a credential never goes in config.yml")]:
        with pytest.raises(ValidationError, match=message):
            KafkaSource(type="kafka", bootstrap_servers="b:9092", topic="t", **given)
