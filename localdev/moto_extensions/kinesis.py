"""Kinesis: tags at creation, resharding as Kinesis does it."""
from __future__ import annotations

import hashlib
from collections import OrderedDict

from localdev.moto_extensions.registry import extension


@extension
def kinesis_tags_at_creation() -> None:
    """CreateStream's Tags were dropped, so the first plan after an apply re-tagged the stream."""
    from moto.kinesis.responses import KinesisResponse

    create = KinesisResponse.create_stream

    def create_stream(self):  # noqa: ANN001, ANN202
        answer = create(self)
        tags = self._get_param("Tags")
        if tags:
            self.kinesis_backend.add_tags_to_stream(None, self._get_param("StreamName"), tags)
        return answer

    KinesisResponse.create_stream = create_stream


@extension
def kinesis_faithful_resharding() -> None:
    """Measured on moto 5 (tests/processor/test_resilience.py): SplitShard moves the
    parent's records into the children, and PutRecord keeps routing keys to the closed
    parent (the first shard whose hash range matches, open or not). Kinesis keeps a closed
    parent's records in the parent and routes new records to open shards only, which is
    what "parents drained before children" relies on."""
    from moto.kinesis import models

    models.Stream.get_shard_for_key = _route_to_open_shards(models.Stream.get_shard_for_key)
    models.Stream.split_shard = _split_keeping_parent_records(models.Stream.split_shard)


def _route_to_open_shards(original):  # noqa: ANN001, ANN202
    def get_shard_for_key(self, partition_key: str, explicit_hash_key: str):  # noqa: ANN001, ANN202
        shard = original(self, partition_key, explicit_hash_key)  # validates the key, first match wins
        if shard is None or shard.is_open:
            return shard
        if explicit_hash_key:
            hashed = int(explicit_hash_key)
        else:
            hashed = int(hashlib.md5(partition_key.encode()).hexdigest(), 16)
        return next((s for s in self.shards.values() if s.is_open and s.starting_hash <= hashed < s.ending_hash),
                    None)

    return get_shard_for_key


def _split_keeping_parent_records(original):  # noqa: ANN001, ANN202
    def split_shard(self, shard_to_split: str, new_starting_hash_key: str) -> None:  # noqa: ANN001
        parent = self.shards[shard_to_split]
        kept = OrderedDict(parent.records)
        original(self, shard_to_split, new_starting_hash_key)
        for shard in self.shards.values():  # undo the move into the children
            if shard.parent == parent.shard_id:
                shard.records = OrderedDict()
        parent.records = kept

    return split_shard
