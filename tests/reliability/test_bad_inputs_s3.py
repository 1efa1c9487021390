"""Odd keys on (moto) S3: Lookup and Segment handle them as they do on the local store.

S3 keys may hold any UTF-8: spaces, accents, ``#%+&=@:``, even a backslash. Lookup
must put them in the manifest unchanged, and Segment must read them — or, for a key
the store refuses (a backslash), record a per-image error naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from plateseg.contracts import Batch, LookupRequest, ManifestItem
from plateseg.demo import write_demo_experiment
from plateseg.pipeline.lookup import lookup
from plateseg.pipeline.segment import segment_batch
from plateseg.settings import Settings, use_settings
from plateseg.store import LocalStore, S3Store, get_json

pytestmark = pytest.mark.xdist_group("bad_inputs")

BUCKET = "plateseg-bad-keys"
EXPERIMENT = "BAD-S3"
PLATES = {"unicode": "Plaque é 2", "special": "Run #3 (50%+) & co=@:"}


@pytest.fixture
def s3(fake_aws: Callable[[str], None], tmp_path: Path) -> Iterator[S3Store]:
    """An empty moto S3 bucket; the database under tmp_path."""
    fake_aws("us-east-1")
    use_settings(Settings(home=tmp_path / "home", store=f"s3://{BUCKET}", time_scale=0))
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield S3Store(BUCKET)
    use_settings(None)


@pytest.fixture
def odd_keys(s3: S3Store, tmp_path: Path) -> S3Store:
    """One good demo field copied under odd plate folders, plus one backslash key."""
    source = LocalStore(tmp_path / "source")
    write_demo_experiment(source, EXPERIMENT, size=64, fields=1, wells=["A01"])
    w1 = source.get_bytes(f"experiments/{EXPERIMENT}/P1/P1_A01_s1_w1.tif")
    w2 = source.get_bytes(f"experiments/{EXPERIMENT}/P1/P1_A01_s1_w2.tif")
    for plate in PLATES.values():
        s3.put_bytes(f"experiments/{EXPERIMENT}/{plate}/{plate}_A01_s1_w1.tif", w1)
        s3.put_bytes(f"experiments/{EXPERIMENT}/{plate}/{plate}_A01_s1_w2.tif", w2)
    s3.client.put_object(  # around check_key: another tool wrote it
        Bucket=BUCKET, Key=f"experiments/{EXPERIMENT}/P1/back\\slash_B02_s1_w1.tif", Body=w1
    )
    return s3


def test_odd_s3_keys_go_through_lookup_and_segment(odd_keys: S3Store) -> None:
    found = lookup(
        LookupRequest(
            input={"experiment_id": EXPERIMENT, "run_id": "s3-run"},
            execution_name="x",
            bucket=BUCKET,
        ),
        odd_keys,
    )
    manifest = [
        ManifestItem.model_validate(item) for item in get_json(odd_keys, found.manifest_key)
    ]
    by_plate = {item.plate: item for item in manifest}
    for plate in PLATES.values():
        assert by_plate[plate].channels["w1"] == (
            f"experiments/{EXPERIMENT}/{plate}/{plate}_A01_s1_w1.tif"
        )
    batch = Batch.model_validate(
        {
            "BatchInput": {
                "run_id": "s3-run",
                "experiment_id": EXPERIMENT,
                "bucket": BUCKET,
                "recipe": found.recipe,
            },
            "Items": [item.model_dump() for item in manifest],
        }
    )
    result = {summary.image_id: summary for summary in segment_batch(batch, odd_keys).images}
    counts = {result[f"{plate}_A01_1"].object_count for plate in PLATES.values()}
    assert len(counts) == 1 and counts.pop() > 0
    for plate in PLATES.values():
        summary = result[f"{plate}_A01_1"]
        assert summary.status == "ok" and summary.mask_key is not None
        assert odd_keys.exists(summary.mask_key)
    bad = result["P1_B02_1"]
    assert (bad.status, bad.error) == ("error", "ImageReadError")
    assert bad.cause is not None and "back\\slash_B02_s1_w1.tif: cannot be read" in bad.cause
