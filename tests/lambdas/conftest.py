"""Handlers against moto S3: the bucket the handlers read is a (mocked) S3 bucket."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from plateseg.demo import write_demo_experiment
from plateseg.settings import Settings, use_settings
from plateseg.store import LocalStore, S3Store

BUCKET = "plateseg-handler-test"


@pytest.fixture(scope="session")
def demo_source(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    """A demo experiment generated once per session into a local folder."""
    store = LocalStore(tmp_path_factory.mktemp("demo-source"))
    write_demo_experiment(store, "DEMO-001", size=256, seed=3)
    return store


@pytest.fixture
def s3(fake_aws: Callable[[str], None], tmp_path: Path) -> Iterator[S3Store]:
    """An empty moto S3 bucket; settings point the database at tmp_path."""
    fake_aws("us-east-1")
    use_settings(Settings(home=tmp_path / "home", store=f"s3://{BUCKET}", time_scale=0))
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield S3Store(BUCKET)
    use_settings(None)


def copy_wells(source: LocalStore, target: S3Store, wells: list[str]) -> list[str]:
    """Copy the images of some demo wells to the target store; return the keys."""
    keys = []
    for info in source.list("experiments/DEMO-001/"):
        if any(f"_{well}_" in info.key for well in wells):
            target.put_bytes(info.key, source.get_bytes(info.key))
            keys.append(info.key)
    return keys
